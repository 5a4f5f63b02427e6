//! The floating-IP announcer. [`Announcer::announce`] adds the address (/32, or /128 with
//! nodad) with the floating address protocol, sends gratuitous ARP (request and reply) or an
//! unsolicited NA at once, repeats it on the [`Schedule`] and refreshes it periodically;
//! [`Announcer::withdraw`] stops that and removes the address. It owns only addresses that
//! carry its protocol ([`FLOATING_PROTO`] or [`LEASED_PROTO`]); it never touches any other.
//!
//! With a [`Responder`] ([`Announcer::answering`], the leased floating IPs), the address goes
//! on `lo` instead, the responder answers ARP and NDP for it on the announce interface, and
//! every announcement passes the responder's [`Gate`]: nothing of it outlives the process.

pub mod answer;
mod error;
pub mod frame;
mod packet;
pub mod responder;
mod sync;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use error::AnnounceError;
pub use packet::{Frames, PacketSocket, ETH_P_ARP, ETH_P_IPV6};
pub use responder::{Gate, Responder};
pub use sync::{plan, FipChange};

use super::model::{Address, AnnouncedIp, Mac, Prefix};
use super::netlink::{Netlink, Op, Owner, Seen, SeenLink};
use super::{FLOATING_PROTO, LEASED_PROTO};

/// Where answered addresses live: the kernel accepts traffic to them but does not answer.
pub const HOST_DEV: &str = "lo";

/// When announcements go out: at each `burst` offset after the address is added (the first
/// is normally zero), then every `refresh`.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Offsets from the announce call.
    pub burst: Vec<Duration>,
    /// The refresh period after the burst.
    pub refresh: Duration,
}

impl Default for Schedule {
    /// Three times within the first second (0, 200 and 600 ms), then every 30 s.
    fn default() -> Self {
        Self {
            burst: vec![
                Duration::ZERO,
                Duration::from_millis(200),
                Duration::from_millis(600),
            ],
            refresh: Duration::from_secs(30),
        }
    }
}

/// The frames of one announcement round.
pub fn frames(mac: Mac, ip: IpAddr) -> Vec<Vec<u8>> {
    match ip {
        IpAddr::V4(v4) => vec![
            frame::gratuitous_arp(mac.0, v4, false),
            frame::gratuitous_arp(mac.0, v4, true),
        ],
        IpAddr::V6(v6) => vec![frame::unsolicited_na(mac.0, v6)],
    }
}

fn host(ip: IpAddr, dev: &str) -> Address {
    Address {
        dev: dev.to_owned(),
        prefix: Prefix {
            addr: ip,
            len: Prefix::max_len(ip),
        },
        nodad: ip.is_ipv6(),
    }
}

/// `dev`'s index and MAC in one links dump.
fn resolve(links: &[SeenLink], dev: &str) -> Option<(u32, Mac)> {
    links
        .iter()
        .find(|l| l.link.name == dev)
        .and_then(|l| Some((l.index, l.link.mac?)))
}

struct Entry {
    dev: String,
    /// Where announcements go (resolved in the pass that started them).
    at: (u32, Mac),
    task: tokio::task::JoinHandle<()>,
}

/// Announces floating IPs in one network namespace.
pub struct Announcer<N: Netlink + 'static, F: Frames + 'static> {
    netlink: Arc<N>,
    frames: Arc<F>,
    schedule: Schedule,
    /// The address protocol it writes and the owner it recognises: floating or leased.
    owner: (u8, Owner),
    /// Answers for the addresses from this process (they go on [`HOST_DEV`]).
    responder: Option<Arc<Responder>>,
    active: Mutex<HashMap<IpAddr, Entry>>,
}

impl<N: Netlink + 'static, F: Frames + 'static> std::fmt::Debug for Announcer<N, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announcer")
            .field("active", &self.active())
            .finish()
    }
}

