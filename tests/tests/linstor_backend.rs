//! The LINSTOR backend against the LINSTOR **simulator** (not LINSTOR), where the simulator
//! behaves as the real controller does and a kinder one would hide a bug: the quorum
//! tiebreaker and make-available, toggle-disk and auto-diskful, FAIL_IN_USE, the restore size
//! check and the property copying of restores and clones, definitions kept by snapshots, node
//! states, layer stacks, DRBD resync states. Each case names the LINSTOR server handler the
//! simulator follows (see `tests/src/linstor_sim/ops_drbd.rs`). No root needed.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

mod linstor_common;

use std::collections::BTreeMap;

use hearth_csi::backend::{ContentSource, PublishSpec, VolumeBackend, VolumeSpec};
use hearth_csi::drbd::{Readiness, ReadyVia};
use hearth_csi::linstor::client::{LinstorClient, Resource};
use hearth_csi::linstor::{DiskState, LinstorBackend, LinstorViewState};
use hearth_csi::{CsiError, TOPOLOGY_NODE_KEY};
use linstor_common::{client, simulator};

const MIB: u64 = 1 << 20;

fn spec(name: &str, bytes: u64, params: &[(&str, &str)]) -> VolumeSpec {
    VolumeSpec {
        name: name.into(),
        capacity_bytes: bytes,
        limit_bytes: 0,
        parameters: params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        source: None,
        requisite: Vec::new(),
        preferred: Vec::new(),
    }
}

fn publish(id: &str, node: &str, readonly: bool, multi_writer: bool) -> PublishSpec {
    PublishSpec {
        volume_id: id.into(),
        node_id: node.into(),
        readonly,
        multi_writer,
    }
}

async fn resources(c: &LinstorClient, rd: &str) -> BTreeMap<String, Resource> {
    c.list_resources(rd)
        .await
        .expect("list resources")
        .into_iter()
        .map(|r| (r.node_name.clone(), r))
        .collect()
}

async fn rd_props(c: &LinstorClient, rd: &str) -> BTreeMap<String, String> {
    c.get_resource_definition(rd)
        .await
        .expect("resource definition")
        .props
}

fn node_without<'a>(rs: &BTreeMap<String, Resource>) -> &'a str {
    ["node-a", "node-b", "node-c"]
        .into_iter()
        .find(|n| !rs.contains_key(*n))
        .expect("a node without a replica")
}

#[tokio::test]
async fn unpublish_keeps_a_replica_that_got_a_disk_since() {
    let sim = simulator(false, false);
    let c = client(&sim).await;
    let b = LinstorBackend::new(c.clone());
    let v = b
        .create_volume(&spec("pvc-grown", 64 * MIB, &[]))
        .await
        .expect("create");
    let spare = node_without(&resources(&c, &v.id).await).to_owned();
    b.publish(&publish(&v.id, &spare, false, false))
        .await
        .expect("publish");
    assert!(resources(&c, &v.id).await[&spare].is_diskless());
    // An admin's toggle-disk (CtrlRscToggleDiskApiCallHandler) gives it a disk: it holds data.
    sim.toggle_disk(&v.id, &spare, true).expect("toggle-disk");
    b.unpublish(&v.id, &spare).await.expect("unpublish");
    let after = resources(&c, &v.id).await;
    assert!(
        after.get(&spare).is_some_and(|r| !r.is_diskless()),
        "the replica with data must stay: {after:?}"
    );
    assert_eq!(
        rd_props(&c, &v.id)
            .await
            .get("Aux/hearth.dev/temp-diskless")
            .map(String::as_str),
        Some(""),
        "it is no longer Hearth's temporary replica"
    );

    // The same through DrbdOptions/auto-diskful (AutoDiskfulTask), as Cozystack configures it.
    let w = b
        .create_volume(&spec(
            "pvc-autodiskful",
            64 * MIB,
            &[(
                "property.linstor.csi.linbit.com/DrbdOptions/auto-diskful",
                "1",
            )],
        ))
        .await
        .expect("create");
    let spare = node_without(&resources(&c, &w.id).await).to_owned();
    b.publish(&publish(&w.id, &spare, false, false))
        .await
        .expect("publish");
    sim.set_in_use(&w.id, &spare, true).expect("in use");
    assert_eq!(sim.run_auto_diskful(), [format!("{}/{spare}", w.id)]);
    sim.set_in_use(&w.id, &spare, false).expect("closed");
    b.unpublish(&w.id, &spare).await.expect("unpublish");
    assert!(resources(&c, &w.id)
        .await
        .get(&spare)
        .is_some_and(|r| !r.is_diskless()));
}

