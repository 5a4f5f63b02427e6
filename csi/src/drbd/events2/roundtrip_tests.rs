//! Property tests of the events2 parser: arbitrary input never panics, and a rendered event
//! parses back to itself.

use proptest::prelude::*;

use super::*;
use crate::drbd::kinds::{ConnectionState, DiskState, ReplicationState, Role, Verb};
use crate::drbd::state::{DeviceStatistics, PeerDeviceStatistics};

fn word() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_./-]{1,12}"
}

fn value() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_./:,\\[\\]-]{0,12}"
}

fn extra() -> impl Strategy<Value = Extra> {
    prop::collection::vec(("x-[a-z]{1,6}", value()), 0..3)
}

fn o<S: Strategy>(strategy: S) -> impl Strategy<Value = Option<S::Value>>
where
    S::Value: std::fmt::Debug,
{
    proptest::option::of(strategy)
}

fn finite() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("finite", |f| f.is_finite())
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::Primary),
        Just(Role::Secondary),
        Just(Role::Unknown),
        "Z[a-z]{1,6}".prop_map(Role::Other),
    ]
}

fn disk() -> impl Strategy<Value = DiskState> {
    prop_oneof![
        Just(DiskState::UpToDate),
        Just(DiskState::Diskless),
        Just(DiskState::Inconsistent),
        Just(DiskState::DUnknown),
        "Z[a-z]{1,6}".prop_map(DiskState::Other),
    ]
}

fn connection_state() -> impl Strategy<Value = ConnectionState> {
    prop_oneof![
        Just(ConnectionState::Connected),
        Just(ConnectionState::Connecting),
        Just(ConnectionState::StandAlone),
        "Z[a-z]{1,6}".prop_map(ConnectionState::Other),
    ]
}

fn replication() -> impl Strategy<Value = ReplicationState> {
    prop_oneof![
        Just(ReplicationState::Established),
        Just(ReplicationState::SyncTarget),
        Just(ReplicationState::Off),
        "Z[a-z]{1,6}".prop_map(ReplicationState::Other),
    ]
}

fn resource_event() -> impl Strategy<Value = Object> {
    (
        word(),
        o(role()),
        (o(value()), o(value()), o(any::<bool>()), o(any::<bool>())),
        (o(any::<u64>()), o(word()), extra()),
    )
        .prop_map(
            |(name, role, (suspended, write_ordering, force, may), (score, new_name, extra))| {
                Object::Resource(ResourceEvent {
                    name,
                    role,
                    suspended,
                    write_ordering,
                    force_io_failures: force,
                    may_promote: may,
                    promotion_score: score,
                    new_name,
                    extra,
                })
            },
        )
}

fn device_event() -> impl Strategy<Value = Object> {
    let stats = (
        (
            o(any::<u64>()),
            o(any::<u64>()),
            o(any::<u64>()),
            o(any::<u64>()),
        ),
        (
            o(any::<u64>()),
            o(any::<u64>()),
            o(any::<bool>()),
            o(value()),
        ),
    )
        .prop_map(
            |((read, written, al, bm), (upper, lower, al_suspended, blocked))| DeviceStatistics {
                read_kib: read,
                written_kib: written,
                al_writes: al,
                bm_writes: bm,
                upper_pending: upper,
                lower_pending: lower,
                al_suspended,
                blocked,
            },
        );
    (
        (word(), any::<u32>(), o(any::<u32>()), o(disk()), o(value())),
        (
            o(any::<bool>()),
            o(any::<bool>()),
            o(any::<bool>()),
            o(any::<u64>()),
        ),
        stats,
        extra(),
    )
        .prop_map(
            |(
                (name, volume, minor, disk, backing_dev),
                (client, open, quorum, size),
                stats,
                extra,
            )| {
                Object::Device(DeviceEvent {
                    name,
                    volume,
                    minor,
                    disk,
                    backing_dev,
                    client,
                    open,
                    quorum,
                    size_kib: size,
                    stats,
                    extra,
                })
            },
        )
}

fn connection_event() -> impl Strategy<Value = Object> {
    (
        (
            word(),
            any::<u32>(),
            o(word()),
            o(connection_state()),
            o(role()),
        ),
        (o(any::<bool>()), o(any::<u64>()), o(any::<u64>()), extra()),
    )
        .prop_map(
            |((name, peer, conn_name, connection, role), (congested, ap, rs, extra))| {
                Object::Connection(ConnectionEvent {
                    name,
                    peer_node_id: peer,
                    conn_name,
                    connection,
                    role,
                    congested,
                    ap_in_flight: ap,
                    rs_in_flight: rs,
                    extra,
                })
            },
        )
}

