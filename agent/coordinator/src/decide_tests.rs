//! Unit tests of the floating-IP decisions: lease expiry, epochs, spread, restart adoption.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::{assignments, decide, next_due, owner_alive, Action, NodeFacts, Timing, View};
use crate::pools::Pool;
use crate::store::{FloatingIp, FloatingIpPool, FloatingIpState};

struct World {
    pools: BTreeMap<String, FloatingIpPool>,
    parsed: BTreeMap<String, Pool>,
    fips: BTreeMap<String, FloatingIp>,
    states: BTreeMap<String, FloatingIpState>,
    released: Vec<(IpAddr, Instant)>,
    nodes: BTreeMap<String, NodeFacts>,
    leader_since: Option<Instant>,
}

impl World {
    /// A pool `lan` (10.0.0.0/29 on eth0), `n` declared floating IPs `ip-0..`, no nodes, leading
    /// since long ago.
    fn new(n: usize, t0: Instant) -> Self {
        let pool = FloatingIpPool {
            name: "lan".into(),
            cidrs: vec!["10.0.0.0/29".into()],
            ranges: Vec::new(),
            exclude: Vec::new(),
            interface: "eth0".into(),
            node_selector: BTreeMap::new(),
        };
        let fips = (0..n)
            .map(|i| {
                let name = format!("ip-{i}");
                let fip = FloatingIp {
                    name: name.clone(),
                    pool: "lan".into(),
                    address: None,
                    node_selector: BTreeMap::new(),
                    target: None,
                };
                (name, fip)
            })
            .collect();
        Self {
            parsed: BTreeMap::from([("lan".into(), Pool::parse(&pool).unwrap())]),
            pools: BTreeMap::from([("lan".into(), pool)]),
            fips,
            states: BTreeMap::new(),
            released: Vec::new(),
            nodes: BTreeMap::new(),
            leader_since: Some(t0),
        }
    }

    /// A node with a live session, healthy, granted at `grant`.
    fn node(&mut self, name: &str, grant: Option<Instant>) {
        self.nodes.insert(
            name.into(),
            NodeFacts {
                labels: BTreeMap::new(),
                healthy: true,
                assigned: true,
                last_grant: grant,
                ..NodeFacts::default()
            },
        );
    }

    fn state(&mut self, name: &str, address: &str, node: Option<&str>, epoch: u64) {
        self.states.insert(
            name.into(),
            FloatingIpState {
                name: name.into(),
                address: address.parse().unwrap(),
                node: node.map(str::to_owned),
                epoch,
                term: 1,
            },
        );
    }

    fn view(&self) -> View<'_> {
        View {
            pools: &self.pools,
            parsed: &self.parsed,
            fips: &self.fips,
            states: &self.states,
            released: &self.released,
            nodes: &self.nodes,
            leader_since: self.leader_since,
            term: 5,
        }
    }
}

fn swaps(actions: Vec<Action>) -> Vec<(u64, FloatingIpState, Option<String>)> {
    actions
        .into_iter()
        .map(
            |Action::Swap {
                 expected,
                 state,
                 previous,
             }| (expected, state, previous),
        )
        .collect()
}

const T: Timing = Timing {
    report_interval: Duration::from_millis(100),
    lease: Duration::from_millis(350),
    margin: Duration::from_millis(100),
    leadership: Duration::from_secs(10),
    answer: Duration::from_millis(130),
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn a_follower_decides_nothing() {
    let t0 = Instant::now();
    let mut w = World::new(2, t0);
    w.leader_since = None;
    w.node("a", Some(t0));
    assert!(decide(&w.view(), &T, t0 + ms(10_000)).is_empty());
}

#[test]
fn an_ip_moves_only_after_the_owners_lease_and_margin_end() {
    let t0 = Instant::now();
    let mut w = World::new(1, t0);
    let grant_a = t0 + ms(1000);
    w.node("a", Some(grant_a));
    w.node("b", Some(t0 + ms(1400)));
    w.state("ip-0", "10.0.0.1", Some("a"), 7);
    // Lease (350) has ended but not lease + margin (450): a may still answer.
    assert!(owner_alive(&w.view(), &T, "a", grant_a + ms(449)));
    assert!(decide(&w.view(), &T, grant_a + ms(449)).is_empty());
    // At lease + margin it moves to b, with the next epoch, from the stored one.
    let got = swaps(decide(&w.view(), &T, grant_a + ms(450)));
    assert_eq!(got.len(), 1);
    let (expected, state, previous) = &got[0];
    assert_eq!((*expected, state.epoch, state.term), (7, 8, 5));
    assert_eq!(state.node.as_deref(), Some("b"));
    assert_eq!(state.address, "10.0.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(previous.as_deref(), Some("a"));
}

#[test]
fn without_a_candidate_the_ip_goes_to_no_one_once_and_stays_there() {
    let t0 = Instant::now();
    let mut w = World::new(1, t0);
    w.node("a", Some(t0 + ms(1000)));
    w.state("ip-0", "10.0.0.1", Some("a"), 3);
    let now = t0 + ms(2000);
    let got = swaps(decide(&w.view(), &T, now));
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].0, got[0].1.epoch, got[0].1.node.clone()),
        (3, 4, None)
    );
    // Written: nobody owns it and nobody can; nothing more to do.
    w.state("ip-0", "10.0.0.1", None, 4);
    assert!(decide(&w.view(), &T, now).is_empty());
}

