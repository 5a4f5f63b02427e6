//! The kubelet call sequence against a real `hearth dev`: real loop devices, real mkfs, real
//! mounts, with a restart of the daemon between stage and publish.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use hearth_proto::csi::v1::{volume_usage, NodeGetVolumeStatsRequest};
use hearth_tests::requests::*;
use hearth_tests::{connect, is_mounted, root_or_skip, tool_or_skip, Daemon, Mode, Sandbox};

async fn filesystem_lifecycle(fs: &str, bytes: i64) {
    let sb = Sandbox::new();
    let daemon = Daemon::start(&sb, &[]);
    let mut c = connect(daemon.socket()).await.unwrap();
    let cap = mount_cap(fs, Mode::SingleNodeWriter);
    let vol = c
        .controller
        .create_volume(create("pvc-fs", bytes, cap.clone()))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert_eq!(vol.capacity_bytes, bytes);
    let id = vol.volume_id;
    let (staging, target) = (sb.staging("pvc-fs"), sb.target("pod-a", "pvc-fs"));

    c.node
        .node_stage_volume(stage(&id, &staging, cap.clone()))
        .await
        .unwrap();
    c.node
        .node_stage_volume(stage(&id, &staging, cap.clone()))
        .await
        .expect("stage is idempotent");
    assert!(is_mounted(&staging));

    // Restart between stage and publish: SIGTERM leaves the mount in place.
    assert!(daemon.terminate().success());
    assert!(is_mounted(&staging), "SIGTERM must leave mounts in place");
    let daemon = Daemon::start(&sb, &[]);
    let mut c = connect(daemon.socket()).await.unwrap();

    c.node
        .node_publish_volume(publish(&id, &staging, &target, cap.clone(), false))
        .await
        .unwrap();
    c.node
        .node_publish_volume(publish(&id, &staging, &target, cap.clone(), false))
        .await
        .expect("publish is idempotent");
    let mut f = std::fs::File::create(Path::new(&target).join("data")).unwrap();
    f.write_all(b"hearth keeps this").unwrap();
    f.sync_all().unwrap();
    drop(f);
    assert_eq!(
        std::fs::read(Path::new(&staging).join("data")).unwrap(),
        b"hearth keeps this"
    );

    let stats = c
        .node
        .node_get_volume_stats(NodeGetVolumeStatsRequest {
            volume_id: id.clone(),
            volume_path: target.clone(),
            staging_target_path: staging.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let by_unit = |u: volume_usage::Unit| {
        stats
            .usage
            .iter()
            .find(|x| x.unit == u as i32)
            .cloned()
            .unwrap()
    };
    let b = by_unit(volume_usage::Unit::Bytes);
    assert!(
        b.total > bytes / 2 && b.total <= bytes,
        "total {} for a {bytes}-byte volume",
        b.total
    );
    assert!(b.used > 0 && b.available > 0);
    assert!(by_unit(volume_usage::Unit::Inodes).total > 0);
    assert!(!stats.volume_condition.unwrap().abnormal);

    c.node
        .node_unpublish_volume(unpublish(&id, &target))
        .await
        .unwrap();
    assert!(!Path::new(&target).exists(), "unpublish removes the target");
    c.node
        .node_unpublish_volume(unpublish(&id, &target))
        .await
        .expect("unpublish is idempotent");
    c.node
        .node_unstage_volume(unstage(&id, &staging))
        .await
        .unwrap();
    assert!(!is_mounted(&staging));
    assert!(
        sb.loop_devices().is_empty(),
        "unstage detaches the loop device"
    );
    c.node
        .node_unstage_volume(unstage(&id, &staging))
        .await
        .expect("unstage is idempotent");

    // Stage again: the data is still there (probe first, never reformat).
    c.node
        .node_stage_volume(stage(&id, &staging, cap.clone()))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(Path::new(&staging).join("data")).unwrap(),
        b"hearth keeps this"
    );
    c.node
        .node_unstage_volume(unstage(&id, &staging))
        .await
        .unwrap();

    c.controller.delete_volume(delete(&id)).await.unwrap();
    c.controller
        .delete_volume(delete(&id))
        .await
        .expect("delete is idempotent");
    assert!(
        sb.images().is_empty(),
        "delete removes the image: {:?}",
        sb.images()
    );
    assert!(sb.mounts().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ext4_lifecycle_with_restart_between_stage_and_publish() {
    if root_or_skip("ext4_lifecycle") {
        filesystem_lifecycle("ext4", 64 << 20).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xfs_lifecycle_with_restart_between_stage_and_publish() {
    // mkfs.xfs refuses filesystems under 300 MiB; the image is sparse.
    if root_or_skip("xfs_lifecycle") && tool_or_skip("xfs_lifecycle", "mkfs.xfs") {
        filesystem_lifecycle("xfs", 320 << 20).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_lifecycle_with_restart_between_stage_and_publish() {
    if !root_or_skip("block_lifecycle") {
        return;
    }
    let sb = Sandbox::new();
    let daemon = Daemon::start(&sb, &[]);
    let mut c = connect(daemon.socket()).await.unwrap();
    let cap = block_cap(Mode::SingleNodeWriter);
    let bytes = 16 << 20;
    let id = c
        .controller
        .create_volume(create("pvc-block", bytes, cap.clone()))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap()
        .volume_id;
    let (staging, target) = (
        sb.staging("pvc-block"),
        sb.block_target("pod-a", "pvc-block"),
    );

    c.node
        .node_stage_volume(stage(&id, &staging, cap.clone()))
        .await
        .unwrap();
    assert_eq!(sb.loop_devices().len(), 1);
    drop(c);
    daemon.kill();
    let daemon = Daemon::start(&sb, &[]);
    let mut c = connect(daemon.socket()).await.unwrap();
    assert_eq!(sb.loop_devices().len(), 1, "a restart keeps the attachment");

    c.node
        .node_publish_volume(publish(&id, &staging, &target, cap.clone(), false))
        .await
        .unwrap();
    c.node
        .node_publish_volume(publish(&id, &staging, &target, cap.clone(), false))
        .await
        .expect("publish is idempotent");
    let meta = std::fs::metadata(&target).unwrap();
    assert!(
        meta.file_type().is_block_device(),
        "the target is the device node"
    );
    let mut dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&target)
        .unwrap();
    dev.seek(SeekFrom::Start(1 << 20)).unwrap();
    dev.write_all(&[0xA5; 4096]).unwrap();
    dev.sync_all().unwrap();
    let mut back = [0u8; 4096];
    dev.seek(SeekFrom::Start(1 << 20)).unwrap();
    dev.read_exact(&mut back).unwrap();
    assert_eq!(back, [0xA5; 4096]);
    drop(dev);

    let stats = c
        .node
        .node_get_volume_stats(NodeGetVolumeStatsRequest {
            volume_id: id.clone(),
            volume_path: target.clone(),
            staging_target_path: staging.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.usage[0].total, bytes);

    c.node
        .node_unpublish_volume(unpublish(&id, &target))
        .await
        .unwrap();
    assert!(!Path::new(&target).exists());
    c.node
        .node_unstage_volume(unstage(&id, &staging))
        .await
        .unwrap();
    assert!(sb.loop_devices().is_empty());
    c.controller.delete_volume(delete(&id)).await.unwrap();
    assert!(sb.images().is_empty());
}