#[tokio::test]
async fn unpublish_hands_the_tiebreaker_back_and_keeps_what_is_in_use() {
    let sim = simulator(false, false);
    let c = client(&sim).await;
    let b = LinstorBackend::new(c.clone());
    let v = b
        .create_volume(&spec("pvc-tb", 64 * MIB, &[("autoPlace", "2")]))
        .await
        .expect("create");
    // CtrlRscAutoTieBreakerHelper: two diskful replicas get a diskless tiebreaker.
    let rs = resources(&c, &v.id).await;
    let tb = rs
        .values()
        .find(|r| r.is_tie_breaker())
        .map(|r| r.node_name.clone())
        .expect("a tiebreaker");
    // make-available turns it into a wanted diskless replica (CtrlRscMakeAvailableApiCallHandler).
    b.publish(&publish(&v.id, &tb, false, false))
        .await
        .expect("publish");
    let made = &resources(&c, &v.id).await[&tb];
    assert!(made.is_diskless() && !made.is_tie_breaker(), "{made:?}");
    // Unpublish with keep_tiebreaker: LINSTOR keeps it as the tiebreaker.
    b.unpublish(&v.id, &tb).await.expect("unpublish");
    let back = resources(&c, &v.id).await;
    assert!(
        back.get(&tb).is_some_and(Resource::is_tie_breaker),
        "{back:?}"
    );
    assert_eq!(back.len(), 3);

    // A diskless replica still open on its node (FAIL_IN_USE) is kept, and removed by the
    // next unpublish once closed.
    let w = b
        .create_volume(&spec("pvc-busy", 64 * MIB, &[]))
        .await
        .expect("create");
    let spare = node_without(&resources(&c, &w.id).await).to_owned();
    b.publish(&publish(&w.id, &spare, false, false))
        .await
        .expect("publish");
    sim.set_in_use(&w.id, &spare, true).expect("in use");
    b.unpublish(&w.id, &spare)
        .await
        .expect("FAIL_IN_USE keeps it");
    assert!(resources(&c, &w.id).await.contains_key(&spare));
    sim.set_in_use(&w.id, &spare, false).expect("closed");
    b.unpublish(&w.id, &spare).await.expect("unpublish");
    assert!(!resources(&c, &w.id).await.contains_key(&spare));
}

#[tokio::test]
async fn restore_and_clone_into_larger_volumes_without_the_sources_attachments() {
    let sim = simulator(false, false);
    let c = client(&sim).await;
    let b = LinstorBackend::new(c.clone());
    let params = [("autoPlace", "2")];
    let v = b
        .create_volume(&spec("pvc-src", 64 * MIB, &params))
        .await
        .expect("create");
    // Published on two nodes as a live migration does: two primaries, protocol C.
    b.publish(&publish(&v.id, "node-a", false, true))
        .await
        .expect("publish a");
    b.publish(&publish(&v.id, "node-b", false, true))
        .await
        .expect("publish b");
    let src = rd_props(&c, &v.id).await;
    assert_eq!(
        src.get("DrbdOptions/Net/allow-two-primaries")
            .map(String::as_str),
        Some("yes")
    );
    let snap = b
        .create_snapshot("snap-src", &v.id)
        .await
        .expect("snapshot");

    // Restore into a larger PVC: LINSTOR refuses a restore of another size
    // (CtrlSnapshotRestoreApiCallHandler, FAIL_INVLD_VLM_SIZE), so Hearth restores, then grows.
    let mut restore = spec("pvc-restored", 128 * MIB, &params);
    restore.source = Some(ContentSource::Snapshot(snap.id.clone()));
    let r = b
        .create_volume(&restore)
        .await
        .expect("restore into a larger volume");
    assert_eq!(r.capacity_bytes, 128 * MIB);
    let mut clone = spec("pvc-clone", 96 * MIB, &params);
    clone.source = Some(ContentSource::Volume(v.id.clone()));
    let k = b
        .create_volume(&clone)
        .await
        .expect("clone into a larger volume");
    assert_eq!(k.capacity_bytes, 96 * MIB);

    for (id, name) in [(&r.id, "pvc-restored"), (&k.id, "pvc-clone")] {
        let props = rd_props(&c, id).await;
        assert_eq!(
            props.get("Aux/hearth.dev/csi-name").map(String::as_str),
            Some(name)
        );
        for gone in [
            "Aux/hearth.dev/attached",
            "Aux/hearth.dev/temp-diskless",
            "Aux/hearth.dev/building",
            "DrbdOptions/Net/allow-two-primaries",
            "DrbdOptions/Net/protocol",
        ] {
            assert!(
                !props.contains_key(gone),
                "{id} inherited {gone}: {props:?}"
            );
        }
        // A single-writer publish anywhere works: nothing says "published on node-a".
        b.publish(&publish(id, "node-c", false, false))
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        b.unpublish(id, "node-c").await.expect("unpublish");
        let again = b
            .create_volume(if name == "pvc-clone" {
                &clone
            } else {
                &restore
            })
            .await;
        assert_eq!(again.expect("a retry is idempotent").id, *id);
    }
}

