//! `hearth dev --backend linstor` end to end against the LINSTOR **simulator** (not LINSTOR):
//! every code path is the production one except the device, which the simulator backs with a
//! real loop device standing in for `/dev/drbdN`. Two `hearth dev` processes play nodes
//! `node-a` and `node-b` for the live-migration sequence.

#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use hearth_csi::linstor::client::{ClientConfig, LinstorClient};
use hearth_proto::csi::v1::volume_content_source::{SnapshotSource, Type as Src, VolumeSource};
use hearth_proto::csi::v1::*;
use hearth_tests::linstor_sim::{DeviceMode, Fault, FaultKind, SimConfig, Simulator};
use hearth_tests::requests::*;
use hearth_tests::{connect, root_or_skip, CsiClient, Daemon, Mode, Sandbox};
use tonic::Code;

const DEVICE_KEY: &str = "hearth.dev/device-path";

struct Rig {
    sim: Simulator,
    a: (Sandbox, Daemon, CsiClient),
    b: Option<(Sandbox, Daemon, CsiClient)>,
    linstor: LinstorClient,
}

async fn rig(two_nodes: bool) -> Rig {
    let sim = Simulator::start(SimConfig {
        devices: DeviceMode::Loop,
        pool_size_kib: 4 << 20,
        ..SimConfig::default()
    })
    .expect("simulator");
    let url = sim.url();
    let node = |name: &str| {
        let sb = Sandbox::new();
        let d = Daemon::start_as(&sb, name, &["--backend", "linstor", "--linstor-url", &url]);
        (sb, d)
    };
    let (sa, da) = node("node-a");
    let ca = connect(da.socket()).await.unwrap();
    let b = if two_nodes {
        let (sb, db) = node("node-b");
        let cb = connect(db.socket()).await.unwrap();
        Some((sb, db, cb))
    } else {
        None
    };
    let linstor = LinstorClient::connect(&ClientConfig::new(sim.url()))
        .await
        .unwrap();
    Rig {
        sim,
        a: (sa, da, ca),
        b,
        linstor,
    }
}

/// Resource definitions, resources, snapshots and devices the simulator still holds (the
/// deletion of Hearth's resource groups is checked in `linstor_e2e_fs` and `linstor_backend`).
fn leftovers(sim: &Simulator) -> Vec<String> {
    let s = sim.state();
    let mut out = Vec::new();
    for key in ["resource_definitions", "resources", "snapshots"] {
        for v in s["objects"][key].as_array().into_iter().flatten() {
            out.push(format!("{key}: {v}"));
        }
    }
    for key in ["loop_devices", "files"] {
        for v in s["devices"][key].as_array().into_iter().flatten() {
            out.push(format!("{key}: {v}"));
        }
    }
    out
}