impl<N: Netlink + 'static, F: Frames + 'static> Drop for Announcer<N, F> {
    fn drop(&mut self) {
        if let Ok(active) = self.active.get_mut() {
            for (_, e) in active.drain() {
                e.task.abort();
            }
        }
    }
}

impl<N: Netlink + 'static, F: Frames + 'static> Announcer<N, F> {
    /// An announcer of the node network file's floating IPs ([`FLOATING_PROTO`]), with
    /// nothing announced.
    pub fn new(netlink: Arc<N>, frames: Arc<F>, schedule: Schedule) -> Self {
        Self {
            netlink,
            frames,
            schedule,
            owner: (FLOATING_PROTO, Owner::Floating),
            responder: None,
            active: Mutex::new(HashMap::new()),
        }
    }

    /// An announcer of floating IPs leased from the coordinator ([`LEASED_PROTO`]): it sees and
    /// removes only those, never the file's.
    pub fn leased(netlink: Arc<N>, frames: Arc<F>, schedule: Schedule) -> Self {
        let mut a = Self::new(netlink, frames, schedule);
        a.owner = (LEASED_PROTO, Owner::Leased);
        a
    }

    /// Puts addresses on [`HOST_DEV`] and lets `responder` answer for them, behind its gate.
    #[must_use]
    pub fn answering(mut self, responder: Arc<Responder>) -> Self {
        self.responder = Some(responder);
        self
    }

