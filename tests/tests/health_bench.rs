//! Benchmark (ignored by default): the status snapshot of a real `hearth dev` with 1,000
//! loopfile volumes: collection time, agent CPU per scrape and RSS growth over many scrapes.
//! Run: `cargo test -p hearth-tests --release --test health_bench -- --ignored --nocapture`.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use hearth_tests::requests::*;
use hearth_tests::{connect, root_or_skip, Daemon, Mode, Sandbox};

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(s, "GET {path} HTTP/1.0\r\n\r\n").expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    raw.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// utime + stime of `pid`, in clock ticks, and VmRSS in KiB.
fn cpu_and_rss(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = after
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // After ")": state is not numeric, so utime/stime are fields 11/12 of the numeric rest.
    let cpu = f[10] + f[11];
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (cpu, rss)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark"]
async fn snapshot_cost_with_1000_volumes() {
    if !root_or_skip("snapshot_cost") {
        return;
    }
    let sb = Sandbox::new();
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let daemon = Daemon::start(&sb, &["--status-addr", &addr.to_string()]);
    let mut c = connect(daemon.socket()).await.expect("connect");
    let t = Instant::now();
    for i in 0..1000 {
        let cap = mount_cap("ext4", Mode::SingleNodeWriter);
        c.controller
            .create_volume(create(&format!("pvc-{i}"), 1 << 20, cap))
            .await
            .expect("create");
    }
    println!("created 1000 volumes in {:?}", t.elapsed());
    let _ = get(addr, "/status");
    let (cpu0, rss0) = cpu_and_rss(daemon.pid());
    let rounds = 30;
    let mut millis = Vec::new();
    for _ in 0..rounds {
        tokio::time::sleep(Duration::from_millis(1050)).await; // past the 1 s cache
        let json = get(addr, "/status");
        let v: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(
            v["storage"]["data"]["volumes"].as_array().map(Vec::len),
            Some(1000)
        );
        millis.push(v["collect_millis"].as_f64().unwrap_or(0.0));
        let _ = get(addr, "/metrics");
    }
    let (cpu1, rss1) = cpu_and_rss(daemon.pid());
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    millis.sort_by(f64::total_cmp);
    println!(
        "collect: median {:.2} ms, max {:.2} ms; agent CPU per scrape (collect + /status + /metrics): {:.2} ms; RSS {} KiB -> {} KiB over {rounds} scrapes",
        millis[millis.len() / 2],
        millis[millis.len() - 1],
        (cpu1 - cpu0) as f64 / hz * 1000.0 / f64::from(rounds),
        rss0,
        rss1
    );
}
