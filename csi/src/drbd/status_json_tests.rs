use proptest::prelude::*;

use super::*;
use crate::drbd::test_support::{reference_samples, STATUS_DRBD90, STATUS_RECENT};

#[test]
fn parses_the_drbd90_shape() {
    let state = parse(STATUS_DRBD90).expect("parses");
    assert!(state.complete);
    let aaa = &state.resources["pvc-aaa"];
    assert_eq!((aaa.node_id, &aaa.role), (Some(0), &Role::Primary));
    assert!(aaa.suspended.is_empty());
    let dev = &aaa.devices[&0];
    assert_eq!(
        (dev.minor, &dev.disk, dev.open),
        (Some(1000), &DiskState::UpToDate, None)
    );
    assert_eq!(dev.stats.read_kib, Some(5120));
    let conn = &aaa.connections[&1];
    assert_eq!(conn.name.as_deref(), Some("node-b"));
    assert!(conn.paths.is_empty(), "DRBD 9.0 prints no paths");
    let pd = &conn.peer_devices[&0];
    assert_eq!(pd.in_sync_percent, Some(100.0));
    assert_eq!(pd.resync_suspended.as_deref(), Some("no"));
    let ccc = &state.resources["pvc-ccc"].devices[&0];
    assert_eq!((&ccc.disk, ccc.client), (&DiskState::Diskless, true));
    assert_eq!(
        state.device_by_minor(1002).map(|d| d.resource.as_str()),
        Some("pvc-ccc")
    );
}

#[test]
fn parses_the_recent_shape_with_resync_details_and_paths() {
    let state = parse(STATUS_RECENT).expect("parses");
    let bbb = &state.resources["pvc-bbb"];
    assert_eq!(bbb.devices[&0].open, Some(false));
    let sync = &bbb.connections[&1].peer_devices[&0];
    assert_eq!(sync.replication, ReplicationState::SyncTarget);
    assert_eq!(sync.stats.resync_done_percent, Some(41.98));
    assert_eq!(sync.stats.resync_eta_secs, Some(10.0));
    assert_eq!(sync.in_sync_percent, Some(42.0));
    let node_c = &bbb.connections[&2];
    assert_eq!(node_c.state, ConnectionState::Connecting);
    assert_eq!(
        node_c.paths,
        [NetPath {
            local: "ipv6:[fd00::1]:7001".into(),
            peer: "ipv6:[fd00::3]:7001".into(),
            established: false,
        }]
    );
    assert_eq!(bbb.connections[&1].paths[0].local, "ipv4:10.0.0.1:7001");
    let eee = &state.resources["pvc-eee"];
    assert_eq!(eee.suspended, ["quorum"]);
    assert_eq!(eee.devices[&0].quorum, Some(false));
}

#[test]
fn events2_and_json_agree_on_the_same_volume() {
    let json = parse(STATUS_RECENT).expect("parses");
    let events = DrbdState::from_events2(crate::drbd::test_support::EVENTS2_NOW).expect("parses");
    for name in ["pvc-bbb", "pvc-eee"] {
        let (a, b) = (&json.resources[name], &events.resources[name]);
        assert_eq!(a.role, b.role);
        assert_eq!(a.suspended, b.suspended);
        assert_eq!(a.devices[&0].disk, b.devices[&0].disk);
        assert_eq!(a.devices[&0].minor, b.devices[&0].minor);
        assert_eq!(
            a.connections.values().map(|c| &c.state).collect::<Vec<_>>(),
            b.connections.values().map(|c| &c.state).collect::<Vec<_>>(),
        );
    }
}

#[test]
fn tolerates_missing_and_unknown_fields() {
    let state = parse(
        r#"[{"name": "r0", "future": {"x": [1, 2]}, "suspended": "user",
             "devices": [{"volume": 3}],
             "connections": [{"peer-node-id": 4, "peer_devices": [{"volume": 3, "resync-suspended": true}]}]}]"#,
    )
    .expect("parses");
    let r0 = &state.resources["r0"];
    assert_eq!(
        (&r0.role, &r0.suspended),
        (&Role::Unknown, &vec!["user".to_owned()])
    );
    assert_eq!(
        (r0.devices[&3].minor, &r0.devices[&3].disk),
        (None, &DiskState::DUnknown)
    );
    let conn = &r0.connections[&4];
    assert_eq!(conn.state, ConnectionState::Unconnected);
    assert_eq!(
        conn.peer_devices[&3].resync_suspended.as_deref(),
        Some("yes")
    );
    assert!(parse("[]").expect("empty").resources.is_empty());
}

#[test]
fn wrong_types_are_errors_with_a_position() {
    for text in [
        "",
        "{}",
        "[{\"name\": 5}]",
        "[{\"name\": \"r0\", \"devices\": [{\"volume\": -1}]}]",
        "[{\"name\": \"r0\",\n \"devices\": {}}]",
    ] {
        let error = parse(text).expect_err(text);
        let StatusJsonError::Decode { line, .. } = &error;
        assert!(*line >= 1, "{error}");
        assert!(error.to_string().starts_with("status JSON line"), "{error}");
    }
}

#[test]
fn reference_status_samples_parse() {
    let Some(samples) = reference_samples("drbdsetup-status-json.") else {
        return;
    };
    for (path, text) in samples {
        let state = parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!state.resources.is_empty(), "{}", path.display());
        for resource in state.resources.values() {
            assert_ne!(resource.role, Role::Unknown, "{}", path.display());
            for device in resource.devices.values() {
                assert!(device.minor.is_some(), "{}", path.display());
                assert_eq!(device.disk, DiskState::UpToDate, "{}", path.display());
            }
            for connection in resource.connections.values() {
                assert_eq!(connection.state, ConnectionState::Connected);
            }
        }
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-z-]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        let key = prop_oneof![
            Just("name".to_owned()),
            Just("volume".to_owned()),
            Just("peer-node-id".to_owned()),
            Just("devices".to_owned()),
            Just("connections".to_owned()),
            Just("peer_devices".to_owned()),
            Just("paths".to_owned()),
            Just("suspended".to_owned()),
            "[a-z-]{1,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..5)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = parse(&text);
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        let _ = parse(&value.to_string());
        let _ = parse(&serde_json::Value::Array(vec![value]).to_string());
    }
}
