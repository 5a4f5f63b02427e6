use super::*;
use crate::drbd::kinds::{ConnectionState, DiskState, ReplicationState, Role};
use crate::drbd::test_support::{reference_samples, EVENTS2_NOW, EVENTS2_STREAM};

fn state(text: &str) -> DrbdState {
    DrbdState::from_events2(text).expect("events2 text parses")
}

#[test]
fn now_dump_builds_the_model() {
    let state = state(EVENTS2_NOW);
    assert!(state.complete);
    assert_eq!(
        state.resources.keys().collect::<Vec<_>>(),
        ["pvc-aaa", "pvc-bbb", "pvc-ccc", "pvc-ddd", "pvc-eee"]
    );
    let aaa = &state.resources["pvc-aaa"];
    assert_eq!(aaa.role, Role::Primary);
    assert!(aaa.suspended.is_empty());
    let dev = &aaa.devices[&0];
    assert_eq!(
        (dev.minor, &dev.disk, dev.client, dev.quorum, dev.size_kib),
        (
            Some(1000),
            &DiskState::UpToDate,
            false,
            Some(true),
            Some(10_485_760)
        )
    );
    assert_eq!(dev.backing_dev.as_deref(), Some("/dev/vg0/pvc-aaa_00000"));
    assert_eq!(dev.stats.written_kib, Some(20480));
    let node_c = &aaa.connections[&2];
    assert_eq!(node_c.name.as_deref(), Some("node-c"));
    assert_eq!(node_c.peer_devices[&0].peer_client, Some(true));
    assert_eq!(node_c.paths.len(), 1);
    assert!(node_c.paths[0].established);

    let bbb = &state.resources["pvc-bbb"];
    let sync = &bbb.connections[&1].peer_devices[&0];
    assert_eq!(sync.replication, ReplicationState::SyncTarget);
    assert_eq!(sync.stats.out_of_sync_kib, Some(1_216_348));
    assert_eq!(sync.stats.resync_done_percent, Some(42.0));
    assert_eq!(bbb.connections[&2].state, ConnectionState::Connecting);

    let ccc = &state.resources["pvc-ccc"].devices[&0];
    assert_eq!(
        (&ccc.disk, ccc.client, ccc.backing_dev.as_deref()),
        (&DiskState::Diskless, true, None)
    );
    assert_eq!(state.resources["pvc-eee"].suspended, ["quorum"]);
    assert_eq!(
        state.device_by_minor(1003).map(|d| d.resource.as_str()),
        Some("pvc-ddd")
    );
}

#[test]
fn stream_applies_changes_renames_and_destroys() {
    let state = state(EVENTS2_STREAM);
    assert!(state.complete);
    let fff = &state.resources["pvc-fff"];
    // The unknown verb `teleport` on the last line must not have changed the role.
    assert_eq!(fff.role, Role::Primary);
    assert_eq!(fff.promotion_score, Some(10101));
    let dev = &fff.devices[&0];
    assert_eq!(
        (&dev.disk, dev.size_kib, dev.minor),
        (&DiskState::UpToDate, Some(1_048_576), Some(1005))
    );
    assert_eq!(dev.backing_dev.as_deref(), Some("/dev/vg0/pvc-fff_00000"));
    let conn = &fff.connections[&1];
    assert_eq!(
        (&conn.state, &conn.peer_role),
        (&ConnectionState::Connected, &Role::Primary)
    );
    assert_eq!(conn.paths.len(), 1);
    assert!(conn.paths[0].established);
    assert_eq!(conn.paths[0].peer, "ipv6:[fd00::2]:7005");
    let pd = &conn.peer_devices[&0];
    assert_eq!(pd.replication, ReplicationState::Established);
    assert_eq!(pd.stats.out_of_sync_kib, Some(0));
    assert_eq!(
        pd.stats.resync_done_percent, None,
        "a finished resync keeps no progress"
    );

    assert!(!state.resources.contains_key("pvc-old"));
    assert_eq!(state.resources["pvc-new"].devices[&0].resource, "pvc-new");
    assert_eq!(
        state.device_by_minor(1006).map(|d| d.resource.as_str()),
        Some("pvc-new")
    );
    assert!(!state.resources.contains_key("pvc-gone"));
    assert!(state.device_by_minor(1007).is_none());
}

#[test]
fn events_for_unknown_parents_create_them() {
    let state = state(
        "change peer-device name:r9 peer-node-id:3 conn-name:n3 volume:1 peer-disk:UpToDate\n",
    );
    let conn = &state.resources["r9"].connections[&3];
    assert_eq!(conn.name.as_deref(), Some("n3"));
    assert_eq!(conn.peer_devices[&1].peer_disk, DiskState::UpToDate);
    assert!(!state.complete);
}

#[test]
fn destroys_remove_connections_peer_devices_and_paths() {
    let mut state = state(EVENTS2_NOW);
    for text in [
        "destroy path name:pvc-aaa peer-node-id:1 conn-name:node-b local:ipv4:10.0.0.1:7000 peer:ipv4:10.0.0.2:7000",
        "destroy peer-device name:pvc-aaa peer-node-id:2 conn-name:node-c volume:0",
        "destroy connection name:pvc-bbb peer-node-id:2 conn-name:node-c",
        "destroy device name:pvc-nope volume:0",
    ] {
        let line = events2::parse_line(1, text).expect("parses");
        state.apply(&line);
    }
    let aaa = &state.resources["pvc-aaa"];
    assert!(aaa.connections[&1].paths.is_empty());
    assert!(aaa.connections[&2].peer_devices.is_empty());
    assert!(!state.resources["pvc-bbb"].connections.contains_key(&2));
    assert!(!state.resources.contains_key("pvc-nope"));
}

#[test]
fn reference_events2_samples_parse() {
    let Some(samples) = reference_samples("drbd-events2-") else {
        return;
    };
    for (path, text) in samples {
        let state =
            DrbdState::from_events2(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(state.complete, "{}: no `exists -`", path.display());
        let resource = &state.resources["some-resource"];
        assert_eq!(resource.devices[&0].minor, Some(1000), "{}", path.display());
        assert_eq!(resource.connections[&1].name.as_deref(), Some("some-peer"));
    }
}

#[test]
fn reference_end_states_agree() {
    let Some(samples) = reference_samples("drbd-events2-") else {
        return;
    };
    let states: Vec<(String, DrbdState)> = samples
        .iter()
        .filter_map(|(path, text)| {
            let name = path.file_name()?.to_str()?.to_owned();
            Some((name, DrbdState::from_events2(text).ok()?))
        })
        .collect();
    let end = |name: &str| states.iter().find(|(n, _)| n == name).map(|(_, s)| s);
    // The `--now --statistics` dump and the full stream it was derived from end alike.
    if let (Some(now), Some(full)) = (
        end("drbd-events2-now-statistics.DERIVED.txt"),
        end("drbd-events2-full.txt"),
    ) {
        assert_eq!(now.resources, full.resources);
        assert_eq!(now.resources["some-resource"].role, Role::Primary);
    }
    if let Some(resync) = end("drbd-events2-statistics-resync.txt") {
        let pd = &resync.resources["some-resource"].connections[&1].peer_devices[&0];
        assert_eq!(pd.replication, ReplicationState::SyncSource);
        assert_eq!(pd.stats.resync_done_percent, Some(37.5));
    }
}
