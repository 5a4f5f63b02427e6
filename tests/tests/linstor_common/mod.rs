//! Shared by the LINSTOR client and simulator tests: a simulator per test, a client for it,
//! and one scenario that calls every client method once (with a few expected errors), so
//! that it both tests the client and makes the simulator answer on every route.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod tls;

use std::time::Duration;

use anyhow::{ensure, Context};
use hearth_csi::linstor::client::*;
use hearth_tests::linstor_sim::{DeviceMode, SimConfig, Simulator};

/// A simulator with three nodes and 1 GiB pools; loop devices when `devices` and root.
pub fn simulator(devices: bool, record: bool) -> Simulator {
    Simulator::start(SimConfig {
        pool_size_kib: 1 << 20,
        devices: if devices {
            DeviceMode::Loop
        } else {
            DeviceMode::None
        },
        record,
        ..SimConfig::default()
    })
    .expect("start the LINSTOR simulator")
}

/// A client for `sim` with short timeouts and fast retries.
pub fn config(sim: &Simulator) -> ClientConfig {
    let mut c = ClientConfig::new(sim.url());
    c.request_timeout = Duration::from_millis(800);
    c.retry = RetryPolicy {
        attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
    };
    c
}

pub async fn client(sim: &Simulator) -> LinstorClient {
    LinstorClient::connect(&config(sim))
        .await
        .expect("handshake with the simulator")
}

/// The objects the simulator holds besides its default resource group, and its leaks.
pub fn leftovers(sim: &Simulator) -> Vec<String> {
    let s = sim.state();
    let mut out: Vec<String> = Vec::new();
    for key in ["resource_definitions", "resources", "snapshots", "remotes"] {
        for v in s["objects"][key].as_array().into_iter().flatten() {
            out.push(format!("{key}: {v}"));
        }
    }
    for g in s["objects"]["resource_groups"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if g != "DfltRscGrp" {
            out.push(format!("resource_groups: {g}"));
        }
    }
    for key in ["loop_devices", "files"] {
        for v in s["devices"][key].as_array().into_iter().flatten() {
            out.push(format!("{key}: {v}"));
        }
    }
    for v in s["leaks"].as_array().into_iter().flatten() {
        out.push(format!("leak: {v}"));
    }
    out
}

const MIB_KIB: u64 = 1024;

