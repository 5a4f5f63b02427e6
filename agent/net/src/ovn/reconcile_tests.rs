use super::*;
use crate::ovn::render::{render, KEYS_KEY};
use crate::ovsdb::tables::{Bridge, OpenVswitch, Port};

fn example() -> Desired {
    let y = "{systemId: node-a, remote: 'tcp:10.0.0.1:6642', encapIP: 10.0.0.11, datapathType: netdev, \
             bridgeMappings: {physnet1: br-ext}, uplinks: {br-ext: eth1}, \
             join: {mac: '0a:00:00:64:00:02', address: 100.64.0.2/16, gateway: 100.64.0.1, mtu: 1400}}";
    render(&crate::spec::ovn_section(y).unwrap())
}

fn ids(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
}

/// The observed state after `desired` was applied, plus a foreign bridge and key.
fn converged(d: &Desired) -> OvsState {
    let mut s = OvsState {
        root: Some(OpenVswitch {
            uuid: "root".into(),
            external_ids: d
                .external_ids
                .clone()
                .into_iter()
                .chain(ids(&[("foreign", "x")]))
                .collect(),
            bridges: vec![],
        }),
        ..OvsState::default()
    };
    for (bi, b) in d
        .bridges
        .iter()
        .chain([&DesiredBridge {
            name: "br-foreign".into(),
            datapath_type: "system".into(),
            ports: vec![],
        }])
        .enumerate()
    {
        let mut ports = vec![];
        for (pi, p) in b.ports.iter().enumerate() {
            let (pu, iu) = (format!("p{bi}.{pi}"), format!("i{bi}.{pi}"));
            let mut e = p.external_ids.clone();
            e.insert(MANAGED_KEY.into(), "true".into());
            s.interfaces.push(Interface {
                uuid: iu.clone(),
                name: p.name.clone(),
                kind: p.kind.clone(),
                mac: p.mac.clone(),
                mtu_request: p.mtu,
                external_ids: e,
            });
            s.ports.push(Port {
                uuid: pu.clone(),
                name: p.name.clone(),
                interfaces: vec![iu],
                external_ids: ids(&[(MANAGED_KEY, "true")]),
            });
            ports.push(pu);
        }
        let managed = if b.name == "br-foreign" {
            ids(&[])
        } else {
            ids(&[(MANAGED_KEY, "true")])
        };
        s.bridges.push(Bridge {
            uuid: format!("b{bi}"),
            name: b.name.clone(),
            datapath_type: b.datapath_type.clone(),
            ports,
            external_ids: managed,
        });
    }
    s
}

#[test]
fn fresh_database_gets_everything_in_one_transaction() {
    let d = example();
    let empty = OvsState {
        root: Some(OpenVswitch {
            uuid: "root".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let actions = reconcile(&d, &empty);
    assert_eq!(actions.len(), 3, "{actions:?}");
    assert!(matches!(&actions[0], Action::SetExternalIds { remove, .. } if remove.is_empty()));
    let ops = to_ops("root", &actions);
    let inserts = ops.iter().filter(|o| o["op"] == "insert").count();
    assert_eq!(
        inserts,
        2 * 4 + 2,
        "4 ports with their interfaces, 2 bridges"
    );
    assert_eq!(ops.last().unwrap()["op"], "comment");
}

#[test]
fn converged_state_needs_nothing_and_foreign_rows_are_left() {
    let d = example();
    assert_eq!(reconcile(&d, &converged(&d)), vec![]);
}

#[test]
fn drift_is_repaired_key_by_key() {
    let d = example();
    let mut s = converged(&d);
    let root = s.root.as_mut().unwrap();
    root.external_ids
        .insert("ovn-encap-ip".into(), "10.9.9.9".into());
    root.external_ids.insert("hostname".into(), "old".into());
    s.bridges[0].datapath_type = "system".into();
    s.interfaces[1].mtu_request = Some(1500);
    let a = reconcile(&d, &s);
    assert_eq!(
        a[0],
        Action::SetExternalIds {
            set: ids(&[("ovn-encap-ip", "10.0.0.11")]),
            remove: vec!["hostname".into()],
            was: ids(&[("ovn-encap-ip", "10.9.9.9"), ("hostname", "old")]),
        }
    );
    assert!(matches!(&a[1], Action::SetDatapathType { bridge, .. } if bridge == "br-int"));
    assert!(matches!(&a[2], Action::UpdateInterface { port, .. } if port.name == "ovn0"));
    assert_eq!(a.len(), 3);
    // The plan says what changes, from what to what.
    let lines: Vec<String> = a.iter().map(crate::ovn::apply::describe).collect();
    assert_eq!(
        lines,
        [
            "~ ovs external_ids ovn-encap-ip=10.0.0.11 (was 10.9.9.9) -hostname (was old)",
            "~ ovs bridge br-int: datapath_type system -> netdev",
            "~ ovs interface ovn0: mtu 1500 -> 1400",
        ]
    );
    let ops = to_ops("root", &a);
    let m = &ops[0]["mutations"];
    assert_eq!(m[0][1], "delete");
    assert_eq!(
        m[1][1], "insert",
        "a key is deleted then inserted: insert never overwrites"
    );
}

#[test]
fn only_managed_rows_are_removed() {
    let mut d = example();
    d.bridges.truncate(1); // no more provider bridge
    d.bridges[0].ports.truncate(1); // no more join port
    let s = converged(&example());
    let a = reconcile(&d, &s);
    let names: Vec<String> = a
        .iter()
        .filter_map(|a| match a {
            Action::RemovePort { name, .. } | Action::RemoveBridge { name, .. } => {
                Some(name.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(names, ["ovn0", "br-ext"], "br-foreign stays");
}

#[test]
fn cleanup_removes_what_hearth_set_and_made_and_nothing_else() {
    let d = example();
    let mut s = converged(&d);
    let root = s.root.as_mut().unwrap();
    root.external_ids
        .insert(KEYS_KEY.into(), "system-id,ovn-encap-ip".into());
    // hostname is an owned key Hearth did not set here (not in its list): it stays.
    root.external_ids.insert("hostname".into(), "theirs".into());
    // br-int was made by ovn-controller: it stays, Hearth's ovn0 port on it goes.
    s.bridges[0].external_ids.clear();
    s.ports[0].external_ids.clear(); // its local port, which Hearth did not insert
    let a = cleanup(&s);
    let lines: Vec<String> = a.iter().map(crate::ovn::apply::describe).collect();
    assert_eq!(
        lines,
        [
            "- ovs external_ids -system-id (was node-a) -ovn-encap-ip (was 10.0.0.11) \
             -hearth-keys (was system-id,ovn-encap-ip)",
            "- ovs port ovn0",
            "- ovs bridge br-ext",
        ],
        "br-foreign, foreign keys and hostname stay"
    );
    assert!(cleanup(&OvsState::default()).is_empty());
}
