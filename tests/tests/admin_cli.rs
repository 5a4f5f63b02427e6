//! The coordinator's command line as an admin meets it (issue 17, point 9): a bad flag is
//! refused before the store is taken (no database file, no `leading` line) with exit code 2
//! like the node's; logs written to a file carry no colour codes; one start logs each line
//! once even when stdout and stderr go to the same file (a journal does that).
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hearth_tests::hearth_bin;

fn coordinator(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let sock = format!("unix://{}", dir.join("csi.sock").display());
    Command::new(hearth_bin())
        .args(["coordinator", "--csi-endpoint", &sock, "--state-dir"])
        .arg(dir)
        .args(extra)
        .env("RUST_LOG", "info")
        .output()
        .expect("running hearth coordinator")
}

#[test]
fn a_bad_coordinator_flag_exits_2_before_the_store_is_taken() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (extra, says) in [
        (
            vec!["--listen", "0.0.0.0:0"],
            "plaintext is allowed only on a loopback address",
        ),
        (
            vec![
                "--listen",
                "127.0.0.1:0",
                "--tls-cert-file",
                "/nonexistent/c.pem",
            ],
            "--tls",
        ),
        (
            vec![
                "--listen",
                "127.0.0.1:0",
                "--tls-ca-file",
                "/nonexistent/ca.pem",
                "--tls-cert-file",
                "/nonexistent/c.pem",
                "--tls-key-file",
                "/nonexistent/c.key",
            ],
            "/nonexistent/ca.pem",
        ),
        (vec!["--lease-ms", "10"], "--lease-ms"),
        (vec!["--store", "etcd:x"], "--store"),
    ] {
        let out = coordinator(dir.path(), &extra);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(says), "{extra:?}: {err}");
        assert!(!err.contains("leading"), "{extra:?} took the store: {err}");
        assert!(
            !err.contains('\u{1b}'),
            "{extra:?}: colour codes in a pipe: {err}"
        );
        assert!(
            !dir.path().join("coordinator.db").exists(),
            "{extra:?} created the store"
        );
    }
}

#[test]
fn a_coordinator_logs_each_line_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log_path = dir.path().join("log");
    let log = std::fs::File::create(&log_path).expect("log");
    let sock = format!("unix://{}", dir.path().join("csi.sock").display());
    let mut child = Command::new(hearth_bin())
        .args(["coordinator", "--csi-endpoint", &sock, "--state-dir"])
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0", "--status-addr", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup"))
        .stderr(log)
        .spawn()
        .expect("spawning hearth coordinator");
    let start = Instant::now();
    while !dir.path().join("csi.sock").exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log_path).expect("log");
    assert!(!text.contains('\u{1b}'), "colour codes in a file:\n{text}");
    let listening = text.matches("agent API listening").count();
    assert_eq!(listening, 1, "logged once:\n{text}");
}

#[test]
fn node_get_info_reports_the_zone_of_node_labels() {
    if !hearth_tests::root_or_skip("node_get_info_reports_the_zone") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    std::fs::create_dir_all(state.join("kubelet")).expect("dirs");
    let sock = state.join("csi.sock");
    let endpoint = format!("unix://{}", sock.display());
    let log = std::fs::File::create(dir.path().join("log")).expect("log");
    let mut child = Command::new(hearth_bin())
        .args(["node", "--node-name", "node-z", "--csi-endpoint", &endpoint])
        .arg("--state-dir")
        .arg(&state)
        .arg("--kubelet-dir")
        .arg(state.join("kubelet"))
        .args([
            "--node-labels",
            "topology.kubernetes.io/zone=zone-a,topology.kubernetes.io/region=r1,tier=gold",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawning hearth node");
    let start = Instant::now();
    while !sock.exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = Command::new(hearth_bin())
        .args(["csi", "--endpoint", &endpoint, "info"])
        .output()
        .expect("hearth csi info");
    let _ = child.kill();
    let _ = child.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    let node = text
        .lines()
        .find(|l| l.starts_with("node:"))
        .unwrap_or_else(|| panic!("a node line: {text}"));
    for want in [
        "\"topology.kubernetes.io/zone\": \"zone-a\"",
        "\"topology.kubernetes.io/region\": \"r1\"",
        "\"topology.hearth.dev/node\": \"node-z\"",
    ] {
        assert!(node.contains(want), "{want} in {node}");
    }
    assert!(!node.contains("tier"), "only topology labels: {node}");
}
