//! The coordinator failover lab: a coordinator, three node agents and a client on one [`Lan`],
//! each in its own namespace, talking over mTLS with a throwaway PKI. Processes are killed by
//! PID only; namespaces and files go away on drop.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use super::{Lan, NetNs};

/// The coordinator's address on the LAN.
pub const COORDINATOR_IP: &str = "10.9.0.1";
/// The client's address.
pub const CLIENT_IP: &str = "10.9.0.100";
const PORT: u16 = 9811;
/// The coordinator's status port (on [`COORDINATOR_IP`]).
pub const STATUS_PORT: u16 = 9810;
/// A second coordinator replica's agent API port, on the coordinator's host.
const STANDBY_PORT: u16 = 9821;
/// A second coordinator replica's status port (on [`COORDINATOR_IP`]).
pub const STANDBY_STATUS_PORT: u16 = 9820;

/// Node `i`'s (0-based) address.
pub fn node_ip(i: usize) -> String {
    format!("10.9.0.{}", 11 + i)
}

/// Node `i`'s name.
pub fn node_name(i: usize) -> String {
    format!("node-{}", char::from(b'a' + u8::try_from(i).unwrap_or(0)))
}

fn write_pki(dir: &Path, nodes: usize) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).expect("CA cert");
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("write CA");
    let issuer = Issuer::new(ca, ca_key);
    let issue = |names: Vec<String>, stem: &str| {
        let key = KeyPair::generate().expect("key");
        let params = CertificateParams::new(names).expect("params");
        let cert = params.signed_by(&key, &issuer).expect("signing");
        std::fs::write(dir.join(format!("{stem}.pem")), cert.pem()).expect("write cert");
        std::fs::write(dir.join(format!("{stem}.key")), key.serialize_pem()).expect("write key");
    };
    issue(
        vec![COORDINATOR_IP.to_owned(), "coordinator".to_owned()],
        "coordinator",
    );
    for i in 0..nodes {
        issue(vec![node_name(i)], &node_name(i));
    }
}

/// The lab. `lan.hosts`: `[coordinator, node-a, node-b, node-c, client]`.
#[derive(Debug)]
pub struct FailoverLab {
    /// The namespaces.
    pub lan: Lan,
    /// Files: PKI, config, state dirs, logs.
    pub dir: tempfile::TempDir,
    coordinator: Option<Child>,
    /// A second replica on the same SQLite database ([`FailoverLab::start_standby`]).
    standby: Option<Child>,
    agents: Vec<Option<Child>>,
    restarts: usize,
}

