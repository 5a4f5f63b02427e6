//! The floating-IP decisions, pure: from what the leader knows (declarations, stored states,
//! each node's session and last grant) and the time, which owners and addresses to write.
//!
//! Safety rule: a floating IP owned by node N moves only after N's lease has ended in the
//! coordinator's reckoning: `last grant sent to N + lease + margin`. N counts the same lease
//! from when it SENT the report the grant answers, which is earlier, and withdraws at its own
//! deadline. After a start or a leader change the coordinator has sent no grants, so it treats
//! every stored owner as alive until `leader_since + lease + margin` and allocates nothing new
//! before then (restart adoption: a node that still holds its IP keeps it).
//!
//! Fast path: a node answers ARP/NDP only until `answer` after the last report the coordinator
//! answered, and not at all once its end of the session failed. So when a node's stream ended
//! its addresses may move at `last grant + answer + CLOSE_MARGIN`, before the lease ends; and
//! at once after a `Leaving` (SIGTERM: the node stopped answering before sending it), and at
//! once when the node's own kernel closed the connection (a FIN: its process closed it after
//! shutting its gate, or died; see [`crate::closes`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use hearth_proto::hearth::v1::FloatingIpAssignment;
use tokio::time::Instant;

use super::assign::{assign_all, Candidate, Orphan};
use super::pools::{allocate, Pool};
use crate::store::{FloatingIp, FloatingIpPool, FloatingIpState};

/// The lease and report timings.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How often nodes report (each report renews the lease).
    pub report_interval: Duration,
    /// How long a lease lasts from the report it answers.
    pub lease: Duration,
    /// Extra wait before the coordinator counts a lease as ended (withdrawal time, clock rate).
    pub margin: Duration,
    /// Leader-election lease of the store.
    pub leadership: Duration,
    /// The answer window sent in the Welcome: how long after a report the coordinator answered
    /// the node may answer ARP/NDP for its addresses (a report interval plus some slack).
    pub answer: Duration,
}

/// How late a node may be to stop answering at the end of its answer window (its clock rate,
/// the instant between its check and the frame leaving).
pub const CLOSE_MARGIN: Duration = Duration::from_millis(20);

/// The slack of the answer window over the report interval: a report may be this late before
/// the node stops answering (it answers again with the next lease).
pub const ANSWER_SLACK: Duration = Duration::from_millis(30);

impl Default for Timing {
    fn default() -> Self {
        Self {
            report_interval: Duration::from_millis(100),
            lease: Duration::from_millis(350),
            margin: Duration::from_millis(100),
            leadership: Duration::from_secs(10),
            answer: Duration::from_millis(100) + ANSWER_SLACK,
        }
    }
}

impl Timing {
    /// How long past its last grant a node may still answer: lease plus margin.
    pub fn hold(&self) -> Duration {
        self.lease + self.margin
    }

    /// How long past its last grant node `n` may still answer: the answer window (plus
    /// [`CLOSE_MARGIN`]) once its stream ended, else the lease (silence proves nothing).
    pub fn hold_for(&self, n: Option<&NodeFacts>) -> Duration {
        if n.is_some_and(|n| n.closed && n.closed_by_node) {
            Duration::ZERO
        } else if n.is_some_and(|n| n.closed) {
            (self.answer + CLOSE_MARGIN).min(self.hold())
        } else {
            self.hold()
        }
    }
}

/// What the decisions need to know of a node.
#[derive(Debug, Clone, Default)]
pub struct NodeFacts {
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Whether it reported healthy.
    pub healthy: bool,
    /// Whether its session is open and got its first assignments.
    pub assigned: bool,
    /// When this leader last sent it a lease.
    pub last_grant: Option<Instant>,
    /// Its last session ended by its stream ending, and no new one opened (the fast path).
    pub closed: bool,
    /// That end was the node's own kernel closing the connection (a FIN): it answers nothing.
    pub closed_by_node: bool,
    /// It said `Leaving` in its last session: it answers for nothing any more.
    pub left: bool,
}

/// The leader's picture, borrowed from the engine.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// Pools by name.
    pub pools: &'a BTreeMap<String, FloatingIpPool>,
    /// The pools that parsed, by name: parsed once when loaded, never per pass.
    pub parsed: &'a BTreeMap<String, Pool>,
    /// Floating IPs as declared, by name.
    pub fips: &'a BTreeMap<String, FloatingIp>,
    /// Stored states, by floating IP name.
    pub states: &'a BTreeMap<String, FloatingIpState>,
    /// Addresses of deleted floating IPs, not handed out again until the instant.
    pub released: &'a [(IpAddr, Instant)],
    /// Nodes by name.
    pub nodes: &'a BTreeMap<String, NodeFacts>,
    /// Since when this coordinator leads; `None`: it does not, and decides nothing.
    pub leader_since: Option<Instant>,
    /// The term it leads in; written with every state.
    pub term: u64,
}

/// A write the leader should make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Compare-and-swap a floating IP's state.
    Swap {
        /// The epoch stored now (0: none).
        expected: u64,
        /// The new state (epoch `expected + 1`).
        state: FloatingIpState,
        /// The owner it moves from, if any (a failover).
        previous: Option<String>,
    },
}

/// Whether `node` may still answer for its floating IPs at `now` in the leader's reckoning.
pub fn owner_alive(view: &View<'_>, timing: &Timing, node: &str, now: Instant) -> bool {
    let n = view.nodes.get(node);
    if n.is_some_and(|n| n.left) {
        return false;
    }
    match n.and_then(|n| n.last_grant) {
        Some(g) => now < g + timing.hold_for(n),
        None => view.leader_since.is_some_and(|l| now < l + timing.hold()),
    }
}

