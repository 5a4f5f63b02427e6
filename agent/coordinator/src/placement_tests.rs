use proptest::prelude::*;

use super::*;

const GIB: u64 = 1 << 30;
const NODE_KEY: &str = "topology.hearth.dev/node";

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn node(name: &str, zone: &str, free_gib: u64) -> NodeView {
    NodeView {
        name: name.to_owned(),
        labels: labels(&[(NODE_KEY, name), (ZONE_KEY, zone)]),
        healthy: true,
        total_bytes: 100 * GIB,
        free_bytes: free_gib * GIB,
        volumes: 0,
    }
}

fn req(id: &str, size_gib: u64, replicas: u32) -> VolumeRequest {
    VolumeRequest {
        id: id.to_owned(),
        size_bytes: size_gib * GIB,
        replicas,
        ..Default::default()
    }
}

#[test]
fn filters_count_what_they_removed() {
    let mut nodes = vec![
        node("sick", "a", 90),
        node("plain", "a", 90),
        node("ssd-b", "b", 90),
        node("ssd-full", "a", 1),
        node("ssd-a", "a", 90),
    ];
    nodes[0].healthy = false;
    for n in &mut nodes[2..] {
        n.labels.insert("disk".to_owned(), "ssd".to_owned());
    }
    let mut r = req("pvc-1", 10, 2);
    r.node_selector = labels(&[("disk", "ssd")]);
    r.requisite = vec![labels(&[(ZONE_KEY, "a")])];
    let err = place(&nodes, &r).unwrap_err();
    let PlacementError::NoFit {
        fit,
        nodes: total,
        removed,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!((*fit, *total), (1, 5));
    assert_eq!(
        *removed,
        Removed {
            unhealthy: 1,
            selector: 1,
            requisite: 1,
            space: 1
        }
    );
    assert_eq!(
        err.to_string(),
        "volume pvc-1: 2 replica(s) of 10 GiB need as many distinct nodes, but 1 of 5 node(s) \
         fit (1 unhealthy, 1 not matching the node selector, 1 outside the requisite topology, \
         1 without enough free space)"
    );
    r.replicas = 1;
    assert_eq!(place(&nodes, &r).unwrap(), ["ssd-a"]);
    // Any one requisite segment is enough.
    r.requisite.push(labels(&[(ZONE_KEY, "b")]));
    r.replicas = 2;
    assert_eq!(place(&nodes, &r).unwrap().len(), 2);
}

#[test]
fn zero_replicas_and_empty_clusters() {
    let err = place(&[node("a", "a", 50)], &req("v", 1, 0)).unwrap_err();
    assert!(
        matches!(err, PlacementError::InvalidRequest { .. }),
        "{err}"
    );
    let err = place(&[], &req("v", 1, 1)).unwrap_err();
    assert!(err.to_string().contains("0 of 0 node(s) fit"), "{err}");
    // A size exactly equal to free space fits.
    assert_eq!(place(&[node("a", "a", 5)], &req("v", 5, 1)).unwrap(), ["a"]);
}

#[test]
fn preferred_topologies_in_order() {
    let nodes = vec![
        node("n1", "a", 90),
        node("n2", "b", 20),
        node("n3", "c", 50),
    ];
    let mut r = req("pvc", 1, 1);
    // Without preferences, the emptiest node.
    assert_eq!(place(&nodes, &r).unwrap(), ["n1"]);
    r.preferred = vec![labels(&[(NODE_KEY, "n2")]), labels(&[(ZONE_KEY, "c")])];
    assert_eq!(place(&nodes, &r).unwrap(), ["n2"]);
    r.preferred.reverse();
    assert_eq!(place(&nodes, &r).unwrap(), ["n3"]);
    // A preferred node that does not fit is skipped, not an error.
    r.size_bytes = 30 * GIB;
    r.preferred = vec![labels(&[(NODE_KEY, "n2")])];
    assert_eq!(place(&nodes, &r).unwrap(), ["n1"]);
    // Preferred segments naming unknown labels match nothing.
    r.preferred = vec![labels(&[("nope", "x")])];
    assert_eq!(place(&nodes, &r).unwrap(), ["n1"]);
}

#[test]
fn replicas_spread_across_zones_then_nodes() {
    let nodes = vec![
        node("a1", "a", 90),
        node("a2", "a", 89),
        node("a3", "a", 88),
        node("b1", "b", 30),
        node("c1", "c", 20),
    ];
    // The emptiest node first, then the other zones though their nodes are fuller.
    assert_eq!(place(&nodes, &req("v", 1, 3)).unwrap(), ["a1", "b1", "c1"]);
    // More replicas than zones: back to the best node in a used zone, never the same node.
    assert_eq!(
        place(&nodes, &req("v", 1, 5)).unwrap(),
        ["a1", "b1", "c1", "a2", "a3"]
    );
    // The preferred node gets the first replica; the others still spread.
    let mut r = req("v", 1, 2);
    r.preferred = vec![labels(&[(NODE_KEY, "a3")])];
    assert_eq!(place(&nodes, &r).unwrap(), ["a3", "b1"]);
}

#[test]
fn fewer_volumes_breaks_equal_space() {
    let mut nodes = vec![node("x", "a", 50), node("y", "a", 50), node("z", "a", 50)];
    nodes[0].volumes = 10;
    nodes[1].volumes = 3;
    nodes[2].volumes = 7;
    assert_eq!(place(&nodes, &req("v", 1, 3)).unwrap(), ["y", "z", "x"]);
}

#[test]
fn nodes_without_zone_form_one_zone() {
    let mut nodes = vec![node("a1", "a", 90), node("n1", "", 80), node("n2", "", 70)];
    nodes[1].labels.remove(ZONE_KEY);
    nodes[2].labels.remove(ZONE_KEY);
    assert_eq!(place(&nodes, &req("v", 1, 3)).unwrap(), ["a1", "n1", "n2"]);
}

#[test]
fn deterministic_and_independent_of_node_order() {
    let nodes: Vec<NodeView> = (0..30)
        .map(|i| node(&format!("n{i}"), ["a", "b", "c"][i % 3], 50))
        .collect();
    let mut reversed = nodes.clone();
    reversed.reverse();
    let mut winners = std::collections::BTreeSet::new();
    for v in 0..40 {
        let r = req(&format!("pvc-{v}"), 1, 3);
        let got = place(&nodes, &r).unwrap();
        assert_eq!(got, place(&nodes, &r).unwrap());
        assert_eq!(got, place(&reversed, &r).unwrap());
        winners.insert(got[0].clone());
    }
    // Equal nodes: ties go to different nodes for different volumes.
    assert!(winners.len() >= 10, "{winners:?}");
}

#[test]
fn commit_updates_space_and_counts() {
    let mut c = Cluster::new(vec![node("a", "a", 3), node("b", "b", 3)]);
    let r = req("v", 2, 1);
    let first = c.place(&r).unwrap();
    c.commit(&first, r.size_bytes);
    let second = c.place(&r).unwrap();
    assert_ne!(first, second, "the emptier node is next");
    c.commit(&second, r.size_bytes);
    let err = c.place(&r).unwrap_err();
    assert!(
        err.to_string().contains("2 without enough free space"),
        "{err}"
    );
    assert_eq!(c.nodes()[0].volumes, 1);
    c.set_healthy(0, false);
    assert!(c
        .place(&req("v", 1, 2))
        .unwrap_err()
        .to_string()
        .contains("1 unhealthy"));
}

#[test]
fn bytes_are_readable() {
    assert_eq!(Bytes(512).to_string(), "512 B");
    assert_eq!(Bytes(10 * GIB).to_string(), "10 GiB");
    assert_eq!(Bytes(1536 * GIB).to_string(), "1.5 TiB");
}

fn cluster() -> impl Strategy<Value = Vec<NodeView>> {
    prop::collection::vec(
        (any::<bool>(), 0u64..100, 0u32..20, 0usize..4, any::<bool>()),
        1..25,
    )
    .prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (healthy, free, volumes, zone, ssd))| {
                let mut n = node(&format!("n{i}"), ["a", "b", "c", "d"][zone], free);
                n.healthy = healthy;
                n.volumes = volumes;
                if ssd {
                    n.labels.insert("disk".to_owned(), "ssd".to_owned());
                }
                n
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn placements_obey_the_filters(
        nodes in cluster(),
        size in 0u64..60,
        replicas in 1u32..5,
        ssd in any::<bool>(),
        zone_req in prop::option::of(0usize..4),
        seed in any::<u64>(),
    ) {
        let mut r = req(&format!("pvc-{seed}"), size, replicas);
        if ssd {
            r.node_selector = labels(&[("disk", "ssd")]);
        }
        if let Some(z) = zone_req {
            r.requisite = vec![labels(&[(ZONE_KEY, ["a", "b", "c", "d"][z])])];
        }
        let fits = |n: &NodeView| {
            n.healthy
                && (!ssd || n.labels.contains_key("disk"))
                && zone_req.is_none_or(|z| n.labels[ZONE_KEY] == ["a", "b", "c", "d"][z])
                && n.free_bytes >= r.size_bytes
        };
        let fit = nodes.iter().filter(|n| fits(n)).count();
        match place(&nodes, &r) {
            Ok(got) => {
                prop_assert_eq!(got.len(), replicas as usize);
                let distinct: std::collections::BTreeSet<_> = got.iter().collect();
                prop_assert_eq!(distinct.len(), got.len());
                for name in &got {
                    let n = nodes.iter().find(|n| &n.name == name).unwrap();
                    prop_assert!(fits(n));
                }
                // Zones: as many distinct ones as possible.
                let zones_fit: std::collections::BTreeSet<_> =
                    nodes.iter().filter(|n| fits(n)).map(|n| n.labels[ZONE_KEY].clone()).collect();
                let zones_got: std::collections::BTreeSet<_> = got
                    .iter()
                    .map(|g| nodes.iter().find(|n| &n.name == g).unwrap().labels[ZONE_KEY].clone())
                    .collect();
                prop_assert_eq!(zones_got.len(), zones_fit.len().min(replicas as usize));
                let mut shuffled = nodes.clone();
                shuffled.rotate_left(seed as usize % nodes.len());
                prop_assert_eq!(place(&shuffled, &r).unwrap(), got);
            }
            Err(PlacementError::NoFit { fit: f, removed, nodes: total, .. }) => {
                prop_assert!(fit < replicas as usize);
                prop_assert_eq!(f, fit);
                prop_assert_eq!(
                    removed.unhealthy + removed.selector + removed.requisite + removed.space + f,
                    total
                );
            }
            Err(e) => prop_assert!(false, "{}", e),
        }
    }
}
