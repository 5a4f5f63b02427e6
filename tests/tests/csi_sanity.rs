//! The Kubernetes CSI conformance suite (csi-sanity, unmodified) against `hearth dev` with the
//! loopfile backend: filesystem volumes (ext4, then xfs) and raw block volumes. Every spec must
//! pass, except the ones this machine cannot run, which are skipped by name with the reason.
//!
//! Needs root (loop devices, mounts) and csi-sanity (`tests/run` installs it into
//! `target/go-bin`); without them it skips, and under `CI=true` that fails.
//! The LINSTOR backend runs the same harness ([`hearth_tests::csi_sanity::Run`]) against
//! `hearth dev --backend linstor` and the simulator.

use std::sync::Mutex;

use hearth_tests::csi_sanity::{self, AccessType, Run};
use hearth_tests::{root_or_skip, tool_or_skip, Daemon, Sandbox};

/// One run at a time: each formats and mounts dozens of volumes.
static SERIAL: Mutex<()> = Mutex::new(());

const MIB: u64 = 1 << 20;

/// The spec that grows a mounted filesystem on the node.
const NODE_EXPAND: &str =
    "NodeExpandVolume should work if node-expand is called after node-publish";

fn run_loopfile(test: &str, access: AccessType, fs: &str) {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !root_or_skip(test) || !tool_or_skip(test, &format!("mkfs.{fs}")) {
        return;
    }
    let Some(bin) = csi_sanity::binary(test) else {
        return;
    };
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(&sandbox, &[]);
    let mut skip = Vec::new();
    if access == AccessType::Mount && fs == "ext4" && !csi_sanity::has_cap_sys_resource() {
        skip.push((
            NODE_EXPAND,
            "growing a mounted ext4 needs CAP_SYS_RESOURCE, which this process lacks \
             (the xfs run covers the spec)"
                .to_owned(),
        ));
    }
    let kubelet = sandbox.kubelet_dir();
    let outcome = Run {
        socket: daemon.socket(),
        kubelet_dir: &kubelet,
        access,
        parameters: match access {
            AccessType::Mount => vec![("csi.storage.k8s.io/fstype", fs)],
            AccessType::Block => Vec::new(),
        },
        // xfs needs 300 MiB at least.
        volume_size: 320 * MIB,
        skip,
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
}

#[test]
fn csi_sanity_loopfile_mount_ext4() {
    run_loopfile("csi_sanity_loopfile_mount_ext4", AccessType::Mount, "ext4");
}

#[test]
fn csi_sanity_loopfile_mount_xfs() {
    run_loopfile("csi_sanity_loopfile_mount_xfs", AccessType::Mount, "xfs");
}

#[test]
fn csi_sanity_loopfile_block() {
    run_loopfile("csi_sanity_loopfile_block", AccessType::Block, "ext4");
}