/// Whether `n` holds a lease valid now (the node's own reckoning ends no later).
fn lease_valid(n: &NodeFacts, timing: &Timing, now: Instant) -> bool {
    n.last_grant.is_some_and(|g| now < g + timing.lease)
}

/// Nodes that may take a new floating IP: a session with its assignments, healthy, a valid
/// lease.
fn candidates(view: &View<'_>, timing: &Timing, now: Instant) -> Vec<Candidate> {
    view.nodes
        .iter()
        .filter(|(_, n)| n.assigned && n.healthy && lease_valid(n, timing, now))
        .map(|(name, n)| Candidate {
            name: name.clone(),
            labels: n.labels.clone(),
            healthy: true,
        })
        .collect()
}

/// Decides owners and addresses; returns the compare-and-swap writes to make.
pub fn decide(view: &View<'_>, timing: &Timing, now: Instant) -> Vec<Action> {
    let Some(leader_since) = view.leader_since else {
        return Vec::new();
    };
    let in_grace = now < leader_since + timing.hold();
    let nodes = candidates(view, timing, now);
    let mut owned: BTreeMap<String, usize> = BTreeMap::new();
    for s in view.states.values() {
        if let Some(n) = &s.node {
            *owned.entry(n.clone()).or_default() += 1;
        }
    }
    let mut taken: BTreeSet<IpAddr> = view.states.values().map(|s| s.address).collect();
    taken.extend(view.released.iter().map(|(a, _)| *a));
    // Floating IPs that need an owner: (declaration, pool, address, stored epoch, old owner,
    // whether a state is stored).
    let mut orphans = Vec::new();
    for fip in view.fips.values() {
        let Some(pool) = view.pools.get(&fip.pool) else {
            continue;
        };
        let state = view.states.get(&fip.name);
        // An OVN NAT floating IP (with a target) has an address and never a node owner.
        let nat = fip.target.is_some();
        if state
            .and_then(|s| s.node.as_deref())
            .is_some_and(|n| !nat && owner_alive(view, timing, n, now))
            || (nat && state.is_some_and(|s| s.node.is_none()))
        {
            continue;
        }
        let (address, epoch) = match state {
            Some(s) => (s.address, s.epoch),
            None if in_grace => continue,
            None => {
                // A pool that did not parse was warned about when it was loaded.
                let Some(p) = view.parsed.get(&pool.name) else {
                    continue;
                };
                match allocate(p, fip.address, &taken) {
                    Ok(a) => {
                        taken.insert(a);
                        (a, 0)
                    }
                    Err(e) => {
                        tracing::warn!(name = %fip.name, "{e}");
                        continue;
                    }
                }
            }
        };
        let old = state.and_then(|s| s.node.clone());
        if let Some(o) = &old {
            if let Some(c) = owned.get_mut(o) {
                *c = c.saturating_sub(1);
            }
        }
        orphans.push((fip, pool, address, epoch, old, state.is_some()));
    }
    if orphans.is_empty() {
        return Vec::new();
    }
    let wanted: Vec<Orphan<'_>> = orphans
        .iter()
        .map(|(fip, pool, ..)| Orphan {
            name: &fip.name,
            pool_selector: &pool.node_selector,
            ip_selector: &fip.node_selector,
        })
        .collect();
    let owners = assign_all(&wanted, &nodes, &mut owned);
    orphans
        .into_iter()
        .zip(owners)
        .map(|((fip, pool, address, epoch, old, stored), node)| {
            let node = if fip.target.is_some() { None } else { node };
            ((fip, pool, address, epoch, old, stored), node)
        })
        .filter(|((.., old, stored), node)| !*stored || node != old)
        .map(|((fip, _, address, epoch, old, _), node)| Action::Swap {
            expected: epoch,
            state: FloatingIpState {
                name: fip.name.clone(),
                address,
                node,
                epoch: epoch + 1,
                term: view.term,
            },
            previous: old,
        })
        .collect()
}

/// Each node's assignment set as the stored states say (nodes owning nothing are absent).
pub fn assignments(view: &View<'_>) -> BTreeMap<String, Vec<FloatingIpAssignment>> {
    let mut per_node: BTreeMap<String, Vec<FloatingIpAssignment>> = BTreeMap::new();
    for s in view.states.values() {
        let (Some(node), Some(fip)) = (&s.node, view.fips.get(&s.name)) else {
            continue;
        };
        let Some(pool) = view.pools.get(&fip.pool) else {
            continue;
        };
        per_node
            .entry(node.clone())
            .or_default()
            .push(FloatingIpAssignment {
                name: s.name.clone(),
                address: s.address.to_string(),
                interface: pool.interface.clone(),
                epoch: s.epoch,
                ip: hearth_proto::ip::to_bytes(s.address),
            });
    }
    per_node
}

/// When the next decision pass is due at the latest: the nearest lease end, grace end or
/// release of an address after `now`.
pub fn next_due(view: &View<'_>, timing: &Timing, now: Instant) -> Option<Instant> {
    let hold = timing.hold();
    let mut due: Option<Instant> = None;
    let mut consider = |t: Instant| {
        if t > now {
            due = Some(due.map_or(t, |d| d.min(t)));
        }
    };
    if let Some(l) = view.leader_since {
        consider(l + hold);
    }
    for s in view.states.values() {
        let n = s.node.as_ref().and_then(|n| view.nodes.get(n));
        if let Some(g) = n.and_then(|n| n.last_grant) {
            consider(g + timing.hold_for(n));
        }
    }
    for n in view.nodes.values() {
        if let Some(g) = n.last_grant {
            consider(g + timing.lease);
        }
    }
    for (_, until) in view.released {
        consider(*until);
    }
    due
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
