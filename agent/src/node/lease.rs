//! The lease holder: announces the floating IPs the coordinator assigned to this node, only
//! while the node's lease is valid, and withdraws every one of them the moment it is not.
//!
//! The session feeds it two things: the assigned set (whole, never a delta) and the lease
//! deadline, an instant on this process's monotonic clock. A run loop makes the announced
//! set equal "the assigned set if the deadline is in the future, else nothing" on every
//! change, at the deadline, and every second (to repair addresses someone removed). Each
//! change of the deadline is forwarded to the [`FenceGuard`], which removes the addresses
//! itself if this process dies or stops renewing.
//!
//! Answering is separate from holding: the [`Gate`] of the responder that answers ARP/NDP for
//! the held addresses is open only until the answer window after the last answered report,
//! shut at once when the session fails ([`LeaseHolder::shut`]) and for good once the agent is
//! leaving ([`LeaseHolder::leave`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::fence::FenceGuard;
use hearth_net::announce::{Announcer, Frames, Gate};
use hearth_net::model::AnnouncedIp;
use hearth_net::netlink::Netlink;

/// How often the held set is checked against the kernel without any change.
const RESYNC: Duration = Duration::from_secs(1);

/// One floating IP assigned to this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leased {
    /// The floating IP's name.
    pub name: String,
    /// Its address.
    pub address: IpAddr,
    /// The interface to add and announce it on.
    pub dev: String,
    /// The assignment's epoch.
    pub epoch: u64,
}

/// What the holder holds right now, for reports and the status page.
#[derive(Debug, Clone, Default)]
pub struct Held {
    /// The addresses announced under the current lease.
    pub addresses: Vec<Leased>,
    /// When each was last (re)announced, as Unix seconds.
    pub announced_unix: HashMap<String, u64>,
    /// The lease deadline, if a lease is held.
    pub deadline: Option<Instant>,
}

#[derive(Debug, Clone, Default)]
struct Wanted {
    assigned: Vec<Leased>,
    deadline: Option<Instant>,
}

/// The shared handle: the session writes, the run loop reads.
#[derive(Debug)]
pub struct LeaseHolder {
    wanted: watch::Sender<Wanted>,
    /// The highest epoch seen per floating IP: an older assignment is never acted on.
    epochs: Mutex<HashMap<String, u64>>,
    held: Mutex<Held>,
    gate: Arc<Gate>,
    leaving: AtomicBool,
}

impl Default for LeaseHolder {
    fn default() -> Self {
        Self {
            wanted: watch::Sender::new(Wanted::default()),
            epochs: Mutex::new(HashMap::new()),
            held: Mutex::new(Held::default()),
            gate: Arc::new(Gate::default()),
            leaving: AtomicBool::new(false),
        }
    }
}

impl LeaseHolder {
    /// The gate the node's answers for its leased addresses pass.
    pub fn gate(&self) -> &Arc<Gate> {
        &self.gate
    }

    /// Replaces the assigned set. Entries older (by epoch) than one already seen for the same
    /// floating IP are dropped. Ignored once leaving.
    pub fn assign(&self, assigned: Vec<Leased>) {
        if self.leaving() {
            return;
        }
        let mut kept = Vec::with_capacity(assigned.len());
        if let Ok(mut epochs) = self.epochs.lock() {
            for a in assigned {
                let seen = epochs.entry(a.name.clone()).or_insert(a.epoch);
                if a.epoch < *seen {
                    tracing::warn!(name = %a.name, epoch = a.epoch, seen = *seen,
                        "ignoring an assignment older than one already seen");
                    continue;
                }
                *seen = a.epoch;
                kept.push(a);
            }
        }
        self.wanted.send_modify(|w| w.assigned = kept);
    }

    /// Moves the lease deadline (never backwards: an old lease answer can arrive late) and
    /// opens the answer gate until `answer_until` (unless leaving).
    pub fn extend(&self, deadline: Instant, answer_until: Instant) {
        if !self.leaving() {
            self.gate.open_until(answer_until.min(deadline));
        }
        self.wanted.send_if_modified(|w| {
            if w.deadline.is_some_and(|d| d >= deadline) {
                return false;
            }
            w.deadline = Some(deadline);
            true
        });
    }

    /// Stops answering at once (the session's own end failed); addresses stay until the lease
    /// deadline, so a session that comes back quickly resumes without re-adding them.
    pub fn shut(&self) {
        self.gate.shut();
    }

    /// Stops answering for good and withdraws everything: this process is leaving (SIGTERM).
    /// Later assignments and leases open nothing.
    pub fn leave(&self) {
        self.leaving.store(true, Ordering::Release);
        self.gate.shut();
        self.wanted.send_modify(|w| w.assigned.clear());
    }