fn replicated() -> HashMap<String, String> {
    [
        ("linstor.csi.linbit.com/storagePool", "data"),
        ("linstor.csi.linbit.com/autoPlace", "2"),
        ("linstor.csi.linbit.com/layerList", "drbd storage"),
        (
            "property.linstor.csi.linbit.com/DrbdOptions/auto-quorum",
            "suspend-io",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn create_req(name: &str, bytes: i64, cap: VolumeCapability) -> CreateVolumeRequest {
    let mut r = create(name, bytes, cap);
    r.parameters = replicated();
    r
}

fn cpublish(id: &str, node: &str, cap: VolumeCapability) -> ControllerPublishVolumeRequest {
    ControllerPublishVolumeRequest {
        volume_id: id.into(),
        node_id: node.into(),
        volume_capability: Some(cap),
        ..Default::default()
    }
}

fn cunpublish(id: &str, node: &str) -> ControllerUnpublishVolumeRequest {
    ControllerUnpublishVolumeRequest {
        volume_id: id.into(),
        node_id: node.into(),
        ..Default::default()
    }
}

/// Publish to the node, stage, publish; returns (staging, target).
async fn up(
    c: &mut CsiClient,
    sb: &Sandbox,
    node: &str,
    id: &str,
    cap: &VolumeCapability,
    block: bool,
) -> (String, String) {
    let ctx = c
        .controller
        .controller_publish_volume(cpublish(id, node, cap.clone()))
        .await
        .unwrap()
        .into_inner()
        .publish_context;
    assert!(
        ctx.get(DEVICE_KEY).is_some_and(|p| p.starts_with("/dev/")),
        "{ctx:?}"
    );
    let staging = sb.staging(id);
    let target = if block {
        sb.block_target("pod", id)
    } else {
        sb.target("pod", id)
    };
    let mut st = stage(id, &staging, cap.clone());
    st.publish_context = ctx.clone();
    c.node.node_stage_volume(st).await.unwrap();
    let mut p = publish(id, &staging, &target, cap.clone(), false);
    p.publish_context = ctx;
    c.node.node_publish_volume(p).await.unwrap();
    (staging, target)
}

async fn down(c: &mut CsiClient, node: &str, id: &str, staging: &str, target: &str) {
    c.node
        .node_unpublish_volume(unpublish(id, target))
        .await
        .unwrap();
    c.node
        .node_unstage_volume(unstage(id, staging))
        .await
        .unwrap();
    c.controller
        .controller_unpublish_volume(cunpublish(id, node))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_snapshot_restore_clone_and_expansion() {
    if !root_or_skip("linstor_e2e_lifecycle") {
        return;
    }
    let mut r = rig(false).await;
    let (sb, _d, c) = &mut r.a;
    let cap = mount_cap("ext4", Mode::SingleNodeWriter);
    let calls0 = r.sim.state()["requests_total"].as_u64().unwrap_or(0);
    let vol = c
        .controller
        .create_volume(create_req("pvc-e2e", 64 << 20, cap.clone()))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    let calls = r.sim.state()["requests_total"].as_u64().unwrap_or(0) - calls0;
    eprintln!("CreateVolume took {calls} REST calls");
    assert_eq!(vol.volume_id, "pvc-e2e");
    assert_eq!(vol.capacity_bytes, 64 << 20);
    let again = c
        .controller
        .create_volume(create_req("pvc-e2e", 64 << 20, cap.clone()))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert_eq!(
        again.volume_id, vol.volume_id,
        "a retried create is the same volume"
    );
    let bigger = c
        .controller
        .create_volume(create_req("pvc-e2e", 128 << 20, cap.clone()))
        .await;
    assert_eq!(bigger.unwrap_err().code(), Code::AlreadyExists);
    let id = vol.volume_id.clone();

    let (staging, target) = up(c, sb, "node-a", &id, &cap, false).await;
    std::fs::write(Path::new(&target).join("v"), b"one").unwrap();
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
    assert!(!stats.volume_condition.unwrap().abnormal);

    // Online growth through LINSTOR (xfs is not needed: the device grows; ext4 needs
    // CAP_SYS_RESOURCE for the filesystem step, so only the controller side is checked here).
    let grown = c
        .controller
        .controller_expand_volume(ControllerExpandVolumeRequest {
            volume_id: id.clone(),
            capacity_range: Some(CapacityRange {
                required_bytes: 96 << 20,
                limit_bytes: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(grown.capacity_bytes, 96 << 20);
    down(c, "node-a", &id, &staging, &target).await;

    let snap = c
        .controller
        .create_snapshot(CreateSnapshotRequest {
            name: "snap-e2e".into(),
            source_volume_id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .snapshot
        .unwrap();
    assert!(snap.ready_to_use);
    assert_eq!(snap.snapshot_id, format!("{id}/snap-e2e"));

    let mut restore = create_req("pvc-restored", 96 << 20, cap.clone());
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
    let (rs, rt) = up(c, sb, "node-a", &restored.volume_id, &cap, false).await;
    assert_eq!(std::fs::read(Path::new(&rt).join("v")).unwrap(), b"one");
    down(c, "node-a", &restored.volume_id, &rs, &rt).await;

    let mut clone = create_req("pvc-clone", 96 << 20, cap.clone());
    clone.volume_content_source = Some(VolumeContentSource {
        r#type: Some(Src::Volume(VolumeSource {
            volume_id: id.clone(),
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
    let (cs, ct) = up(c, sb, "node-a", &cloned.volume_id, &cap, false).await;
    assert_eq!(std::fs::read(Path::new(&ct).join("v")).unwrap(), b"one");
    down(c, "node-a", &cloned.volume_id, &cs, &ct).await;

    c.controller
        .delete_snapshot(DeleteSnapshotRequest {
            snapshot_id: snap.snapshot_id,
            ..Default::default()
        })
        .await
        .unwrap();
    for v in [&id, &restored.volume_id, &cloned.volume_id] {
        c.controller.delete_volume(delete(v)).await.unwrap();
        c.controller
            .delete_volume(delete(v))
            .await
            .expect("delete is idempotent");
    }
    assert!(leftovers(&r.sim).is_empty(), "{:?}", leftovers(&r.sim));
    assert!(sb.mounts().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_migration_sets_two_primaries_only_while_two_nodes_attach() {
    if !root_or_skip("linstor_e2e_migration") {
        return;
    }
    let mut r = rig(true).await;
    let rwx = block_cap(Mode::MultiNodeMultiWriter);
    let (sa, _da, ca) = &mut r.a;
    let id = ca
        .controller
        .create_volume(create_req("pvc-vm", 64 << 20, rwx.clone()))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap()
        .volume_id;
    let two_primaries = |props: &std::collections::BTreeMap<String, String>| {
        props.get("DrbdOptions/Net/allow-two-primaries").cloned()
    };

    let (a_staging, a_target) = up(ca, sa, "node-a", &id, &rwx, true).await;
    let rd = r.linstor.get_resource_definition(&id).await.unwrap();
    assert_eq!(
        two_primaries(&rd.props),
        None,
        "one attachment: no two primaries"
    );

    let (sb, _db, cb) = r.b.as_mut().unwrap();
    let (b_staging, b_target) = up(cb, sb, "node-b", &id, &rwx, true).await;
    let rd = r.linstor.get_resource_definition(&id).await.unwrap();
    assert_eq!(two_primaries(&rd.props).as_deref(), Some("yes"));
    assert_eq!(
        rd.props.get("DrbdOptions/Net/protocol").map(String::as_str),
        Some("C")
    );

    // Both nodes hold the device open, as two DRBD Primaries would: the simulator's
    // devices are loop devices, so LINSTOR's InUse is set by hand.
    for n in ["node-a", "node-b"] {
        r.sim.set_in_use(&id, n, true).unwrap();
    }
    let third = ca
        .controller
        .controller_publish_volume(cpublish(&id, "node-c", rwx.clone()))
        .await;
    assert_eq!(
        third.unwrap_err().code(),
        Code::FailedPrecondition,
        "a third attachment is refused"
    );
    for n in ["node-a", "node-b"] {
        r.sim.set_in_use(&id, n, false).unwrap();
    }

    down(ca, "node-a", &id, &a_staging, &a_target).await;
    let rd = r.linstor.get_resource_definition(&id).await.unwrap();
    assert_eq!(
        two_primaries(&rd.props),
        None,
        "back to one attachment: the property is removed"
    );

    // Explicit placement (nodeList), and unpublish keeps replicas that placement made.
    let mut pinned = create_req("pvc-pinned", 16 << 20, block_cap(Mode::SingleNodeWriter));
    pinned.parameters.remove("linstor.csi.linbit.com/autoPlace");
    pinned
        .parameters
        .insert("nodeList".into(), "node-a node-c".into());
    let pinned = ca
        .controller
        .create_volume(pinned)
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap()
        .volume_id;
    let nodes = |rs: Vec<hearth_csi::linstor::client::Resource>| {
        // Replicas placement made; LINSTOR's quorum tiebreaker beside two is not one.
        let mut n: Vec<String> = rs
            .into_iter()
            .filter(|r| !r.is_tie_breaker())
            .map(|r| r.node_name)
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        nodes(r.linstor.list_resources(&pinned).await.unwrap()),
        ["node-a", "node-c"]
    );
    let rwo = block_cap(Mode::SingleNodeWriter);
    ca.controller
        .controller_publish_volume(cpublish(&pinned, "node-a", rwo.clone()))
        .await
        .unwrap();
    ca.controller
        .controller_unpublish_volume(cunpublish(&pinned, "node-a"))
        .await
        .unwrap();
    assert_eq!(
        nodes(r.linstor.list_resources(&pinned).await.unwrap()),
        ["node-a", "node-c"],
        "placement replicas stay"
    );
    ca.controller
        .controller_publish_volume(cpublish(&pinned, "node-b", rwo.clone()))
        .await
        .unwrap();
    assert_eq!(
        nodes(r.linstor.list_resources(&pinned).await.unwrap()),
        ["node-a", "node-b", "node-c"]
    );
    ca.controller
        .controller_unpublish_volume(cunpublish(&pinned, "node-b"))
        .await
        .unwrap();
    assert_eq!(
        nodes(r.linstor.list_resources(&pinned).await.unwrap()),
        ["node-a", "node-c"],
        "the temporary diskless replica goes"
    );
    ca.controller.delete_volume(delete(&pinned)).await.unwrap();

    // A single-writer volume cannot be published on a second node (the Multi-Attach case).
    let solo = ca
        .controller
        .create_volume(create_req("pvc-solo", 16 << 20, rwo.clone()))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap()
        .volume_id;
    ca.controller
        .controller_publish_volume(cpublish(&solo, "node-a", rwo.clone()))
        .await
        .unwrap();
    let second = ca
        .controller
        .controller_publish_volume(cpublish(&solo, "node-b", rwo.clone()))
        .await;
    assert_eq!(second.unwrap_err().code(), Code::FailedPrecondition);
    ca.controller
        .controller_unpublish_volume(cunpublish(&solo, "node-a"))
        .await
        .unwrap();

    down(cb, "node-b", &id, &b_staging, &b_target).await;
    for v in [&id, &solo] {
        ca.controller.delete_volume(delete(v)).await.unwrap();
    }
    assert!(leftovers(&r.sim).is_empty(), "{:?}", leftovers(&r.sim));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_retries_and_faults_leak_nothing() {
    if !root_or_skip("linstor_e2e_faults") {
        return;
    }
    let mut r = rig(false).await;
    let (_sb, _d, c) = &mut r.a;
    let cap = block_cap(Mode::SingleNodeWriter);

    // Two creates of one name at once: one wins, the other is ABORTED or returns the same volume.
    let (mut c1, mut c2) = (c.clone(), c.clone());
    let (x, y) = tokio::join!(
        c1.controller
            .create_volume(create_req("pvc-race", 16 << 20, cap.clone())),
        c2.controller
            .create_volume(create_req("pvc-race", 16 << 20, cap.clone())),
    );
    for res in [&x, &y] {
        if let Err(s) = res {
            assert_eq!(s.code(), Code::Aborted, "{s:?}");
        }
    }
    let id = c
        .controller
        .create_volume(create_req("pvc-race", 16 << 20, cap.clone()))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap()
        .volume_id;
    c.controller.delete_volume(delete(&id)).await.unwrap();

    // A 500 on the volume definition: the create fails, rolls back, and a retry succeeds.
    r.sim.add_fault(Fault::new(
        FaultKind::Http500,
        Some("POST"),
        "/v1/resource-definitions/pvc-fault/volume-definitions",
        1,
    ));
    let failed = c
        .controller
        .create_volume(create_req("pvc-fault", 16 << 20, cap.clone()))
        .await;
    assert!(failed.is_err());
    assert!(
        leftovers(&r.sim).is_empty(),
        "a failed create leaks nothing: {:?}",
        leftovers(&r.sim)
    );
    let id = c
        .controller
        .create_volume(create_req("pvc-fault", 16 << 20, cap.clone()))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap()
        .volume_id;

    // 503s and a slow answer are retried by the client.
    r.sim.add_fault(Fault::new(
        FaultKind::Http503,
        Some("GET"),
        "/v1/resource-definitions/pvc-fault",
        2,
    ));
    c.controller
        .controller_get_volume(ControllerGetVolumeRequest {
            volume_id: id.clone(),
        })
        .await
        .unwrap();
    let mut slow = Fault::new(
        FaultKind::Timeout,
        Some("GET"),
        "/v1/resource-definitions/pvc-fault",
        1,
    );
    slow.delay_ms = Some(12_000);
    r.sim.add_fault(slow);
    c.controller
        .controller_get_volume(ControllerGetVolumeRequest {
            volume_id: id.clone(),
        })
        .await
        .unwrap();

    // In use: delete refuses and keeps the volume.
    let holder = r.linstor.list_resources(&id).await.unwrap()[0]
        .node_name
        .clone();
    r.sim.set_in_use(&id, &holder, true).unwrap();
    let busy = c.controller.delete_volume(delete(&id)).await;
    assert_eq!(busy.unwrap_err().code(), Code::FailedPrecondition);
    r.sim.set_in_use(&id, &holder, false).unwrap();
    r.sim.add_fault(Fault::new(
        FaultKind::InUse,
        Some("DELETE"),
        "/v1/resource-definitions/pvc-fault",
        1,
    ));
    let busy = c.controller.delete_volume(delete(&id)).await;
    assert_eq!(busy.unwrap_err().code(), Code::FailedPrecondition);
    c.controller.delete_volume(delete(&id)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(leftovers(&r.sim).is_empty(), "{:?}", leftovers(&r.sim));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xfs_grows_online_through_linstor() {
    if !root_or_skip("linstor_e2e_grow")
        || !hearth_tests::tool_or_skip("linstor_e2e_grow", "xfs_growfs")
    {
        return;
    }
    let mut r = rig(false).await;
    let (sb, _d, c) = &mut r.a;
    let cap = mount_cap("xfs", Mode::SingleNodeWriter);
    let id = c
        .controller
        .create_volume(create_req("pvc-grow", 320 << 20, cap.clone()))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap()
        .volume_id;
    let (staging, target) = up(c, sb, "node-a", &id, &cap, false).await;
    let size = |p: &str| {
        let st = nix::sys::statvfs::statvfs(p).unwrap();
        st.blocks() * st.fragment_size()
    };
    let before = size(&target);
    let range = Some(CapacityRange {
        required_bytes: 640 << 20,
        limit_bytes: 0,
    });
    let grown = c
        .controller
        .controller_expand_volume(ControllerExpandVolumeRequest {
            volume_id: id.clone(),
            capacity_range: range,
            volume_capability: Some(cap.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(grown.node_expansion_required);
    let node = c
        .node
        .node_expand_volume(NodeExpandVolumeRequest {
            volume_id: id.clone(),
            volume_path: target.clone(),
            capacity_range: range,
            staging_target_path: staging.clone(),
            volume_capability: Some(cap.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(node.capacity_bytes, 640 << 20);
    assert!(
        size(&target) > before + (256 << 20),
        "statfs {before} -> {}",
        size(&target)
    );
    down(c, "node-a", &id, &staging, &target).await;
    c.controller.delete_volume(delete(&id)).await.unwrap();
    assert!(leftovers(&r.sim).is_empty(), "{:?}", leftovers(&r.sim));
}
