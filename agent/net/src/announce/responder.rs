//! The floating-IP responder: the one thing on a node that answers ARP requests and IPv6
//! neighbour solicitations for the leased addresses, from this process, on AF_PACKET sockets.
//!
//! The kernel never answers for a leased address: the address sits on `lo` (so the node still
//! accepts traffic sent to it), IPv6 answers solicitations only for addresses on the receiving
//! interface, and for IPv4 the responder sets `arp_ignore=1` and `arp_announce=2` on each
//! interface it answers on before the address is added, so the kernel neither replies for an
//! address of another interface nor uses one as the sender of its own requests. Both sysctls
//! stay set when Hearth is gone, and they are what "suppressed" needs: nothing has to run.
//!
//! The sockets and the two receiver threads belong to this process, so when every Hearth process
//! of the node is dead, by any signal, nothing answers any more. While the process lives it
//! answers only while its [`Gate`] is open: the lease holder keeps the gate open until a short
//! answer window after the last report the coordinator answered, and shuts it the moment the
//! session fails. The gate is read just before each frame is sent.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::time::Instant;

use super::answer::{self, advertisement, arp_reply, solicited_node};
use super::packet::{PacketSocket, ETH_P_ARP, ETH_P_IPV6};
use super::AnnounceError;
use crate::model::Mac;
use crate::sysctl::Sysctls;

/// Until when the node may answer for its leased addresses: an instant on the monotonic clock,
/// readable from any thread without a lock. Closed until first opened.
#[derive(Debug)]
pub struct Gate {
    base: Instant,
    /// Nanoseconds after `base`; 0 means shut.
    until: AtomicU64,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            base: Instant::now(),
            until: AtomicU64::new(0),
        }
    }
}

impl Gate {
    /// Opens the gate until `deadline` (never moves it backwards while open).
    pub fn open_until(&self, deadline: Instant) {
        let ns = u64::try_from(deadline.saturating_duration_since(self.base).as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        self.until.fetch_max(ns, Ordering::AcqRel);
    }

    /// Shuts the gate now: nothing is answered until it is opened again.
    pub fn shut(&self) {
        self.until.store(0, Ordering::Release);
    }

    /// Whether answers may go out now.
    pub fn is_open(&self) -> bool {
        let now = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        now < self.until.load(Ordering::Acquire)
    }

    /// When it shuts, if open.
    pub fn deadline(&self) -> Option<Instant> {
        let until = self.until.load(Ordering::Acquire);
        let at = self.base + Duration::from_nanos(until);
        (until != 0 && at > Instant::now()).then_some(at)
    }
}

/// Where the responder answers for one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Target {
    ifindex: u32,
    mac: [u8; 6],
}

#[derive(Debug, Default)]
struct Shared {
    table: RwLock<HashMap<IpAddr, Target>>,
    gate: Arc<Gate>,
    requests: AtomicU64,
    answered: AtomicU64,
    refused: AtomicU64,
}

impl Shared {
    /// Where to answer a request for `ip` received on `ifindex`, if it is held there (counted
    /// as a request seen).
    fn target(&self, ip: IpAddr, ifindex: u32) -> Option<Target> {
        let t = *self.table.read().ok()?.get(&ip)?;
        let here = t.ifindex == ifindex;
        if here {
            self.requests.fetch_add(1, Ordering::Relaxed);
        }
        here.then_some(t)
    }

    /// Sends `frame` if the gate is open, counting either way.
    fn answer(&self, socket: &PacketSocket, ifindex: u32, frame: &[u8]) {
        if !self.gate.is_open() {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match socket.send_frame(ifindex, frame) {
            Ok(()) => {
                self.answered.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::debug!("floating IP answer: {e}"),
        }
    }
}

/// Requests seen, answers sent and requests refused (gate shut), since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// ARP requests and neighbour solicitations for a held address, on the interface it is
    /// held on.
    pub requests: u64,
    /// Answers sent.
    pub answered: u64,
    /// Requests for a held address not answered because the gate was shut.
    pub refused: u64,
}

/// The socket that holds the solicited-node memberships, and (group, ifindex) → how many held
/// addresses need that membership.
type Groups = (Option<UdpSocket>, HashMap<(Ipv6Addr, u32), usize>);

/// The running responder; its threads stop when it drops.
pub struct Responder {
    shared: Arc<Shared>,
    sysctls: Arc<dyn Sysctls>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Solicited-node groups joined (group, ifindex) → how many held addresses need it.
    groups: Mutex<Groups>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("held", &self.held())
            .finish_non_exhaustive()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

const POLL: Duration = Duration::from_millis(200);

fn serve(
    socket: PacketSocket,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    respond: fn(&Shared, &PacketSocket, u32, &[u8]),
) {
    let mut buf = [0u8; 1600];
    while !stop.load(Ordering::Relaxed) {
        match socket.recv_frame(&mut buf, POLL) {
            Ok(Some((n, ifindex))) => respond(&shared, &socket, ifindex, &buf[..n]),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("floating IP responder: {e}");
                std::thread::sleep(POLL);
            }
        }
    }
}

fn respond_arp(shared: &Shared, socket: &PacketSocket, ifindex: u32, frame: &[u8]) {
    let Some(req) = answer::parse_arp_request(frame) else {
        return;
    };
    if let Some(t) = shared.target(IpAddr::V4(req.target), ifindex) {
        shared.answer(socket, ifindex, &arp_reply(t.mac, &req));
    }
}

fn respond_ns(shared: &Shared, socket: &PacketSocket, ifindex: u32, frame: &[u8]) {
    let Some(ns) = answer::parse_solicitation(frame) else {
        return;
    };
    if let Some(t) = shared.target(IpAddr::V6(ns.target), ifindex) {
        shared.answer(socket, ifindex, &advertisement(t.mac, &ns));
    }
}

impl Responder {
    /// Opens the sockets (needs CAP_NET_RAW) in the current network namespace and starts
    /// answering, behind `gate`, for the addresses later [`Responder::hold`]s name.
    pub fn start(gate: Arc<Gate>, sysctls: Arc<dyn Sysctls>) -> Result<Self, AnnounceError> {
        let shared = Arc::new(Shared {
            gate,
            ..Shared::default()
        });
        let stop = Arc::new(AtomicBool::new(false));
        let arp = PacketSocket::listen(ETH_P_ARP)?;
        let ns = PacketSocket::listen(ETH_P_IPV6)?;
        let mut threads = Vec::new();
        for (socket, respond, name) in [
            (
                arp,
                respond_arp as fn(&Shared, &PacketSocket, u32, &[u8]),
                "fip-arp",
            ),
            (ns, respond_ns, "fip-ndp"),
        ] {
            let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
            threads.push(
                std::thread::Builder::new()
                    .name(name.into())
                    .spawn(move || serve(socket, shared, stop, respond))
                    .map_err(AnnounceError::Socket)?,
            );
        }
        Ok(Self {
            shared,
            sysctls,
            stop,
            threads,
            groups: Mutex::new((None, HashMap::new())),
        })
    }