fn peer_device_event() -> impl Strategy<Value = Object> {
    let stats = (
        (
            o(any::<u64>()),
            o(any::<u64>()),
            o(any::<u64>()),
            o(any::<u64>()),
        ),
        (o(any::<u64>()), o(finite()), o(finite()), o(finite())),
    )
        .prop_map(
            |((received, sent, oos, pending), (unacked, done, rate, eta))| PeerDeviceStatistics {
                received_kib: received,
                sent_kib: sent,
                out_of_sync_kib: oos,
                pending,
                unacked,
                resync_done_percent: done,
                resync_rate_mib_s: rate,
                resync_eta_secs: eta,
            },
        );
    (
        (word(), any::<u32>(), any::<u32>(), o(word())),
        (o(replication()), o(disk()), o(any::<bool>()), o(value())),
        stats,
        extra(),
    )
        .prop_map(
            |(
                (name, peer, volume, conn_name),
                (replication, peer_disk, client, suspended),
                stats,
                extra,
            )| {
                Object::PeerDevice(PeerDeviceEvent {
                    name,
                    peer_node_id: peer,
                    volume,
                    conn_name,
                    replication,
                    peer_disk,
                    peer_client: client,
                    resync_suspended: suspended,
                    stats,
                    extra,
                })
            },
        )
}

fn other_event() -> impl Strategy<Value = Object> {
    prop_oneof![
        (
            word(),
            any::<u32>(),
            o(word()),
            o(value()),
            o(value()),
            o(any::<bool>()),
            extra()
        )
            .prop_map(
                |(name, peer, conn_name, local, peer_addr, established, extra)| {
                    Object::Path(PathEvent {
                        name,
                        peer_node_id: peer,
                        conn_name,
                        local,
                        peer: peer_addr,
                        established,
                        extra,
                    })
                }
            ),
        (
            word(),
            o(any::<u32>()),
            o(word()),
            o(any::<u32>()),
            o(word()),
            o(any::<i64>()),
            extra()
        )
            .prop_map(|(name, peer, conn_name, volume, helper, status, extra)| {
                Object::Helper(HelperEvent {
                    name,
                    peer_node_id: peer,
                    conn_name,
                    volume,
                    helper,
                    status,
                    extra,
                })
            }),
        (
            "z[a-z]{1,6}",
            prop::collection::vec(("[a-z-]{1,8}", value()), 0..4)
        )
            .prop_map(|(kind, fields)| Object::Other { kind, fields }),
    ]
}

fn any_event() -> impl Strategy<Value = Event> {
    let verb = prop_oneof![
        Just(Verb::Exists),
        Just(Verb::Create),
        Just(Verb::Change),
        Just(Verb::Destroy),
        Just(Verb::Rename),
        Just(Verb::Call),
        Just(Verb::Response),
        "z[a-z]{1,6}".prop_map(Verb::Other),
    ];
    let object = prop_oneof![
        resource_event(),
        device_event(),
        connection_event(),
        peer_device_event(),
        other_event(),
    ];
    (
        proptest::option::of("20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.+]{8,20}"),
        verb,
        object,
    )
        .prop_map(|(timestamp, verb, object)| Event {
            timestamp,
            verb,
            object,
        })
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = parse_line(1, &text);
        let _ = parse(&text);
    }

    #[test]
    fn token_soup_never_panics(
        tokens in prop::collection::vec(
            "(exists|change|destroy|-|resource|device|peer-device|connection|path|helper|name:r0|volume:[0-9x]{0,3}|peer-node-id:-?[0-9]{0,11}|minor:[0-9]{0,11}|[a-z-]{0,6}:[a-zA-Z0-9.:-]{0,6}|:|[0-9T:.+-]{1,8})",
            0..10,
        )
    ) {
        let _ = parse_line(1, &tokens.join(" "));
    }

    #[test]
    fn parsed_lines_render_to_a_fixpoint(
        tokens in prop::collection::vec(
            "(change|exists|resource|device|peer-device|path|helper|name:r\\PC{0,2}|volume:[0-9]|peer-node-id:[0-9]|[a-z-]{0,8}:\\PC{0,4}|\\PC{1,3})",
            0..10,
        )
    ) {
        let text = tokens.join(" ");
        if let Ok(Line::Event(event)) = parse_line(1, &text) {
            let rendered = event.to_string();
            prop_assert_eq!(parse_line(1, &rendered), Ok(Line::Event(event)), "{} -> {}", text, rendered);
        }
    }

    #[test]
    fn rendered_events_round_trip(event in any_event()) {
        let rendered = event.to_string();
        prop_assert_eq!(parse_line(1, &rendered), Ok(Line::Event(event)), "{}", rendered);
    }
}
