//! LINBIT's official Python client, python-linstor (PyPI), drives the `linstor-sim` binary: the
//! version handshake, node and storage-pool lists, resource-definition and volume-definition
//! create, autoplace, a snapshot, and the resource list. Then Hearth's client reads what
//! python-linstor made, and SIGTERM stops the simulator cleanly.
//!
//! python-linstor lives in a venv at `target/python-linstor-venv` (or
//! `$HEARTH_PYTHON_LINSTOR_VENV`), created with `pip install python-linstor` when missing
//! (`tests/run` does that up front). Without python3 or PyPI the test skips; under `CI=true`
//! that is a failure.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::path::Path;
use std::process::Command;

use hearth_csi::linstor::client::{ClientConfig, LinstorClient, ViewFilter};
use hearth_tests::linstor_sim::SimProcess;
use hearth_tests::python::Venv;

const SCRIPT: &str = r#"
import json, sys
import linstor

url = sys.argv[1]
out = {}
with linstor.Linstor(url) as lin:
    out["rest_api_version"] = lin.controller_version().rest_api_version
    out["nodes"] = sorted(n.name for n in lin.node_list_raise().nodes)
    pools = lin.storage_pool_list_raise().storage_pools
    out["pools"] = sorted("%s/%s" % (p.node_name, p.name) for p in pools)

    def ok(what, replies):
        if not linstor.Linstor.all_api_responses_no_error(replies):
            raise SystemExit("%s failed: %s" % (what, replies))
        return [r.ret_code for r in replies]

    out["rd_create"] = ok("rd create", lin.resource_dfn_create("py-vol"))
    out["vd_create"] = ok("vd create", lin.volume_dfn_create("py-vol", 65536))
    out["autoplace"] = ok("autoplace", lin.resource_auto_place("py-vol", 2))
    out["snapshot"] = ok("snapshot", lin.snapshot_create(None, "py-vol", "py-snap"))
    again = lin.resource_dfn_create("py-vol")
    out["rd_again_error"] = not linstor.Linstor.all_api_responses_no_error(again)
    rscs = lin.resource_list_raise(filter_by_resources=["py-vol"]).resources
    out["resources"] = sorted(r.node_name for r in rscs)
    snaps = lin.snapshot_dfn_list_raise(filter_by_resources=["py-vol"]).snapshots
    out["snapshots"] = sorted(s.snapshot_name for s in snaps)
print(json.dumps(out))
"#;

const VENV: Venv<'static> = Venv {
    what: "python-linstor test",
    env: "HEARTH_PYTHON_LINSTOR_VENV",
    default_dir: "python-linstor-venv",
    packages: &["python-linstor"],
    import: "import linstor",
};

/// `linstor-sim` on a free port, stopped when the guard drops (also when the test panics).
fn start_sim() -> SimProcess {
    let sim = SimProcess::spawn(
        Path::new(env!("CARGO_BIN_EXE_linstor-sim")),
        &[
            "--listen",
            "127.0.0.1:0",
            "--devices",
            "none",
            "--nodes",
            "alpha,beta,gamma",
        ],
    )
    .expect("spawn linstor-sim");
    assert!(
        sim.url().starts_with("http://127.0.0.1:"),
        "unexpected URL {:?}",
        sim.url()
    );
    sim
}

#[tokio::test]
async fn python_linstor_drives_the_simulator() {
    let Some(python) = VENV.python() else { return };
    let sim = start_sim();
    let url = sim.url().to_owned();
    let linstor_url = url.replacen("http://", "linstor://", 1);
    let out = Command::new(&python)
        .arg("-c")
        .arg(SCRIPT)
        .arg(&linstor_url)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python-linstor failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_str(stdout.trim()).expect("the script's JSON");
    assert_eq!(got["rest_api_version"], "1.28.0");
    assert_eq!(got["nodes"], serde_json::json!(["alpha", "beta", "gamma"]));
    assert_eq!(got["pools"].as_array().map(Vec::len), Some(6), "{got}");
    // Two replicas placed, and on the third node the quorum tiebreaker LINSTOR adds on its own
    // (CtrlRscAutoTieBreakerHelper), as the simulator now does.
    assert_eq!(got["resources"].as_array().map(Vec::len), Some(3), "{got}");
    assert_eq!(got["snapshots"], serde_json::json!(["py-snap"]));
    assert_eq!(got["rd_again_error"], true);
    assert_eq!(
        got["rd_create"],
        serde_json::json!([0x0138_0001]),
        "MASK_CRT | MASK_RSC_DFN | CREATED"
    );

    // Hearth's client sees what python-linstor made.
    let c = LinstorClient::connect(&ClientConfig::new(&url))
        .await
        .unwrap();
    let view = c
        .resource_view(&ViewFilter {
            resources: vec!["py-vol".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(view.len(), 3, "two replicas and the tiebreaker");
    assert!(view.iter().all(|r| r.volumes[0]
        .device_path
        .as_deref()
        .is_some_and(|p| p.starts_with("/dev/drbd10"))));
    assert_eq!(
        c.get_volume_definition("py-vol", 0).await.unwrap().size_kib,
        65536
    );

    let status = sim.terminate().unwrap();
    assert!(status.success(), "linstor-sim exit: {status}");
}

/// A test that panics must not leave its `linstor-sim` child running: the child holds the
/// test's output pipe, and `cargo test | tee` would never end.
#[test]
fn a_panicking_test_stops_its_simulator() {
    let (tx, rx) = std::sync::mpsc::channel();
    let failed = std::thread::spawn(move || {
        let sim = start_sim();
        tx.send(sim.pid().expect("running")).expect("send the pid");
        panic!("a failing LINSTOR test");
    })
    .join();
    assert!(failed.is_err(), "the thread panicked");
    let pid = rx.recv().expect("the pid");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid"));
    // Reaped by the guard: no process (not even a zombie) answers to the PID.
    assert_eq!(
        nix::sys::signal::kill(pid, None),
        Err(nix::errno::Errno::ESRCH),
        "linstor-sim survived the panic"
    );
}
