//! A harness that runs the real Debian OVS/OVN daemons (ovsdb-server, ovs-vswitchd with the
//! userspace datapath, ovn-northd, ovn-controller) in a temp dir.
//!
//! Every daemon is a child process of the test (no `--detach`), with its database, pidfile,
//! control socket and log in the temp dir and `OVS_*`/`OVN_*` dirs pointing there, so nothing
//! touches the host's /run/openvswitch. ovs-vswitchd and ovn-controller run inside throwaway
//! namespaces ([`NetNs`]), so their tap devices never appear in the host namespace. Drop kills
//! exactly the PIDs it started, then deletes the namespaces it made.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::netns::NetNs;

/// The Open_vSwitch schema.
pub const VSWITCH_SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";
/// The OVN northbound schema.
pub const NB_SCHEMA: &str = "/usr/share/ovn/ovn-nb.ovsschema";
/// The OVN southbound schema.
pub const SB_SCHEMA: &str = "/usr/share/ovn/ovn-sb.ovsschema";

/// The tools a test needs; checks each with [`crate::tool_or_skip`].
pub fn tools_or_skip(test: &str) -> bool {
    [
        "ovsdb-server",
        "ovsdb-tool",
        "ovs-vswitchd",
        "ovs-vsctl",
        "ovn-northd",
        "ovn-controller",
        "ovn-sbctl",
        "ovn-nbctl",
    ]
    .iter()
    .all(|t| crate::tool_or_skip(test, t))
}

/// The server side of a `pssl:` remote: OVS's `--private-key`, `--certificate` and
/// `--ca-cert` (the CA that client certificates must come from).
#[derive(Debug, Clone)]
pub struct SslFiles {
    /// The server's private key.
    pub key: PathBuf,
    /// The server's certificate.
    pub cert: PathBuf,
    /// The CA of the clients.
    pub ca: PathBuf,
}

/// Daemons, their temp dir and their namespaces.
#[derive(Debug)]
pub struct OvsLab {
    children: Vec<(String, Child)>,
    namespaces: Vec<NetNs>,
    dir: tempfile::TempDir,
}

impl Default for OvsLab {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for OvsLab {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill(); // by the PID we started, never by name
            let _ = child.wait();
        }
        self.namespaces.clear();
    }
}

