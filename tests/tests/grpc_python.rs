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
use std::process::Command;

use hearth_tests::python::Venv;
use hearth_tests::{root_or_skip, Daemon, Sandbox};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

const VENV: Venv<'static> = Venv {
    what: "grpcio test",
    env: "HEARTH_PYTHON_GRPC_VENV",
    default_dir: "python-grpc-venv",
    packages: &["grpcio", "grpcio-tools"],
    import: "import grpc, grpc_tools.protoc",
};

#[test]
fn python_grpcio_calls_identity_controller_and_node_on_the_unix_socket() {
    if !root_or_skip("python_grpcio") {
        return;
    }
    let Some(python) = VENV.python() else { return };
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
