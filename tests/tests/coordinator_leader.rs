//! Two coordinators on one SQLite store: one leads, the other waits as a ready standby and
//! takes over when the leader dies (the store's lock is released with the process).
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

#[test]
fn a_standby_coordinator_takes_over_when_the_leader_dies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = start(dir.path(), "coord-a");
    assert_eq!(
        FailoverLab::wait_for(Duration::from_secs(10), || leader(&a).filter(|l| *l)),
        Some(true),
        "coord-a leads"
    );
    let b = start(dir.path(), "coord-b");
    assert_eq!(
        FailoverLab::wait_for(Duration::from_secs(10), || leader(&b)),
        Some(false),
        "coord-b waits"
    );
    let (code, body) = get(b.status, "/readyz").expect("/readyz");
    assert_eq!((code, body.trim()), (200, "ready (standby)"));
    drop(a);
    assert_eq!(
        FailoverLab::wait_for(Duration::from_secs(10), || leader(&b).filter(|l| *l)),
        Some(true),
        "coord-b took over"
    );
}
