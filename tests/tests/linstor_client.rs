//! The LINSTOR REST client against the LINSTOR simulator (a stand-in for a LINSTOR
//! controller, not LINSTOR): the handshake, every method, exact error mapping, retries across
//! injected faults, HTTPS with client certificates, and no leaked objects or devices after
//! faults. With root, the simulator backs volumes with real loop devices.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

mod linstor_common;

use std::time::Duration;

use hearth_csi::linstor::client::consts::{
    FAIL_EXISTS_RSC_DFN, FAIL_EXISTS_SNAPSHOT_DFN, FAIL_NOT_ENOUGH_NODES,
};
use hearth_csi::linstor::client::*;
use hearth_tests::linstor_sim::{Fault, FaultKind};
use linstor_common::{client, config, every_method, leftovers, simulator};

const GIB_KIB: u64 = 1 << 20;

async fn volume(c: &LinstorClient, rd: &str, size_kib: u64) {
    c.create_resource_definition(&ResourceDefinitionCreate::new(rd, None))
        .await
        .unwrap();
    c.create_volume_definition(rd, &VolumeDefinitionCreate::new(0, size_kib))
        .await
        .unwrap();
}

#[tokio::test]
async fn handshake_counts_calls() {
    let sim = simulator(false, false);
    let c = client(&sim).await;
    assert_eq!(c.calls(), 1);
    assert!(c.base_url().starts_with("http://127.0.0.1:"));
    let v = c.handshake().await.unwrap();
    assert_eq!(v.rest_api_version, "1.28.0");
    assert_eq!(c.calls(), 2);
    assert_eq!(sim.state()["routes"]["GET /v1/controller/version"], 2);
}

#[tokio::test]
async fn every_client_method_against_the_simulator() {
    let sim = simulator(false, false);
    let c = client(&sim).await;
    every_method(&c).await.unwrap();
    assert_eq!(leftovers(&sim), Vec::<String>::new());
}

#[tokio::test]
async fn exact_error_mapping() {
    let sim = simulator(false, false);
    let c = client(&sim).await;
    volume(&c, "pvc-e", 64 << 10).await;

    let e = c
        .create_resource_definition(&ResourceDefinitionCreate::new("pvc-e", None))
        .await
        .unwrap_err();
    assert!(e.is_already_exists(), "{e}");
    assert_eq!(e.ret_code().map(|r| r & 0x7FFF), Some(FAIL_EXISTS_RSC_DFN));
    assert!(
        e.ret_code().is_some_and(|r| r >> 62 == 3),
        "error mask: {e}"
    );
    let e = c
        .create_volume_definition("pvc-e", &VolumeDefinitionCreate::new(0, 1024))
        .await
        .unwrap_err();
    assert!(e.is_already_exists(), "{e}");

    for e in [
        c.get_resource_definition("pvc-missing").await.unwrap_err(),
        c.get_node("node-z").await.unwrap_err(),
        c.get_resource("pvc-e", "node-a").await.unwrap_err(),
        c.delete_resource_definition("pvc-missing")
            .await
            .unwrap_err(),
        c.get_snapshot("pvc-e", "nope").await.unwrap_err(),
    ] {
        assert!(e.is_not_found(), "{e}");
    }

    c.autoplace("pvc-e", &AutoPlaceRequest::default())
        .await
        .unwrap();
    let node = c.list_resources("pvc-e").await.unwrap()[0]
        .node_name
        .clone();
    sim.set_in_use("pvc-e", &node, true).unwrap();
    let e = c.delete_resource("pvc-e", &node).await.unwrap_err();
    assert!(e.is_in_use(), "{e}");
    let e = c.delete_resource_definition("pvc-e").await.unwrap_err();
    assert!(e.is_in_use(), "{e}");
    sim.set_in_use("pvc-e", &node, false).unwrap();

    let many = AutoPlaceRequest {
        select_filter: AutoSelectFilter {
            place_count: Some(5),
            ..Default::default()
        },
        ..Default::default()
    };
    let e = c.autoplace("pvc-e", &many).await.unwrap_err();
    assert!(matches!(e, LinstorError::Api { status: 500, .. }), "{e}");
    assert_eq!(
        e.ret_code().map(|r| r & 0x7FFF),
        Some(FAIL_NOT_ENOUGH_NODES)
    );

    let shrink = VolumeDefinitionModify {
        size_kib: Some(1024),
        ..Default::default()
    };
    assert!(matches!(
        c.modify_volume_definition("pvc-e", 0, &shrink)
            .await
            .unwrap_err(),
        LinstorError::Api { .. }
    ));

    c.create_snapshot("pvc-e", "s1", &[]).await.unwrap();
    let e = c.delete_resource_definition("pvc-e").await.unwrap_err();
    assert_eq!(
        e.ret_code().map(|r| r & 0x7FFF),
        Some(FAIL_EXISTS_SNAPSHOT_DFN),
        "{e}"
    );
    assert!(c
        .create_snapshot("pvc-e", "s1", &[])
        .await
        .unwrap_err()
        .is_already_exists());
    c.delete_snapshot("pvc-e", "s1").await.unwrap();
    c.delete_resource_definition("pvc-e").await.unwrap();
    assert_eq!(leftovers(&sim), Vec::<String>::new());
}

