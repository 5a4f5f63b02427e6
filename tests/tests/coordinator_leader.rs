//! Two coordinators on one SQLite store: one leads, the other waits as a ready standby and
//! takes over when the leader dies (the store's lock is released with the process); and
//! never do both lead, whatever is done to the leader short of killing it (its old lock file
//! or the database file itself removed, SIGSTOP and SIGCONT). With three node agents and a
//! floating IP in throwaway namespaces, a paused and resumed leader makes neither two leaders
//! nor two nodes answering ARP for the address.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hearth_tests::netns::arp::{dual_answers, ArpProbe, Reply};
use hearth_tests::netns::failover::{FailoverLab, STANDBY_STATUS_PORT, STATUS_PORT};
use hearth_tests::{root_or_skip, tool_or_skip};

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

#[test]
fn removing_the_database_file_makes_no_second_leader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = leader_then_standby(dir.path());
    // The lock is on the database file: removing it ends a's lead (its renewal finds the path
    // no longer names the locked file), and b still cannot lock the file it opened.
    std::fs::remove_file(dir.path().join("shared.db")).expect("remove the database");
    // With its WAL files too: a new database beside the old WAL is refused (disk I/O error).
    for f in ["shared.db-wal", "shared.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    let (samples, both) = count_two_leaders(&a, &b, Duration::from_secs(4));
    eprintln!("database file removed: {both} of {samples} samples with two leaders");
    assert_eq!(both, 0, "two leaders after the database file was removed");
    assert_eq!(leader(&a), Some(false), "a stepped down");
    assert_eq!(leader(&b), Some(false), "b did not take the old file");
    // A third replica creates a new database and leads alone.
    let c = start(dir.path(), "coord-c");
    let mut both = 0;
    let end = std::time::Instant::now() + Duration::from_secs(4);
    let mut samples = 0;
    while std::time::Instant::now() < end {
        let leading = [&a, &b, &c]
            .iter()
            .filter(|r| leader(r) == Some(true))
            .count();
        samples += 1;
        both += usize::from(leading > 1);
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("a third replica on a new database: {both} of {samples} samples with two leaders");
    assert_eq!(both, 0);
    assert_eq!(
        FailoverLab::wait_for(Duration::from_secs(10), || leader(&c).filter(|l| *l)),
        Some(true),
        "the replica on the new file leads:\n{}",
        std::fs::read_to_string(dir.path().join("coord-c.log")).unwrap_or_default()
    );
}

/// `leader` of `/status` on `COORDINATOR_IP:port`, asked from the current thread's namespace
/// with short timeouts (a stopped process accepts connections but never answers).
fn leads_at(port: u16) -> Option<bool> {
    let addr = SocketAddr::from((
        hearth_tests::netns::failover::COORDINATOR_IP
            .parse::<std::net::Ipv4Addr>()
            .ok()?,
        port,
    ));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
    write!(
        s,
        "GET /status HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let body = text.split_once("\r\n\r\n")?.1;
    serde_json::from_str::<serde_json::Value>(body).ok()?["leader"].as_bool()
}

/// [`leads_at`] from the lab's client namespace.
fn leads(lab: &FailoverLab, port: u16) -> Option<bool> {
    lab.client()
        .thread(move || leads_at(port))
        .join()
        .ok()
        .flatten()
}

/// Figures of a sampling of both replicas' `/status`.
#[derive(Debug, Default)]
struct Leaders {
    samples: usize,
    both: usize,
    a: usize,
    b: usize,
    none: usize,
}

/// Moments in which two different nodes answered ARP for the address within `window` of each
/// other (one prober, a who-has every millisecond).
fn two_node_moments(replies: &[Reply], window: Duration) -> usize {
    replies
        .windows(2)
        .filter(|w| w[0].mac != w[1].mac && w[1].at.duration_since(w[0].at) < window)
        .count()
}

/// SIGSTOP of the leading replica for longer than its lead and the nodes' leases, then
/// SIGCONT: the standby cannot take the held lock, the resumed leader renews before it acts,
/// and at no moment do two replicas lead or two nodes answer for the floating IP.
#[test]
fn a_paused_leader_with_nodes_and_a_floating_ip_makes_no_two_leaders_or_answers() {
    let test = "a_paused_leader_with_nodes_and_a_floating_ip";
    if !(root_or_skip(test) && tool_or_skip(test, "ip")) {
        return;
    }
    const FIP: &str = "10.9.1.1";
    let config = "floatingIPPools:\n  - {name: lan, cidrs: [10.9.1.0/24], interface: eth0}\n\
                  floatingIPs:\n  - {name: web, pool: lan}\n";
    let mut lab = FailoverLab::new("fol", 3, config);
    lab.start_coordinator();
    assert_eq!(
        FailoverLab::wait_for(Duration::from_secs(10), || leads(&lab, STATUS_PORT)
            .filter(|l| *l)),
        Some(true),
        "the first replica leads"
    );
    lab.start_standby();
    assert_eq!(
        FailoverLab::wait_for(Duration::from_secs(10), || leads(&lab, STANDBY_STATUS_PORT)),
        Some(false),
        "the second replica waits"
    );
    for i in 0..3 {
        lab.start_agent(i);
    }
    let owner = FailoverLab::wait_for(Duration::from_secs(15), || {
        match lab.holders(FIP).as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    })
    .unwrap_or_else(|| panic!("no single holder of {FIP}:\n{}", lab.log("coordinator-1")));

    let probe = ArpProbe::start(
        lab.client(),
        "eth0",
        FailoverLab::client_ip(),
        FIP.parse().expect("address"),
    );
    let sampler = lab.client().thread(|| {
        let mut l = Leaders::default();
        let end = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < end {
            let (a, b) = (leads_at(STATUS_PORT), leads_at(STANDBY_STATUS_PORT));
            l.samples += 1;
            match (a == Some(true), b == Some(true)) {
                (true, true) => l.both += 1,
                (true, false) => l.a += 1,
                (false, true) => l.b += 1,
                (false, false) => l.none += 1,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        l
    });
    std::thread::sleep(Duration::from_secs(2));
    // Longer than the lead (10 s, renew deadline 2/3 of it) and every node's lease.
    lab.signal_coordinator(nix::sys::signal::Signal::SIGSTOP);
    std::thread::sleep(Duration::from_secs(11));
    lab.signal_coordinator(nix::sys::signal::Signal::SIGCONT);
    let leaders = sampler.join().expect("sampler");
    let replies = probe.stop();
    let after = lab.holders(FIP);
    let macs: std::collections::BTreeSet<[u8; 6]> = replies.iter().map(|r| r.mac).collect();
    let dual = dual_answers(&replies);
    let moments = two_node_moments(&replies, Duration::from_millis(5));
    eprintln!(
        "SIGSTOP 11 s, SIGCONT: {} of {} /status samples with two leaders \
         (first only {}, second only {}, neither {}); {} ARP replies from {} MACs, \
         {} answers by a succeeded node, {} moments with two nodes answering within 5 ms; \
         owner node {owner} before, {after:?} after",
        leaders.both,
        leaders.samples,
        leaders.a,
        leaders.b,
        leaders.none,
        replies.len(),
        macs.len(),
        dual.len(),
        moments
    );
    assert_eq!(leaders.both, 0, "two leaders around the pause");
    assert_eq!(leaders.b, 0, "the standby never took the held lock");
    assert!(dual.is_empty(), "a succeeded node answered again: {dual:?}");
    assert_eq!(moments, 0, "two nodes answered at once");
    assert!(leaders.a > 0, "the first replica led before and after");
    let settled = FailoverLab::wait_for(Duration::from_secs(15), || {
        match lab.holders(FIP).as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    });
    assert!(
        settled.is_some(),
        "one node holds {FIP} again after the resume:\n{}",
        lab.log("coordinator-1")
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
