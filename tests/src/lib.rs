//! Test harnesses: start `hearth dev` in a temp directory, talk CSI to it, and clean up every
//! mount and loop device under that directory even when a test fails.
//!
//! Tests touch only what they create: a temp directory, the mounts below it and the loop
//! devices whose backing files lie below it. Nothing is ever killed by name.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod csi_sanity;
pub mod linstor_sim;
pub mod netns;
pub mod ovs;
pub mod python;
pub mod requests;
pub mod sessions;

pub use hearth_agent::client::{connect, CsiClient};
pub use hearth_proto::csi::v1::volume_capability::access_mode::Mode;

/// True when the test may run. Without root it prints why it skips, and under `CI=true` a skip
/// is a failure.
pub fn root_or_skip(test: &str) -> bool {
    if nix::unistd::Uid::effective().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: needs root, and CI=true forbids skipping"
    );
    eprintln!("skipping {test}: needs root (mounts and loop devices)");
    false
}

/// Checks that an external tool exists; under `CI=true` its absence fails the test.
pub fn tool_or_skip(test: &str, tool: &str) -> bool {
    let found = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .any(|d| Path::new(d).join(tool).exists());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: needs {tool}, and CI=true forbids skipping"
        );
        eprintln!("skipping {test}: {tool} is not installed");
    }
    found
}

/// The `hearth` binary: `$HEARTH_BIN`, or the one next to this test binary's directory.
pub fn hearth_bin() -> PathBuf {
    if let Ok(p) = std::env::var("HEARTH_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(|d| {
            if d.ends_with("deps") {
                d.parent()
            } else {
                Some(d)
            }
        })
        .expect("target dir");
    let bin = dir.join("hearth");
    assert!(
        bin.exists(),
        "{} not built; run `cargo build -p hearth-agent` first or set HEARTH_BIN",
        bin.display()
    );
    bin
}

/// A temp directory for one test, with `state/` and `state/kubelet/` below it. Dropping it
/// unmounts everything below it and detaches the loop devices backed by files below it.
#[derive(Debug)]
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    /// A new sandbox under /tmp (or `$HEARTH_TEST_DIR`).
    pub fn new() -> Self {
        let base = std::env::var_os("HEARTH_TEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = tempfile::Builder::new()
            .prefix("hearth-test-")
            .tempdir_in(base)
            .expect("tempdir");
        std::fs::create_dir_all(dir.path().join("state/kubelet")).expect("kubelet dir");
        Self { dir }
    }

    /// The sandbox root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The state directory for `hearth dev`.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The kubelet directory (`state/kubelet`).
    pub fn kubelet_dir(&self) -> PathBuf {
        self.state_dir().join("kubelet")
    }

    /// The CSI socket of `hearth dev`.
    pub fn socket(&self) -> PathBuf {
        self.state_dir().join("csi.sock")
    }

    /// A staging directory for volume `name`, created the way kubelet does.
    pub fn staging(&self, name: &str) -> String {
        let dir = self.kubelet_dir().join(format!(
            "plugins/kubernetes.io/csi/csi.hearth.dev/{name}/globalmount"
        ));
        std::fs::create_dir_all(&dir).expect("staging dir");
        dir.display().to_string()
    }

    /// A filesystem publish target for volume `name` in pod `pod` (the parent exists, the
    /// target does not, as kubelet leaves it).
    pub fn target(&self, pod: &str, name: &str) -> String {
        let dir = self
            .kubelet_dir()
            .join(format!("pods/{pod}/volumes/kubernetes.io~csi/{name}"));
        std::fs::create_dir_all(&dir).expect("target parent");
        dir.join("mount").display().to_string()
    }

    /// A block publish target (a file path) for volume `name` in pod `pod`.
    pub fn block_target(&self, pod: &str, name: &str) -> String {
        let dir = self
            .kubelet_dir()
            .join(format!("pods/{pod}/volumeDevices/kubernetes.io~csi"));
        std::fs::create_dir_all(&dir).expect("target parent");
        dir.join(name).display().to_string()
    }

    /// Mount points below the sandbox, deepest first.
    pub fn mounts(&self) -> Vec<PathBuf> {
        let root = self
            .dir
            .path()
            .canonicalize()
            .unwrap_or_else(|_| self.dir.path().to_owned());
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut found: Vec<PathBuf> = text
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(unescape)
            .map(PathBuf::from)
            .filter(|p| p.starts_with(&root))
            .collect();
        found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        found
    }

    /// Loop devices whose backing file lies below the sandbox.
    pub fn loop_devices(&self) -> Vec<String> {
        loop_devices_under(self.dir.path())
    }

    /// Files below `state/volumes` and `state/snapshots`.
    pub fn images(&self) -> Vec<PathBuf> {
        ["volumes", "snapshots", "tmp"]
            .iter()
            .flat_map(|d| {
                std::fs::read_dir(self.state_dir().join(d))
                    .into_iter()
                    .flatten()
                    .flatten()
            })
            .map(|e| e.path())
            .collect()
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for _ in 0..3 {
            let mounts = self.mounts();
            if mounts.is_empty() {
                break;
            }
            for m in mounts {
                let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
            }
        }
        for dev in self.loop_devices() {
            let _ = Command::new("losetup").arg("-d").arg(&dev).status();
        }
    }
}

/// A running `hearth dev`. Dropping it kills it (SIGKILL) and reaps it.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    socket: PathBuf,
}

impl Daemon {
    /// Starts `hearth dev --state-dir <sandbox>/state` and waits until its socket answers.
    pub fn start(sandbox: &Sandbox, extra: &[&str]) -> Self {
        Self::start_as(sandbox, "test-node", extra)
    }

    /// Like [`Daemon::start`], with another node name.
    pub fn start_as(sandbox: &Sandbox, node_name: &str, extra: &[&str]) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(sandbox.path().join("hearth.log"))
            .expect("log file");
        let child = Command::new(hearth_bin())
            .arg("dev")
            .arg("--state-dir")
            .arg(sandbox.state_dir())
            .arg("--node-name")
            .arg(node_name)
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning hearth dev");
        let mut d = Self {
            child,
            socket: sandbox.socket(),
        };
        d.wait_ready(sandbox);
        d
    }

    fn wait_ready(&mut self, sandbox: &Sandbox) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log =
                    std::fs::read_to_string(sandbox.path().join("hearth.log")).unwrap_or_default();
                panic!("hearth dev exited with {status}:\n{log}");
            }
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "hearth dev did not serve {} within 20 s",
            self.socket.display()
        );
    }

    /// The daemon's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        self.child.wait().expect("waiting for hearth dev")
    }

    /// Peak resident memory (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        vm_hwm_kib(self.child.id())
    }
}

/// True when something is mounted at `path` in this mount namespace.
pub fn is_mounted(path: &str) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4).map(unescape).as_deref() == Some(path))
}

/// VmHWM of a process, in KiB (0 when unreadable).
pub fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Loop devices whose backing file lies below `dir`.
pub fn loop_devices_under(dir: &Path) -> Vec<String> {
    let root = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let mut found = Vec::new();

    for entry in std::fs::read_dir("/sys/block")
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("loop") {
            continue;
        }
        if let Ok(b) = std::fs::read_to_string(entry.path().join("loop/backing_file")) {
            let b = b.trim_end().trim_end_matches(" (deleted)");
            if Path::new(b).starts_with(&root) {
                found.push(format!("/dev/{name}"));
            }
        }
    }
    found
}