#[test]
fn an_unhealthy_or_unassigned_or_lapsed_node_gets_nothing_new() {
    let t0 = Instant::now();
    let now = t0 + ms(5000);
    let mut w = World::new(1, t0);
    w.node("sick", Some(now));
    w.nodes.get_mut("sick").unwrap().healthy = false;
    w.node("fresh", Some(now));
    w.nodes.get_mut("fresh").unwrap().assigned = false;
    w.node("lapsed", Some(now - ms(350)));
    let got = swaps(decide(&w.view(), &T, now));
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].1.node, None,
        "no candidate: allocated, owned by no one"
    );
    assert_eq!(got[0].0, 0);
    assert_eq!(got[0].1.epoch, 1);
}

#[test]
fn new_ips_spread_evenly_and_get_distinct_addresses() {
    let t0 = Instant::now();
    let now = t0 + ms(5000);
    let mut w = World::new(4, t0);
    w.node("a", Some(now));
    w.node("b", Some(now));
    let got = swaps(decide(&w.view(), &T, now));
    assert_eq!(got.len(), 4);
    let on = |n: &str| {
        got.iter()
            .filter(|g| g.1.node.as_deref() == Some(n))
            .count()
    };
    assert_eq!((on("a"), on("b")), (2, 2));
    let mut addrs: Vec<IpAddr> = got.iter().map(|g| g.1.address).collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 4);
    assert!(got
        .iter()
        .all(|g| g.0 == 0 && g.1.epoch == 1 && g.2.is_none()));
}

#[test]
fn an_orphan_goes_to_the_least_loaded_node() {
    let t0 = Instant::now();
    let now = t0 + ms(5000);
    let mut w = World::new(3, t0);
    w.node("a", Some(now));
    w.node("b", Some(now));
    w.node("dead", Some(t0 + ms(1000)));
    w.state("ip-0", "10.0.0.1", Some("a"), 1);
    w.state("ip-1", "10.0.0.2", Some("a"), 1);
    w.state("ip-2", "10.0.0.3", Some("dead"), 5);
    let got = swaps(decide(&w.view(), &T, now));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.name, "ip-2");
    assert_eq!(got[0].1.node.as_deref(), Some("b"));
}

#[test]
fn a_new_leader_adopts_stored_owners_and_allocates_nothing_during_its_grace() {
    let t0 = Instant::now();
    let mut w = World::new(2, t0);
    // Just became leader: no grants sent yet. ip-0 is stored on a; ip-1 is new.
    w.node("a", None);
    w.node("b", Some(t0 + ms(440)));
    w.state("ip-0", "10.0.0.1", Some("a"), 4);
    assert!(owner_alive(&w.view(), &T, "a", t0 + ms(449)));
    assert!(decide(&w.view(), &T, t0 + ms(449)).is_empty());
    // Once a has a grant of this leader, its ownership stands on that.
    w.nodes.get_mut("a").unwrap().last_grant = Some(t0 + ms(440));
    let got = swaps(decide(&w.view(), &T, t0 + ms(450)));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1.name, "ip-1", "ip-0 stays on a");
    assert_ne!(got[0].1.address, "10.0.0.1".parse::<IpAddr>().unwrap());
}

#[test]
fn an_owner_never_heard_from_is_dropped_after_the_grace() {
    let t0 = Instant::now();
    let mut w = World::new(1, t0);
    w.state("ip-0", "10.0.0.1", Some("gone"), 2);
    w.node("b", Some(t0 + ms(440)));
    assert!(decide(&w.view(), &T, t0 + ms(449)).is_empty());
    let got = swaps(decide(&w.view(), &T, t0 + ms(450)));
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].0, got[0].1.node.as_deref()), (2, Some("b")));
    assert_eq!(got[0].2.as_deref(), Some("gone"));
}

#[test]
fn released_addresses_are_not_handed_out() {
    let t0 = Instant::now();
    let now = t0 + ms(5000);
    let mut w = World::new(1, t0);
    w.node("a", Some(now));
    w.released
        .push(("10.0.0.1".parse().unwrap(), now + ms(100)));
    let got = swaps(decide(&w.view(), &T, now));
    assert_eq!(got.len(), 1);
    assert_ne!(got[0].1.address, "10.0.0.1".parse::<IpAddr>().unwrap());
}