/// Calls every client method at least once and checks the answers.
pub async fn every_method(c: &LinstorClient) -> anyhow::Result<()> {
    let v = c.handshake().await?;
    ensure!(v.rest_api_version.starts_with("1."), "version {v:?}");

    // Controller properties.
    let set = PropsModify {
        override_props: [("Aux/hearth".to_owned(), "1".to_owned())].into(),
        ..Default::default()
    };
    c.modify_controller_properties(&set).await?;
    ensure!(
        c.controller_properties()
            .await?
            .get("Aux/hearth")
            .map(String::as_str)
            == Some("1")
    );

    // Nodes and pools.
    let nodes = c.list_nodes().await?;
    ensure!(
        nodes.len() == 3 && nodes.iter().all(Node::is_online),
        "{nodes:?}"
    );
    ensure!(c.get_node("node-a").await?.name == "node-a");
    let pools = c.list_storage_pools("node-a").await?;
    ensure!(
        pools.iter().any(StoragePool::is_diskless)
            && pools.iter().any(|p| p.storage_pool_name == "data")
    );
    let data = c.get_storage_pool("node-a", "data").await?;
    ensure!(
        data.total_capacity == Some(1 << 20) && data.free_capacity == Some(1 << 20),
        "{data:?}"
    );
    let view = c
        .storage_pool_view(&ViewFilter {
            storage_pools: vec!["data".into()],
            ..Default::default()
        })
        .await?;
    ensure!(view.len() == 3, "{view:?}");

    // Resource group.
    let rg = ResourceGroup {
        name: "sc-fast".into(),
        props: [("DrbdOptions/Net/protocol".to_owned(), "C".to_owned())].into(),
        select_filter: AutoSelectFilter {
            place_count: Some(2),
            storage_pool_list: vec!["data".into()],
            layer_stack: vec!["DRBD".into(), "STORAGE".into()],
            ..Default::default()
        },
        ..Default::default()
    };
    c.create_resource_group(&rg).await?;
    ensure!(
        c.get_resource_group("sc-fast")
            .await?
            .select_filter
            .place_count
            == Some(2)
    );
    ensure!(c
        .list_resource_groups()
        .await?
        .iter()
        .any(|g| g.name == "sc-fast"));
    let modify = ResourceGroupModify {
        description: Some("fast".into()),
        override_props: [("Aux/sc".to_owned(), "fast".to_owned())].into(),
        ..Default::default()
    };
    c.modify_resource_group("sc-fast", &modify).await?;

    // Definitions.
    c.create_resource_definition(&ResourceDefinitionCreate::new("pvc-a", Some("sc-fast")))
        .await?;
    let rd = c.get_resource_definition("pvc-a").await?;
    ensure!(
        rd.resource_group_name.as_deref() == Some("sc-fast"),
        "{rd:?}"
    );
    let two = ResourceDefinitionModify {
        override_props: [(
            "DrbdOptions/Net/allow-two-primaries".to_owned(),
            "yes".to_owned(),
        )]
        .into(),
        ..Default::default()
    };
    c.modify_resource_definition("pvc-a", &two).await?;
    let off = ResourceDefinitionModify {
        delete_props: vec!["DrbdOptions/Net/allow-two-primaries".into()],
        ..Default::default()
    };
    c.modify_resource_definition("pvc-a", &off).await?;
    ensure!(!c
        .get_resource_definition("pvc-a")
        .await?
        .props
        .contains_key("DrbdOptions/Net/allow-two-primaries"));
    c.create_volume_definition("pvc-a", &VolumeDefinitionCreate::new(0, 64 * MIB_KIB))
        .await?;
    let vd = c.get_volume_definition("pvc-a", 0).await?;
    ensure!(
        vd.size_kib == 64 * MIB_KIB && vd.drbd_minor().is_some_and(|m| m >= 1000),
        "{vd:?}"
    );
    ensure!(c.list_volume_definitions("pvc-a").await?.len() == 1);
    let listed = c.list_resource_definitions(true).await?;
    ensure!(
        listed
            .iter()
            .any(|r| r.name == "pvc-a" && r.volume_definitions.len() == 1),
        "{listed:?}"
    );

    // Placement, attach, views.
    c.autoplace("pvc-a", &AutoPlaceRequest::default()).await?;
    let rscs = c.list_resources("pvc-a").await?;
    // Two diskful replicas, and LINSTOR's quorum tiebreaker on the third node.
    ensure!(
        rscs.iter().filter(|r| !r.is_diskless()).count() == 2
            && rscs.iter().filter(|r| r.is_tie_breaker()).count() == 1,
        "{rscs:?}"
    );
    let spare = ["node-a", "node-b", "node-c"]
        .into_iter()
        .find(|n| rscs.iter().all(|r| r.node_name != *n || r.is_tie_breaker()))
        .context("a node without a diskful replica")?;
    c.make_available("pvc-a", spare, &MakeAvailable::default())
        .await?;
    c.make_available("pvc-a", spare, &MakeAvailable::default())
        .await?; // idempotent
    let made = c.get_resource("pvc-a", spare).await?;
    ensure!(made.is_diskless() && !made.is_tie_breaker(), "{made:?}");
    ensure!(c.get_resource_volume("pvc-a", spare, 0).await?.disk_state() == Some("Diskless"));
    let view = c
        .resource_view(&ViewFilter {
            resources: vec!["pvc-a".into()],
            ..Default::default()
        })
        .await?;
    ensure!(
        view.len() == 3
            && view
                .iter()
                .all(|r| r.volumes.iter().all(|v| v.device_path.is_some())),
        "{view:?}"
    );
    let up = view
        .iter()
        .filter(|r| r.volumes.first().and_then(Volume::disk_state) == Some("UpToDate"))
        .count();
    ensure!(up == 2, "{view:?}");
    let aux = PropsModify {
        override_props: [("Aux/attached".to_owned(), "yes".to_owned())].into(),
        ..Default::default()
    };
    c.modify_resource("pvc-a", spare, &aux).await?;
    let grow = VolumeDefinitionModify {
        size_kib: Some(128 * MIB_KIB),
        ..Default::default()
    };
    c.modify_volume_definition("pvc-a", 0, &grow).await?;
    ensure!(c.get_volume_definition("pvc-a", 0).await?.size_kib == 128 * MIB_KIB);

    // Explicit placement.
    c.create_resource_definition(&ResourceDefinitionCreate::new("pvc-b", None))
        .await?;
    c.create_volume_definition("pvc-b", &VolumeDefinitionCreate::new(0, 32 * MIB_KIB))
        .await?;
    c.create_resources(
        "pvc-b",
        &[
            ResourceCreate::diskful("pvc-b", "node-a", Some("data")),
            ResourceCreate::diskless("pvc-b", "node-b"),
        ],
    )
    .await?;
    let free = c.get_storage_pool("node-a", "data").await?.free_capacity;
    ensure!(
        free.is_some_and(|f| f < (1 << 20) - 32 * MIB_KIB),
        "free {free:?}"
    );

    // Snapshots, restore, clone.
    c.create_snapshot("pvc-a", "snap-1", &[]).await?;
    let snap = c.get_snapshot("pvc-a", "snap-1").await?;
    ensure!(
        snap.is_successful()
            && snap.created_ms().is_some()
            && snap.volume_definitions[0].size_kib == 128 * MIB_KIB,
        "{snap:?}"
    );
    ensure!(c.list_snapshots("pvc-a").await?.len() == 1);
    c.create_multi_snapshot("snap-m", &["pvc-a".into(), "pvc-b".into()])
        .await?;
    ensure!(c.snapshot_view(&ViewFilter::default()).await?.len() == 3);
    c.create_resource_definition(&ResourceDefinitionCreate::new("pvc-r", Some("sc-fast")))
        .await?;
    let restore = SnapshotRestore {
        to_resource: "pvc-r".into(),
        nodes: Vec::new(),
    };
    c.restore_volume_definitions("pvc-a", "snap-1", &restore)
        .await?;
    c.restore_resources("pvc-a", "snap-1", &restore).await?;
    ensure!(
        c.list_resources("pvc-r")
            .await?
            .iter()
            .filter(|r| !r.is_diskless())
            .count()
            == 2
    );
    let started = c
        .clone_resource_definition(
            "pvc-a",
            &CloneRequest {
                name: "pvc-c".into(),
                ..Default::default()
            },
        )
        .await?;
    ensure!(
        started.clone_name == "pvc-c" && started.location.ends_with("/clone/pvc-c"),
        "{started:?}"
    );
    let _first = c.clone_status("pvc-a", "pvc-c").await?;
    c.wait_clone("pvc-a", "pvc-c", Duration::from_secs(10))
        .await?;
    ensure!(c.clone_status("pvc-a", "pvc-c").await?.is_complete());

    // Remotes and backups.
    let remote = S3Remote {
        remote_name: "s3-backup".into(),
        endpoint: "http://127.0.0.1:9000".into(),
        bucket: "b".into(),
        region: "r".into(),
        access_key: "ak".into(),
        secret_key: "sk".into(),
        use_path_style: true,
    };
    c.create_s3_remote(&remote).await?;
    ensure!(c.list_s3_remotes().await?.len() == 1);
    ensure!(c.list_remotes().await?.s3_remotes.len() == 1);
    c.create_backup(
        "s3-backup",
        &BackupCreate {
            rsc_name: "pvc-a".into(),
            snap_name: Some("snap-1".into()),
            ..Default::default()
        },
    )
    .await?;
    let backups = c.list_backups("s3-backup", Some("pvc-a")).await?;
    let id = backups.linstor.keys().next().cloned().context("a backup")?;
    c.delete_backups(
        "s3-backup",
        &BackupDelete {
            id: Some(id),
            ..Default::default()
        },
    )
    .await?;
    c.delete_remote("s3-backup").await?;

    // Expected errors answer on the same routes.
    ensure!(c
        .get_resource_definition("pvc-none")
        .await
        .is_err_and(|e| e.is_not_found()));
    ensure!(c
        .create_resource_definition(&ResourceDefinitionCreate::new("pvc-a", None))
        .await
        .is_err_and(|e| e.is_already_exists()));

    // Teardown.
    c.delete_resource("pvc-a", spare).await?;
    for (rd, snap) in [
        ("pvc-a", "snap-1"),
        ("pvc-a", "snap-m"),
        ("pvc-b", "snap-m"),
    ] {
        c.delete_snapshot(rd, snap).await?;
    }
    c.delete_volume_definition("pvc-b", 0).await?;
    for rd in ["pvc-a", "pvc-b", "pvc-r", "pvc-c"] {
        c.delete_resource_definition(rd).await?;
    }
    c.delete_resource_group("sc-fast").await?;
    Ok(())
}
