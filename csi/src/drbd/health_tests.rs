use super::*;
use crate::drbd::status_json;
use crate::drbd::test_support::{EVENTS2_NOW, STATUS_RECENT};

fn node_a() -> DrbdState {
    DrbdState::from_events2(EVENTS2_NOW).expect("fixture parses")
}

#[test]
fn up_to_date_local_disk_is_ready_and_healthy() {
    let state = node_a();
    assert_eq!(
        state.readiness("pvc-aaa", 0),
        Readiness::Ready(ReadyVia::LocalDisk)
    );
    let condition = state.condition("pvc-aaa", 0);
    assert!(!condition.abnormal, "{}", condition.message);
    assert_eq!(condition.message, "local disk UpToDate");
}

#[test]
fn inconsistent_disk_syncing_from_an_up_to_date_peer_is_ready() {
    let state = node_a();
    let readiness = state.readiness("pvc-bbb", 0);
    assert_eq!(
        readiness,
        Readiness::Ready(ReadyVia::Resync {
            from: "node-b".into(),
            percent: Some("42".into())
        })
    );
    assert_eq!(
        readiness.message(),
        "local disk resyncing 42% from UpToDate node-b"
    );
    let condition = state.condition("pvc-bbb", 0);
    assert!(condition.abnormal, "a resync is not optimal");
    assert_eq!(
        condition.message,
        "local disk resyncing 42% from UpToDate node-b; node-b: SyncTarget 42%; node-c: Connecting"
    );
}

#[test]
fn inconsistent_or_outdated_disk_without_a_connected_up_to_date_peer_is_refused() {
    let mut state = node_a();
    let line = crate::drbd::events2::parse_line(
        1,
        "change connection name:pvc-bbb peer-node-id:1 connection:Connecting",
    )
    .expect("parses");
    state.apply(&line);
    let readiness = state.readiness("pvc-bbb", 0);
    assert!(!readiness.is_ready());
    assert!(
        readiness.message().starts_with("local disk Inconsistent"),
        "{}",
        readiness.message()
    );
    // An Outdated disk whose only peer is gone: it cannot reach current data.
    let mut state = node_a();
    for l in [
        "change device name:pvc-bbb volume:0 disk:Outdated",
        "change peer-device name:pvc-bbb peer-node-id:1 volume:0 replication:Established peer-disk:Outdated",
    ] {
        let line = crate::drbd::events2::parse_line(1, l).expect("parses");
        state.apply(&line);
    }
    assert_eq!(
        state.readiness("pvc-bbb", 0).message(),
        "local disk Outdated, and no connected UpToDate peer to sync from"
    );
}

#[test]
fn json_resync_progress_is_used_too() {
    let state = status_json::parse(STATUS_RECENT).expect("parses");
    assert_eq!(
        state.readiness("pvc-bbb", 0).message(),
        "local disk resyncing 42% from UpToDate node-b"
    );
}

#[test]
fn diskless_client_is_ready_through_up_to_date_peers() {
    let state = node_a();
    assert_eq!(
        state.readiness("pvc-ccc", 0),
        Readiness::Ready(ReadyVia::Peers(vec!["node-b".into(), "node-c".into()]))
    );
    let condition = state.condition("pvc-ccc", 0);
    assert!(!condition.abnormal, "{}", condition.message);
    assert_eq!(
        condition.message,
        "diskless, UpToDate data on node-b, node-c"
    );
}

#[test]
fn diskless_without_up_to_date_peers_is_not_ready() {
    let readiness = node_a().readiness("pvc-ddd", 0);
    assert_eq!(
        readiness,
        Readiness::NotReady(
            "diskless and no peer is UpToDate (node-b: Connecting, node-c: peer disk Outdated)"
                .into()
        )
    );
}

#[test]
fn lost_quorum_is_not_ready_and_suspension_is_reported() {
    let state = node_a();
    assert_eq!(
        state.readiness("pvc-eee", 0).message(),
        "pvc-eee/0 has no quorum (node-b: Connecting, node-c: Connecting)"
    );
    let condition = state.condition("pvc-eee", 0);
    assert!(condition.abnormal);
    assert!(
        condition.message.contains("I/O suspended (quorum)"),
        "{}",
        condition.message
    );
}

#[test]
fn suspended_io_is_not_ready() {
    let mut state = node_a();
    let line = crate::drbd::events2::parse_line(1, "change resource name:pvc-aaa suspended:user")
        .expect("parses");
    state.apply(&line);
    assert_eq!(
        state.readiness("pvc-aaa", 0).message(),
        "pvc-aaa: I/O suspended (user)"
    );
    let condition = state.condition("pvc-aaa", 0);
    assert_eq!(condition.message, "pvc-aaa: I/O suspended (user)");
}

#[test]
fn missing_resources_and_volumes() {
    let state = node_a();
    assert_eq!(
        state.readiness("pvc-zzz", 0).message(),
        "DRBD resource pvc-zzz is not up on this node"
    );
    assert_eq!(
        state.readiness("pvc-aaa", 7).message(),
        "DRBD resource pvc-aaa has no volume 7"
    );
    assert!(state.condition("pvc-zzz", 0).abnormal);
}

#[test]
fn degraded_but_ready_volumes_are_abnormal() {
    let mut state = node_a();
    let line = crate::drbd::events2::parse_line(
        1,
        "change connection name:pvc-aaa peer-node-id:1 connection:NetworkFailure",
    )
    .expect("parses");
    state.apply(&line);
    assert!(state.readiness("pvc-aaa", 0).is_ready());
    let condition = state.condition("pvc-aaa", 0);
    assert!(condition.abnormal);
    assert_eq!(condition.message, "node-b: NetworkFailure");
}

#[test]
fn detached_disk_is_reported_even_when_peers_serve_data() {
    let mut state = node_a();
    let line = crate::drbd::events2::parse_line(
        1,
        "change device name:pvc-aaa volume:0 disk:Diskless backing_dev:none",
    )
    .expect("parses");
    state.apply(&line);
    assert_eq!(
        state.readiness("pvc-aaa", 0),
        Readiness::Ready(ReadyVia::Peers(vec!["node-b".into()]))
    );
    let condition = state.condition("pvc-aaa", 0);
    assert!(condition.abnormal);
    assert_eq!(
        condition.message,
        "local disk lost: Diskless but not a diskless client"
    );
}

#[test]
fn percentages_are_rounded_to_one_decimal() {
    assert_eq!(percent_word(42.0), "42");
    assert_eq!(percent_word(37.5), "37.5");
    assert_eq!(percent_word(99.96), "100");
    assert_eq!(percent_word(0.04), "0");
}
