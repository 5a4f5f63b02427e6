//! Two coordinators on one SQLite store: one leads, the other waits as a ready standby and
//! takes over when the leader dies (the store's lock is released with the process); and
//! never do both lead, whatever is done to the leader short of killing it (its old lock file
//! removed, SIGSTOP and SIGCONT).
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hearth_tests::netns::failover::FailoverLab;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(1),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.split(' ').nth(1)?.parse().ok()?;
    Some((code, text.split_once("\r\n\r\n")?.1.to_owned()))
}

struct Coordinator {
    child: Child,
    status: u16,
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &std::path::Path, name: &str) -> Coordinator {
    let status = free_port();
    let own = dir.join(name);
    std::fs::create_dir_all(&own).expect("dir");
    let child = Command::new(hearth_tests::hearth_bin())
        .args(["coordinator", "--id", name, "--listen", "127.0.0.1:0"])
        .arg("--csi-endpoint")
        .arg(format!("unix://{}", own.join("csi.sock").display()))
        .arg("--state-dir")
        .arg(&own)
        .arg("--store")
        .arg(format!("sqlite:{}", dir.join("shared.db").display()))
        .arg("--status-addr")
        .arg(format!("127.0.0.1:{status}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{name}.log"))).expect("log"))
        .spawn()
        .expect("spawn coordinator");
    Coordinator { child, status }
}

fn leader(c: &Coordinator) -> Option<bool> {
    let (_, body) = get(c.status, "/status")?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["leader"].as_bool()
}

/// Starts `coord-a` and waits until it leads, then `coord-b` and waits until it says it is a
/// standby.
fn leader_then_standby(dir: &std::path::Path) -> (Coordinator, Coordinator) {
    let a = start(dir, "coord-a");
    assert_eq!(
        FailoverLab::wait_for(Duration::from_secs(10), || leader(&a).filter(|l| *l)),
        Some(true),
        "coord-a leads"
    );
    let b = start(dir, "coord-b");
    assert_eq!(
        FailoverLab::wait_for(Duration::from_secs(10), || leader(&b)),
        Some(false),
        "coord-b waits"
    );
    (a, b)
}

#[test]
fn a_standby_coordinator_takes_over_when_the_leader_dies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = leader_then_standby(dir.path());
    let (code, body) = get(b.status, "/readyz").expect("/readyz");
    assert_eq!((code, body.trim()), (200, "ready (standby)"));
    drop(a);
    assert_eq!(
        FailoverLab::wait_for(Duration::from_secs(10), || leader(&b).filter(|l| *l)),
        Some(true),
        "coord-b took over"
    );
}

/// Samples both replicas' `/status` every 50 ms for `d`; returns (samples, samples in which
/// both said they lead). A replica that does not answer (stopped) counts as not leading.
fn count_two_leaders(a: &Coordinator, b: &Coordinator, d: Duration) -> (usize, usize) {
    let end = std::time::Instant::now() + d;
    let (mut samples, mut both) = (0, 0);
    while std::time::Instant::now() < end {
        samples += 1;
        if leader(a) == Some(true) && leader(b) == Some(true) {
            both += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (samples, both)
}

#[test]
fn two_replicas_never_both_lead() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = leader_then_standby(dir.path());
    // Older releases locked `<db>-lead`: removing it let the standby lock a new one.
    let _ = std::fs::remove_file(dir.path().join("shared.db-lead"));
    let (samples, both) = count_two_leaders(&a, &b, Duration::from_secs(4));
    eprintln!("lock file removed: {both} of {samples} samples with two leaders");
    assert_eq!(both, 0, "two leaders after the lock file was removed");
    // Pause the leader for longer than its renew deadline (2/3 of 10 s), then resume it.
    let pid = nix::unistd::Pid::from_raw(i32::try_from(a.child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("SIGSTOP");
    let (s1, b1) = count_two_leaders(&a, &b, Duration::from_secs(8));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).expect("SIGCONT");
    let (s2, b2) = count_two_leaders(&a, &b, Duration::from_secs(4));
    eprintln!(
        "SIGSTOP 8 s, SIGCONT: {} of {} samples with two leaders",
        b1 + b2,
        s1 + s2
    );
    assert_eq!(b1 + b2, 0, "two leaders around a pause of the leader");
    assert_eq!(
        leader(&b),
        Some(false),
        "the standby never took the held lock"
    );
    assert_eq!(
        FailoverLab::wait_for(Duration::from_secs(10), || leader(&a).filter(|l| *l)),
        Some(true),
        "coord-a leads again after it resumed"
    );
}

/// `hearth csi --endpoint <coordinator's socket> ARGS…`: (exit status, stdout + stderr).
fn csi(dir: &std::path::Path, name: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(hearth_tests::hearth_bin())
        .arg("csi")
        .arg("--endpoint")
        .arg(dir.join(name).join("csi.sock"))
        .args(args)
        .output()
        .expect("run hearth csi");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The CSI sidecars sit beside whichever replica Kubernetes put them with: a standby's Probe
/// says `ready: false` (csi-lib-utils waits that out instead of exiting) and its controller
/// answers UNAVAILABLE; when the leader dies, the standby's socket serves.
#[test]
fn only_the_leader_serves_the_csi_controller() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = leader_then_standby(dir.path());
    let (code, out) = csi(dir.path(), "coord-a", &["info"]);
    assert!(code == 0 && out.contains("ready: true"), "leader: {out}");
    let (code, out) = csi(dir.path(), "coord-a", &["list"]);
    assert_eq!(code, 0, "the leader lists volumes: {out}");
    let (code, out) = csi(dir.path(), "coord-b", &["info"]);
    assert!(code == 0 && out.contains("ready: false"), "standby: {out}");
    let (code, out) = csi(dir.path(), "coord-b", &["list"]);
    assert!(
        code != 0 && out.contains("Unavailable") && out.contains("standby"),
        "the standby refuses controller calls: {out}"
    );
    drop(a);
    assert_eq!(
        FailoverLab::wait_for(Duration::from_secs(10), || leader(&b).filter(|l| *l)),
        Some(true),
        "coord-b took over"
    );
    let served = FailoverLab::wait_for(Duration::from_secs(5), || {
        let (code, out) = csi(dir.path(), "coord-b", &["info"]);
        (code == 0 && out.contains("ready: true")).then_some(())
    });
    assert!(served.is_some(), "the new leader's Probe is ready");
    let (code, out) = csi(dir.path(), "coord-b", &["list"]);
    assert_eq!(code, 0, "the new leader lists volumes: {out}");
}
