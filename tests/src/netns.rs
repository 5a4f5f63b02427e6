//! Throwaway network namespaces for the networking tests and benchmarks.
//!
//! Every namespace is `hearth-test-<tag>-<random>`, made by [`NetNs::new`] and deleted when
//! the value drops, even when a test panics. Nothing here ever touches the host namespace:
//! commands run under `ip -n` / `ip netns exec`, and in-process code runs on threads that
//! `setns(2)` into the namespace first.

use std::future::Future;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hearth_agent::net::announce::{Announcer, PacketSocket, Schedule};
use hearth_agent::net::netlink::RtNetlink;
use rand::Rng;

/// A network namespace that exists for the lifetime of this value.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates `hearth-test-<tag>-<random>` with its loopback up.
    pub fn new(tag: &str) -> Self {
        let suffix: u32 = rand::rng().random();
        let name = format!("hearth-test-{tag}-{suffix:08x}");
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("running ip netns add");
        assert!(ok.success(), "ip netns add {name} failed");
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NAME ARGS...` and returns stdout; panics with stderr on failure.
    pub fn ip(&self, args: &[&str]) -> String {
        let out = self.ip_output(args);
        assert!(
            out.status.success(),
            "ip -n {} {}: {}",
            self.name,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `ip -n NAME ARGS...` and returns its output, success or not.
    pub fn ip_output(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .output()
            .expect("running ip")
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Runs `hearth ARGS...` inside the namespace and returns its output.
    pub fn hearth(&self, args: &[&str]) -> Output {
        self.command(crate::hearth_bin())
            .args(args)
            .output()
            .expect("running hearth")
    }

    /// Starts `hearth ARGS...` inside the namespace with stderr to `log`.
    pub fn spawn_hearth(&self, args: &[&str], log: &Path) -> Child {
        let log = std::fs::File::create(log).expect("log file");
        self.command(crate::hearth_bin())
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning hearth")
    }

    /// Moves the calling thread into the namespace.
    pub fn enter_current_thread(&self) {
        let f =
            std::fs::File::open(format!("/run/netns/{}", self.name)).expect("opening the netns");
        nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
    }

    /// Runs `f` on a new thread inside the namespace.
    pub fn thread<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(path).expect("opening the netns");
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
    }

    /// A tokio runtime whose threads all live in the namespace.
    pub fn runtime(&self) -> NsRuntime {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = self.thread(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            while let Ok(job) = rx.recv() {
                job(&rt);
            }
        });
        NsRuntime {
            tx: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

type Job = Box<dyn FnOnce(&tokio::runtime::Runtime) + Send>;

/// A tokio runtime running inside a namespace (see [`NetNs::runtime`]).
#[derive(Debug)]
pub struct NsRuntime {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl NsRuntime {
    /// Builds a future with `f` inside the namespace and runs it to completion there.
    pub fn run<T, F, Fut>(&self, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
    {
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move |rt| {
            let _ = tx.send(rt.block_on(f()));
        });
        self.tx
            .as_ref()
            .expect("runtime alive")
            .send(job)
            .expect("runtime thread gone");
        rx.recv().expect("the job panicked")
    }
}

impl Drop for NsRuntime {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A LAN: a `switch` namespace with bridge `br0`, and host namespaces each wired to it with a
/// veth whose host end is `eth0`.
#[derive(Debug)]
pub struct Lan {
    /// The hosts, in the order given.
    pub hosts: Vec<NetNs>,
    /// The switch (dropped last).
    pub switch: NetNs,
}

impl Lan {
    /// One host per address (`CIDR` on eth0, `None` for no address).
    pub fn new(tag: &str, addresses: &[Option<&str>]) -> Self {
        let switch = NetNs::new(&format!("{tag}sw"));
        switch.ip(&["link", "add", "br0", "type", "bridge"]);
        switch.ip(&["link", "set", "br0", "up"]);
        let mut hosts = Vec::new();
        for (i, addr) in addresses.iter().enumerate() {
            let host = NetNs::new(&format!("{tag}{i}"));
            let port = format!("p{i}");
            switch.ip(&[
                "link",
                "add",
                &port,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                host.name(),
            ]);
            switch.ip(&["link", "set", &port, "master", "br0", "up"]);
            host.ip(&["link", "set", "eth0", "up"]);
            if let Some(a) = addr {
                if a.contains(':') {
                    host.ip(&["-6", "addr", "add", a, "dev", "eth0", "nodad"]);
                } else {
                    host.ip(&["addr", "add", a, "dev", "eth0"]);
                }
            }
            hosts.push(host);
        }
        Self { hosts, switch }
    }
}

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
