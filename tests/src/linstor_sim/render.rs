//! The JSON the simulator answers with, shaped after the LINSTOR REST API v1 schemas
//! (`Node`, `StoragePool`, `ResourceGroup`, `ResourceDefinition`, `VolumeDefinition`,
//! `ResourceWithVolumes`, `Snapshot`, `S3Remote`, `BackupList`, `ControllerVersion`).
//!
//! Owns: rendering only; a test checks these shapes against the OpenAPI file.

use serde_json::{json, Value};

use super::consts::REST_API_VERSION;
use super::devices::Devices;
use super::state::{Group, Node, Pool, Rd, Rsc, Snap, State, Vd};

/// `ControllerVersion`.
pub fn version() -> Value {
    json!({
        "version": "1.28.0-sim",
        "git_hash": "hearth-linstor-sim",
        "build_time": "2026-01-01T00:00:00+00:00",
        "rest_api_version": REST_API_VERSION,
    })
}

/// `Node`.
pub fn node(n: &Node) -> Value {
    json!({
        "name": n.name,
        "type": "Satellite",
        "flags": n.flags,
        "props": n.props,
        "net_interfaces": [{
            "name": "default",
            "address": n.address,
            "satellite_port": 3366,
            "satellite_encryption_type": "PLAIN",
            "is_active": true,
            "uuid": format!("{}-netif", n.uuid),
        }],
        "connection_status": n.connection_status,
        "uuid": n.uuid,
        "storage_providers": ["DISKLESS", "LVM", "LVM_THIN", "ZFS", "ZFS_THIN", "FILE", "FILE_THIN"],
        "resource_layers": ["DRBD", "STORAGE"],
    })
}

/// `StoragePool`, with capacities in KiB (the diskless pool reports LINSTOR's i64::MAX).
pub fn pool(s: &State, p: &Pool) -> Value {
    let diskless = p.kind == "DISKLESS";
    let (free, total) = if diskless {
        (i64::MAX as u64, i64::MAX as u64)
    } else {
        (s.free_kib(&p.node, &p.name), p.total_kib)
    };
    let thin = p.kind.ends_with("_THIN");
    json!({
        "storage_pool_name": p.name,
        "node_name": p.node,
        "provider_kind": p.kind,
        "props": if diskless { json!({}) } else { json!({"StorDriver/StorPoolName": format!("vg/{}", p.name)}) },
        "static_traits": {
            "Provisioning": if thin { "Thin" } else { "Fat" },
            "SupportsSnapshots": if diskless { "false" } else { "true" },
        },
        "free_capacity": free,
        "total_capacity": total,
        "free_space_mgr_name": format!("{}:{}", p.node, p.name),
        "uuid": p.uuid,
        "reports": [],
        "supports_snapshots": !diskless,
        "external_locking": false,
    })
}

/// `ResourceGroup`.
pub fn group(g: &Group) -> Value {
    json!({
        "name": g.name,
        "description": g.description,
        "props": g.props,
        "select_filter": g.filter,
        "uuid": g.uuid,
    })
}

/// `VolumeDefinition`.
pub fn vd(v: &Vd) -> Value {
    json!({
        "volume_number": v.number,
        "size_kib": v.size_kib,
        "props": v.props,
        "flags": [],
        "layer_data": [
            {"type": "DRBD", "data": {"resource_name_suffix": "", "volume_number": v.number, "minor_number": v.minor}},
            {"type": "STORAGE"},
        ],
        "uuid": v.uuid,
    })
}

/// `ResourceDefinition`, with volume definitions when asked.
pub fn rd(r: &Rd, with_vds: bool) -> Value {
    let mut v = json!({
        "name": r.name,
        "props": r.props,
        "flags": [],
        "layer_data": [
            {"type": "DRBD", "data": {"resource_name_suffix": "", "peer_slots": 7, "al_stripes": 1,
             "al_stripe_size_kib": 32, "port": r.port, "transport_type": "IP",
             "secret": "simulated-secret", "down": false}},
            {"type": "STORAGE"},
        ],
        "uuid": r.uuid,
        "resource_group_name": r.group,
    });
    if with_vds {
        v["volume_definitions"] = r.vds.values().map(vd).collect();
    }
    v
}

