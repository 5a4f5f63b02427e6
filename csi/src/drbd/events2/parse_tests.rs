use super::*;
use crate::drbd::events2::{Extra, Line};
use crate::drbd::state::{DeviceStatistics, PeerDeviceStatistics};
use crate::drbd::test_support::{EVENTS2_NOW, EVENTS2_STREAM};

fn event(text: &str) -> Event {
    match parse_line(1, text) {
        Ok(Line::Event(event)) => event,
        other => panic!("expected an event from {text:?}, got {other:?}"),
    }
}

#[test]
fn parses_a_statistics_device_line() {
    let ev = event(
        "exists device name:r0 volume:0 minor:1000 backing_dev:/dev/sda disk:UpToDate client:no \
         open:no quorum:yes size:5 read:10 written:15 al-writes:40 bm-writes:50 \
         upper-pending:60 lower-pending:70 al-suspended:no blocked:no",
    );
    assert_eq!(ev.verb, Verb::Exists);
    let expected = DeviceEvent {
        name: "r0".into(),
        volume: 0,
        minor: Some(1000),
        disk: Some(DiskState::UpToDate),
        backing_dev: Some("/dev/sda".into()),
        client: Some(false),
        open: Some(false),
        quorum: Some(true),
        size_kib: Some(5),
        stats: DeviceStatistics {
            read_kib: Some(10),
            written_kib: Some(15),
            al_writes: Some(40),
            bm_writes: Some(50),
            upper_pending: Some(60),
            lower_pending: Some(70),
            al_suspended: Some(false),
            blocked: Some("no".into()),
        },
        extra: Extra::new(),
    };
    assert_eq!(ev.object, Object::Device(expected));
}

#[test]
fn parses_a_resyncing_peer_device_line() {
    let ev = event(
        "change peer-device name:r0 peer-node-id:1 conn-name:node-b volume:0 \
         replication:SyncSource peer-disk:Inconsistent peer-client:no done:37.50 received:5 \
         sent:10 out-of-sync:2500 pending:30 unacked:40 dbdt1:0.24 eta:10",
    );
    let Object::PeerDevice(pd) = ev.object else {
        panic!("not a peer device: {:?}", ev.object);
    };
    assert_eq!(pd.peer_node_id, 1);
    assert_eq!(pd.conn_name.as_deref(), Some("node-b"));
    assert_eq!(pd.replication, Some(ReplicationState::SyncSource));
    assert_eq!(pd.peer_disk, Some(DiskState::Inconsistent));
    assert_eq!(
        pd.stats,
        PeerDeviceStatistics {
            received_kib: Some(5),
            sent_kib: Some(10),
            out_of_sync_kib: Some(2500),
            pending: Some(30),
            unacked: Some(40),
            resync_done_percent: Some(37.5),
            resync_rate_mib_s: Some(0.24),
            resync_eta_secs: Some(10.0),
        }
    );
}

#[test]
fn parses_partial_changes_paths_helpers_and_timestamps() {
    let ev = event("change resource name:r0 role:Primary may_promote:no");
    let Object::Resource(res) = ev.object else {
        panic!("not a resource");
    };
    assert_eq!(
        (res.role, res.may_promote, res.suspended),
        (Some(Role::Primary), Some(false), None)
    );

    let ev = event(
        "2026-03-01T10:00:00.000000+00:00 change path name:r0 peer-node-id:1 conn-name:b \
         local:ipv4:1.2.3.4:7789 peer:ipv4:5.6.7.8:7790 established:yes",
    );
    assert_eq!(
        ev.timestamp.as_deref(),
        Some("2026-03-01T10:00:00.000000+00:00")
    );
    let Object::Path(path) = ev.object else {
        panic!("not a path");
    };
    assert_eq!(path.local.as_deref(), Some("ipv4:1.2.3.4:7789"));
    assert_eq!(path.established, Some(true));

    let ev = event("response helper name:r0 volume:0 helper:before-resync-target status:0");
    assert_eq!(ev.verb, Verb::Response);
    let Object::Helper(helper) = ev.object else {
        panic!("not a helper");
    };
    assert_eq!((helper.volume, helper.status), (Some(0), Some(0)));
}