    /// The gate the answers go through.
    pub fn gate(&self) -> &Arc<Gate> {
        &self.shared.gate
    }

    /// Makes sure the kernel will not answer for an address of another interface on `dev`
    /// (IPv4: `arp_ignore=1`, `arp_announce=2`); done before the address is added.
    pub fn suppress_kernel(&self, ip: IpAddr, dev: &str) -> Result<(), AnnounceError> {
        if ip.is_ipv6() {
            return Ok(());
        }
        for (key, min) in [("arp_ignore", 1u8), ("arp_announce", 2u8)] {
            let path = format!("net/ipv4/conf/{dev}/{key}");
            let now = self
                .sysctls
                .read(&path)
                .ok()
                .and_then(|v| v.trim().parse::<u8>().ok());
            if now.is_some_and(|v| v >= min) {
                continue;
            }
            self.sysctls
                .write(&path, &min.to_string())
                .map_err(|source| AnnounceError::Suppress {
                    ip,
                    dev: dev.to_owned(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Answers for `ip` on the interface `ifindex` with `mac` from now on.
    pub fn hold(&self, ip: IpAddr, ifindex: u32, mac: Mac) {
        let old = self.shared.table.write().ok().and_then(|mut t| {
            t.insert(
                ip,
                Target {
                    ifindex,
                    mac: mac.0,
                },
            )
        });
        if old.map(|o| o.ifindex) == Some(ifindex) {
            return;
        }
        if let Some(o) = old {
            self.leave(ip, o.ifindex);
        }
        if let IpAddr::V6(v6) = ip {
            self.join(v6, ifindex);
        }
    }

    /// Stops answering for `ip`.
    pub fn release(&self, ip: IpAddr) {
        let old = self
            .shared
            .table
            .write()
            .ok()
            .and_then(|mut t| t.remove(&ip));
        if let Some(o) = old {
            self.leave(ip, o.ifindex);
        }
    }

    /// The addresses answered for (gate permitting).
    pub fn held(&self) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = self
            .shared
            .table
            .read()
            .map(|t| t.keys().copied().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Answers sent and refused since start.
    pub fn counts(&self) -> Counts {
        Counts {
            requests: self.shared.requests.load(Ordering::Relaxed),
            answered: self.shared.answered.load(Ordering::Relaxed),
            refused: self.shared.refused.load(Ordering::Relaxed),
        }
    }

    fn join(&self, ip: Ipv6Addr, ifindex: u32) {
        let Ok(mut g) = self.groups.lock() else {
            return;
        };
        let (socket, joined) = &mut *g;
        let group = solicited_node(ip);
        let count = joined.entry((group, ifindex)).or_default();
        *count += 1;
        if *count > 1 {
            return;
        }
        if socket.is_none() {
            *socket = UdpSocket::bind("[::]:0")
                .map_err(|e| tracing::warn!("floating IP responder: MLD socket: {e}"))
                .ok();
        }
        if let Some(s) = socket {
            if let Err(e) = s.join_multicast_v6(&group, ifindex) {
                tracing::warn!(%group, ifindex, "floating IP responder: joining: {e}");
            }
        }
    }

    fn leave(&self, ip: IpAddr, ifindex: u32) {
        let IpAddr::V6(ip) = ip else { return };
        let Ok(mut g) = self.groups.lock() else {
            return;
        };
        let (socket, joined) = &mut *g;
        let group = solicited_node(ip);
        let Some(count) = joined.get_mut(&(group, ifindex)) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            joined.remove(&(group, ifindex));
            if let Some(s) = socket {
                let _ = s.leave_multicast_v6(&group, ifindex);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_opens_until_its_deadline_and_shuts_at_once() {
        let gate = Gate::default();
        assert!(!gate.is_open());
        gate.open_until(Instant::now() + Duration::from_secs(60));
        assert!(gate.is_open());
        // Never backwards while open.
        gate.open_until(Instant::now() + Duration::from_millis(1));
        assert!(gate
            .deadline()
            .is_some_and(|d| d > Instant::now() + Duration::from_secs(30)));
        gate.shut();
        assert!(!gate.is_open());
        assert_eq!(gate.deadline(), None);
        gate.open_until(Instant::now() - Duration::from_millis(1));
        assert!(!gate.is_open());
    }
}
