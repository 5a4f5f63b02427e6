use super::*;
use crate::model::{Link, LinkKind, Mac, Neighbour, NextHop};
use crate::netlink::{Owner, Seen, SeenLink};
use crate::render::render;
use crate::spec::parse;

const FILE: &str = r#"
links:
  - {name: br-ext, kind: bridge, mtu: 1500}
  - {name: veth-a, kind: veth, peer: veth-b, master: br-ext}
addresses:
  - {address: 192.0.2.10/24, dev: br-ext}
routes:
  - {dst: 10.244.0.0/16, via: 192.0.2.1}
neighbours:
  - {address: 192.0.2.50, dev: br-ext, mac: "02:00:00:00:00:50"}
rules:
  - {priority: 100, from: 10.9.0.0/16, table: 100}
sysctls:
  net.ipv4.ip_forward: "1"
"#;

fn desired() -> Desired {
    render(&parse(FILE).unwrap())
}

/// What the kernel would hold after a perfect apply, all marked as Hearth's.
fn converged(d: &Desired) -> Observed {
    let mut o = Observed::default();
    for (i, l) in d.links.iter().enumerate() {
        o.links.push(SeenLink {
            index: 10 + i as u32,
            link: Link {
                implied: false,
                ..l.clone()
            },
            owned: true,
            peer_elsewhere: false,
        });
    }
    o.addresses = d
        .addresses
        .iter()
        .map(|a| Seen {
            item: a.clone(),
            owner: Owner::Hearth,
        })
        .collect();
    o.routes = d
        .routes
        .iter()
        .map(|r| {
            let mut r = r.clone();
            // The kernel resolves the output device of a gateway-only route.
            r.nexthops[0].dev = Some("br-ext".into());
            Seen {
                item: r,
                owner: Owner::Hearth,
            }
        })
        .collect();
    o.neighbours = d
        .neighbours
        .iter()
        .map(|n| Seen {
            item: n.clone(),
            owner: Owner::Hearth,
        })
        .collect();
    o.rules = d
        .rules
        .iter()
        .map(|r| Seen {
            item: r.clone(),
            owner: Owner::Hearth,
        })
        .collect();
    for s in &d.sysctls {
        o.sysctls.insert(s.path.clone(), Some(s.value.clone()));
    }
    o
}

#[test]
fn from_empty_everything_is_added() {
    let plan = reconcile(&desired(), &Observed::default());
    let text: Vec<String> = plan.actions.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "~ sysctl net.ipv4.ip_forward: ? -> 1",
            "+ link br-ext (bridge, mtu 1500, up)",
            "+ link veth-a (veth, peer veth-b, master br-ext, up)",
            "+ address 192.0.2.10/24 dev br-ext",
            "+ route 10.244.0.0/16 via 192.0.2.1 table 254 metric 0",
            "+ neighbour 192.0.2.50 dev br-ext lladdr 02:00:00:00:00:50",
            "+ rule priority 100 from 10.9.0.0/16 lookup 100",
        ]
    );
    assert!(plan.conflicts.is_empty());
}

#[test]
fn converged_state_plans_nothing() {
    let d = desired();
    assert_eq!(reconcile(&d, &converged(&d)), Plan::default());
}

#[test]
fn stale_owned_objects_are_deleted_and_foreign_ones_kept() {
    let d = desired();
    let mut o = converged(&d);
    let mut stale = o.routes[0].item.clone();
    stale.key.dst = "10.250.0.0/16".parse().unwrap();
    o.routes.push(Seen {
        item: stale.clone(),
        owner: Owner::Hearth,
    });
    let mut foreign = stale.clone();
    foreign.key.dst = "10.251.0.0/16".parse().unwrap();
    o.routes.push(Seen {
        item: foreign,
        owner: Owner::Foreign,
    });
    o.links.push(SeenLink {
        index: 99,
        link: Link {
            name: "eth0".into(),
            kind: LinkKind::Other("veth".into()),
            mtu: Some(1500),
            up: true,
            master: None,
            mac: None,
            implied: false,
        },
        owned: false,
        peer_elsewhere: false,
    });
    o.links.push(SeenLink {
        index: 98,
        link: Link {
            name: "old0".into(),
            kind: LinkKind::Bridge,
            mtu: Some(1500),
            up: true,
            master: None,
            mac: None,
            implied: false,
        },
        owned: true,
        peer_elsewhere: false,
    });
    let plan = reconcile(&d, &o);
    assert_eq!(
        plan.actions,
        vec![
            Action::DeleteRoute(stale),
            Action::DeleteLink(o.links[4].link.clone())
        ]
    );
}