#[tokio::test]
async fn retries_reads_across_500s_and_drops() {
    let sim = simulator(false, false);
    let c = client(&sim).await;
    sim.add_fault(Fault::new(FaultKind::Http500, Some("GET"), "/v1/nodes", 2));
    let before = c.calls();
    assert_eq!(c.list_nodes().await.unwrap().len(), 3);
    assert_eq!(c.calls() - before, 3, "two failed tries and one good one");

    sim.add_fault(Fault::new(FaultKind::Drop, Some("GET"), "/v1/view", 1));
    assert!(c.storage_pool_view(&ViewFilter::default()).await.is_ok());

    sim.add_fault(Fault::new(
        FaultKind::Http503,
        None,
        "/v1/resource-groups",
        10,
    ));
    let before = c.calls();
    let e = c.list_resource_groups().await.unwrap_err();
    assert!(
        matches!(e, LinstorError::Api { status: 503, .. }) && e.is_transient(),
        "{e}"
    );
    assert_eq!(c.calls() - before, 4, "bounded by RetryPolicy::attempts");
    sim.clear_faults();
}

#[tokio::test]
async fn mutations_retry_only_where_safe() {
    let sim = simulator(false, false);
    let c = client(&sim).await;

    // A 500 carries the controller's verdict: a create is not replayed.
    sim.add_fault(Fault::new(
        FaultKind::Http500,
        Some("POST"),
        "/v1/resource-definitions",
        1,
    ));
    let before = c.calls();
    let e = c
        .create_resource_definition(&ResourceDefinitionCreate::new("pvc-1", None))
        .await
        .unwrap_err();
    assert!(matches!(e, LinstorError::Api { status: 500, .. }), "{e}");
    assert_eq!(c.calls() - before, 1);

    // 503 before the controller acted: replayed.
    sim.add_fault(Fault::new(
        FaultKind::Http503,
        Some("POST"),
        "/v1/resource-definitions",
        2,
    ));
    c.create_resource_definition(&ResourceDefinitionCreate::new("pvc-1", None))
        .await
        .unwrap();

    // Applied, then the answer was lost: the replay says "already exists", which the caller
    // treats as done.
    sim.add_fault(
        Fault::new(
            FaultKind::Http503,
            Some("POST"),
            "/v1/resource-definitions/pvc-1/volume-definitions",
            1,
        )
        .applied(),
    );
    let e = c
        .create_volume_definition("pvc-1", &VolumeDefinitionCreate::new(0, 1 << 16))
        .await
        .unwrap_err();
    assert!(e.is_already_exists(), "{e}");
    assert_eq!(c.list_volume_definitions("pvc-1").await.unwrap().len(), 1);

    // A timeout whose request lands late: the retry finds the object or creates it; either way
    // there is exactly one.
    sim.add_fault(
        Fault::new(
            FaultKind::Timeout,
            Some("POST"),
            "/v1/resource-definitions/pvc-1/autoplace",
            1,
        )
        .delay(Duration::from_millis(1200)),
    );
    match c.autoplace("pvc-1", &AutoPlaceRequest::default()).await {
        Ok(_) => {}
        Err(e) => assert!(e.is_already_exists(), "{e}"),
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let diskful = c.list_resources("pvc-1").await.unwrap();
    assert_eq!(diskful.iter().filter(|r| !r.is_diskless()).count(), 2);

    // A dropped connection: a delete is replayed (NotFound on replay is the caller's success).
    sim.add_fault(
        Fault::new(
            FaultKind::Drop,
            Some("DELETE"),
            "/v1/resource-definitions/pvc-1",
            1,
        )
        .applied(),
    );
    match c.delete_resource_definition("pvc-1").await {
        Ok(_) => {}
        Err(e) => assert!(e.is_not_found(), "{e}"),
    }

    // Backup shipping is never replayed after the request left.
    c.create_s3_remote(&S3Remote {
        remote_name: "s3".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    volume(&c, "pvc-2", 1 << 16).await;
    c.autoplace("pvc-2", &AutoPlaceRequest::default())
        .await
        .unwrap();
    sim.add_fault(Fault::new(
        FaultKind::Drop,
        Some("POST"),
        "/v1/remotes/s3/backups",
        1,
    ));
    let before = c.calls();
    let e = c
        .create_backup(
            "s3",
            &BackupCreate {
                rsc_name: "pvc-2".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, LinstorError::Transport { .. }), "{e}");
    assert_eq!(c.calls() - before, 1);

    // Injected in-use answers map to InUse.
    sim.add_fault(Fault::new(
        FaultKind::InUse,
        Some("DELETE"),
        "/v1/resource-definitions/pvc-2",
        1,
    ));
    assert!(c
        .delete_resource_definition("pvc-2")
        .await
        .unwrap_err()
        .is_in_use());

    c.delete_resource_definition("pvc-2").await.unwrap();
    c.delete_remote("s3").await.unwrap();
    assert_eq!(leftovers(&sim), Vec::<String>::new());
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_bounded() {
    let sim = simulator(false, false);
    let mut cfg = config(&sim);
    cfg.request_timeout = Duration::from_millis(200);
    let c = LinstorClient::connect(&cfg).await.unwrap();
    sim.add_fault(
        Fault::new(FaultKind::Timeout, Some("GET"), "/v1/nodes", 10)
            .delay(Duration::from_millis(600)),
    );
    let before = c.calls();
    let e = c.list_nodes().await.unwrap_err();
    assert!(
        matches!(e, LinstorError::Timeout { .. }) && e.is_transient(),
        "{e}"
    );
    assert_eq!(c.calls() - before, 4);
    sim.clear_faults();

    let addr = sim.addr();
    drop(sim);
    let c = LinstorClient::new(&ClientConfig {
        url: format!("http://{addr}"),
        ..cfg
    })
    .unwrap();
    let e = c.list_nodes().await.unwrap_err();
    assert!(matches!(e, LinstorError::Transport { .. }), "{e}");
    assert_eq!(c.calls(), 4);
}

#[tokio::test]
async fn refuses_an_old_rest_api() {
    // A one-shot server that answers like a LINSTOR from before REST API 1.0.4.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let body = r#"{"version":"0.9.0","rest_api_version":"1.0.3"}"#;
            let resp = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len());
            let _ = s.write_all(resp.as_bytes()).await;
        }
    });
    let e = LinstorClient::connect(&ClientConfig::new(format!("linstor://{addr}")))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, LinstorError::Version { found, .. } if found == "1.0.3"),
        "{e}"
    );
}

