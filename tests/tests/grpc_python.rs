//! The official Python gRPC client (grpcio, PyPI: the C-core stack that C++, Ruby and PHP
//! share) calls Identity, Controller and Node on the unix socket of a real `hearth dev`, with
//! the default channel options. C-core (and grpc-java) send the socket's path as the HTTP/2
//! `:authority`, which h2 refuses by itself; `agent/src/authority` makes Hearth's sockets take
//! it (docs/design/grpc-authority.md). `tests/python/csi_grpcio.py` is the client.
//!
//! grpcio and grpcio-tools live in a venv at `target/python-grpc-venv` (or
//! `$HEARTH_PYTHON_GRPC_VENV`), created with pip when missing (`tests/run` does that up
//! front). Without python3 or PyPI the test skips; under `CI=true` that is a failure.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hearth_tests::{root_or_skip, Daemon, Sandbox};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn venv_dir() -> PathBuf {
    std::env::var_os("HEARTH_PYTHON_GRPC_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/python-grpc-venv"))
}

/// Skips (or, under CI=true, fails) with a reason.
fn skip(reason: &str) -> Option<PathBuf> {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "grpcio test: {reason}, and CI=true forbids skipping"
    );
    eprintln!("skipping the grpcio test: {reason}");
    None
}

fn has_grpcio(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import grpc, grpc_tools.protoc"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The venv's python with grpcio and grpcio-tools, installing them when missing.
fn python() -> Option<PathBuf> {
    let venv = venv_dir();
    let python = venv.join("bin/python");
    if has_grpcio(&python) {
        return Some(python);
    }
    if !python.exists() {
        let made = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status();
        if !made.is_ok_and(|s| s.success()) {
            return skip("python3 with the venv module is not available");
        }
    }
    let pip = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "grpcio", "grpcio-tools"])
        .status();
    if !pip.is_ok_and(|s| s.success()) || !has_grpcio(&python) {
        return skip("pip install grpcio grpcio-tools failed (PyPI unreachable?)");
    }
    Some(python)
}

#[test]
fn python_grpcio_calls_identity_controller_and_node_on_the_unix_socket() {
    if !root_or_skip("python_grpcio") {
        return;
    }
    let Some(python) = python() else { return };
    let sb = Sandbox::new();
    let daemon = Daemon::start(&sb, &[]);
    let scratch = sb.path().join("grpcio-stubs");
    std::fs::create_dir_all(&scratch).expect("stub dir");
    let out = Command::new(&python)
        .arg(repo().join("tests/python/csi_grpcio.py"))
        .arg(daemon.socket())
        .arg(repo().join("proto/csi/v1"))
        .arg(&scratch)
        .arg(sb.staging("pvc-grpcio"))
        .output()
        .expect("run python");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "grpcio client failed:\n{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["name"], "csi.hearth.dev", "{v}");
    assert_eq!(v["probe_ready"], true, "{v}");
    assert_eq!(v["node_id"], "test-node", "{v}");
    for caps in [
        "plugin_capabilities",
        "node_capabilities",
        "controller_capabilities",
    ] {
        assert!(v[caps].as_u64() > Some(0), "{caps}: {v}");
    }
    assert_eq!(v["capacity_bytes"], 16 << 20, "{v}");
    assert_eq!(v["listed"], serde_json::json!([true]), "{v}");
    assert_eq!(v["missing_stage"], "NOT_FOUND", "{v}");
    assert_eq!(v["deleted"], true, "{v}");
}