#[tokio::test]
async fn restore_places_as_the_class_says() {
    let sim = simulator(false, false);
    let c = client(&sim).await;
    let b = LinstorBackend::new(c.clone());
    let v = b
        .create_volume(&spec("pvc-three", 32 * MIB, &[("autoPlace", "3")]))
        .await
        .expect("create");
    let snap = b
        .create_snapshot("snap-three", &v.id)
        .await
        .expect("snapshot");
    let mut one = spec("pvc-one-of-three", 32 * MIB, &[("autoPlace", "1")]);
    one.source = Some(ContentSource::Snapshot(snap.id.clone()));
    one.preferred = vec![BTreeMap::from([(
        TOPOLOGY_NODE_KEY.to_owned(),
        "node-b".to_owned(),
    )])];
    let r = b.create_volume(&one).await.expect("restore");
    let rs = resources(&c, &r.id).await;
    let diskful: Vec<&String> = rs
        .values()
        .filter(|r| !r.is_diskless())
        .map(|r| &r.node_name)
        .collect();
    assert_eq!(
        diskful,
        ["node-b"],
        "one replica, on the preferred node: {rs:?}"
    );
}

#[tokio::test]
async fn delete_volume_with_snapshots_succeeds_and_the_last_snapshot_takes_the_definition() {
    let sim = simulator(false, false);
    let c = client(&sim).await;
    let b = LinstorBackend::new(c.clone());
    let v = b
        .create_volume(&spec("pvc-snapped", 32 * MIB, &[]))
        .await
        .expect("create");
    let s1 = b.create_snapshot("snap-1", &v.id).await.expect("snapshot");
    let s2 = b.create_snapshot("snap-2", &v.id).await.expect("snapshot");
    b.delete_volume(&v.id)
        .await
        .expect("DeleteVolume with snapshots");
    b.delete_volume(&v.id).await.expect("idempotent");
    assert!(b.get_volume(&v.id).await.expect("get").is_none());
    assert!(b.list_volumes().await.expect("list").is_empty());
    assert!(
        c.list_resources(&v.id).await.expect("list").is_empty(),
        "its replicas are gone"
    );
    assert!(matches!(
        b.create_snapshot("snap-3", &v.id).await,
        Err(CsiError::NotFound(_))
    ));
    // Its snapshots still restore.
    let mut restore = spec("pvc-from-deleted", 32 * MIB, &[]);
    restore.source = Some(ContentSource::Snapshot(s1.id.clone()));
    b.create_volume(&restore).await.expect("restore");
    b.delete_snapshot(&s1.id).await.expect("delete snapshot");
    assert!(
        c.get_resource_definition(&v.id).await.is_ok(),
        "kept for snap-2"
    );
    b.delete_snapshot(&s2.id)
        .await
        .expect("delete the last snapshot");
    assert!(c
        .get_resource_definition(&v.id)
        .await
        .is_err_and(|e| e.is_not_found()));
}

