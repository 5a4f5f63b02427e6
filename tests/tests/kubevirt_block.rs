//! KubeVirt-style use of a block volume: qemu-io writes a pattern through the published device,
//! the volume is unpublished and published to a second target, and the pattern reads back.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::path::Path;
use std::process::Command;

use hearth_tests::requests::*;
use hearth_tests::{connect, root_or_skip, tool_or_skip, Daemon, Mode, Sandbox};

fn qemu_io(target: &str, cmd: &str) -> std::process::Output {
    Command::new("qemu-io")
        .args(["-f", "raw", "-c", cmd, target])
        .output()
        .expect("running qemu-io")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qemu_writes_through_one_target_and_reads_through_another() {
    if !root_or_skip("kubevirt_block") || !tool_or_skip("kubevirt_block", "qemu-io") {
        return;
    }
    let sb = Sandbox::new();
    let daemon = Daemon::start(&sb, &[]);
    let mut c = connect(daemon.socket()).await.unwrap();
    let cap = block_cap(Mode::SingleNodeWriter);
    let id = c
        .controller
        .create_volume(create("vm-disk", 64 << 20, cap.clone()))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap()
        .volume_id;
    let k = sb.kubelet_dir();
    let staging = k.join("plugins/kubernetes.io/csi/volumeDevices/staging/vm-disk");
    std::fs::create_dir_all(&staging).unwrap();
    let staging = staging.display().to_string();
    let first = k.join("pods/virt-launcher-a/volumeDevices/kubernetes.io~csi/vm-disk");
    let second = k.join("pods/virt-launcher-b/volumeDevices/kubernetes.io~csi/vm-disk");
    let (first, second) = (first.display().to_string(), second.display().to_string());

    c.node
        .node_stage_volume(stage(&id, &staging, cap.clone()))
        .await
        .unwrap();
    c.node
        .node_publish_volume(publish(&id, &staging, &first, cap.clone(), false))
        .await
        .unwrap();
    let w = qemu_io(&first, "write -P 0x5a 1M 4M");
    assert!(
        w.status.success(),
        "qemu-io write: {}",
        String::from_utf8_lossy(&w.stderr)
    );
    let f = qemu_io(&first, "flush");
    assert!(f.status.success());
    c.node
        .node_unpublish_volume(unpublish(&id, &first))
        .await
        .unwrap();
    assert!(!Path::new(&first).exists());

    c.node
        .node_publish_volume(publish(&id, &staging, &second, cap.clone(), false))
        .await
        .unwrap();
    let r = qemu_io(&second, "read -P 0x5a 1M 4M");
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(
        r.status.success() && !out.contains("Pattern verification failed"),
        "qemu-io read: {out}"
    );
    let z = qemu_io(&second, "read -P 0x00 8M 1M");
    assert!(
        !String::from_utf8_lossy(&z.stdout).contains("Pattern verification failed"),
        "untouched range reads zero"
    );

    c.node
        .node_unpublish_volume(unpublish(&id, &second))
        .await
        .unwrap();
    c.node
        .node_unstage_volume(unstage(&id, &staging))
        .await
        .unwrap();
    c.controller.delete_volume(delete(&id)).await.unwrap();
    assert!(sb.loop_devices().is_empty() && sb.images().is_empty() && sb.mounts().is_empty());
}