#[test]
fn foreign_objects_with_desired_identities_are_conflicts() {
    let d = desired();
    let mut o = converged(&d);
    o.links[0].owned = false;
    o.routes[0].owner = Owner::Foreign;
    o.addresses[0].owner = Owner::Floating;
    o.rules[0].owner = Owner::Foreign;
    let plan = reconcile(&d, &o);
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(plan.conflicts.len(), 4, "{plan}");
    assert!(plan
        .to_string()
        .contains("blocked by objects Hearth does not own"));
}

#[test]
fn owned_objects_that_differ_are_changed_in_place() {
    let d = desired();
    let mut o = converged(&d);
    o.links[0].link.mtu = Some(9000);
    o.links[1].link.master = None;
    o.routes[0].item.nexthops[0].via = Some("192.0.2.9".parse().unwrap());
    o.neighbours[0].item.mac = Some(Mac([2, 0, 0, 0, 0, 0x51]));
    o.sysctls
        .insert("net/ipv4/ip_forward".into(), Some("0".into()));
    let plan = reconcile(&d, &o);
    let text: Vec<String> = plan.actions.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "~ sysctl net.ipv4.ip_forward: 0 -> 1",
            "~ link br-ext: mtu 9000 -> 1500",
            "~ link veth-a: master none -> br-ext",
            "~ route 10.244.0.0/16 via 192.0.2.1 table 254 metric 0 (was route 10.244.0.0/16 via 192.0.2.9 dev br-ext table 254 metric 0)",
            "~ neighbour 192.0.2.50 dev br-ext lladdr 02:00:00:00:00:50",
        ]
    );
}

#[test]
fn kind_changes_recreate_and_learned_neighbours_are_replaced() {
    let d = desired();
    let mut o = converged(&d);
    o.links[0].link.kind = LinkKind::Other("dummy".into());
    o.neighbours[0].owner = Owner::Cache;
    let plan = reconcile(&d, &o);
    assert!(matches!(&plan.actions[0], Action::RecreateLink { new, .. } if new.name == "br-ext"));
    assert_eq!(
        plan.actions[1],
        Action::AddNeighbour {
            neighbour: d.neighbours[0].clone(),
            over_cache: true
        }
    );
}

#[test]
fn a_peer_moved_to_another_namespace_is_fine() {
    let d = desired();
    let mut o = converged(&d);
    o.links.retain(|l| l.link.name != "veth-b");
    o.links[1].peer_elsewhere = true;
    o.links[1].link.kind = LinkKind::Veth {
        peer: String::new(),
    };
    assert_eq!(reconcile(&d, &o), Plan::default());
}

#[test]
fn multipath_matches_in_any_order() {
    let want = &render(&parse("routes:\n  - {dst: 10.0.0.0/8, multipath: [{via: 10.1.0.1}, {via: 10.2.0.1, weight: 2}]}\n").unwrap()).routes[0];
    let mut have = want.clone();
    have.nexthops = vec![
        NextHop {
            via: Some("10.2.0.1".parse().unwrap()),
            dev: Some("eth0".into()),
            weight: 2,
            onlink: false,
        },
        NextHop {
            via: Some("10.1.0.1".parse().unwrap()),
            dev: Some("eth1".into()),
            weight: 1,
            onlink: false,
        },
    ];
    assert!(objects::satisfies(want, &have));
    have.nexthops[0].weight = 1;
    assert!(!objects::satisfies(want, &have));
    let _ = Neighbour {
        dev: String::new(),
        address: [0, 0, 0, 0].into(),
        mac: None,
        proxy: true,
    };
}
