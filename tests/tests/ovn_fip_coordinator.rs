//! The coordinator's OVN NAT loop end to end: `hearth coordinator --config` with an `ovn:`
//! section and a FloatingIP with a target, against a real NB ovsdb-server. The leader
//! allocates the address (no node) and writes one marked `dnat_and_snat` row on the router;
//! `/status` shows it; restarted with the FloatingIP gone, the row goes and the foreign one
//! stays.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hearth_tests::ovs::{tools_or_skip, OvsLab, NB_SCHEMA};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn status(port: u16) -> Option<serde_json::Value> {
    let mut s = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(1),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(
        s,
        "GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.split_once("\r\n\r\n")?.1).ok()
}

struct Coordinator(Child);

impl Drop for Coordinator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &std::path::Path, config: &str, port: u16) -> Coordinator {
    let path = dir.join("coordinator.yaml");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(hearth_tests::hearth_bin())
        .args(["coordinator", "--id", "c1", "--config"])
        .arg(&path)
        .arg("--csi-endpoint")
        .arg(format!("unix://{}", dir.join("csi.sock").display()))
        .arg("--state-dir")
        .arg(dir)
        .arg("--status-addr")
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("coordinator.log"))
                .unwrap(),
        )
        .spawn()
        .unwrap();
    Coordinator(child)
}

fn wait<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn the_coordinator_writes_and_removes_the_nat_row_of_a_targeted_floating_ip() {
    if !tools_or_skip("ovn_fip_coordinator") {
        return;
    }
    let mut lab = OvsLab::new();
    let nb = lab.ovsdb("nb", NB_SCHEMA, None);
    for args in [
        &["lr-add", "gw"][..],
        &[
            "lrp-add",
            "gw",
            "gw-ext",
            "0a:00:00:ac:10:02",
            "172.16.0.2/24",
        ],
        &["lr-nat-add", "gw", "snat", "172.16.0.2", "10.10.0.0/24"],
    ] {
        lab.ctl("ovn-nbctl", &nb, args);
    }
    let pools = "floatingIPPools:\n  - {name: public, cidrs: [172.16.0.48/29], interface: eth0}\n";
    let ovn = format!("ovn: {{northbound: \"{nb}\", router: gw, gatewayPort: gw-ext}}\n");
    let with = format!(
        "{pools}floatingIPs:\n  - {{name: vm1, pool: public, address: 172.16.0.50, target: 10.10.0.5}}\n{ovn}"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let c = start(dir.path(), &with, port);
    let row = wait(20, || {
        let nats = lab.ctl("ovn-nbctl", &nb, &["lr-nat-list", "gw"]);
        (nats.contains("172.16.0.50") && nats.contains("10.10.0.5")).then_some(nats)
    });
    let log = || std::fs::read_to_string(dir.path().join("coordinator.log")).unwrap_or_default();
    assert!(row.is_some(), "no NAT row; coordinator log:\n{}", log());
    let ids = lab.ctl(
        "ovn-nbctl",
        &nb,
        &[
            "--bare",
            "--columns=external_ids",
            "find",
            "NAT",
            "external_ip=172.16.0.50",
        ],
    );
    assert!(
        ids.contains("hearth-managed=true") && ids.contains("hearth-floating-ip=vm1"),
        "{ids}"
    );
    let st = wait(10, || {
        status(port)
            .filter(|s| s["ovn"]["floating_ips"][0]["problem"].is_null() && !s["ovn"].is_null())
    })
    .expect("/status with ovn");
    println!("{}", st["ovn"]);
    assert_eq!(st["ovn"]["floating_ips"][0]["address"], "172.16.0.50");
    assert_eq!(st["ovn"]["floating_ips"][0]["target"], "10.10.0.5");
    let fip = &st["floating_ips"][0];
    assert!(
        fip["node"].is_null(),
        "a targeted floating IP has no node: {fip}"
    );
    drop(c);
    // Restarted without the floating IP: its row goes, the foreign SNAT row stays.
    let _c = start(dir.path(), &format!("{pools}{ovn}"), port);
    let nats = wait(20, || {
        let nats = lab.ctl("ovn-nbctl", &nb, &["lr-nat-list", "gw"]);
        (!nats.contains("172.16.0.50")).then_some(nats)
    });
    let nats = nats.unwrap_or_else(|| panic!("row not removed; log:\n{}", log()));
    assert!(
        nats.contains("snat") && nats.contains("10.10.0.0/24"),
        "{nats}"
    );
}
