//! Filesystems through `hearth dev --backend linstor` and the LINSTOR **simulator** (not
//! LINSTOR), with real mkfs, mount and loop devices standing in for `/dev/drbdN` (needs root):
//! XFS restored and cloned beside its mounted source (same UUID: mounted with `nouuid`, as
//! linstor-csi does), restores into larger volumes grown at NodeStage (ext4 unmounted, XFS
//! mounted), the StorageClass's `fsOpts`, `mountOpts` and `postMountXfsOpts`, and
//! NodeExpandVolume waiting for LINSTOR's asynchronous resize.

#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use hearth_csi::linstor::client::{ClientConfig, LinstorClient, VolumeDefinitionModify};
use hearth_proto::csi::v1::volume_content_source::{SnapshotSource, Type as Src, VolumeSource};
use hearth_proto::csi::v1::*;
use hearth_tests::linstor_sim::{DeviceMode, SimConfig, Simulator};
use hearth_tests::requests::*;
use hearth_tests::{connect, root_or_skip, tool_or_skip, CsiClient, Daemon, Mode, Sandbox};

struct Rig {
    sim: Simulator,
    sb: Sandbox,
    _d: Daemon,
    c: CsiClient,
    linstor: LinstorClient,
}

async fn rig() -> Rig {
    let sim = Simulator::start(SimConfig {
        devices: DeviceMode::Loop,
        pool_size_kib: 8 << 20,
        ..SimConfig::default()
    })
    .expect("simulator");
    let url = sim.url();
    let sb = Sandbox::new();
    let d = Daemon::start_as(
        &sb,
        "node-a",
        &["--backend", "linstor", "--linstor-url", &url],
    );
    let c = connect(d.socket()).await.unwrap();
    let linstor = LinstorClient::connect(&ClientConfig::new(sim.url()))
        .await
        .unwrap();
    Rig {
        sim,
        sb,
        _d: d,
        c,
        linstor,
    }
}

/// Everything the simulator still holds besides its default group, devices included.
fn leftovers(sim: &Simulator) -> Vec<String> {
    let s = sim.state();
    let mut out = Vec::new();
    for key in [
        "resource_definitions",
        "resources",
        "snapshots",
        "resource_groups",
    ] {
        for v in s["objects"][key].as_array().into_iter().flatten() {
            if v != "DfltRscGrp" {
                out.push(format!("{key}: {v}"));
            }
        }
    }
    for key in ["loop_devices", "files"] {
        for v in s["devices"][key].as_array().into_iter().flatten() {
            out.push(format!("{key}: {v}"));
        }
    }
    out
}