#[tokio::test]
async fn publish_checks_capability_node_state_and_live_use() {
    let sim = simulator(false, false);
    let c = client(&sim).await;
    let b = LinstorBackend::new(c.clone());
    let v = b
        .create_volume(&spec("pvc-pub", 32 * MIB, &[]))
        .await
        .expect("create");
    b.publish(&publish(&v.id, "node-a", false, false))
        .await
        .expect("publish");
    b.publish(&publish(&v.id, "node-a", false, false))
        .await
        .expect("idempotent");
    // CSI: published to the node with an incompatible capability is ALREADY_EXISTS.
    assert!(matches!(
        b.publish(&publish(&v.id, "node-a", true, false)).await,
        Err(CsiError::AlreadyExists(_))
    ));
    b.unpublish(&v.id, "node-a").await.expect("unpublish");
    b.publish(&publish(&v.id, "node-a", true, false))
        .await
        .expect("read-only now");
    b.unpublish(&v.id, "node-a").await.expect("unpublish");

    // Offline and evicted LINSTOR nodes take no volume.
    sim.set_node_state("node-b", "OFFLINE", &[])
        .expect("node state");
    assert!(matches!(
        b.publish(&publish(&v.id, "node-b", false, false)).await,
        Err(CsiError::Unavailable(m)) if m.contains("OFFLINE")
    ));
    sim.set_node_state("node-b", "ONLINE", &["EVICTED"])
        .expect("node state");
    assert!(matches!(
        b.publish(&publish(&v.id, "node-b", false, false)).await,
        Err(CsiError::FailedPrecondition(m)) if m.contains("EVICTED")
    ));
    sim.set_node_state("node-b", "ONLINE", &[])
        .expect("node state");

    // RWX block: a third node is refused while two hold the device open, not for a stale
    // record of one that closed it.
    let w = b
        .create_volume(&spec("pvc-rwx", 32 * MIB, &[]))
        .await
        .expect("create");
    for n in ["node-a", "node-b"] {
        b.publish(&publish(&w.id, n, false, true))
            .await
            .expect("publish");
        sim.set_in_use(&w.id, n, true).expect("in use");
    }
    assert!(matches!(
        b.publish(&publish(&w.id, "node-c", false, true)).await,
        Err(CsiError::FailedPrecondition(_))
    ));
    sim.set_in_use(&w.id, "node-a", false).expect("closed");
    b.publish(&publish(&w.id, "node-c", false, true))
        .await
        .expect("node-a's record is stale: it closed the device");
}

#[tokio::test]
async fn layer_list_reaches_every_placement_path() {
    let sim = simulator(false, false);
    let c = client(&sim).await;
    let b = LinstorBackend::new(c.clone());
    // Cozystack's "local" class with a node list: STORAGE only, no DRBD, local access only.
    let v = b
        .create_volume(&spec(
            "pvc-local",
            32 * MIB,
            &[
                ("linstor.csi.linbit.com/storagePool", "data"),
                ("linstor.csi.linbit.com/layerList", "storage"),
                ("linstor.csi.linbit.com/nodeList", "node-a"),
            ],
        ))
        .await
        .expect("create");
    let vol = c
        .get_resource_volume(&v.id, "node-a", 0)
        .await
        .expect("volume");
    let path = vol.device_path.unwrap_or_default();
    assert!(
        !path.starts_with("/dev/drbd"),
        "a STORAGE-only volume has no DRBD device: {path}"
    );
    assert_eq!(
        v.topology,
        vec![BTreeMap::from([(
            TOPOLOGY_NODE_KEY.to_owned(),
            "node-a".to_owned()
        )])],
        "without DRBD the volume is reachable only where it lives"
    );
    assert!(matches!(
        b.publish(&publish(&v.id, "node-b", false, false)).await,
        Err(CsiError::FailedPrecondition(_))
    ));
    // The first replica on the preferred node gets the layers too.
    let mut pref = spec("pvc-pref", 32 * MIB, &[("layerList", "storage")]);
    pref.preferred = vec![BTreeMap::from([(
        TOPOLOGY_NODE_KEY.to_owned(),
        "node-c".to_owned(),
    )])];
    let p = b.create_volume(&pref).await.expect("create");
    let path = c
        .get_resource_volume(&p.id, "node-c", 0)
        .await
        .expect("volume")
        .device_path
        .unwrap_or_default();
    assert!(!path.starts_with("/dev/drbd"), "{path}");
}

