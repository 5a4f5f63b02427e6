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
use std::sync::mpsc;
use std::thread::JoinHandle;

use rand::Rng;

pub mod arp;
pub mod failover;
mod moves;
pub mod ndp;
pub use moves::MoveLab;

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
