//! The Kubernetes CSI conformance suite (csi-sanity, unmodified) against
//! `hearth dev --backend linstor` and the LINSTOR **simulator** (not LINSTOR), with real loop
//! devices standing in for `/dev/drbdN`: filesystem volumes (xfs, which grows online without
//! CAP_SYS_RESOURCE) and raw block volumes. Every spec must pass.
//!
//! Needs root (loop devices, mounts) and csi-sanity (`tests/run` installs it); without them it
//! skips, and under `CI=true` that fails. The harness is `hearth_tests::csi_sanity`.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::sync::Mutex;

use hearth_tests::csi_sanity::{self, AccessType, Run};
use hearth_tests::linstor_sim::{DeviceMode, SimConfig, Simulator};
use hearth_tests::{root_or_skip, tool_or_skip, Daemon, Sandbox};

/// One run at a time: each formats and mounts dozens of volumes.
static SERIAL: Mutex<()> = Mutex::new(());

const MIB: u64 = 1 << 20;

fn run_linstor(test: &str, access: AccessType) {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !root_or_skip(test) || !tool_or_skip(test, "mkfs.xfs") {
        return;
    }
    let Some(bin) = csi_sanity::binary(test) else {
        return;
    };
    let sim = Simulator::start(SimConfig {
        devices: DeviceMode::Loop,
        pool_size_kib: 16 << 20,
        ..SimConfig::default()
    })
    .expect("start the LINSTOR simulator");
    let url = sim.url();
    let sandbox = Sandbox::new();
    let daemon = Daemon::start_as(
        &sandbox,
        "node-a",
        &["--backend", "linstor", "--linstor-url", &url],
    );
    let kubelet = sandbox.kubelet_dir();
    let outcome = Run {
        socket: daemon.socket(),
        kubelet_dir: &kubelet,
        access,
        parameters: match access {
            AccessType::Mount => vec![
                ("csi.storage.k8s.io/fstype", "xfs"),
                ("linstor.csi.linbit.com/storagePool", "data"),
            ],
            AccessType::Block => vec![("linstor.csi.linbit.com/storagePool", "data")],
        },
        // xfs needs 300 MiB at least.
        volume_size: 320 * MIB,
        skip: Vec::new(),
        work_dir: sandbox.path(),
    }
    .run(&bin);
    eprintln!("{test}: {}", outcome.summary());
    if !outcome.failed.is_empty() {
        let log = std::fs::read_to_string(sandbox.path().join("hearth.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        panic!(
            "{test}: csi-sanity found failures:\n{}\n--- hearth.log (last lines) ---\n{}",
            outcome.summary(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    assert!(
        outcome.passed > 50,
        "{test}: too few specs ran: {}",
        outcome.summary()
    );
    drop(daemon);
    let leaks = sim.stop();
    assert!(
        leaks.is_empty(),
        "{test}: the simulator could not clean up: {leaks:?}"
    );
}

#[test]
fn csi_sanity_linstor_mount_xfs() {
    run_linstor("csi_sanity_linstor_mount_xfs", AccessType::Mount);
}

#[test]
fn csi_sanity_linstor_block() {
    run_linstor("csi_sanity_linstor_block", AccessType::Block);
}