fn class(extra: &[(&str, &str)]) -> HashMap<String, String> {
    [
        ("linstor.csi.linbit.com/storagePool", "data"),
        ("linstor.csi.linbit.com/autoPlace", "2"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

impl Rig {
    async fn create(
        &mut self,
        name: &str,
        bytes: i64,
        cap: &VolumeCapability,
        params: HashMap<String, String>,
        source: Option<Src>,
    ) -> Volume {
        let mut req = create(name, bytes, cap.clone());
        req.parameters = params;
        req.volume_content_source = source.map(|t| VolumeContentSource { r#type: Some(t) });
        self.c
            .controller
            .create_volume(req)
            .await
            .unwrap_or_else(|e| panic!("create {name}: {e}"))
            .into_inner()
            .volume
            .unwrap()
    }

    /// ControllerPublish, stage (with the volume context, as kubelet passes it), publish.
    async fn up(&mut self, v: &Volume, cap: &VolumeCapability) -> (String, String) {
        let id = &v.volume_id;
        let ctx = self
            .c
            .controller
            .controller_publish_volume(ControllerPublishVolumeRequest {
                volume_id: id.clone(),
                node_id: "node-a".into(),
                volume_capability: Some(cap.clone()),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .publish_context;
        let staging = self.sb.staging(id);
        let target = self.sb.target("pod", id);
        let mut st = stage(id, &staging, cap.clone());
        st.publish_context = ctx.clone();
        st.volume_context = v.volume_context.clone();
        self.c
            .node
            .node_stage_volume(st)
            .await
            .unwrap_or_else(|e| panic!("stage {id}: {e}"));
        let mut p = publish(id, &staging, &target, cap.clone(), false);
        p.publish_context = ctx;
        p.volume_context = v.volume_context.clone();
        self.c.node.node_publish_volume(p).await.unwrap();
        (staging, target)
    }

    async fn down(&mut self, id: &str, staging: &str, target: &str) {
        self.c
            .node
            .node_unpublish_volume(unpublish(id, target))
            .await
            .unwrap();
        self.c
            .node
            .node_unstage_volume(unstage(id, staging))
            .await
            .unwrap();
        self.c
            .controller
            .controller_unpublish_volume(ControllerUnpublishVolumeRequest {
                volume_id: id.into(),
                node_id: "node-a".into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    async fn snapshot(&mut self, name: &str, id: &str) -> String {
        self.c
            .controller
            .create_snapshot(CreateSnapshotRequest {
                source_volume_id: id.into(),
                name: name.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .snapshot
            .unwrap()
            .snapshot_id
    }
}

fn fs_bytes(path: &str) -> u64 {
    let st = nix::sys::statvfs::statvfs(path).unwrap();
    st.blocks() * st.fragment_size()
}

fn mount_options(path: &str) -> String {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .find(|l| l.split(' ').nth(4) == Some(path))
        .map(str::to_owned)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xfs_restored_and_cloned_beside_its_source_mounts_grows_and_keeps_the_class_options() {
    let test = "linstor_e2e_fs_xfs";
    if !root_or_skip(test) || !tool_or_skip(test, "mkfs.xfs") || !tool_or_skip(test, "xfs_io") {
        return;
    }
    let mut r = rig().await;
    let cap = mount_cap("xfs", Mode::SingleNodeWriter);
    let params = class(&[
        ("linstor.csi.linbit.com/fsOpts", "-L hearthxfs"),
        ("linstor.csi.linbit.com/mountOpts", "noatime"),
        ("linstor.csi.linbit.com/postMountXfsOpts", "extsize 2m"),
    ]);
    let src = r
        .create("pvc-xsrc", 320 << 20, &cap, params.clone(), None)
        .await;
    let (s_staging, s_target) = r.up(&src, &cap).await;
    std::fs::write(Path::new(&s_target).join("f"), b"xfs data").unwrap();
    nix::unistd::sync();
    let label = Command::new("blkid")
        .args(["-s", "LABEL", "-o", "value"])
        .arg(mount_source(&s_staging))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&label.stdout).trim(), "hearthxfs");
    assert!(
        mount_options(&s_staging).contains("noatime"),
        "{}",
        mount_options(&s_staging)
    );
    let extsize = Command::new("xfs_io")
        .args(["-c", "extsize"])
        .arg(&s_target)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&extsize.stdout).contains("[2097152]"),
        "{}",
        String::from_utf8_lossy(&extsize.stdout)
    );

    let snap = r.snapshot("snap-x", &src.volume_id).await;
    let restored = r
        .create(
            "pvc-xrestored",
            640 << 20,
            &cap,
            params.clone(),
            Some(Src::Snapshot(SnapshotSource {
                snapshot_id: snap.clone(),
            })),
        )
        .await;
    let (r_staging, r_target) = r.up(&restored, &cap).await;
    assert!(
        mount_options(&r_staging).contains("nouuid"),
        "{}",
        mount_options(&r_staging)
    );
    assert_eq!(
        std::fs::read(Path::new(&r_target).join("f")).unwrap(),
        b"xfs data"
    );
    assert!(
        fs_bytes(&r_target) > 500 << 20,
        "not grown: {}",
        fs_bytes(&r_target)
    );

    let cloned = r
        .create(
            "pvc-xclone",
            640 << 20,
            &cap,
            params,
            Some(Src::Volume(VolumeSource {
                volume_id: src.volume_id.clone(),
            })),
        )
        .await;
    let (c_staging, c_target) = r.up(&cloned, &cap).await;
    assert_eq!(
        std::fs::read(Path::new(&c_target).join("f")).unwrap(),
        b"xfs data"
    );
    assert!(
        fs_bytes(&c_target) > 500 << 20,
        "not grown: {}",
        fs_bytes(&c_target)
    );

    for (v, st, t) in [
        (&cloned, c_staging, c_target),
        (&restored, r_staging, r_target),
        (&src, s_staging, s_target),
    ] {
        r.down(&v.volume_id, &st, &t).await;
        r.c.controller
            .delete_volume(delete(&v.volume_id))
            .await
            .unwrap();
    }
    r.c.controller
        .delete_snapshot(DeleteSnapshotRequest {
            snapshot_id: snap,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(leftovers(&r.sim).is_empty(), "{:?}", leftovers(&r.sim));
}

/// The device a mount point shows in mountinfo (field 10).
fn mount_source(path: &str) -> String {
    mount_options(path)
        .split(" - ")
        .nth(1)
        .and_then(|rest| rest.split(' ').nth(1))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ext4_restored_into_a_larger_volume_grows_before_it_mounts() {
    if !root_or_skip("linstor_e2e_fs_ext4") {
        return;
    }
    let mut r = rig().await;
    let cap = mount_cap("ext4", Mode::SingleNodeWriter);
    let src = r.create("pvc-esrc", 64 << 20, &cap, class(&[]), None).await;
    let (s_staging, s_target) = r.up(&src, &cap).await;
    std::fs::write(Path::new(&s_target).join("f"), b"ext4 data").unwrap();
    nix::unistd::sync();
    let snap = r.snapshot("snap-e", &src.volume_id).await;
    r.down(&src.volume_id, &s_staging, &s_target).await;
    let restored = r
        .create(
            "pvc-erestored",
            192 << 20,
            &cap,
            class(&[]),
            Some(Src::Snapshot(SnapshotSource {
                snapshot_id: snap.clone(),
            })),
        )
        .await;
    let (staging, target) = r.up(&restored, &cap).await;
    assert_eq!(
        std::fs::read(Path::new(&target).join("f")).unwrap(),
        b"ext4 data"
    );
    assert!(
        fs_bytes(&target) > 150 << 20,
        "not grown: {}",
        fs_bytes(&target)
    );
    r.down(&restored.volume_id, &staging, &target).await;
    for id in [&restored.volume_id, &src.volume_id] {
        r.c.controller.delete_volume(delete(id)).await.unwrap();
    }
    r.c.controller
        .delete_snapshot(DeleteSnapshotRequest {
            snapshot_id: snap,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(leftovers(&r.sim).is_empty(), "{:?}", leftovers(&r.sim));
}

/// LINSTOR records a new size before the satellites grow the devices: NodeExpandVolume that
/// comes while this node's device is still the old size waits for it instead of failing
/// OUT_OF_RANGE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_expand_waits_for_linstor_to_grow_the_device() {
    if !root_or_skip("linstor_e2e_node_expand_waits") {
        return;
    }
    let mut r = rig().await;
    let cap = block_cap(Mode::SingleNodeWriter);
    let v = r.create("pvc-lag", 32 << 20, &cap, class(&[]), None).await;
    let id = v.volume_id.clone();
    let ctx =
        r.c.controller
            .controller_publish_volume(ControllerPublishVolumeRequest {
                volume_id: id.clone(),
                node_id: "node-a".into(),
                volume_capability: Some(cap.clone()),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .publish_context;
    let staging = r.sb.staging(&id);
    let target = r.sb.block_target("pod", &id);
    let mut st = stage(&id, &staging, cap.clone());
    st.publish_context = ctx.clone();
    r.c.node.node_stage_volume(st).await.unwrap();
    let mut p = publish(&id, &staging, &target, cap.clone(), false);
    p.publish_context = ctx;
    r.c.node.node_publish_volume(p).await.unwrap();
    // The controller has the new size at once; the device follows later.
    let grow = VolumeDefinitionModify {
        size_kib: Some(64 << 10),
        ..Default::default()
    };
    r.linstor
        .modify_volume_definition(&id, 0, &grow)
        .await
        .unwrap();
    let node =
        r.c.node
            .node_expand_volume(NodeExpandVolumeRequest {
                volume_id: id.clone(),
                volume_path: target.clone(),
                capacity_range: Some(CapacityRange {
                    required_bytes: 64 << 20,
                    limit_bytes: 0,
                }),
                staging_target_path: staging.clone(),
                volume_capability: Some(cap.clone()),
                ..Default::default()
            })
            .await
            .expect("NodeExpandVolume waits for the device")
            .into_inner();
    assert_eq!(node.capacity_bytes, 64 << 20);
    r.down(&id, &staging, &target).await;
    r.c.controller.delete_volume(delete(&id)).await.unwrap();
    assert!(leftovers(&r.sim).is_empty(), "{:?}", leftovers(&r.sim));
}