    /// Whether [`LeaseHolder::leave`] was called.
    pub fn leaving(&self) -> bool {
        self.leaving.load(Ordering::Acquire)
    }

    /// Whether the lease is valid now.
    pub fn valid(&self) -> bool {
        self.wanted
            .borrow()
            .deadline
            .is_some_and(|d| Instant::now() < d)
    }

    /// What is held now.
    pub fn held(&self) -> Held {
        self.held.lock().map(|h| h.clone()).unwrap_or_default()
    }

    fn set_held(&self, addresses: Vec<Leased>, deadline: Option<Instant>, fresh: &[String]) {
        if let Ok(mut h) = self.held.lock() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            for name in fresh {
                h.announced_unix.insert(name.clone(), now);
            }
            h.announced_unix
                .retain(|name, _| addresses.iter().any(|a| &a.name == name));
            h.addresses = addresses;
            h.deadline = deadline;
        }
    }
}

/// Keeps the announced set equal to the assigned set while the lease is valid; runs forever.
pub async fn run<N, F>(
    holder: Arc<LeaseHolder>,
    announcer: Announcer<N, F>,
    mut guard: Option<FenceGuard>,
) where
    N: Netlink + 'static,
    F: Frames + 'static,
{
    let mut rx = holder.wanted.subscribe();
    loop {
        let wanted = rx.borrow_and_update().clone();
        let now = Instant::now();
        let deadline = wanted.deadline.filter(|d| *d > now);
        if let Some(g) = guard.as_mut() {
            if let Err(e) = g.set_deadline(deadline) {
                tracing::error!("fence guard: {e}; withdrawing every leased address");
                guard = None;
            }
        }
        let target: Vec<Leased> = if deadline.is_some() {
            wanted.assigned.clone()
        } else {
            Vec::new()
        };
        let before: Vec<IpAddr> = announcer.active().iter().map(|a| a.address).collect();
        let ips: Vec<AnnouncedIp> = target
            .iter()
            .map(|l| AnnouncedIp {
                address: l.address,
                dev: l.dev.clone(),
            })
            .collect();
        if deadline.is_none() && !before.is_empty() {
            // The cause, once; each address then gets its own `floating IP withdrawn` line.
            tracing::warn!(
                count = before.len(),
                "lease not valid: withdrawing the leased floating IPs"
            );
        }
        let errors = announcer.sync(&ips).await;
        for e in &errors {
            tracing::warn!("{e}");
        }
        let active = announcer.active();
        let held: Vec<Leased> = target
            .into_iter()
            .filter(|l| {
                active
                    .iter()
                    .any(|a| a.address == l.address && a.dev == l.dev)
            })
            .collect();
        let fresh: Vec<String> = held
            .iter()
            .filter(|l| !before.contains(&l.address))
            .map(|l| l.name.clone())
            .collect();

        holder.set_held(held, deadline, &fresh);
        let resync = tokio::time::sleep(if errors.is_empty() {
            RESYNC
        } else {
            Duration::from_millis(100)
        });
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            () = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {}
            () = resync => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web(epoch: u64) -> Leased {
        Leased {
            name: "web".into(),
            address: "203.0.113.7".parse().unwrap(),
            dev: "eth0".into(),
            epoch,
        }
    }

    #[tokio::test]
    async fn the_answer_gate_follows_leases_shuts_on_failure_and_for_good_on_leave() {
        let h = LeaseHolder::default();
        assert!(!h.gate().is_open(), "shut until the first lease");
        let now = Instant::now();
        h.extend(now + Duration::from_secs(60), now + Duration::from_secs(30));
        assert!(h.gate().is_open() && h.valid());
        // The gate never outlives the lease.
        assert!(h
            .gate()
            .deadline()
            .is_some_and(|d| d <= now + Duration::from_secs(30)));
        h.shut();
        assert!(!h.gate().is_open(), "the session's end failed");
        assert!(h.valid(), "the address stays until the lease deadline");
        h.extend(now + Duration::from_secs(61), now + Duration::from_secs(31));
        assert!(h.gate().is_open(), "a new session's lease opens it again");
        h.assign(vec![web(1)]);
        assert_eq!(h.wanted.borrow().assigned.len(), 1);
        h.leave();
        assert!(!h.gate().is_open() && h.leaving());
        assert!(
            h.wanted.borrow().assigned.is_empty(),
            "everything withdrawn"
        );
        h.extend(now + Duration::from_secs(62), now + Duration::from_secs(32));
        h.assign(vec![web(2)]);
        assert!(!h.gate().is_open(), "nothing opens it once leaving");
        assert!(h.wanted.borrow().assigned.is_empty());
    }
}
