//! Bad input: every RPC with missing fields, unknown IDs, paths outside the kubelet directory
//! and absurd sizes. Each gets the code the CSI spec gives, and nothing on the host changes:
//! no mount, no loop device, no file appears outside what the test itself made.
//! Also: a device that holds data is never formatted.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::collections::BTreeSet;
use std::path::Path;

use hearth_proto::csi::v1::volume_content_source::{SnapshotSource, Type as Src, VolumeSource};
use hearth_proto::csi::v1::*;
use hearth_tests::requests::*;
use hearth_tests::{connect, root_or_skip, Daemon, Mode, Sandbox};
use tonic::Code;

/// Every mount point and loop backing file on the host, except those of other tests' sandboxes
/// (tests in this file run concurrently).
fn host_state(own: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let own = own.display().to_string();
    let keep = |s: &String| !s.contains("/hearth-test-") || s.starts_with(&own);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .filter(keep)
        .collect();
    let loops = std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("loop/backing_file")).ok())
        .filter(keep)
        .collect();
    (mounts, loops)
}

macro_rules! expect_code {
    ($code:expr, $call:expr, $what:expr) => {
        match $call.await {
            Ok(_) => panic!("{}: expected {:?}, got OK", $what, $code),
            Err(status) => assert_eq!(status.code(), $code, "{}: {}", $what, status.message()),
        }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_rejects_bad_input_and_changes_nothing() {
    if !root_or_skip("bad_input") {
        return;
    }
    let sb = Sandbox::new();
    let outside = tempfile::tempdir().unwrap();
    let out = outside.path().display().to_string();
    let daemon = Daemon::start(&sb, &[]);
    let mut c = connect(daemon.socket()).await.unwrap();
    let fs_cap = mount_cap("ext4", Mode::SingleNodeWriter);
    let blk = block_cap(Mode::SingleNodeWriter);
    let unknown = "vol-0123456789abcdef0123456789abcdef";
    let k = sb.kubelet_dir();
    let staging = k.join("plugins/x/globalmount");
    std::fs::create_dir_all(&staging).unwrap();
    let staging = staging.display().to_string();
    let target = k.join("pods/p/volumes/v/mount").display().to_string();
    std::os::unix::fs::symlink(outside.path(), k.join("escape")).unwrap();
    let escape = k.join("escape/mount").display().to_string();
    let dotdot = format!("{}/../../../{}", k.display(), out.trim_start_matches('/'));

    // One real volume for the conflict cases.
    let real = c
        .controller
        .create_volume(create("real", 16 << 20, blk.clone()))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap()
        .volume_id;
    let before = host_state(sb.path());
    let images_before = sb.images();

    // CreateVolume.
    let cc = &mut c.controller;
    expect_code!(
        Code::InvalidArgument,
        cc.create_volume(create("", 1 << 20, blk.clone())),
        "create without name"
    );
    let mut no_caps = create("n", 1 << 20, blk.clone());
    no_caps.volume_capabilities.clear();
    expect_code!(
        Code::InvalidArgument,
        cc.create_volume(no_caps),
        "create without capabilities"
    );
    let mut no_type = create("n", 1 << 20, blk.clone());
    no_type.volume_capabilities[0].access_type = None;
    expect_code!(
        Code::InvalidArgument,
        cc.create_volume(no_type),
        "capability without access type"
    );
    expect_code!(
        Code::InvalidArgument,
        cc.create_volume(create(
            "n",
            1 << 20,
            mount_cap("vfat", Mode::SingleNodeWriter)
        )),
        "unknown fs_type"
    );
    let mut bind_flag = mount_cap("ext4", Mode::SingleNodeWriter);
    if let Some(volume_capability::AccessType::Mount(m)) = bind_flag.access_type.as_mut() {
        m.mount_flags = vec!["bind".into()];
    }
    expect_code!(
        Code::InvalidArgument,
        cc.create_volume(create("n", 1 << 20, bind_flag)),
        "bind mount flag"
    );
    expect_code!(
        Code::InvalidArgument,
        cc.create_volume(create("n", 1 << 20, block_cap(Mode::MultiNodeMultiWriter))),
        "multi-node writer"
    );
    expect_code!(
        Code::InvalidArgument,
        cc.create_volume(create("n", -5, blk.clone())),
        "negative size"
    );
    let mut inverted = create("n", 10 << 20, blk.clone());
    inverted.capacity_range = Some(CapacityRange {
        required_bytes: 10 << 20,
        limit_bytes: 1 << 20,
    });
    expect_code!(
        Code::InvalidArgument,
        cc.create_volume(inverted),
        "limit below required"
    );
    expect_code!(
        Code::OutOfRange,
        cc.create_volume(create("n", i64::MAX, blk.clone())),
        "absurd size"
    );
    expect_code!(
        Code::ResourceExhausted,
        cc.create_volume(create("n", 7 << 40, blk.clone())),
        "more than the free space"
    );
    let mut params = create("n", 1 << 20, blk.clone());
    params.parameters.insert("replicas".into(), "3".into());
    expect_code!(
        Code::InvalidArgument,
        cc.create_volume(params),
        "unknown parameter"
    );
    let mut from_snap = create("n", 1 << 20, blk.clone());
    from_snap.volume_content_source = Some(VolumeContentSource {
        r#type: Some(Src::Snapshot(SnapshotSource {
            snapshot_id: "snap-nope".into(),
        })),
    });
    expect_code!(
        Code::NotFound,
        cc.create_volume(from_snap),
        "unknown source snapshot"
    );
    let mut from_vol = create("n", 1 << 20, blk.clone());
    from_vol.volume_content_source = Some(VolumeContentSource {
        r#type: Some(Src::Volume(VolumeSource {
            volume_id: unknown.into(),
        })),
    });
    expect_code!(
        Code::NotFound,
        cc.create_volume(from_vol),
        "unknown source volume"
    );
    expect_code!(
        Code::AlreadyExists,
        cc.create_volume(create("real", 32 << 20, blk.clone())),
        "same name, other size"
    );
    let mut topo = create("n", 1 << 20, blk.clone());
    topo.accessibility_requirements = Some(TopologyRequirement {
        requisite: vec![Topology {
            segments: [(
                "topology.hearth.dev/node".to_string(),
                "elsewhere".to_string(),
            )]
            .into(),
        }],
        preferred: vec![],
    });
    expect_code!(
        Code::ResourceExhausted,
        cc.create_volume(topo),
        "unreachable requisite topology"
    );

    // Other controller calls.
    expect_code!(
        Code::InvalidArgument,
        cc.delete_volume(delete("")),
        "delete without id"
    );
    cc.delete_volume(delete(unknown))
        .await
        .expect("deleting an unknown volume is OK");
    cc.delete_volume(delete("../../etc/passwd"))
        .await
        .expect("an ID of another shape is simply unknown");
    expect_code!(
        Code::InvalidArgument,
        cc.validate_volume_capabilities(ValidateVolumeCapabilitiesRequest {
            volume_capabilities: vec![blk.clone()],
            ..Default::default()
        }),
        "validate without id"
    );
    expect_code!(
        Code::NotFound,
        cc.validate_volume_capabilities(ValidateVolumeCapabilitiesRequest {
            volume_id: unknown.into(),
            volume_capabilities: vec![blk.clone()],
            ..Default::default()
        }),
        "validate unknown"
    );
    expect_code!(
        Code::InvalidArgument,
        cc.validate_volume_capabilities(ValidateVolumeCapabilitiesRequest {
            volume_id: real.clone(),
            ..Default::default()
        }),
        "validate without capabilities"
    );
    expect_code!(
        Code::Aborted,
        cc.list_volumes(ListVolumesRequest {
            max_entries: 1,
            starting_token: "bogus".into()
        }),
        "foreign token"
    );
    expect_code!(
        Code::InvalidArgument,
        cc.list_volumes(ListVolumesRequest {
            max_entries: -1,
            starting_token: String::new()
        }),
        "negative max_entries"
    );
    let expand = |id: &str, bytes: i64| ControllerExpandVolumeRequest {
        volume_id: id.into(),
        capacity_range: Some(CapacityRange {
            required_bytes: bytes,
            limit_bytes: 0,
        }),
        ..Default::default()
    };
    expect_code!(
        Code::InvalidArgument,
        cc.controller_expand_volume(expand("", 1 << 30)),
        "expand without id"
    );
    expect_code!(
        Code::InvalidArgument,
        cc.controller_expand_volume(ControllerExpandVolumeRequest {
            volume_id: real.clone(),
            ..Default::default()
        }),
        "expand without range"
    );
    expect_code!(
        Code::NotFound,
        cc.controller_expand_volume(expand(unknown, 1 << 30)),
        "expand unknown"
    );
    expect_code!(
        Code::OutOfRange,
        cc.controller_expand_volume(expand(&real, i64::MAX)),
        "expand absurd"
    );
    expect_code!(
        Code::InvalidArgument,
        cc.controller_get_volume(ControllerGetVolumeRequest {
            volume_id: String::new()
        }),
        "get without id"
    );
    expect_code!(
        Code::NotFound,
        cc.controller_get_volume(ControllerGetVolumeRequest {
            volume_id: unknown.into()
        }),
        "get unknown"
    );
    expect_code!(
        Code::InvalidArgument,
        cc.create_snapshot(CreateSnapshotRequest {
            source_volume_id: real.clone(),
            ..Default::default()
        }),
        "snapshot without name"
    );
    expect_code!(
        Code::InvalidArgument,
        cc.create_snapshot(CreateSnapshotRequest {
            name: "s".into(),
            ..Default::default()
        }),
        "snapshot without source"
    );
    expect_code!(
        Code::NotFound,
        cc.create_snapshot(CreateSnapshotRequest {
            name: "s".into(),
            source_volume_id: unknown.into(),
            ..Default::default()
        }),
        "snapshot of unknown"
    );
    expect_code!(
        Code::InvalidArgument,
        cc.delete_snapshot(DeleteSnapshotRequest::default()),
        "delete snapshot without id"
    );
    cc.delete_snapshot(DeleteSnapshotRequest {
        snapshot_id: "snap-unknown".into(),
        ..Default::default()
    })
    .await
    .expect("deleting an unknown snapshot is OK");
    expect_code!(
        Code::NotFound,
        cc.get_snapshot(GetSnapshotRequest {
            snapshot_id: "snap-unknown".into(),
            ..Default::default()
        }),
        "get unknown snapshot"
    );
    expect_code!(
        Code::Unimplemented,
        cc.controller_publish_volume(ControllerPublishVolumeRequest::default()),
        "publish is not a capability"
    );

    // Node calls.
    let n = &mut c.node;
    expect_code!(
        Code::InvalidArgument,
        n.node_stage_volume(stage("", &staging, fs_cap.clone())),
        "stage without id"
    );
    expect_code!(
        Code::InvalidArgument,
        n.node_stage_volume(stage(&real, "", fs_cap.clone())),
        "stage without path"
    );
    let mut no_cap = stage(&real, &staging, fs_cap.clone());
    no_cap.volume_capability = None;
    expect_code!(
        Code::InvalidArgument,
        n.node_stage_volume(no_cap),
        "stage without capability"
    );
    for bad in [
        out.as_str(),
        escape.as_str(),
        dotdot.as_str(),
        "relative/path",
        "/etc",
    ] {
        expect_code!(
            Code::InvalidArgument,
            n.node_stage_volume(stage(&real, bad, fs_cap.clone())),
            format!("stage at {bad}")
        );
        expect_code!(
            Code::InvalidArgument,
            n.node_publish_volume(publish(&real, &staging, bad, fs_cap.clone(), false)),
            format!("publish at {bad}")
        );
        expect_code!(
            Code::InvalidArgument,
            n.node_unpublish_volume(unpublish(&real, bad)),
            format!("unpublish at {bad}")
        );
        expect_code!(
            Code::InvalidArgument,
            n.node_unstage_volume(unstage(&real, bad)),
            format!("unstage at {bad}")
        );
        // A path where this node never puts a volume is "not there" (what kubelet and
        // csi-sanity expect), never resolved or touched.
        expect_code!(
            Code::NotFound,
            n.node_get_volume_stats(NodeGetVolumeStatsRequest {
                volume_id: real.clone(),
                volume_path: bad.into(),
                staging_target_path: String::new()
            }),
            format!("stats at {bad}")
        );
    }
    expect_code!(
        Code::NotFound,
        n.node_stage_volume(stage(unknown, &staging, fs_cap.clone())),
        "stage unknown volume"
    );
    expect_code!(
        Code::NotFound,
        n.node_stage_volume(stage("../../x", &staging, fs_cap.clone())),
        "stage an ID of another shape"
    );
    expect_code!(
        Code::InvalidArgument,
        n.node_publish_volume(publish(&real, &staging, "", fs_cap.clone(), false)),
        "publish without target"
    );
    expect_code!(
        Code::InvalidArgument,
        n.node_publish_volume(publish(&real, "", &target, fs_cap.clone(), false)),
        "publish without staging"
    );
    expect_code!(
        Code::FailedPrecondition,
        n.node_publish_volume(publish(&real, &staging, &target, fs_cap.clone(), false)),
        "publish before stage"
    );
    expect_code!(
        Code::FailedPrecondition,
        n.node_publish_volume(publish(&real, &staging, &target, blk.clone(), false)),
        "publish block before stage"
    );
    expect_code!(
        Code::InvalidArgument,
        n.node_unpublish_volume(unpublish("", &target)),
        "unpublish without id"
    );
    expect_code!(
        Code::InvalidArgument,
        n.node_unstage_volume(unstage("", &staging)),
        "unstage without id"
    );
    expect_code!(
        Code::InvalidArgument,
        n.node_get_volume_stats(NodeGetVolumeStatsRequest::default()),
        "stats without fields"
    );
    expect_code!(
        Code::NotFound,
        n.node_get_volume_stats(NodeGetVolumeStatsRequest {
            volume_id: real.clone(),
            volume_path: target.clone(),
            staging_target_path: String::new()
        }),
        "stats of a missing path"
    );
    expect_code!(
        Code::InvalidArgument,
        n.node_expand_volume(NodeExpandVolumeRequest::default()),
        "node expand without fields"
    );
    expect_code!(
        Code::NotFound,
        n.node_expand_volume(NodeExpandVolumeRequest {
            volume_id: unknown.into(),
            volume_path: staging.clone(),
            ..Default::default()
        }),
        "node expand unknown"
    );

    assert_eq!(
        host_state(sb.path()),
        before,
        "bad input changed mounts or loop devices"
    );
    assert_eq!(sb.images(), images_before, "bad input changed images");
    assert!(
        std::fs::read_dir(outside.path()).unwrap().next().is_none(),
        "nothing appears outside the kubelet dir"
    );
    assert!(!Path::new(&target).exists());
    c.controller.delete_volume(delete(&real)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_with_data_is_never_formatted() {
    if !root_or_skip("never_reformat") {
        return;
    }
    let sb = Sandbox::new();
    let daemon = Daemon::start(&sb, &[]);
    let mut c = connect(daemon.socket()).await.unwrap();
    let k = sb.kubelet_dir();
    let staging = k.join("plugins/x/globalmount");
    std::fs::create_dir_all(&staging).unwrap();
    let staging = staging.display().to_string();

    // Raw data without any signature, as a VM would leave on a block volume.
    let raw = c
        .controller
        .create_volume(create("raw", 16 << 20, block_cap(Mode::SingleNodeWriter)))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap()
        .volume_id;
    let image = sb.state_dir().join(format!("volumes/{raw}.img"));
    let pattern: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8 + 1).collect();
    std::fs::write(&image, &pattern).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    expect_code!(
        Code::FailedPrecondition,
        c.node.node_stage_volume(stage(
            &raw,
            &staging,
            mount_cap("ext4", Mode::SingleNodeWriter)
        )),
        "stage over raw data"
    );
    assert_eq!(
        &std::fs::read(&image).unwrap()[..8192],
        &pattern[..],
        "the data is untouched"
    );

    // An ext4 volume staged as xfs.
    let ext = c
        .controller
        .create_volume(create(
            "ext",
            64 << 20,
            mount_cap("ext4", Mode::SingleNodeWriter),
        ))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap()
        .volume_id;
    c.node
        .node_stage_volume(stage(
            &ext,
            &staging,
            mount_cap("ext4", Mode::SingleNodeWriter),
        ))
        .await
        .unwrap();
    std::fs::write(Path::new(&staging).join("f"), b"ext4 data").unwrap();
    c.node
        .node_unstage_volume(unstage(&ext, &staging))
        .await
        .unwrap();
    expect_code!(
        Code::FailedPrecondition,
        c.node.node_stage_volume(stage(
            &ext,
            &staging,
            mount_cap("xfs", Mode::SingleNodeWriter)
        )),
        "stage ext4 as xfs"
    );
    c.node
        .node_stage_volume(stage(
            &ext,
            &staging,
            mount_cap("ext4", Mode::SingleNodeWriter),
        ))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(Path::new(&staging).join("f")).unwrap(),
        b"ext4 data"
    );
    c.node
        .node_unstage_volume(unstage(&ext, &staging))
        .await
        .unwrap();

    // Unstage after the failed stages detaches what they attached.
    c.node
        .node_unstage_volume(unstage(&raw, &staging))
        .await
        .unwrap();
    assert!(sb.loop_devices().is_empty(), "{:?}", sb.loop_devices());
    for id in [raw, ext] {
        c.controller.delete_volume(delete(&id)).await.unwrap();
    }
}
