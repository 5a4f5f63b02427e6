use proptest::prelude::*;

use super::*;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn node(name: &str, healthy: bool, pairs: &[(&str, &str)]) -> NodeView {
    NodeView {
        name: name.to_owned(),
        labels: labels(pairs),
        healthy,
    }
}

fn nodes(n: usize) -> Vec<NodeView> {
    (0..n)
        .map(|i| {
            node(
                &format!("node-{i}"),
                true,
                &[("zone", ["a", "b", "c"][i % 3])],
            )
        })
        .collect()
}

#[test]
fn filters_health_and_both_selectors() {
    let ns = vec![
        node("sick", false, &[("edge", "yes"), ("zone", "a")]),
        node("core", true, &[("zone", "a")]),
        node("edge-b", true, &[("edge", "yes"), ("zone", "b")]),
        node("edge-a", true, &[("edge", "yes"), ("zone", "a")]),
    ];
    let none = BTreeMap::new();
    let (edge, zone_a) = (labels(&[("edge", "yes")]), labels(&[("zone", "a")]));
    assert_eq!(
        choose_owner("web", &ns, &edge, &zone_a, &none).as_deref(),
        Some("edge-a")
    );
    assert_eq!(
        choose_owner("web", &ns, &zone_a, &edge, &none).as_deref(),
        Some("edge-a")
    );
    let gpu = labels(&[("gpu", "yes")]);
    assert_eq!(choose_owner("web", &ns, &edge, &gpu, &none), None);
    assert_eq!(
        choose_owner("web", &[], &Labels::new(), &Labels::new(), &none),
        None
    );
}

#[test]
fn fewest_owned_wins() {
    let ns = nodes(3);
    let owned = BTreeMap::from([("node-0".to_owned(), 2), ("node-1".to_owned(), 1)]);
    let any = Labels::new();
    for ip in ["a", "b", "c", "d"] {
        assert_eq!(
            choose_owner(ip, &ns, &any, &any, &owned).as_deref(),
            Some("node-2")
        );
    }
}

#[test]
fn ties_are_stable_and_independent_of_order() {
    let mut ns = nodes(7);
    let any = Labels::new();
    let none = BTreeMap::new();
    let first: Vec<_> = (0..50)
        .map(|i| choose_owner(&format!("ip-{i}"), &ns, &any, &any, &none))
        .collect();
    ns.reverse();
    let again: Vec<_> = (0..50)
        .map(|i| choose_owner(&format!("ip-{i}"), &ns, &any, &any, &none))
        .collect();
    assert_eq!(first, again);
    // Ties do not all go to one node.
    let distinct: std::collections::BTreeSet<_> = first.iter().collect();
    assert!(distinct.len() >= 5, "{distinct:?}");
}

#[test]
fn removing_a_node_only_moves_what_it_won() {
    let ns = nodes(10);
    let any = Labels::new();
    let none = BTreeMap::new();
    let pick = |ns: &[NodeView], ip: &str| choose_owner(ip, ns, &any, &any, &none).unwrap();
    let fewer: Vec<NodeView> = ns.iter().filter(|n| n.name != "node-4").cloned().collect();
    for i in 0..200 {
        let ip = format!("ip-{i}");
        let before = pick(&ns, &ip);
        if before != "node-4" {
            assert_eq!(pick(&fewer, &ip), before, "{ip}");
        }
    }
}

#[test]
fn a_thousand_orphans_spread_evenly() {
    let mut ns = nodes(9);
    ns[0].healthy = false; // the dead node
    let any = Labels::new();
    let names: Vec<String> = (0..1000).map(|i| format!("ip-{i}")).collect();
    let orphans: Vec<Orphan<'_>> = names
        .iter()
        .map(|n| Orphan {
            name: n,
            pool_selector: &any,
            ip_selector: &any,
        })
        .collect();
    // Survivors already own some; the spread evens them out.
    let mut owned = BTreeMap::from([("node-1".to_owned(), 40), ("node-2".to_owned(), 10)]);
    let out = assign_all(&orphans, &ns, &mut owned);
    assert!(out.iter().all(Option::is_some));
    assert!(!out.iter().any(|o| o.as_deref() == Some("node-0")));
    let total: usize = owned.values().sum();
    assert_eq!(total, 1050);
    let (min, max) = (owned.values().min().unwrap(), owned.values().max().unwrap());
    assert!(max - min <= 1, "{owned:?}");
    // Same input, same answer, in any order.
    let mut owned2 = BTreeMap::from([("node-1".to_owned(), 40), ("node-2".to_owned(), 10)]);
    let mut rev = orphans.clone();
    rev.reverse();
    let mut out2 = assign_all(&rev, &ns, &mut owned2);
    out2.reverse();
    assert_eq!(out, out2);
}

#[test]
fn constrained_orphans_go_first() {
    let ns = vec![node("a", true, &[("edge", "yes")]), node("b", true, &[])];
    let (any, edge) = (Labels::new(), labels(&[("edge", "yes")]));
    // "zzz" can only go to a; the free ones should fill b rather than crowd a.
    let orphans = [
        Orphan {
            name: "aaa",
            pool_selector: &any,
            ip_selector: &any,
        },
        Orphan {
            name: "zzz",
            pool_selector: &edge,
            ip_selector: &any,
        },
    ];
    let mut owned = BTreeMap::new();
    let out = assign_all(&orphans, &ns, &mut owned);
    assert_eq!(out, [Some("b".to_owned()), Some("a".to_owned())]);
    let no_match = [Orphan {
        name: "x",
        pool_selector: &edge,
        ip_selector: &labels(&[("gpu", "1")]),
    }];
    assert_eq!(assign_all(&no_match, &ns, &mut owned), [None]);
}

proptest! {
    #[test]
    fn spread_is_even_and_only_to_candidates(
        healthy in prop::collection::vec(any::<bool>(), 1..12),
        edge in prop::collection::vec(any::<bool>(), 12),
        n in 0usize..300,
    ) {
        let ns: Vec<NodeView> = healthy
            .iter()
            .enumerate()
            .map(|(i, h)| node(&format!("n{i}"), *h, if edge[i] { &[("edge", "yes")] } else { &[] }))
            .collect();
        let (any, edge_sel) = (Labels::new(), labels(&[("edge", "yes")]));
        let names: Vec<String> = (0..n).map(|i| format!("ip-{i}")).collect();
        let orphans: Vec<Orphan<'_>> = names
            .iter()
            .map(|name| Orphan { name, pool_selector: &edge_sel, ip_selector: &any })
            .collect();
        let mut owned = BTreeMap::new();
        let out = assign_all(&orphans, &ns, &mut owned);
        let cands: Vec<&NodeView> = ns.iter().filter(|x| x.healthy && x.labels.contains_key("edge")).collect();
        for o in &out {
            match o {
                Some(name) => prop_assert!(cands.iter().any(|c| &c.name == name)),
                None => prop_assert!(cands.is_empty()),
            }
        }
        if !cands.is_empty() {
            let counts: Vec<usize> = cands.iter().map(|c| owned.get(&c.name).copied().unwrap_or(0)).collect();
            prop_assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1);
        }
    }
}
