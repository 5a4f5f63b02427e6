use std::collections::BTreeMap;

use serde_json::Value;

use super::*;
use crate::ovn::nb::{GroupRow, HaChassisRow, HaWant, NatRow, NatWant};

fn desired(nats: &[(&str, &str, &str)]) -> Desired {
    Desired {
        router: "gw".into(),
        gateway_port: "gw-ext".into(),
        nats: nats
            .iter()
            .map(|(n, e, l)| NatWant {
                name: (*n).into(),
                external_ip: e.parse().unwrap(),
                logical_ip: l.parse().unwrap(),
            })
            .collect(),
        ha: None,
    }
}

fn ours(name: &str) -> BTreeMap<String, String> {
    [
        ("hearth-managed".to_owned(), "true".to_owned()),
        (FIP_KEY.to_owned(), name.to_owned()),
    ]
    .into()
}

fn nat(uuid: &str, ext: &str, log: &str, ids: BTreeMap<String, String>) -> NatRow {
    NatRow {
        uuid: uuid.into(),
        kind: "dnat_and_snat".into(),
        external_ip: ext.into(),
        logical_ip: log.into(),
        external_ids: ids,
    }
}

fn observed(nats: Vec<NatRow>) -> Observed {
    Observed {
        router: Some("r1".into()),
        nats,
        port: Some(("p1".into(), None)),
        group: None,
    }
}

fn ops_of(ops: &[Value], op: &str, table: &str) -> usize {
    ops.iter()
        .filter(|o| o["op"] == op && o["table"] == table)
        .count()
}

/// Every UUID an operation names (in `where` or as a mutation argument).
fn touched(ops: &[Value]) -> String {
    serde_json::to_string(ops).unwrap()
}

#[test]
fn a_new_floating_ip_inserts_one_marked_row_on_the_router() {
    let d = desired(&[("vm1", "203.0.113.5", "10.0.0.5")]);
    let ops = plan(&d, &observed(vec![])).unwrap();
    assert_eq!(ops.len(), 2, "{ops:?}");
    assert_eq!(ops[0]["row"]["type"], "dnat_and_snat");
    assert_eq!(ops[0]["row"]["external_ip"], "203.0.113.5");
    assert_eq!(ops[0]["row"]["logical_ip"], "10.0.0.5");
    assert!(ops[0]["row"]["external_ids"].to_string().contains("vm1"));
    assert_eq!(ops[1]["op"], "mutate");
    assert_eq!(ops[1]["mutations"][0][1], "insert");
}

#[test]
fn as_desired_writes_nothing_and_foreign_rows_are_never_named() {
    let d = desired(&[("vm1", "203.0.113.5", "10.0.0.5")]);
    let foreign = nat("f1", "203.0.113.9", "10.0.0.9", BTreeMap::new());
    let o = observed(vec![
        nat("n1", "203.0.113.5", "10.0.0.5", ours("vm1")),
        foreign,
    ]);
    assert_eq!(plan(&d, &o).unwrap(), Vec::<Value>::new());
    // Nothing desired: ours goes, the foreign row (same shape, no mark) stays.
    let ops = plan(&desired(&[]), &o).unwrap();
    assert_eq!(ops.len(), 1);
    assert!(touched(&ops).contains("n1") && !touched(&ops).contains("f1"));
}

#[test]
fn drift_is_repaired_in_place_and_duplicates_and_leftovers_removed() {
    let d = desired(&[("vm1", "203.0.113.5", "10.0.0.5")]);
    let o = observed(vec![
        nat("n1", "203.0.113.5", "10.0.0.77", ours("vm1")),
        nat("n2", "203.0.113.5", "10.0.0.5", ours("vm1")),
        nat("n3", "203.0.113.6", "10.0.0.6", ours("gone")),
    ]);
    let ops = plan(&d, &o).unwrap();
    assert_eq!(ops_of(&ops, "update", "NAT"), 1);
    assert_eq!(ops[0]["row"]["logical_ip"], "10.0.0.5");
    let del = touched(&ops[1..]);
    assert!(
        del.contains("n2") && del.contains("n3") && !del.contains("n1"),
        "{del}"
    );
}

#[test]
fn missing_router_or_port_is_an_error() {
    let d = desired(&[]);
    assert!(matches!(
        plan(&d, &Observed::default()),
        Err(NbError::NoRouter(_))
    ));
    let mut d = desired(&[]);
    d.ha = Some(HaWant {
        group: "hearth-gw".into(),
        members: BTreeMap::new(),
    });
    let mut o = observed(vec![]);
    o.port = None;
    assert!(matches!(plan(&d, &o), Err(NbError::NoGatewayPort { .. })));
}

fn ha(members: &[(&str, i64)]) -> Option<HaWant> {
    Some(HaWant {
        group: "hearth-gw".into(),
        members: members.iter().map(|(c, p)| ((*c).into(), *p)).collect(),
    })
}

#[test]
fn a_new_group_is_created_with_its_members_and_set_on_the_port() {
    let mut d = desired(&[]);
    d.ha = ha(&[("node-a", 1000), ("node-b", 101)]);
    let ops = plan(&d, &observed(vec![])).unwrap();
    assert_eq!(ops_of(&ops, "insert", "HA_Chassis"), 2);
    assert_eq!(ops_of(&ops, "insert", "HA_Chassis_Group"), 1);
    let port = ops.last().unwrap();
    assert_eq!(port["table"], "Logical_Router_Port");
    assert_eq!(port["row"]["ha_chassis_group"][0], "named-uuid");
}

#[test]
fn group_members_are_updated_added_and_removed() {
    let mut d = desired(&[]);
    d.ha = ha(&[("node-a", 1), ("node-c", 101)]);
    let mut o = observed(vec![]);
    o.port = Some(("p1".into(), Some("g1".into())));
    o.group = Some(GroupRow {
        uuid: "g1".into(),
        external_ids: [("hearth-managed".to_owned(), "true".to_owned())].into(),
        members: vec![
            HaChassisRow {
                uuid: "h1".into(),
                chassis: "node-a".into(),
                priority: 1000,
            },
            HaChassisRow {
                uuid: "h2".into(),
                chassis: "node-b".into(),
                priority: 101,
            },
        ],
    });
    let ops = plan(&d, &o).unwrap();
    assert_eq!(ops_of(&ops, "update", "HA_Chassis"), 1);
    assert_eq!(ops_of(&ops, "insert", "HA_Chassis"), 1);
    assert_eq!(ops_of(&ops, "mutate", "HA_Chassis_Group"), 2);
    assert_eq!(ops_of(&ops, "update", "Logical_Router_Port"), 0);
    assert!(touched(&ops).contains("h2"));
    // Then as desired: nothing.
    o.group.as_mut().unwrap().members = vec![
        HaChassisRow {
            uuid: "h1".into(),
            chassis: "node-a".into(),
            priority: 1,
        },
        HaChassisRow {
            uuid: "h3".into(),
            chassis: "node-c".into(),
            priority: 101,
        },
    ];
    assert_eq!(plan(&d, &o).unwrap(), Vec::<Value>::new());
}

#[test]
fn a_foreign_group_of_the_same_name_is_refused() {
    let mut d = desired(&[]);
    d.ha = ha(&[("node-a", 1)]);
    let mut o = observed(vec![]);
    o.group = Some(GroupRow {
        uuid: "g1".into(),
        external_ids: BTreeMap::new(),
        members: vec![],
    });
    assert!(matches!(plan(&d, &o), Err(NbError::ForeignGroup(_))));
}
