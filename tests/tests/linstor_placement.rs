//! The coordinator's placement of LINSTOR replicas, against the LINSTOR simulator: replicas go
//! to distinct online nodes with the most free space, deterministically; a requisite topology
//! pins them; a volume no node can hold gets RESOURCE_EXHAUSTED saying why; a StorageClass with
//! LINSTOR-only placement rules still goes to LINSTOR's autoplacer.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

mod linstor_common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use hearth_coordinator::engine::{Engine, Timing};
use hearth_coordinator::linstor_placer::LinstorPlacer;
use hearth_coordinator::store::sqlite::SqliteStore;
use hearth_csi::backend::{VolumeBackend, VolumeSpec};
use hearth_csi::linstor::client::ViewFilter;
use hearth_csi::linstor::LinstorBackend;
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

async fn replicas(c: &hearth_csi::linstor::client::LinstorClient, rd: &str) -> BTreeSet<String> {
    c.resource_view(&ViewFilter {
        resources: vec![rd.into()],
        ..ViewFilter::default()
    })
    .await
    .expect("resource view")
    .into_iter()
    .map(|r| r.node_name)
    .collect()
}

#[tokio::test]
async fn the_coordinator_places_linstor_replicas() {
    let sim = simulator(false, false);
    let c = client(&sim).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("c.db"))
        .await
        .expect("store");
    let engine = Engine::new(Arc::new(store), Timing::default(), "test");
    let placer = LinstorPlacer::new(c.clone(), Arc::clone(&engine));
    let backend = LinstorBackend::new(c.clone()).with_placer(Arc::new(placer));

    // Two replicas on two distinct nodes.
    let v = backend
        .create_volume(&spec("pvc-two", 100 * MIB, &[("placementCount", "2")]))
        .await
        .expect("create");
    let two = replicas(&c, &v.id).await;
    assert_eq!(two.len(), 2, "{two:?}");

    // The next single replica goes to the node with the most free space: the third one.
    let v = backend
        .create_volume(&spec("pvc-one", 100 * MIB, &[]))
        .await
        .expect("create");
    let one = replicas(&c, &v.id).await;
    assert_eq!(one.len(), 1);
    assert!(two.is_disjoint(&one), "{two:?} then {one:?}");

    // A requisite topology pins the replica.
    let mut pinned = spec("pvc-pinned", 10 * MIB, &[]);
    pinned.requisite = vec![BTreeMap::from([(
        TOPOLOGY_NODE_KEY.to_owned(),
        "node-b".to_owned(),
    )])];
    let v = backend.create_volume(&pinned).await.expect("create");
    assert_eq!(
        replicas(&c, &v.id).await,
        BTreeSet::from(["node-b".to_owned()])
    );

    // Too big for any node: RESOURCE_EXHAUSTED with the reason, and nothing left behind.
    let err = backend
        .create_volume(&spec("pvc-huge", 1 << 50, &[]))
        .await
        .expect_err("no node fits");
    match &err {
        CsiError::ResourceExhausted(m) => {
            assert!(m.contains("free space"), "{m}");
        }
        other => panic!("expected ResourceExhausted, got {other:?}"),
    }
    assert!(c
        .get_resource_definition("pvc-huge")
        .await
        .is_err_and(|e| e.is_not_found()));

    // LINSTOR-only rules (replicasOnDifferent) go to LINSTOR's autoplacer.
    let v = backend
        .create_volume(&spec(
            "pvc-auto",
            10 * MIB,
            &[("placementCount", "2"), ("replicasOnDifferent", "Aux/zone")],
        ))
        .await
        .expect("create by the autoplacer");
    assert_eq!(replicas(&c, &v.id).await.len(), 2);
}