impl OvsLab {
    /// An empty lab in a new temp dir.
    pub fn new() -> Self {
        Self {
            children: Vec::new(),
            namespaces: Vec::new(),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// The temp dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A new network namespace owned by the lab (deleted on drop); returns its index.
    pub fn netns(&mut self, tag: &str) -> usize {
        self.namespaces.push(NetNs::new(tag));
        self.namespaces.len() - 1
    }

    /// The namespace of that index.
    pub fn ns(&self, i: usize) -> &NetNs {
        &self.namespaces[i]
    }

    /// The run dir of the daemons in namespace `ns` (the temp dir for host-side ones). Each
    /// node needs its own: ovn-controller finds its ovs-vswitchd's `br-int.mgmt` there.
    pub fn rundir(&self, ns: Option<usize>) -> PathBuf {
        let d = match ns {
            Some(i) => self.path(&format!("run-ns{i}")),
            None => self.dir().to_owned(),
        };
        let _ = std::fs::create_dir_all(&d);
        d
    }

    fn envs(&self, c: &mut Command, ns: Option<usize>) {
        let run = self.rundir(ns);
        for k in ["OVS_RUNDIR", "OVN_RUNDIR"] {
            c.env(k, &run);
        }
        for k in [
            "OVS_DBDIR",
            "OVS_LOGDIR",
            "OVS_SYSCONFDIR",
            "OVN_DBDIR",
            "OVN_LOGDIR",
            "OVN_SYSCONFDIR",
        ] {
            c.env(k, self.dir());
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir().join(f)
    }

    fn spawn(&mut self, name: &str, mut c: Command, ns: Option<usize>) {
        self.envs(&mut c, ns);
        let err = std::fs::File::create(self.path(&format!("{name}.stderr"))).expect("stderr file");
        c.stderr(err);
        let child = c.spawn().unwrap_or_else(|e| panic!("starting {name}: {e}"));
        self.children.push((name.to_owned(), child));
    }

    fn wait_for(&mut self, name: &str, path: &Path) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !path.exists() {
            if let Some((_, c)) = self.children.iter_mut().find(|(n, _)| n == name) {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("{name} exited with {st}; log: {}", self.log(name));
                }
            }
            assert!(
                Instant::now() < deadline,
                "{name}: {} did not appear; log: {}",
                path.display(),
                self.log(name)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The log of a daemon.
    pub fn log(&self, name: &str) -> String {
        let read = |ext: &str| {
            std::fs::read_to_string(self.path(&format!("{name}.{ext}"))).unwrap_or_default()
        };
        format!("{}{}", read("log"), read("stderr"))
    }

    /// Creates (first time only) and starts an ovsdb-server for `schema` named `name`;
    /// returns its `unix:` endpoint. `tcp` adds a `ptcp:PORT:IP` remote.
    pub fn ovsdb(&mut self, name: &str, schema: &str, tcp: Option<&str>) -> String {
        let extra = tcp.map(|t| vec![format!("--remote=ptcp:{t}")]);
        self.ovsdb_with(name, schema, extra.unwrap_or_default(), None)
    }

    /// Like [`Self::ovsdb`], with a `pssl:0:127.0.0.1` remote and these certificates, run in
    /// namespace `ns` (its loopback) or in the host namespace; returns the `unix:` endpoint
    /// and the `ssl:127.0.0.1:PORT` one, with the port the server bound.
    pub fn ovsdb_ssl(
        &mut self,
        name: &str,
        schema: &str,
        ssl: &SslFiles,
        ns: Option<usize>,
    ) -> (String, String) {
        let extra = vec![
            "--remote=pssl:0:127.0.0.1".to_owned(),
            format!("--private-key={}", ssl.key.display()),
            format!("--certificate={}", ssl.cert.display()),
            format!("--ca-cert={}", ssl.ca.display()),
        ];
        // A restart appends to the log: the port is on the first line after the earlier runs'.
        let before = self.listening_ports(name).len();
        let unix = self.ovsdb_with(name, schema, extra, ns);
        let mut port = None;
        self.wait_until(&format!("{name} to log its listening port"), 15, || {
            port = self.listening_ports(name).get(before).copied();
            port.is_some()
        });
        (unix, format!("ssl:127.0.0.1:{}", port.unwrap_or_default()))
    }

    /// The ports of the `... listening on port N` lines of the daemon's log (ovsdb-server
    /// writes one when it binds a passive remote with port 0).
    fn listening_ports(&self, name: &str) -> Vec<u16> {
        std::fs::read_to_string(self.path(&format!("{name}.log")))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.rsplit_once(": listening on port "))
            .filter_map(|(_, p)| p.trim().parse().ok())
            .collect()
    }

    fn ovsdb_with(
        &mut self,
        name: &str,
        schema: &str,
        extra: Vec<String>,
        ns: Option<usize>,
    ) -> String {
        let db = self.path(&format!("{name}.db"));
        if !db.exists() {
            let out = Command::new("ovsdb-tool")
                .arg("create")
                .arg(&db)
                .arg(schema)
                .output()
                .expect("ovsdb-tool");
            assert!(
                out.status.success(),
                "ovsdb-tool create: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let sock = self.path(&format!("{name}.sock"));
        let _ = std::fs::remove_file(&sock);
        let mut c = match ns {
            Some(i) => self.namespaces[i].command("ovsdb-server"),
            None => Command::new("ovsdb-server"),
        };
        c.arg(&db)
            .arg(format!("--remote=punix:{}", sock.display()))
            .arg(format!(
                "--pidfile={}",
                self.path(&format!("{name}.pid")).display()
            ))
            .arg(format!(
                "--unixctl={}",
                self.path(&format!("{name}.ctl")).display()
            ))
            .arg(format!(
                "--log-file={}",
                self.path(&format!("{name}.log")).display()
            ));
        c.args(extra);
        self.spawn(name, c, ns);
        self.wait_for(name, &sock);
        format!("unix:{}", sock.display())
    }

    /// Stops the daemon `name` (kill by its PID, then wait).
    pub fn stop(&mut self, name: &str) {
        if let Some(i) = self.children.iter().position(|(n, _)| n == name) {
            let (_, mut c) = self.children.remove(i);
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts ovs-vswitchd on `db` inside namespace `ns` (the userspace datapath serves
    /// `netdev` bridges; the system datapath is disabled).
    pub fn vswitchd(&mut self, name: &str, db: &str, ns: usize) {
        let ctl = self.path(&format!("{name}.ctl"));
        let mut c = self.namespaces[ns].command("ovs-vswitchd");
        c.arg(db)
            .arg("--disable-system")
            .arg(format!(
                "--pidfile={}",
                self.path(&format!("{name}.pid")).display()
            ))
            .arg(format!("--unixctl={}", ctl.display()))
            .arg(format!(
                "--log-file={}",
                self.path(&format!("{name}.log")).display()
            ));
        self.spawn(name, c, Some(ns));
        self.wait_for(name, &ctl);
    }

    /// Starts ovn-northd between the NB and SB endpoints.
    pub fn northd(&mut self, nb: &str, sb: &str) {
        let ctl = self.path("northd.ctl");
        let mut c = Command::new("ovn-northd");
        c.arg(format!("--ovnnb-db={nb}"))
            .arg(format!("--ovnsb-db={sb}"))
            .arg(format!("--pidfile={}", self.path("northd.pid").display()))
            .arg(format!("--unixctl={}", ctl.display()))
            .arg(format!("--log-file={}", self.path("northd.log").display()));
        self.spawn("northd", c, None);
        self.wait_for("northd", &ctl);
    }

    /// Starts ovn-controller on the local `db` inside namespace `ns`.
    pub fn controller(&mut self, name: &str, db: &str, ns: usize) {
        // ovn-controller has no --unixctl: its control socket goes to OVN_RUNDIR (the temp dir).
        let pid = self.path(&format!("{name}.pid"));
        let mut c = self.namespaces[ns].command("ovn-controller");
        c.arg(db)
            .arg(format!("--pidfile={}", pid.display()))
            .arg(format!(
                "--log-file={}",
                self.path(&format!("{name}.log")).display()
            ));
        self.spawn(name, c, Some(ns));
        self.wait_for(name, &pid);
    }

    /// Runs an OVS/OVN control tool (`ovs-vsctl`, `ovn-sbctl`, `ovn-nbctl`) against `db`;
    /// panics with stderr on failure, returns trimmed stdout.
    pub fn ctl(&self, tool: &str, db: &str, args: &[&str]) -> String {
        let out = self.ctl_output(tool, db, args);
        assert!(
            out.status.success(),
            "{tool} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Like [`Self::ctl`], returning the output whatever the status.
    pub fn ctl_output(&self, tool: &str, db: &str, args: &[&str]) -> Output {
        let mut c = Command::new(tool);
        self.envs(&mut c, None);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c.arg(format!("--db={db}"));
        if tool == "ovs-vsctl" {
            c.arg("--no-wait");
        }
        c.args(args);
        c.output().unwrap_or_else(|e| panic!("running {tool}: {e}"))
    }

    /// Polls `f` every 50 ms until it returns true or `secs` pass.
    pub fn wait_until(&self, what: &str, secs: u64, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