    /// The floating IPs being announced.
    pub fn active(&self) -> Vec<AnnouncedIp> {
        let mut v: Vec<AnnouncedIp> = self
            .active
            .lock()
            .map(|a| {
                a.iter()
                    .map(|(ip, e)| AnnouncedIp {
                        address: *ip,
                        dev: e.dev.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The device the address of a floating IP announced on `dev` goes on.
    fn host_dev<'a>(&self, dev: &'a str) -> &'a str {
        if self.responder.is_some() {
            HOST_DEV
        } else {
            dev
        }
    }

    fn lookup(ip: IpAddr, dev: &str) -> impl Fn(super::netlink::NetlinkError) -> AnnounceError {
        let dev = dev.to_owned();
        move |source| AnnounceError::Lookup {
            ip,
            dev: dev.clone(),
            source,
        }
    }

    /// Adds `ip` on `dev` and announces it now, then on the schedule. Idempotent: a second
    /// call restarts the burst.
    pub async fn announce(&self, ip: IpAddr, dev: &str) -> Result<(), AnnounceError> {
        let links = self.netlink.links().await.map_err(Self::lookup(ip, dev))?;
        let have = self
            .netlink
            .addresses()
            .await
            .map_err(Self::lookup(ip, dev))?;
        self.start(ip, dev, true, &links, &have).await
    }

    async fn start(
        &self,
        ip: IpAddr,
        dev: &str,
        add: bool,
        links: &[SeenLink],
        have: &[Seen<Address>],
    ) -> Result<(), AnnounceError> {
        let (index, mac) = resolve(links, dev).ok_or_else(|| AnnounceError::NoDevice {
            ip,
            dev: dev.to_owned(),
        })?;
        let host_dev = self.host_dev(dev);
        let (host_index, _) = links
            .iter()
            .find(|l| l.link.name == host_dev)
            .map(|l| (l.index, ()))
            .ok_or_else(|| AnnounceError::NoDevice {
                ip,
                dev: host_dev.to_owned(),
            })?;
        if let Some(r) = &self.responder {
            r.suppress_kernel(ip, dev)?;
        }
        let address = host(ip, host_dev);
        let added = if add {
            let op = Op::AddAddress {
                index: host_index,
                address: address.clone(),
                proto: self.owner.0,
                replace: false,
            };
            self.netlink.write(vec![op]).await.pop()
        } else {
            None
        };
        if let Some(Err(e)) = added {
            if e.errno() != Some(libc::EEXIST) {
                return Err(AnnounceError::AddAddress { ip, source: e });
            }
            if !have.iter().any(|a| {
                a.item.prefix == address.prefix && a.item.dev == host_dev && a.owner == self.owner.1
            }) {
                return Err(AnnounceError::Foreign {
                    ip,
                    dev: host_dev.to_owned(),
                });
            }
        }
        let gate = self.responder.as_ref().map(|r| {
            r.hold(ip, index, mac);
            Arc::clone(r.gate())
        });
        let round = frames(mac, ip);
        if gate.as_ref().is_none_or(|g| g.is_open()) {
            for f in &round {
                self.frames.send(index, f)?;
            }
        }
        let (sender, schedule) = (Arc::clone(&self.frames), self.schedule.clone());
        let task = tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let send = |round: &[Vec<u8>]| {
                if gate.as_ref().is_none_or(|g| g.is_open()) {
                    send_round(&*sender, index, round);
                }
            };
            for offset in schedule.burst.iter().skip_while(|o| o.is_zero()) {
                tokio::time::sleep_until(start + *offset).await;
                send(&round);
            }
            let mut next =
                start + schedule.burst.last().copied().unwrap_or_default() + schedule.refresh;
            loop {
                tokio::time::sleep_until(next).await;
                next += schedule.refresh;
                send(&round);
            }
        });
        if let Ok(mut active) = self.active.lock() {
            let entry = Entry {
                dev: dev.to_owned(),
                at: (index, mac),
                task,
            };
            if let Some(old) = active.insert(ip, entry) {
                old.task.abort();
            }
        }
        tracing::info!(%ip, %dev, "floating IP announced");
        Ok(())
    }

    /// Stops announcing `ip` and removes its address (if it is still the announcer's).
    pub async fn withdraw(&self, ip: IpAddr) -> Result<(), AnnounceError> {
        let links = self.netlink.links().await.map_err(Self::lookup(ip, ""))?;
        let have = self
            .netlink
            .addresses()
            .await
            .map_err(Self::lookup(ip, ""))?;
        self.stop(ip, &links, &have).await
    }

    async fn stop(
        &self,
        ip: IpAddr,
        links: &[SeenLink],
        have: &[Seen<Address>],
    ) -> Result<(), AnnounceError> {
        if let Some(r) = &self.responder {
            r.release(ip);
        }
        let entry = self.active.lock().ok().and_then(|mut a| a.remove(&ip));
        if let Some(e) = &entry {
            e.task.abort();
        }
        let ops: Vec<Op> = have
            .iter()
            .filter(|a| a.owner == self.owner.1 && a.item.prefix.addr == ip)
            .filter_map(|a| {
                let index = links.iter().find(|l| l.link.name == a.item.dev)?.index;
                Some(Op::DeleteAddress {
                    index,
                    address: a.item.clone(),
                })
            })
            .collect();
        let mut removed = false;
        for r in self.netlink.write(ops).await {
            match r {
                Ok(()) => removed = true,
                Err(e)
                    if matches!(
                        e.errno(),
                        Some(libc::EADDRNOTAVAIL | libc::ENODEV | libc::ENOENT)
                    ) => {}
                Err(e) => return Err(AnnounceError::RemoveAddress { ip, source: e }),
            }
        }
        // One line per withdrawal: by the announcer that was announcing it. An address this
        // announcer did not announce (a previous run's, or the fence guard's sweep) that it
        // removed gets its own line; one already gone gets none.
        if entry.is_some() {
            tracing::info!(%ip, "floating IP withdrawn");
        } else if removed {
            tracing::info!(%ip, "floating IP address left behind removed");
        }
        Ok(())
    }
}

fn send_round<F: Frames + ?Sized>(frames: &F, index: u32, round: &[Vec<u8>]) {
    for f in round {
        if let Err(e) = frames.send(index, f) {
            tracing::warn!("{e}");
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