#[tokio::test]
async fn https_with_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let certs = linstor_common::tls::write(dir.path());
    let sim = hearth_tests::linstor_sim::Simulator::start(hearth_tests::linstor_sim::SimConfig {
        tls: Some(certs.server.clone()),
        ..Default::default()
    })
    .unwrap();
    let url = format!("linstor+ssl://localhost:{}", sim.addr().port());
    let good = ClientConfig::new(&url).with_tls(certs.client.clone());
    let c = LinstorClient::connect(&good).await.unwrap();
    assert_eq!(c.list_nodes().await.unwrap().len(), 3);
    assert!(c.base_url().starts_with("https://localhost:"));

    let mut no_cert = good.clone();
    no_cert.tls.cert_file = None;
    no_cert.tls.key_file = None;
    no_cert.retry.attempts = 1;
    let e = LinstorClient::connect(&no_cert).await.unwrap_err();
    assert!(matches!(e, LinstorError::Transport { .. }), "{e}");

    let mut wrong_ca = good;
    wrong_ca.tls.ca_file = Some(certs.client.cert_file.clone().unwrap());
    wrong_ca.retry.attempts = 1;
    assert!(LinstorClient::connect(&wrong_ca).await.is_err());
}

#[tokio::test]
async fn clone_polling_and_capacity() {
    let sim = simulator(false, false);
    let c = client(&sim).await;
    volume(&c, "pvc-src", 100 << 10).await;
    c.autoplace("pvc-src", &AutoPlaceRequest::default())
        .await
        .unwrap();
    let before = c.calls();
    c.clone_resource_definition(
        "pvc-src",
        &CloneRequest {
            name: "pvc-dst".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(
        !c.clone_status("pvc-src", "pvc-dst")
            .await
            .unwrap()
            .is_complete(),
        "CLONING at first"
    );
    c.wait_clone("pvc-src", "pvc-dst", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(c.calls() - before >= 3, "polled");
    let e = c
        .wait_clone("pvc-src", "pvc-none", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");

    let pools = c
        .storage_pool_view(&ViewFilter {
            storage_pools: vec!["data".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let used: u64 = pools
        .iter()
        .map(|p| p.total_capacity.unwrap() - p.free_capacity.unwrap())
        .sum();
    assert_eq!(
        used,
        4 * (100 << 10),
        "two replicas each of source and clone"
    );
    let big = ResourceDefinitionCreate::new("pvc-big", None);
    c.create_resource_definition(&big).await.unwrap();
    c.create_volume_definition("pvc-big", &VolumeDefinitionCreate::new(0, 2 * GIB_KIB))
        .await
        .unwrap();
    let e = c
        .autoplace("pvc-big", &AutoPlaceRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        e.ret_code().map(|r| r & 0x7FFF),
        Some(FAIL_NOT_ENOUGH_NODES),
        "{e}"
    );
    for rd in ["pvc-big", "pvc-dst", "pvc-src"] {
        c.delete_resource_definition(rd).await.unwrap();
    }
    assert_eq!(leftovers(&sim), Vec::<String>::new());
}