#[test]
fn assignments_group_by_owner_with_the_pools_interface() {
    let t0 = Instant::now();
    let mut w = World::new(3, t0);
    w.state("ip-0", "10.0.0.1", Some("a"), 1);
    w.state("ip-1", "10.0.0.2", Some("a"), 2);
    w.state("ip-2", "10.0.0.3", None, 3);
    let per = assignments(&w.view());
    assert_eq!(per.len(), 1);
    let a = &per["a"];
    assert_eq!(a.len(), 2);
    assert_eq!((a[1].name.as_str(), a[1].epoch), ("ip-1", 2));
    assert_eq!(a[0].interface, "eth0");
}

#[test]
fn the_next_pass_is_due_at_the_nearest_end() {
    let t0 = Instant::now();
    let mut w = World::new(1, t0);
    w.node("a", Some(t0 + ms(1000)));
    w.state("ip-0", "10.0.0.1", Some("a"), 1);
    let now = t0 + ms(1100);
    // a's lease ends at 1350 (lease), its ownership at 1450 (hold).
    assert_eq!(next_due(&w.view(), &T, now), Some(t0 + ms(1350)));
    assert_eq!(next_due(&w.view(), &T, t0 + ms(1360)), Some(t0 + ms(1450)));
    assert_eq!(next_due(&w.view(), &T, t0 + ms(1500)), None);
}

#[test]
fn a_closed_session_moves_after_the_answer_window_and_a_leaving_node_at_once() {
    let t0 = Instant::now();
    let mut w = World::new(1, t0);
    let grant_a = t0 + ms(1000);
    w.node("a", Some(grant_a));
    w.node("b", Some(t0 + ms(1100)));
    w.state("ip-0", "10.0.0.1", Some("a"), 3);
    // Silence: the lease rule.
    assert!(owner_alive(&w.view(), &T, "a", grant_a + ms(200)));
    // The stream ended: a stops answering by grant + 130 ms; it moves at + 150 ms.
    w.nodes.get_mut("a").unwrap().closed = true;
    assert!(owner_alive(&w.view(), &T, "a", grant_a + ms(149)));
    assert!(decide(&w.view(), &T, grant_a + ms(149)).is_empty());
    assert_eq!(
        next_due(&w.view(), &T, grant_a + ms(10)),
        Some(grant_a + ms(150))
    );
    let got = swaps(decide(&w.view(), &T, grant_a + ms(150)));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.node.as_deref(), Some("b"));
    // Leaving: at once, whatever the last grant.
    let a = w.nodes.get_mut("a").unwrap();
    (a.closed, a.left) = (false, true);
    assert!(!owner_alive(&w.view(), &T, "a", grant_a + ms(1)));
    assert_eq!(swaps(decide(&w.view(), &T, grant_a + ms(1))).len(), 1);
}

#[test]
fn a_connection_the_node_closed_moves_at_once_and_a_reset_waits_for_the_answer_window() {
    let t0 = Instant::now();
    let mut w = World::new(1, t0);
    let grant_a = t0 + ms(1000);
    w.node("a", Some(grant_a));
    w.node("b", Some(grant_a + ms(10)));
    w.state("ip-0", "10.0.0.1", Some("a"), 3);
    // A reset or an error (a firewall, a conntrack flush): a may answer until its window ends.
    w.nodes.get_mut("a").unwrap().closed = true;
    assert!(owner_alive(&w.view(), &T, "a", grant_a + ms(20)));
    assert!(decide(&w.view(), &T, grant_a + ms(20)).is_empty());
    // The node's kernel sent a FIN: its process closed (gate shut first) or died.
    w.nodes.get_mut("a").unwrap().closed_by_node = true;
    assert!(!owner_alive(&w.view(), &T, "a", grant_a + ms(20)));
    let got = swaps(decide(&w.view(), &T, grant_a + ms(20)));
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].1.node.as_deref(), got[0].1.epoch), (Some("b"), 4));
    // A FIN is not enough while a session is open: `closed` must be set too (a new session).
    let a = w.nodes.get_mut("a").unwrap();
    a.closed = false;
    assert!(owner_alive(&w.view(), &T, "a", grant_a + ms(20)));
}

#[test]
fn addresses_come_from_the_pool_parsed_at_load_and_a_pool_that_did_not_parse_gives_none() {
    let t0 = Instant::now();
    let mut w = World::new(1, t0);
    w.node("a", Some(t0 + ms(1000)));
    let now = t0 + ms(1010);
    // The decisions use the parse made when the pool was loaded, not the record (which they
    // never parse): here the parse says 10.1.0.0/30.
    let mut other = w.pools["lan"].clone();
    other.cidrs = vec!["10.1.0.0/30".into()];
    w.parsed.insert("lan".into(), Pool::parse(&other).unwrap());
    let got = swaps(decide(&w.view(), &T, now));
    assert_eq!(got[0].1.address, "10.1.0.1".parse::<IpAddr>().unwrap());
    // A pool whose record did not parse is absent from `parsed`: nothing is allocated from it.
    w.parsed.clear();
    assert!(decide(&w.view(), &T, now).is_empty());
}
