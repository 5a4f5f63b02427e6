//! The status endpoint of a real `hearth dev`: `/metrics` under Debian's promtool, `/status`
//! and `hearth status`, readiness when the LINSTOR backend (the simulator in `tests/`, a
//! stand-in, not LINSTOR) goes away, slow and huge clients, and a real VictoriaMetrics that
//! scrapes the agent.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hearth_proto::csi::v1::{GetPluginInfoRequest, NodeStageVolumeRequest};
use hearth_tests::linstor_sim::{SimConfig, Simulator};
use hearth_tests::netns::NetNs;
use hearth_tests::requests::*;
use hearth_tests::{connect, hearth_bin, root_or_skip, tool_or_skip, Daemon, Mode, Sandbox};

fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// A GET over HTTP/1.0: (status code, body).
fn get(addr: SocketAddr, path: &str, accept: &str) -> (u16, String) {
    let (code, _, body) = get_typed(addr, path, Some(accept));
    (code, body)
}

/// A GET over HTTP/1.0 with `accept` (no Accept header for `None`): (status code,
/// Content-Type, body).
fn get_typed(addr: SocketAddr, path: &str, accept: Option<&str>) -> (u16, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n{accept}\r\n").expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("http answer");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("code");
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    (code, content_type, body.to_owned())
}

fn start(sb: &Sandbox, extra: &[&str]) -> (Daemon, SocketAddr) {
    start_as(sb, "test-node", extra)
}

fn start_as(sb: &Sandbox, node: &str, extra: &[&str]) -> (Daemon, SocketAddr) {
    let addr = free_addr();
    let a = addr.to_string();
    let mut args = vec!["--status-addr", a.as_str()];
    args.extend_from_slice(extra);
    let daemon = Daemon::start_as(sb, node, &args);
    // The CSI socket is bound first; wait for the status listener too.
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "status endpoint {addr} not served"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (daemon, addr)
}

fn hearth_status(addr: SocketAddr, output: &str) -> (i32, String) {
    let out = Command::new(hearth_bin())
        .args(["status", "--addr", &addr.to_string(), "--output", output])
        .output()
        .expect("hearth status");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Feeds `metrics` to `promtool check metrics`, which lints the classic Prometheus text
/// format, and fails on any finding.
fn promtool_accepts(metrics: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(metrics.as_bytes())
        .expect("feed");
    let out = child.wait_with_output().expect("promtool ran");
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool: {report}\n{metrics}"
    );
}