/// `Volume` of a resource on a node: the shared device, `UpToDate` or `Diskless`.
pub fn volume(rd: &str, x: &Rsc, v: &Vd, kind: &str) -> Value {
    let diskless = x.pool.is_none();
    let path = match (&v.backing, x.has_drbd(), &x.pool) {
        // Without DRBD the device is the storage layer's own volume.
        (None, false, Some(pool)) => format!("/dev/{pool}/{rd}_{:05}", v.number),
        _ => Devices::device_path(v.backing.as_ref(), v.minor),
    };
    let disk_state = x
        .disk_state
        .clone()
        .unwrap_or_else(|| if diskless { "Diskless" } else { "UpToDate" }.to_owned());
    let replication: serde_json::Map<String, Value> = x
        .sync_from
        .iter()
        .map(|(peer, done)| {
            (
                peer.clone(),
                json!({"replication_state": "SyncTarget", "done_percentage": done}),
            )
        })
        .collect();
    json!({
        "volume_number": v.number,
        "storage_pool_name": x.pool.clone().unwrap_or_else(|| super::state::DISKLESS_POOL.to_owned()),
        "provider_kind": kind,
        "device_path": path,
        "allocated_size_kib": if diskless { 0 } else { v.size_kib },
        "usable_size_kib": v.device_kib,
        "props": {},
        "flags": [],
        "state": {"disk_state": disk_state, "replication_states": replication},
        "layer_data_list": x.layers.iter().map(|l| if l == "DRBD" {
            json!({"type": "DRBD",
                   "data": {"drbd_volume_definition": {"volume_number": v.number, "minor_number": v.minor},
                            "device_path": path, "usable_size_kib": v.device_kib,
                            "disk_state": disk_state}})
        } else {
            json!({"type": l, "data": {"device_path": path, "usable_size_kib": v.device_kib}})
        }).collect::<Vec<_>>(),
        "uuid": format!("{}-{}", x.uuid, v.number),
    })
}

/// The `layer_object` tree of a stack, top first.
fn layer_object(layers: &[String]) -> Value {
    layers.iter().rev().fold(Value::Null, |child, l| {
        let children = if child.is_null() { vec![] } else { vec![child] };
        json!({"type": l, "children": children})
    })
}

/// `ResourceWithVolumes`.
pub fn resource(s: &State, r: &Rd, x: &Rsc) -> Value {
    let mut flags: Vec<&str> = Vec::new();
    if x.pool.is_none() {
        flags.extend(["DISKLESS", "DRBD_DISKLESS"]);
    }
    if x.tie_breaker {
        flags.push("TIE_BREAKER");
    }
    let kind = match &x.pool {
        Some(p) => s
            .pools
            .get(&(x.node.clone(), p.clone()))
            .map_or("LVM_THIN", |p| p.kind.as_str()),
        None => "DISKLESS",
    };
    json!({
        "name": r.name,
        "node_name": x.node,
        "props": x.props,
        "flags": flags,
        "layer_object": layer_object(&x.layers),
        "state": {"in_use": x.in_use},
        "uuid": x.uuid,
        "create_timestamp": x.created_ms,
        "volumes": r.vds.values().map(|v| volume(&r.name, x, v, kind)).collect::<Vec<_>>(),
    })
}

/// `Snapshot`.
pub fn snapshot(r: &Rd, sn: &Snap) -> Value {
    json!({
        "name": sn.name,
        "resource_name": r.name,
        "nodes": sn.nodes,
        "props": {},
        "flags": ["SUCCESSFUL"],
        "volume_definitions": sn.vols.iter().map(|(n, (size, _))| json!({"volume_number": n, "size_kib": size})).collect::<Vec<_>>(),
        "uuid": sn.uuid,
        "snapshots": sn.nodes.iter().map(|node| json!({
            "snapshot_name": sn.name,
            "node_name": node,
            "create_timestamp": sn.created_ms,
            "flags": [],
            "uuid": format!("{}-{node}", sn.uuid),
        })).collect::<Vec<_>>(),
    })
}

/// `S3Remote` (keys never echoed).
pub fn s3_remote(r: &super::state::Remote) -> Value {
    json!({
        "remote_name": r.name,
        "endpoint": r.endpoint,
        "bucket": r.bucket,
        "region": r.region,
        "use_path_style": r.use_path_style,
    })
}

/// `BackupList` of one remote, optionally of one resource.
pub fn backups(s: &State, remote: &str, rsc: Option<&str>) -> Value {
    let mut linstor = serde_json::Map::new();
    for b in s.backups.get(remote).into_iter().flatten() {
        if rsc.is_some_and(|r| r != b.rsc) {
            continue;
        }
        linstor.insert(
            b.id.clone(),
            json!({
                "id": b.id,
                "start_timestamp": b.start_ms,
                "finished_timestamp": b.finished_ms,
                "origin_rsc": b.rsc,
                "origin_snap": b.snap,
                "origin_node": b.node,
                "vlms": [{"vlm_nr": 0}],
                "success": true,
                "shipping": false,
                "restorable": true,
            }),
        );
    }
    json!({"linstor": linstor, "other": {"files": []}})
}
