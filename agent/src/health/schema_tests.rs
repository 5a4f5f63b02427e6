//! Snapshot test of the `/status` schema: every field path of a fully populated snapshot,
//! compared with `schema.golden`. A failing test means a field was renamed or removed (a
//! contract break: see docs/status.md) or added (update the golden file and the doc).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::snapshot::*;

fn paths(prefix: &str, v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                // Keys of maps (RPC names, error codes) are data, not schema.
                let key = if prefix.ends_with(".operations") || prefix.ends_with(".errors") {
                    "<key>"
                } else {
                    k.as_str()
                };
                let p = format!("{prefix}.{key}");
                out.insert(p.clone());
                paths(&p, v, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                paths(&format!("{prefix}[]"), item, out);
            }
        }
        _ => {}
    }
}

fn full() -> Snapshot {
    let op = OperationStats {
        count: 1,
        errors: BTreeMap::from([("NotFound".into(), 1)]),
        seconds_sum: 0.1,
    };
    Snapshot {
        schema_version: SCHEMA_VERSION,
        storage: Section::ok(Storage {
            backend: "loopfile".into(),
            pools: vec![StoragePool {
                name: "p".into(),
                node: "n".into(),
                kind: "LVM_THIN".into(),
                total_bytes: Some(1),
                free_bytes: Some(1),
            }],
            volumes: vec![VolumeHealth {
                device: Some("/dev/loop0".into()),
                staged_paths: vec!["/s".into()],
                published_paths: vec!["/p".into()],
                fs_used_bytes: Some(1),
                fs_total_bytes: Some(2),
                ..VolumeHealth::default()
            }],
        }),
        drbd: Section::ok(Drbd {
            resources: vec![DrbdResource {
                disk_states: vec!["UpToDate".into()],
                peers: vec![DrbdPeer {
                    replication: vec!["Established".into()],
                    peer_disk_states: vec!["UpToDate".into()],
                    ..DrbdPeer::default()
                }],
                ..DrbdResource::default()
            }],
        }),
        network: Section::ok(Network {
            links: vec![LinkHealth {
                mtu: Some(1500),
                ..LinkHealth::default()
            }],
            owned_addresses: vec!["a".into()],
            owned_routes: vec!["r".into()],
            floating_ips: vec![FloatingIpHealth {
                epoch: Some(1),
                last_announced_unix: Some(1.0),
                ..FloatingIpHealth::default()
            }],
            reconciler: Some(Reconciler {
                last_pass_unix: Some(1.0),
                problems: vec!["p".into()],
                stopped: Some("s".into()),
                ..Reconciler::default()
            }),
        }),
        coordinator: Section::ok(Coordinator {
            floating_ips: vec![FloatingIpHealth::default()],
            responder: Some(ResponderCounters::default()),
            ..Coordinator::default()
        }),
        kubelet_registration: Some(Section::ok(KubeletRegistration {
            error: Some("e".into()),
            notified_unix: Some(1.0),
            ..KubeletRegistration::default()
        })),
        node: Section::ok(NodeStats {
            disks: vec![DiskCounters::default()],
            interfaces: vec![InterfaceCounters::default()],
            ..NodeStats::default()
        }),
        csi: CsiStats {
            operations: BTreeMap::from([("/csi.v1.Node/X".into(), op)]),
        },
        checks: vec![Check {
            hint: Some("h".into()),
            ..Check::default()
        }],
        ..Snapshot::default()
    }
}

#[test]
fn field_names_match_the_golden_file() {
    let mut snap = full();
    snap.drbd.reason = Some("r".into());
    let mut out = BTreeSet::new();
    paths(
        "",
        &serde_json::to_value(&snap).expect("serializes"),
        &mut out,
    );
    let actual: Vec<&str> = out.iter().map(String::as_str).collect();
    let golden: Vec<&str> = include_str!("schema.golden").lines().collect();
    assert_eq!(actual, golden, "actual schema:\n{}", actual.join("\n"));
}

#[test]
fn round_trips_through_json() {
    let snap = full();
    let json = serde_json::to_string(&snap).expect("serializes");
    let back: Snapshot = serde_json::from_str(&json).expect("parses");
    assert_eq!(back, snap);
}