#[test]
fn keeps_unknown_keys_values_verbs_and_objects() {
    let ev = event("change device name:r0 volume:0 disk:Quantum size:lots future:1 client:maybe");
    let Object::Device(dev) = ev.object else {
        panic!("not a device");
    };
    assert_eq!(dev.disk, Some(DiskState::Other("Quantum".into())));
    assert_eq!((dev.size_kib, dev.client), (None, None));
    let extra: Vec<(&str, &str)> = dev
        .extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        extra,
        [("size", "lots"), ("future", "1"), ("client", "maybe")]
    );

    let ev = event("teleport wormhole name:r0 to:andromeda");
    assert_eq!(ev.verb, Verb::Other("teleport".into()));
    assert_eq!(
        ev.object,
        Object::Other {
            kind: "wormhole".into(),
            fields: vec![
                ("name".into(), "r0".into()),
                ("to".into(), "andromeda".into())
            ],
        }
    );
}

#[test]
fn marker_blank_and_comment_lines() {
    assert_eq!(parse_line(1, "exists -"), Ok(Line::EndOfInitialState));
    assert_eq!(parse_line(1, "  exists -  "), Ok(Line::EndOfInitialState));
    assert_eq!(parse_line(1, ""), Ok(Line::Ignored));
    assert_eq!(parse_line(1, "# SOURCE: somewhere"), Ok(Line::Ignored));
    assert!(matches!(
        parse_line(4, "change -"),
        Err(Events2Error::Marker { line: 4, .. })
    ));
    assert!(matches!(
        parse_line(4, "exists - x"),
        Err(Events2Error::Marker { .. })
    ));
}

#[test]
fn malformed_lines_name_the_line() {
    type Check = fn(&Events2Error) -> bool;
    let cases: [(&str, Check); 6] = [
        ("exists", |e| {
            matches!(e, Events2Error::SplitObject { line: 7, .. })
        }),
        (
            "change device name:r0 volume:0 garbage",
            |e| matches!(e, Events2Error::SplitField { line: 7, token, .. } if token == "garbage"),
        ),
        ("change device volume:0", |e| {
            matches!(
                e,
                Events2Error::MissingKey {
                    line: 7,
                    key: "name",
                    ..
                }
            )
        }),
        ("change device name:r0", |e| {
            matches!(
                e,
                Events2Error::MissingKey {
                    object: "device",
                    key: "volume",
                    ..
                }
            )
        }),
        ("change peer-device name:r0 volume:0 peer-node-id:x", |e| {
            matches!(
                e,
                Events2Error::ParseKey {
                    line: 7,
                    key: "peer-node-id",
                    ..
                }
            )
        }),
        ("change device name:r0 volume:0 minor:-1", |e| {
            matches!(e, Events2Error::ParseKey { key: "minor", .. })
        }),
    ];
    for (text, check) in cases {
        let error = parse_line(7, text).expect_err(text);
        assert!(check(&error), "{text:?} gave {error:?}");
        assert!(error.to_string().starts_with("events2 line 7:"), "{error}");
    }
}

#[test]
fn parse_reports_the_failing_line_number() {
    let error = parse("exists -\nchange resource role:Primary\n").expect_err("no name");
    assert!(
        matches!(error, Events2Error::MissingKey { line: 2, .. }),
        "{error:?}"
    );
}

#[test]
fn long_lines_are_cut_in_errors() {
    let text = format!("change device volume:0 {}", "x:".repeat(10_000));
    let error = parse_line(1, &text).expect_err("no name").to_string();
    assert!(error.len() < 400, "{}", error.len());
}

#[test]
fn fixtures_parse_and_round_trip() {
    for fixture in [EVENTS2_NOW, EVENTS2_STREAM] {
        let lines = parse(fixture).expect("fixture parses");
        assert_eq!(lines.len(), fixture.lines().count());
        for line in lines.iter().filter(|l| **l != Line::Ignored) {
            let rendered = line.to_string();
            assert_eq!(parse_line(1, &rendered).as_ref(), Ok(line), "{rendered}");
        }
    }
}
