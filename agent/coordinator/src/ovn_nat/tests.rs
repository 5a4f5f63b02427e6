use std::collections::BTreeMap;

use super::*;

fn config() -> OvnNatConfig {
    OvnNatConfig {
        northbound: "tcp:127.0.0.1:6641".into(),
        southbound: None,
        router: "gw".into(),
        gateway_port: "gw-ext".into(),
        ha_group: default_group(),
        gateway_label: default_label(),
    }
}

fn fip(name: &str, target: Option<&str>) -> FloatingIp {
    FloatingIp {
        name: name.into(),
        pool: "public".into(),
        address: None,
        node_selector: BTreeMap::new(),
        target: target.map(str::to_owned),
    }
}

fn state(name: &str, a: &str) -> FloatingIpState {
    FloatingIpState {
        name: name.into(),
        address: a.parse().unwrap(),
        node: None,
        epoch: 1,
        term: 1,
    }
}

fn node(name: &str, gw: bool, ok: bool) -> NodeFacts {
    NodeFacts {
        name: name.into(),
        labels: if gw {
            [("hearth.io/gateway".to_owned(), "true".to_owned())].into()
        } else {
            BTreeMap::new()
        },
        healthy: ok,
        lease_valid: ok,
    }
}

#[test]
fn targets_parse() {
    assert_eq!(
        Target::parse("10.0.0.5"),
        Ok(Target::Ip("10.0.0.5".parse().unwrap()))
    );
    assert_eq!(
        Target::parse("vmi/default/vm1"),
        Ok(Target::Vmi("default".into(), "vm1".into()))
    );
    assert!(Target::parse("pod/x").is_err());
    assert!(Target::parse("node/x/y").is_err());
}

#[test]
fn only_targeted_allocated_floating_ips_become_nat_rows() {
    let fips = [
        fip("vm1", Some("10.0.0.5")),
        fip("svc", None),
        fip("new", Some("10.0.0.6")),
        fip("pod", Some("pod/ns/p")),
        fip("mixed", Some("fd00::5")),
    ];
    let states = [
        state("vm1", "203.0.113.5"),
        state("svc", "203.0.113.6"),
        state("pod", "203.0.113.7"),
        state("mixed", "203.0.113.8"),
    ];
    let (d, st) = desired(&config(), &fips, &states, &[], None);
    assert_eq!(d.nats.len(), 1);
    assert_eq!(d.nats[0].name, "vm1");
    assert_eq!(d.ha, None, "no gateway nodes: the port is left alone");
    let problems: Vec<_> = st
        .iter()
        .filter(|s| s.problem.is_some())
        .map(|s| &s.name)
        .collect();
    assert_eq!(problems, ["new", "pod", "mixed"]);
}

#[test]
fn gateway_members_are_the_labelled_nodes() {
    let nodes = [
        node("a", true, true),
        node("b", true, false),
        node("c", false, true),
    ];
    let (d, _) = desired(&config(), &[], &[], &nodes, Some("a"));
    let ha = d.ha.unwrap();
    assert_eq!(ha.group, "hearth-gateway");
    assert_eq!(ha.members.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert!(ha.members["a"] > ha.members["b"]);
}
