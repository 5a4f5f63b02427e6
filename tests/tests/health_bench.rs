//! Benchmarks (ignored by default): the status snapshot of a real `hearth dev` with 1,000
//! loopfile volumes (collection time, agent CPU per scrape), and the RSS of a real
//! `hearth node` with 1,000 volumes and 1,000 floating IPs under thousands of scrapes.
//! Run: `cargo test -p hearth-tests --release --test health_bench -- --ignored --nocapture`.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use hearth_tests::netns::NetNs;
use hearth_tests::requests::*;
use hearth_tests::{connect, root_or_skip, tool_or_skip, Daemon, Mode, Sandbox};

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
    // Fields after the ")" that ends the command name, by position: state is the first (3 in
    // proc(5)), utime the 12th (14) and stime the 13th (15). Some before them may be -1
    // (tpgid without a terminal), so they must not be filtered by type.
    let after: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let field = |i: usize| {
        after
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let cpu = field(11) + field(12);
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

/// VmRSS, RssAnon and VmHWM of `pid`, in KiB.
fn memory(pid: u32) -> [u64; 3] {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    ["VmRSS:", "RssAnon:", "VmHWM:"].map(|name| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    })
}

/// The agent's memory under sustained scraping: a real `hearth node` holding 1,000 loopfile
/// volumes (made beforehand through `hearth dev` on the same state directory) and 1,000
/// floating IPs (from its `--network` file, in a throwaway namespace), scraped back to back on
/// `/status` and `/metrics` by one client. Memory is sampled every 10 s through an idle minute
/// before (the reconciler's resyncs and re-announcements alone), ten times while scraping, and
/// through an idle minute after. `HEARTH_BENCH_SCRAPES` sets the number of scrape pairs
/// (10,000), `HEARTH_BENCH_IDLE` the idle seconds (60).
/// Run: `HEARTH_BIN=target/release/hearth cargo test -p hearth-tests --test health_bench
/// rss -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark"]
fn rss_under_repeated_scrapes_1000_volumes_1000_floating_ips() {
    if !root_or_skip("rss_under_scrapes") || !tool_or_skip("rss_under_scrapes", "ip") {
        return;
    }
    let pairs: usize = std::env::var("HEARTH_BENCH_SCRAPES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let idle: u64 = std::env::var("HEARTH_BENCH_IDLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let n = 1000;
    let sb = Sandbox::new();
    {
        let daemon = Daemon::start(&sb, &[]);
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let mut c = connect(daemon.socket()).await.expect("connect");
            for i in 0..n {
                let cap = mount_cap("ext4", Mode::SingleNodeWriter);
                c.controller
                    .create_volume(create(&format!("pvc-{i}"), 1 << 20, cap))
                    .await
                    .expect("create");
            }
        });
        assert!(daemon.terminate().success());
    }
    let ns = NetNs::new("rss");
    ns.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth1",
    ]);
    ns.ip(&["link", "set", "eth1", "up"]);
    ns.ip(&["link", "set", "eth0", "up"]);
    ns.ip(&["addr", "add", "10.99.0.1/16", "dev", "eth0"]);
    let file = sb.path().join("net.yaml");
    let mut yaml = String::from("floatingIPs:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "  - {{address: 10.99.{}.{}, dev: eth0}}\n",
            i / 200 + 1,
            i % 200 + 1
        ));
    }
    std::fs::write(&file, yaml).expect("network file");
    let addr: SocketAddr = "127.0.0.1:19812".parse().expect("addr");
    let socket = format!("unix://{}", sb.path().join("node.sock").display());
    let (state, kubelet) = (sb.state_dir(), sb.path().join("kubelet"));
    let args = [
        "node",
        "--node-name",
        "test-node",
        "--csi-endpoint",
        &socket,
        "--state-dir",
        &state.display().to_string(),
        "--kubelet-dir",
        &kubelet.display().to_string(),
        "--network",
        &file.display().to_string(),
        "--status-addr",
        &addr.to_string(),
    ]
    .map(|s| s.to_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let log = sb.path().join("node.log");
    let mut agent = ns.spawn_hearth(&args, &log);
    let pid = agent.id();
    let scraper = ns.thread(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(Instant::now() < deadline, "agent not ready within 60 s");
            if TcpStream::connect(addr).is_ok() {
                let v: serde_json::Value =
                    serde_json::from_str(&get(addr, "/status")).unwrap_or_default();
                let data = &v["network"]["data"];
                if v["storage"]["data"]["volumes"].as_array().map(Vec::len) == Some(n)
                    && data["floating_ips"].as_array().map(Vec::len) == Some(n)
                    && data["reconciler"]["converged"] == true
                {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let t = Instant::now();
        let mut samples = Vec::new();
        let mut sample = |phase: &'static str, pairs: usize| {
            samples.push((phase, pairs, t.elapsed().as_secs_f64(), memory(pid)));
        };
        for _ in 0..idle / 10 {
            sample("idle before", 0);
            std::thread::sleep(Duration::from_secs(10));
        }
        sample("scraping", 0);
        let (cpu0, _) = cpu_and_rss(pid);
        let mut collections = std::collections::BTreeSet::new();
        let (mut status_bytes, mut metrics_bytes) = (0, 0);
        let scraping = Instant::now();
        for i in 1..=pairs {
            let json = get(addr, "/status");
            status_bytes = json.len();
            if let Some(at) = serde_json::from_str::<serde_json::Value>(&json)
                .ok()
                .and_then(|v| v["collected_at_unix"].as_f64())
            {
                collections.insert(at.to_bits());
            }
            metrics_bytes = get(addr, "/metrics").len();
            if i % (pairs / 10).max(1) == 0 {
                sample("scraping", i);
            }
        }
        let elapsed = scraping.elapsed();
        let (cpu1, _) = cpu_and_rss(pid);
        for _ in 0..idle / 10 {
            std::thread::sleep(Duration::from_secs(10));
            sample("idle after", pairs);
        }
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        println!(
            "{pairs} scrape pairs (/status {status_bytes} B + /metrics {metrics_bytes} B) in {elapsed:?}, {} snapshots built, agent CPU {:.2} ms per pair",
            collections.len(),
            (cpu1 - cpu0) as f64 / hz * 1000.0 / pairs as f64
        );
        println!("phase            pairs   seconds   VmRSS KiB  RssAnon KiB   VmHWM KiB");
        for (phase, i, s, [rss, anon, hwm]) in &samples {
            println!("{phase:<12} {i:>9} {s:>9.1} {rss:>11} {anon:>12} {hwm:>11}");
        }
    });
    let result = scraper.join();
    let _ = agent.kill();
    let _ = agent.wait();
    if result.is_err() {
        panic!(
            "scraper failed; agent log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
}
