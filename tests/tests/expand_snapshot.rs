//! Online expansion of a mounted filesystem (seen by statfs), and snapshot, restore and clone
//! with the data checked each time.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::path::Path;

use hearth_proto::csi::v1::volume_content_source::{SnapshotSource, Type as Src, VolumeSource};
use hearth_proto::csi::v1::*;
use hearth_tests::requests::*;
use hearth_tests::{connect, root_or_skip, tool_or_skip, Daemon, Mode, Sandbox};

fn statfs_bytes(path: &str) -> u64 {
    let st = nix::sys::statvfs::statvfs(path).unwrap();
    st.blocks() * st.fragment_size()
}

fn has_cap_sys_resource() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << 24) != 0)
}

struct Paths {
    staging: String,
    target: String,
}

fn paths(sb: &Sandbox, name: &str) -> Paths {
    Paths {
        staging: sb.staging(name),
        target: sb.target(&format!("pod-{name}"), name),
    }
}

async fn up(c: &mut hearth_tests::CsiClient, id: &str, p: &Paths, cap: &VolumeCapability) {
    c.node
        .node_stage_volume(stage(id, &p.staging, cap.clone()))
        .await
        .unwrap();
    c.node
        .node_publish_volume(publish(id, &p.staging, &p.target, cap.clone(), false))
        .await
        .unwrap();
}

async fn down(c: &mut hearth_tests::CsiClient, id: &str, p: &Paths) {
    c.node
        .node_unpublish_volume(unpublish(id, &p.target))
        .await
        .unwrap();
    c.node
        .node_unstage_volume(unstage(id, &p.staging))
        .await
        .unwrap();
}