/// Creates and stages one volume, and makes one failing call, so every family has samples.
async fn some_traffic(sb: &Sandbox, daemon: &Daemon) {
    let mut c = connect(daemon.socket()).await.expect("connect");
    let cap = mount_cap("ext4", Mode::SingleNodeWriter);
    let vol = c
        .controller
        .create_volume(create("pvc-h", 16 << 20, cap.clone()))
        .await;
    let id = vol
        .expect("create")
        .into_inner()
        .volume
        .expect("volume")
        .volume_id;
    let stage = NodeStageVolumeRequest {
        volume_id: id,
        staging_target_path: sb.staging("pvc-h"),
        volume_capability: Some(cap),
        ..Default::default()
    };
    c.node
        .node_stage_volume(stage.clone())
        .await
        .expect("stage");
    let missing = NodeStageVolumeRequest {
        volume_id: "vol-missing".into(),
        ..stage
    };
    assert!(c.node.node_stage_volume(missing).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_pass_promtool_and_status_lists_the_volume() {
    if !root_or_skip("metrics_pass_promtool") || !tool_or_skip("metrics_pass_promtool", "promtool")
    {
        return;
    }
    let sb = Sandbox::new();
    let (daemon, addr) = start(&sb, &[]);
    some_traffic(&sb, &daemon).await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // past the snapshot cache
                                                           // A classic Prometheus-text client, one that sends no Accept, and one that takes anything
                                                           // get the classic text; an OpenMetrics client (Prometheus itself) gets OpenMetrics.
    let (code, content_type, metrics) =
        get_typed(addr, "/metrics", Some("text/plain; version=0.0.4"));
    assert_eq!(code, 200);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(!metrics.contains("# EOF") && !metrics.contains("# UNIT"));
    assert!(
        metrics.contains("# HELP hearth_csi_operations_total "),
        "{metrics}"
    );
    for accept in [None, Some("*/*")] {
        let (_, other_type, _) = get_typed(addr, "/metrics", accept);
        assert_eq!(other_type, content_type, "Accept {accept:?}");
    }
    for accept in [
        "application/openmetrics-text; version=1.0.0",
        "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    ] {
        let (code, om_type, om) = get_typed(addr, "/metrics", Some(accept));
        assert_eq!(code, 200);
        assert_eq!(
            om_type, "application/openmetrics-text; version=1.0.0; charset=utf-8",
            "{accept}"
        );
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(om.contains("# TYPE hearth_csi_operations counter"), "{om}");
    }
    for name in [
        "hearth_info",
        "hearth_volume_size_bytes",
        "hearth_csi_operations_total",
        "hearth_csi_operation_duration_seconds_bucket",
        "hearth_node_memory_total_bytes",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    promtool_accepts(&metrics);

    let (code, json) = get(addr, "/status", "application/json");
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let pool = &v["storage"]["data"]["pools"][0];
    assert_eq!(
        (&pool["name"], &pool["kind"]),
        (&"state-dir".into(), &"filesystem".into())
    );
    assert!(pool["free_bytes"].as_u64() <= pool["total_bytes"].as_u64());
    assert!(pool["total_bytes"].as_u64() > Some(0), "{pool}");
    assert!(metrics
        .contains("hearth_storage_pool_capacity_bytes{pool=\"state-dir\",node=\"test-node\"}"));
    let vols = v["storage"]["data"]["volumes"].as_array().expect("volumes");
    assert_eq!(vols.len(), 1);
    assert!(vols[0]["device"]
        .as_str()
        .is_some_and(|d| d.starts_with("/dev/loop")));
    assert_eq!(
        vols[0]["staged_paths"][0].as_str(),
        Some(sb.staging("pvc-h").as_str())
    );
    let errors = &v["csi"]["operations"]["/csi.v1.Node/NodeStageVolume"]["errors"];
    assert_eq!(errors["NotFound"], 1);
    let (code, text) = get(addr, "/status?format=text", "*/*");
    assert_eq!(code, 200);
    assert!(text.contains("✓ backend"), "{text}");
    let (rc, table) = hearth_status(addr, "wide");
    assert_eq!(rc, 0, "{table}");
    assert!(
        table.contains("/dev/loop") && table.contains("✓ csi_socket"),
        "{table}"
    );
    let (rc, json) = hearth_status(addr, "json");
    assert_eq!(rc, 0);
    assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
}

#[test]
fn hearth_status_reads_a_status_listener_served_over_tls() {
    if !root_or_skip("status_tls") {
        return;
    }
    let sb = Sandbox::new();
    let (_daemon, addr) = start(&sb, &["--status-tls-self-signed"]);
    let run = |args: &[&str]| {
        let out = Command::new(hearth_bin())
            .arg("status")
            .args(args)
            .output()
            .expect("hearth status");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let https = format!("https://{addr}");
    let (rc, json) = run(&[
        "--addr",
        &https,
        "--insecure-skip-tls-verify",
        "--output",
        "json",
    ]);
    assert_eq!(rc, 0, "{json}");
    assert!(json.contains("\"checks\""), "{json}");
    let (rc, err) = run(&["--addr", &https]);
    assert_ne!(rc, 0);
    assert!(err.contains("needs --ca-file"), "{err}");
    // Plain HTTP stays open on loopback, so `hearth status` on the node needs no flag.
    let (rc, table) = hearth_status(addr, "table");
    assert_eq!(rc, 0, "{table}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_backend_fails_readiness_with_a_reason() {
    if !root_or_skip("unreachable_backend") {
        return;
    }
    let sim = Simulator::start(SimConfig::default()).expect("simulator");
    let url = sim.url();
    let sb = Sandbox::new();
    let (_daemon, addr) = start(&sb, &["--backend", "linstor", "--linstor-url", &url]);
    let (code, body) = get(addr, "/readyz", "*/*");
    assert_eq!(code, 200, "{body}");
    sim.stop();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (code, body) = get(addr, "/readyz", "*/*");
    let log = std::fs::read_to_string(sb.path().join("hearth.log")).unwrap_or_default();
    assert_eq!(
        code,
        503,
        "{body}\n{}\n{log}",
        get(addr, "/status?format=text", "*/*").1
    );
    assert!(body.contains("✗ backend") && body.contains("→"), "{body}");
    let (rc, table) = hearth_status(addr, "table");
    assert_eq!(rc, 1, "{table}");
    assert!(table.contains("✗ backend"), "{table}");
    let (code, _) = get(addr, "/healthz", "*/*");
    assert_eq!(code, 200, "liveness stays up while the backend is away");
}

/// This node's LINSTOR storage pools, from the storage-pool view of the simulator (a
/// stand-in, not LINSTOR), with capacity and free space in `/status`, `/metrics` and the table.
#[tokio::test(flavor = "multi_thread")]
async fn linstor_pools_report_capacity_and_free_space() {
    if !root_or_skip("linstor_pools") {
        return;
    }
    let sim = Simulator::start(SimConfig::default()).expect("simulator");
    let url = sim.url();
    let sb = Sandbox::new();
    let (daemon, addr) = start_as(
        &sb,
        "node-a",
        &["--backend", "linstor", "--linstor-url", &url],
    );
    let total = (10u64 << 20) * 1024; // SimConfig's pool size, 10 GiB
    let pools = |body: &str| {
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        v["storage"]["data"]["pools"].clone()
    };
    let (_, body) = get(addr, "/status", "*/*");
    assert_eq!(
        pools(&body),
        serde_json::json!([{"name": "data", "node": "node-a", "kind": "LVM_THIN",
            "total_bytes": total, "free_bytes": total}]),
        "{body}"
    );
    // Three replicas: one lands on node-a, whose pool then has 64 MiB less free.
    let mut c = connect(daemon.socket()).await.expect("connect");
    let mut req = create(
        "pvc-pool",
        64 << 20,
        mount_cap("ext4", Mode::SingleNodeWriter),
    );
    req.parameters.insert("placementCount".into(), "3".into());
    c.controller.create_volume(req).await.expect("create");
    tokio::time::sleep(Duration::from_millis(1100)).await; // past the snapshot cache
    let (_, body) = get(addr, "/status", "*/*");
    assert_eq!(pools(&body)[0]["free_bytes"], total - (64 << 20), "{body}");
    let (_, metrics) = get(addr, "/metrics", "*/*");
    for line in [
        format!("hearth_storage_pool_capacity_bytes{{pool=\"data\",node=\"node-a\"}} {total}"),
        format!(
            "hearth_storage_pool_free_bytes{{pool=\"data\",node=\"node-a\"}} {}",
            total - (64 << 20)
        ),
    ] {
        assert!(metrics.contains(&line), "{line} missing:\n{metrics}");
    }
    let (_, table) = hearth_status(addr, "table");
    assert!(
        table.contains("pool data on node-a (LVM_THIN): free 10176 MiB of 10240 MiB"),
        "{table}"
    );
}

/// Readiness follows the network reconciler of a real `hearth node --network` in a throwaway
/// namespace: an address the file wants is held by someone else (a conflict), so `/readyz`
/// fails with the reason and a hint; once the foreign address goes and the reconciler passes
/// again, it converges and the node is ready.
#[test]
fn network_readiness_follows_the_reconciler() {
    if !root_or_skip("network_readiness") || !tool_or_skip("network_readiness", "ip") {
        return;
    }
    let ns = NetNs::new("ready");
    ns.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth1",
    ]);
    ns.ip(&["link", "set", "eth0", "up"]);
    ns.ip(&["addr", "add", "192.0.2.10/24", "dev", "eth0"]);
    let sb = Sandbox::new();
    let file = sb.path().join("net.yaml");
    std::fs::write(
        &file,
        "addresses:\n  - {address: 192.0.2.10/24, dev: eth0}\n",
    )
    .expect("file");
    let socket = format!("unix://{}", sb.path().join("node.sock").display());
    let paths = [sb.state_dir(), sb.path().join("kubelet"), file];
    let [state, kubelet, file] = paths.map(|p| p.display().to_string());
    let log = sb.path().join("node.log");
    let addr: SocketAddr = "127.0.0.1:19813".parse().expect("addr");
    let a = addr.to_string();
    let agent = Killed(ns.spawn_hearth(
        &[
            "node",
            "--node-name",
            "node-a",
            "--csi-endpoint",
            &socket,
            "--state-dir",
            &state,
            "--kubelet-dir",
            &kubelet,
            "--network",
            &file,
            "--status-addr",
            &a,
        ],
        &log,
    ));
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    // Polls /readyz inside the namespace until `want` holds for (code, body).
    let wait = |want: fn(u16, &str) -> bool| {
        ns.thread(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut last = (0, String::new());
            while Instant::now() < deadline {
                if TcpStream::connect(addr).is_ok() {
                    last = get(addr, "/readyz", "*/*");
                    if want(last.0, &last.1) {
                        return Ok((
                            last,
                            get(addr, "/status", "*/*").1,
                            get(addr, "/metrics", "*/*").1,
                        ));
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(last)
        })
        .join()
        .expect("scraper thread")
    };
    let ((code, body), status, metrics) = wait(|c, b| c == 503 && b.contains("✗ network"))
        .unwrap_or_else(|last| panic!("never unready on the network: {last:?}\n{}", log_text()));
    assert_eq!(code, 503);
    assert!(
        body.contains("1 conflict(s)") && body.contains("192.0.2.10/24"),
        "{body}"
    );
    assert!(body.contains("→ an object Hearth does not own"), "{body}");
    let v: serde_json::Value = serde_json::from_str(&status).expect("json");
    let r = &v["network"]["data"]["reconciler"];
    assert_eq!(
        (r["converged"].as_bool(), r["conflicts"].as_u64()),
        (Some(false), Some(1)),
        "{r}"
    );
    assert!(metrics.contains("hearth_network_converged 0"), "{metrics}");

    // Events about objects Hearth does not own do not wake the reconciler: it would see the
    // address gone at its next resync (30 s); SIGHUP makes it pass now.
    ns.ip(&["addr", "del", "192.0.2.10/24", "dev", "eth0"]);
    let pid = nix::unistd::Pid::from_raw(i32::try_from(agent.0.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).expect("SIGHUP");
    let ((_, body), status, metrics) = wait(|c, _| c == 200)
        .unwrap_or_else(|last| panic!("never ready: {last:?}\n{}", log_text()));
    assert!(body.starts_with("ready"), "{body}");
    let v: serde_json::Value = serde_json::from_str(&status).expect("json");
    assert_eq!(v["network"]["data"]["reconciler"]["converged"], true);
    assert!(metrics.contains("hearth_network_converged 1"), "{metrics}");
    assert!(
        metrics.contains("hearth_network_last_pass_timestamp_seconds "),
        "{metrics}"
    );
    let out = ns.hearth(&["status", "--addr", &a]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("✓ network") && table.contains("✓ converged, last pass"),
        "{table}"
    );
    assert!(ns
        .ip(&["addr", "show", "dev", "eth0"])
        .contains("192.0.2.10/24"));
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_and_huge_clients_do_not_block_the_agent() {
    if !root_or_skip("slow_and_huge_clients") {
        return;
    }
    let sb = Sandbox::new();
    let (daemon, addr) = start(&sb, &[]);
    // Clients that send half a request head and stall (fewer than one source's share of the
    // slots: the /healthz below comes from the same address).
    let slow: Vec<TcpStream> = (0..12)
        .map(|_| {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.write_all(b"GET /status HTTP/1.1\r\nHost:")
                .expect("partial");
            s
        })
        .collect();
    let t = Instant::now();
    assert_eq!(get(addr, "/healthz", "*/*").0, 200);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "healthz took {:?}",
        t.elapsed()
    );
    // A 1 MiB request head is refused, not buffered.
    let mut huge = TcpStream::connect(addr).expect("connect");
    huge.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let _ = huge.write_all(b"GET /status HTTP/1.1\r\nX-Big: ");
    let _ = huge.write_all(&vec![b'a'; 1 << 20]);
    let mut answer = Vec::new();
    let _ = huge.read_to_end(&mut answer);
    let head = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || head.starts_with("HTTP/1.1 431"),
        "{head}"
    );
    // A flood beyond the connection limit: CSI keeps answering.
    let flood: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    let mut c = connect(daemon.socket()).await.expect("csi connect");
    let t = Instant::now();
    c.identity
        .get_plugin_info(GetPluginInfoRequest {})
        .await
        .expect("plugin info");
    assert!(t.elapsed() < Duration::from_secs(1));
    drop((slow, flood));
    // Stalled heads time out (5 s); the endpoint serves again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ok = std::panic::catch_unwind(|| get(addr, "/healthz", "*/*").0 == 200);
        if ok.unwrap_or(false) {
            break;
        }
        assert!(Instant::now() < deadline, "status endpoint did not recover");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Kills the child it holds on drop (a process this test started).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn victoria_metrics_scrapes_hearth_series() {
    if !root_or_skip("victoria_metrics") || !tool_or_skip("victoria_metrics", "victoria-metrics") {
        return;
    }
    let sb = Sandbox::new();
    let (_daemon, addr) = start(&sb, &[]);
    let vm_addr = free_addr();
    let config = sb.path().join("scrape.yml");
    std::fs::write(
        &config,
        format!(
            "scrape_configs:\n  - job_name: hearth\n    scrape_interval: 1s\n    \
             static_configs:\n      - targets: ['{addr}']\n"
        ),
    )
    .expect("config");
    let _vm = Killed(
        Command::new("victoria-metrics")
            .arg(format!(
                "-storageDataPath={}",
                sb.path().join("vm").display()
            ))
            .arg(format!("-httpListenAddr={vm_addr}"))
            .arg(format!("-promscrape.config={}", config.display()))
            .arg("-search.latencyOffset=0s")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(sb.path().join("vm.log")).expect("log"))
            .spawn()
            .expect("victoria-metrics"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = TcpStream::connect(vm_addr)
            .ok()
            .map(|_| get(vm_addr, "/api/v1/query?query=hearth_info", "*/*"));
        if let Some((200, body)) = &answer {
            let v: serde_json::Value = serde_json::from_str(body).expect("vm json");
            if let Some(r) = v["data"]["result"].as_array().filter(|r| !r.is_empty()) {
                assert_eq!(r[0]["metric"]["node"], "test-node");
                break;
            }
        }
        let log = std::fs::read_to_string(sb.path().join("vm.log")).unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "no hearth_ series in VictoriaMetrics: {answer:?}\n{log}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