impl FailoverLab {
    /// Builds the namespaces and PKI and writes `config` as the coordinator config; starts
    /// nothing.
    pub fn new(tag: &str, nodes: usize, config: &str) -> Self {
        let mut addrs = vec![format!("{COORDINATOR_IP}/16")];
        addrs.extend((0..nodes).map(|i| format!("{}/16", node_ip(i))));
        addrs.push(format!("{CLIENT_IP}/16"));
        let refs: Vec<Option<&str>> = addrs.iter().map(|a| Some(a.as_str())).collect();
        let lan = Lan::new(tag, &refs);
        let dir = tempfile::tempdir().expect("temp dir");
        write_pki(dir.path(), nodes);
        std::fs::write(dir.path().join("coordinator.yaml"), config).expect("config");
        Self {
            lan,
            dir,
            coordinator: None,
            standby: None,
            agents: (0..nodes).map(|_| None).collect(),
            restarts: 0,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn path_str(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// The client namespace.
    pub fn client(&self) -> &NetNs {
        self.lan.hosts.last().expect("client host")
    }

    /// Node `i`'s namespace.
    pub fn node(&self, i: usize) -> &NetNs {
        &self.lan.hosts[i + 1]
    }

    /// Starts (or restarts) the coordinator on the same database.
    pub fn start_coordinator(&mut self) {
        assert!(self.coordinator.is_none(), "coordinator already running");
        let state = self.path("coordinator");
        std::fs::create_dir_all(&state).expect("state dir");
        let listen = format!("{COORDINATOR_IP}:{PORT}");
        let sock = format!("unix://{}", state.join("csi.sock").display());
        let args = [
            "coordinator",
            "--csi-endpoint",
            &sock,
            "--state-dir",
            &state.display().to_string(),
            "--listen",
            &listen,
            "--config",
            &self.path_str("coordinator.yaml"),
            "--tls-ca-file",
            &self.path_str("ca.pem"),
            "--tls-cert-file",
            &self.path_str("coordinator.pem"),
            "--tls-key-file",
            &self.path_str("coordinator.key"),
            "--status-addr",
            &format!("{COORDINATOR_IP}:{STATUS_PORT}"),
        ];
        self.restarts += 1;
        let log = self.path(&format!("coordinator-{}.log", self.restarts));
        let _ = std::fs::remove_file(state.join("csi.sock"));
        self.coordinator = Some(self.lan.hosts[0].spawn_hearth(&args, &log));
    }

    /// Kills the coordinator with SIGKILL.
    pub fn kill_coordinator(&mut self) {
        if let Some(mut c) = self.coordinator.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts a second coordinator replica (`--id coordinator-b`) beside the first, on the
    /// same host and the same SQLite database, with its own state directory, agent API port
    /// and status port ([`STANDBY_STATUS_PORT`]). The node agents talk to the first.
    pub fn start_standby(&mut self) {
        assert!(self.standby.is_none(), "standby already running");
        let state = self.path("coordinator-b");
        std::fs::create_dir_all(&state).expect("state dir");
        let store = format!(
            "sqlite:{}",
            self.path("coordinator").join("coordinator.db").display()
        );
        let sock = format!("unix://{}", state.join("csi.sock").display());
        let args = [
            "coordinator",
            "--id",
            "coordinator-b",
            "--store",
            &store,
            "--csi-endpoint",
            &sock,
            "--state-dir",
            &state.display().to_string(),
            "--listen",
            &format!("{COORDINATOR_IP}:{STANDBY_PORT}"),
            "--config",
            &self.path_str("coordinator.yaml"),
            "--tls-ca-file",
            &self.path_str("ca.pem"),
            "--tls-cert-file",
            &self.path_str("coordinator.pem"),
            "--tls-key-file",
            &self.path_str("coordinator.key"),
            "--status-addr",
            &format!("{COORDINATOR_IP}:{STANDBY_STATUS_PORT}"),
        ];
        let _ = std::fs::remove_file(state.join("csi.sock"));
        let log = self.path("coordinator-b.log");
        self.standby = Some(self.lan.hosts[0].spawn_hearth(&args, &log));
    }

    /// Sends `signal` to the first coordinator (SIGSTOP and SIGCONT pause and resume it).
    pub fn signal_coordinator(&self, signal: nix::sys::signal::Signal) {
        let pid = self
            .coordinator
            .as_ref()
            .and_then(|c| i32::try_from(c.id()).ok())
            .expect("a running coordinator");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).expect("signal");
    }

    /// Starts node agent `i`.
    pub fn start_agent(&mut self, i: usize) {
        assert!(self.agents[i].is_none(), "agent {i} already running");
        let name = node_name(i);
        let state = self.path(&name);
        std::fs::create_dir_all(state.join("kubelet")).expect("state dir");
        let _ = std::fs::remove_file(state.join("csi.sock"));
        let url = format!("https://{COORDINATOR_IP}:{PORT}");
        let sock = format!("unix://{}", state.join("csi.sock").display());
        let args = [
            "node",
            "--node-name",
            &name,
            "--csi-endpoint",
            &sock,
            "--state-dir",
            &state.display().to_string(),
            "--kubelet-dir",
            &state.join("kubelet").display().to_string(),
            "--coordinator",
            &url,
            "--tls-ca-file",
            &self.path_str("ca.pem"),
            "--tls-cert-file",
            &self.path_str(&format!("{name}.pem")),
            "--tls-key-file",
            &self.path_str(&format!("{name}.key")),
        ];
        let log = self.path(&format!("{name}.log"));
        // Its own process group, like a container: the agent and its fence guard can be
        // killed at one instant ([`FailoverLab::kill_container`]).
        let log = std::fs::File::create(log).expect("log file");
        let child = {
            use std::os::unix::process::CommandExt as _;
            self.node(i)
                .command(crate::hearth_bin())
                .args(args)
                .env(
                    "RUST_LOG",
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
                )
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .process_group(0)
                .spawn()
                .expect("spawning hearth")
        };
        self.agents[i] = Some(child);
    }

    /// Kills node agent `i` and every process it started (its fence guard) with one SIGKILL
    /// to the process group: what an OOM kill of the container's cgroup does.
    pub fn kill_container(&mut self, i: usize) {
        if let Some(mut c) = self.agents[i].take() {
            if let Ok(pid) = i32::try_from(c.id()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = c.wait();
        }
    }

    /// Sends node agent `i` SIGTERM (a rolling update) and waits up to 5 s for it to exit
    /// (then SIGKILL).
    pub fn terminate_agent(&mut self, i: usize) {
        if let Some(mut c) = self.agents[i].take() {
            if let Ok(pid) = i32::try_from(c.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if c.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills node agent `i` with SIGKILL (its fence guard sees the pipe close).
    pub fn kill_agent(&mut self, i: usize) {
        if let Some(mut c) = self.agents[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Cuts node `i` off the coordinator (blackhole routes both ways); the client still
    /// reaches it.
    pub fn partition(&self, i: usize) {
        self.node(i)
            .ip(&["route", "add", "blackhole", &format!("{COORDINATOR_IP}/32")]);
        self.lan.hosts[0].ip(&["route", "add", "blackhole", &format!("{}/32", node_ip(i))]);
    }

    /// Undoes [`FailoverLab::partition`].
    pub fn heal(&self, i: usize) {
        self.node(i)
            .ip(&["route", "del", "blackhole", &format!("{COORDINATOR_IP}/32")]);
        self.lan.hosts[0].ip(&["route", "del", "blackhole", &format!("{}/32", node_ip(i))]);
    }

    /// The leased floating IPs each node holds now, by node index: the /32 addresses on `lo`,
    /// where the agent puts them (it answers ARP for them itself). A node whose every Hearth
    /// process was killed at once keeps its address there, unanswered, until an agent runs.
    pub fn held(&self) -> Vec<Vec<String>> {
        (0..self.agents.len())
            .map(|i| {
                self.node(i)
                    .ip(&["-4", "-o", "addr", "show", "dev", "lo"])
                    .lines()
                    .filter_map(|l| {
                        let a = l.split(" inet ").nth(1)?.split(' ').next()?;
                        a.ends_with("/32")
                            .then(|| a.trim_end_matches("/32").to_owned())
                    })
                    .collect()
            })
            .collect()
    }

    /// The nodes that hold `ip` now.
    pub fn holders(&self, ip: &str) -> Vec<usize> {
        self.held()
            .iter()
            .enumerate()
            .filter(|(_, h)| h.iter().any(|a| a == ip))
            .map(|(i, _)| i)
            .collect()
    }

    /// A node other than `old` holding `ip`, if one does.
    pub fn holder_besides(&self, ip: &str, old: usize) -> Option<usize> {
        self.holders(ip).into_iter().find(|n| *n != old)
    }

    /// Node `i`'s eth0 MAC.
    pub fn mac(&self, i: usize) -> [u8; 6] {
        super::arp::mac_of(self.node(i), "eth0")
    }

    /// Whether `path` is a mount point in node agent `i`'s mount namespace (`ip netns exec`
    /// gives each agent its own, so its mounts are not visible from the host's).
    pub fn agent_mounted(&self, i: usize, path: &str) -> bool {
        let Some(pid) = self.agents[i].as_ref().map(Child::id) else {
            return false;
        };
        std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
            .unwrap_or_default()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(path))
    }

    /// A role's state directory: `coordinator` or a node name.
    pub fn state_dir(&self, role: &str) -> PathBuf {
        self.path(role)
    }

    /// Runs `hearth csi --endpoint <role's socket> ARGS...` (from the host: the sockets are
    /// files) and returns (success, stdout + stderr).
    pub fn csi(&self, role: &str, args: &[&str]) -> (bool, String) {
        let endpoint = format!("unix://{}", self.path(role).join("csi.sock").display());
        let out = std::process::Command::new(crate::hearth_bin())
            .args(["csi", "--endpoint", &endpoint])
            .args(args)
            .output()
            .expect("running hearth csi");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// The client's address.
    pub fn client_ip() -> Ipv4Addr {
        CLIENT_IP.parse().expect("client IP")
    }

    /// `GET path` on the coordinator's status address, from the client namespace: (HTTP
    /// status code, body). `None` while nothing answers.
    pub fn coordinator_get(&self, path: &str) -> Option<(u16, String)> {
        let request = format!("GET {path} HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n");
        self.client()
            .thread(move || {
                use std::io::{Read, Write};
                let addr = std::net::SocketAddr::from((
                    COORDINATOR_IP.parse::<Ipv4Addr>().ok()?,
                    STATUS_PORT,
                ));
                let mut s =
                    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
                s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
                s.write_all(request.as_bytes()).ok()?;
                let mut text = String::new();
                s.read_to_string(&mut text).ok()?;
                let code = text.split(' ').nth(1)?.parse().ok()?;
                let body = text.split_once("\r\n\r\n")?.1.to_owned();
                Some((code, body))
            })
            .join()
            .ok()
            .flatten()
    }

    /// The coordinator's `/status` JSON, once it answers.
    pub fn coordinator_status(&self) -> serde_json::Value {
        let (_, body) = Self::wait_for(Duration::from_secs(10), || self.coordinator_get("/status"))
            .expect("the coordinator's /status answers");
        serde_json::from_str(&body).expect("/status is JSON")
    }

    /// A log's text (for failure messages).
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(&format!("{name}.log"))).unwrap_or_default()
    }

    /// Polls `f` every 5 ms until it returns `Some` or `timeout` passes.
    pub fn wait_for<T>(timeout: Duration, f: impl FnMut() -> Option<T>) -> Option<T> {
        Self::poll_every(Duration::from_millis(5), timeout, f)
    }

    /// Polls `f` every `interval` until it returns `Some` or `timeout` passes.
    pub fn poll_every<T>(
        interval: Duration,
        timeout: Duration,
        mut f: impl FnMut() -> Option<T>,
    ) -> Option<T> {
        let start = Instant::now();
        loop {
            if let Some(v) = f() {
                return Some(v);
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(interval);
        }
    }
}

impl Drop for FailoverLab {
    fn drop(&mut self) {
        for i in 0..self.agents.len() {
            self.kill_agent(i);
        }
        self.kill_coordinator();
        if let Some(mut c) = self.standby.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Let each fence guard see its pipe close and exit before the namespaces go.
        std::thread::sleep(Duration::from_millis(100));
        // Loop devices of images a failed test left attached (the agents' mounts died with
        // their mount namespaces).
        for dev in crate::loop_devices_under(self.dir.path()) {
            let _ = std::process::Command::new("losetup")
                .args(["-d", &dev])
                .status();
        }
    }
}