async fn grow_online(fs: &str, from: i64, to: i64) {
    let sb = Sandbox::new();
    let daemon = Daemon::start(&sb, &[]);
    let mut c = connect(daemon.socket()).await.unwrap();
    let cap = mount_cap(fs, Mode::SingleNodeWriter);
    let id = c
        .controller
        .create_volume(create("grow", from, cap.clone()))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap()
        .volume_id;
    let p = paths(&sb, "grow");
    up(&mut c, &id, &p, &cap).await;
    std::fs::write(Path::new(&p.target).join("keep"), b"still here").unwrap();
    let before = statfs_bytes(&p.target);

    let r = c
        .controller
        .controller_expand_volume(ControllerExpandVolumeRequest {
            volume_id: id.clone(),
            capacity_range: Some(CapacityRange {
                required_bytes: to,
                limit_bytes: 0,
            }),
            volume_capability: Some(cap.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.capacity_bytes, to);
    assert!(r.node_expansion_required);
    let grown = c
        .node
        .node_expand_volume(NodeExpandVolumeRequest {
            volume_id: id.clone(),
            volume_path: p.target.clone(),
            capacity_range: Some(CapacityRange {
                required_bytes: to,
                limit_bytes: 0,
            }),
            staging_target_path: p.staging.clone(),
            volume_capability: Some(cap.clone()),
            ..Default::default()
        })
        .await;
    if fs == "ext4" && !has_cap_sys_resource() {
        // The kernel refuses ext4's online resize without CAP_SYS_RESOURCE, which this machine
        // withholds even from root. The agent must say so plainly.
        let err = grown.expect_err("ext4 online grow without CAP_SYS_RESOURCE");
        assert_eq!(
            err.code(),
            tonic::Code::FailedPrecondition,
            "{}",
            err.message()
        );
        assert!(
            err.message().contains("CAP_SYS_RESOURCE"),
            "{}",
            err.message()
        );
        eprintln!(
            "ext4 online grow: no CAP_SYS_RESOURCE on this machine; checked the error instead"
        );
        down(&mut c, &id, &p).await;
        c.controller.delete_volume(delete(&id)).await.unwrap();
        return;
    }
    let n = grown.unwrap().into_inner();
    assert_eq!(n.capacity_bytes, to);
    let after = statfs_bytes(&p.target);
    assert!(
        after > before + (to - from) as u64 / 2,
        "statfs {before} -> {after} after growing {from} -> {to}"
    );
    assert_eq!(
        std::fs::read(Path::new(&p.target).join("keep")).unwrap(),
        b"still here"
    );
    down(&mut c, &id, &p).await;
    c.controller.delete_volume(delete(&id)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ext4_grows_online_while_mounted() {
    if root_or_skip("ext4_grow") {
        grow_online("ext4", 64 << 20, 128 << 20).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xfs_grows_online_while_mounted() {
    if root_or_skip("xfs_grow") && tool_or_skip("xfs_grow", "xfs_growfs") {
        grow_online("xfs", 320 << 20, 640 << 20).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_restore_and_clone_keep_the_data() {
    if !root_or_skip("snapshot_restore_clone") {
        return;
    }
    let sb = Sandbox::new();
    let daemon = Daemon::start(&sb, &[]);
    let mut c = connect(daemon.socket()).await.unwrap();
    let cap = mount_cap("ext4", Mode::SingleNodeWriter);
    let size = 64 << 20;
    let src = c
        .controller
        .create_volume(create("src", size, cap.clone()))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap()
        .volume_id;
    let p = paths(&sb, "src");
    up(&mut c, &src, &p, &cap).await;
    std::fs::write(Path::new(&p.target).join("v1"), b"first").unwrap();
    down(&mut c, &src, &p).await;

    let snap = c
        .controller
        .create_snapshot(CreateSnapshotRequest {
            name: "snap-1".into(),
            source_volume_id: src.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .snapshot
        .unwrap();
    assert!(snap.ready_to_use);
    assert_eq!(snap.size_bytes, size);
    let again = c
        .controller
        .create_snapshot(CreateSnapshotRequest {
            name: "snap-1".into(),
            source_volume_id: src.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .snapshot
        .unwrap();
    assert_eq!(
        again.snapshot_id, snap.snapshot_id,
        "CreateSnapshot is idempotent"
    );

    // Change the source after the snapshot: the restore must show the old data.
    up(&mut c, &src, &p, &cap).await;
    std::fs::write(Path::new(&p.target).join("v1"), b"changed").unwrap();
    down(&mut c, &src, &p).await;

    let mut restore = create("restored", size, cap.clone());
    restore.volume_content_source = Some(VolumeContentSource {
        r#type: Some(Src::Snapshot(SnapshotSource {
            snapshot_id: snap.snapshot_id.clone(),
        })),
    });
    let restored = c
        .controller
        .create_volume(restore)
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert!(restored.content_source.is_some());
    let rp = paths(&sb, "restored");
    up(&mut c, &restored.volume_id, &rp, &cap).await;
    assert_eq!(
        std::fs::read(Path::new(&rp.target).join("v1")).unwrap(),
        b"first"
    );
    down(&mut c, &restored.volume_id, &rp).await;

    let mut clone = create("clone", size, cap.clone());
    clone.volume_content_source = Some(VolumeContentSource {
        r#type: Some(Src::Volume(VolumeSource {
            volume_id: src.clone(),
        })),
    });
    let cloned = c
        .controller
        .create_volume(clone)
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    let cp = paths(&sb, "clone");
    up(&mut c, &cloned.volume_id, &cp, &cap).await;
    assert_eq!(
        std::fs::read(Path::new(&cp.target).join("v1")).unwrap(),
        b"changed"
    );
    down(&mut c, &cloned.volume_id, &cp).await;

    let listed = c
        .controller
        .list_snapshots(ListSnapshotsRequest {
            source_volume_id: src.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.entries.len(), 1);
    c.controller
        .delete_snapshot(DeleteSnapshotRequest {
            snapshot_id: snap.snapshot_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    c.controller
        .delete_snapshot(DeleteSnapshotRequest {
            snapshot_id: snap.snapshot_id,
            ..Default::default()
        })
        .await
        .expect("idempotent");
    for id in [src, restored.volume_id, cloned.volume_id] {
        c.controller.delete_volume(delete(&id)).await.unwrap();
    }
    assert!(sb.images().is_empty(), "{:?}", sb.images());
    assert!(sb.loop_devices().is_empty() && sb.mounts().is_empty());
}
