//! The floating-IP move lab: a client and two nodes on one [`Lan`], Hearth's real announcer
//! in each node's namespace, and a 1 ms UDP stream from the client to the floating IP.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hearth_net::announce::{Announcer, PacketSocket, Schedule};
use hearth_net::netlink::RtNetlink;

use super::{Lan, NsRuntime};

/// The floating-IP move lab: a client and two nodes, A and B, on one [`Lan`]. The client sends
/// a UDP datagram to the floating IP every millisecond; each node records when datagrams
/// arrive. Each node runs Hearth's real [`Announcer`] in its own namespace.
pub struct MoveLab {
    /// hosts[0] is the client, hosts[1] node A, hosts[2] node B.
    pub lan: Lan,
    /// The floating IP.
    pub fip: std::net::IpAddr,
    nodes: Vec<(NsRuntime, Arc<Announcer<RtNetlink, PacketSocket>>)>,
    arrivals: mpsc::Receiver<(usize, Instant)>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for MoveLab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MoveLab").field("fip", &self.fip).finish()
    }
}

const PORT: u16 = 9999;

impl MoveLab {
    /// Builds the lab (IPv4 or IPv6) and starts the client's stream; nothing announced yet.
    pub fn new(v6: bool) -> Self {
        let (addrs, fip): ([&str; 3], &str) = if v6 {
            (
                ["2001:db8::100/64", "2001:db8::1/64", "2001:db8::2/64"],
                "2001:db8::77",
            )
        } else {
            (
                ["192.0.2.100/24", "192.0.2.1/24", "192.0.2.2/24"],
                "192.0.2.77",
            )
        };
        let lan = Lan::new(if v6 { "mv6" } else { "mv4" }, &addrs.map(Some));
        let fip: std::net::IpAddr = fip.parse().expect("fip");
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, arrivals) = mpsc::channel();
        let mut threads = Vec::new();
        let mut nodes = Vec::new();
        for node in 1..=2 {
            let (tx, stop) = (tx.clone(), Arc::clone(&stop));
            let bind = if v6 { "[::]:9999" } else { "0.0.0.0:9999" };
            threads.push(lan.hosts[node].thread(move || {
                let sock = std::net::UdpSocket::bind(bind).expect("bind receiver");
                sock.set_read_timeout(Some(Duration::from_millis(50)))
                    .expect("timeout");
                let mut buf = [0u8; 64];
                while !stop.load(Ordering::Relaxed) {
                    if sock.recv(&mut buf).is_ok() {
                        let _ = tx.send((node, Instant::now()));
                    }
                }
            }));
            let rt = lan.hosts[node].runtime();
            let announcer = rt.run(|| async {
                let nl = Arc::new(RtNetlink::open().expect("netlink"));
                let frames = Arc::new(PacketSocket::open().expect("packet socket"));
                Arc::new(Announcer::new(nl, frames, Schedule::default()))
            });
            nodes.push((rt, announcer));
        }
        let stop2 = Arc::clone(&stop);
        threads.push(lan.hosts[0].thread(move || {
            let bind = if v6 { "[::]:0" } else { "0.0.0.0:0" };
            let sock = std::net::UdpSocket::bind(bind).expect("bind client");
            let to = std::net::SocketAddr::new(fip, PORT);
            let mut seq = 0u64;
            while !stop2.load(Ordering::Relaxed) {
                let _ = sock.send_to(&seq.to_be_bytes(), to);
                seq += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
        }));
        Self {
            lan,
            fip,
            nodes,
            arrivals,
            stop,
            threads,
        }
    }

    /// Announces the floating IP on node 1 (A) or 2 (B); returns when `announce` returns.
    pub fn announce(&self, node: usize) {
        let (rt, a) = &self.nodes[node - 1];
        let (a, ip) = (Arc::clone(a), self.fip);
        rt.run(move || async move { a.announce(ip, "eth0").await })
            .expect("announce");
    }

    /// Withdraws the floating IP from node 1 or 2.
    pub fn withdraw(&self, node: usize) {
        let (rt, a) = &self.nodes[node - 1];
        let (a, ip) = (Arc::clone(a), self.fip);
        rt.run(move || async move { a.withdraw(ip).await })
            .expect("withdraw");
    }

    /// Waits until a datagram reaches `node` after `since`; the time from `since` to it.
    pub fn first_arrival(
        &self,
        node: usize,
        since: Instant,
        timeout: Duration,
    ) -> Option<Duration> {
        let deadline = since + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.arrivals.recv_timeout(left) {
                Ok((n, t)) if n == node && t >= since => return Some(t - since),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Moves the floating IP to `to` with Hearth (withdraw from the other node, announce on
    /// `to`) and returns the time from the start of `announce` to the first client datagram
    /// at `to`.
    pub fn move_to(&self, to: usize) -> Option<Duration> {
        self.withdraw(3 - to);
        let start = Instant::now();
        self.announce(to);
        self.first_arrival(to, start, Duration::from_secs(5))
    }

    /// Moves the address only, as `ip addr del` / `ip addr add` would, with no announcement.
    pub fn move_silently(&self, to: usize, timeout: Duration) -> Option<Duration> {
        self.withdraw(3 - to);
        let host = format!("{}/{}", self.fip, if self.fip.is_ipv6() { 128 } else { 32 });
        let start = Instant::now();
        self.lan.hosts[to].ip(&["addr", "add", &host, "dev", "eth0", "nodad"]);
        let got = self.first_arrival(to, start, timeout);
        self.lan.hosts[to].ip(&["addr", "del", &host, "dev", "eth0"]);
        got
    }
}

impl Drop for MoveLab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