#[tokio::test]
async fn readiness_from_linstor_accepts_a_resync_from_an_up_to_date_peer() {
    let sim = simulator(false, false);
    let c = client(&sim).await;
    let b = LinstorBackend::new(c.clone());
    let v = b
        .create_volume(&spec("pvc-sync", 32 * MIB, &[("autoPlace", "2")]))
        .await
        .expect("create");
    let rs = resources(&c, &v.id).await;
    let disk: Vec<&String> = rs
        .values()
        .filter(|r| !r.is_diskless())
        .map(|r| &r.node_name)
        .collect();
    let (target, source) = (disk[0].clone(), disk[1].clone());
    sim.set_disk_state(&v.id, &target, Some("Inconsistent"), Some((&source, 42.0)))
        .expect("disk state");
    let state = LinstorViewState::new(c.clone(), &target);
    assert_eq!(
        state.readiness(&v.id).await.expect("readiness"),
        Readiness::Ready(ReadyVia::Resync {
            from: source.clone(),
            percent: Some("42".into())
        })
    );
    // The source is not UpToDate any more: no good data to reach.
    sim.set_disk_state(&v.id, &source, Some("Outdated"), None)
        .expect("disk state");
    let not = state.readiness(&v.id).await.expect("readiness");
    assert!(!not.is_ready(), "{not:?}");
    assert!(not.message().contains("Inconsistent"), "{}", not.message());
}

async fn group_names(c: &LinstorClient) -> Vec<String> {
    c.list_resource_groups()
        .await
        .expect("groups")
        .into_iter()
        .map(|g| g.name)
        .filter(|n| n != "DfltRscGrp")
        .collect()
}

/// Hearth's `hearth-<digest>` groups go with the last definition that uses them, a definition
/// kept for its snapshots included (LINSTOR refuses to delete a group with definitions,
/// CtrlRscGrpApiCallHandler.delete); an admin's group stays; a create that finds its cached
/// group deleted by another coordinator makes it again.
#[tokio::test]
async fn hearths_resource_groups_go_with_their_last_volume() {
    let sim = simulator(false, false);
    let c = client(&sim).await;
    let b = LinstorBackend::new(c.clone());
    let class = [("autoPlace", "1")];
    let v1 = b
        .create_volume(&spec("pvc-g1", 16 * MIB, &class))
        .await
        .expect("create");
    let v2 = b
        .create_volume(&spec("pvc-g2", 16 * MIB, &class))
        .await
        .expect("create");
    let groups = group_names(&c).await;
    assert_eq!(groups.len(), 1, "{groups:?}");
    let snap = b.create_snapshot("snap-g", &v2.id).await.expect("snapshot");
    b.delete_volume(&v1.id).await.expect("delete");
    assert_eq!(group_names(&c).await, groups, "pvc-g2 still uses it");
    b.delete_volume(&v2.id).await.expect("delete");
    assert_eq!(group_names(&c).await, groups, "pvc-g2's snapshot keeps it");
    b.delete_snapshot(&snap.id).await.expect("delete snapshot");
    assert!(group_names(&c).await.is_empty(), "the last user went");

    // Another coordinator deletes the group this one has cached: the next create makes it again.
    let v3 = b
        .create_volume(&spec("pvc-g3", 16 * MIB, &class))
        .await
        .expect("create");
    let other = LinstorBackend::new(c.clone());
    other.delete_volume(&v3.id).await.expect("delete elsewhere");
    assert!(group_names(&c).await.is_empty());
    let v4 = b
        .create_volume(&spec("pvc-g4", 16 * MIB, &class))
        .await
        .expect("create after the group went");
    b.delete_volume(&v4.id).await.expect("delete");
    assert!(group_names(&c).await.is_empty());

    // An admin's group is never Hearth's to delete.
    let admin = hearth_csi::linstor::client::ResourceGroup {
        name: "sc-admin".into(),
        ..Default::default()
    };
    c.create_resource_group(&admin).await.expect("admin group");
    let v5 = b
        .create_volume(&spec("pvc-g5", 16 * MIB, &[("resourceGroup", "sc-admin")]))
        .await
        .expect("create");
    b.delete_volume(&v5.id).await.expect("delete");
    assert_eq!(group_names(&c).await, ["sc-admin"]);
}
