//! Choosing the node that answers for a floating IP. Pure and deterministic: the same nodes,
//! selectors and counts give the same owner, whatever order the nodes come in.
//!
//! The rule: among healthy nodes matching both the pool's and the floating IP's selectors,
//! the one owning the fewest floating IPs; ties go to the highest rendezvous weight of
//! (floating IP name, node name), so a tie is decided the same way every time and a node
//! joining or leaving only moves the ties it wins or loses. This module never moves an IP
//! whose owner is healthy (that would be churn): callers pass only IPs without a live owner.

use std::collections::BTreeMap;

use super::hash::{stable_hash, weight};
use super::labels::{matches, Labels};

/// What assignment needs to know about a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// The node's name.
    pub name: String,
    /// Its Kubernetes labels.
    pub labels: Labels,
    /// Whether it holds a live lease (only healthy nodes get floating IPs).
    pub healthy: bool,
}

/// A floating IP waiting for an owner, with the selectors that limit where it may go.
#[derive(Debug, Clone, Copy)]
pub struct Orphan<'a> {
    /// The floating IP's name.
    pub name: &'a str,
    /// Its pool's node selector.
    pub pool_selector: &'a Labels,
    /// Its own node selector.
    pub ip_selector: &'a Labels,
}

/// The owner for floating IP `ip_name`, or `None` when no healthy node matches both
/// selectors. `owned` counts the floating IPs each node answers for now (missing means 0).
pub fn choose_owner(
    ip_name: &str,
    nodes: &[NodeView],
    pool_selector: &Labels,
    ip_selector: &Labels,
    owned: &BTreeMap<String, usize>,
) -> Option<String> {
    let candidates = candidates(nodes, pool_selector, ip_selector);
    let counts: Vec<usize> = nodes
        .iter()
        .map(|n| owned.get(&n.name).copied().unwrap_or(0))
        .collect();
    let hashes: Vec<u64> = nodes
        .iter()
        .map(|n| stable_hash(n.name.as_bytes()))
        .collect();
    best(ip_name, nodes, &candidates, &counts, &hashes).map(|i| nodes[i].name.clone())
}

/// Owners for many floating IPs at once (say 1,000 orphaned by a dead node), spread evenly:
/// each pick counts toward the next. The most constrained IPs (fewest candidate nodes) are
/// placed first, then by name, so the result does not depend on the input order. Returns one
/// owner per orphan, in input order, and adds the new ownerships to `owned`.
pub fn assign_all(
    orphans: &[Orphan<'_>],
    nodes: &[NodeView],
    owned: &mut BTreeMap<String, usize>,
) -> Vec<Option<String>> {
    let mut counts: Vec<usize> = nodes
        .iter()
        .map(|n| owned.get(&n.name).copied().unwrap_or(0))
        .collect();
    let hashes: Vec<u64> = nodes
        .iter()
        .map(|n| stable_hash(n.name.as_bytes()))
        .collect();
    // Orphans sharing a pair of selectors share a candidate list.
    let mut by_selectors: BTreeMap<(&Labels, &Labels), usize> = BTreeMap::new();
    let mut lists: Vec<Vec<usize>> = Vec::new();
    let list_of: Vec<usize> = orphans
        .iter()
        .map(|o| {
            *by_selectors
                .entry((o.pool_selector, o.ip_selector))
                .or_insert_with(|| {
                    lists.push(candidates(nodes, o.pool_selector, o.ip_selector));
                    lists.len() - 1
                })
        })
        .collect();
    let mut order: Vec<usize> = (0..orphans.len()).collect();
    order.sort_by_key(|&i| (lists[list_of[i]].len(), orphans[i].name));
    let mut out = vec![None; orphans.len()];
    for i in order {
        let o = &orphans[i];
        if let Some(n) = best(o.name, nodes, &lists[list_of[i]], &counts, &hashes) {
            counts[n] += 1;
            *owned.entry(nodes[n].name.clone()).or_insert(0) += 1;
            out[i] = Some(nodes[n].name.clone());
        }
    }
    out
}

/// Indexes of the healthy nodes matching both selectors.
fn candidates(nodes: &[NodeView], pool_selector: &Labels, ip_selector: &Labels) -> Vec<usize> {
    (0..nodes.len())
        .filter(|&i| {
            let n = &nodes[i];
            n.healthy && matches(&n.labels, pool_selector) && matches(&n.labels, ip_selector)
        })
        .collect()
}

/// The candidate with the fewest owned IPs; then the highest rendezvous weight; then (on a
/// 64-bit collision) the smallest name.
fn best(
    ip_name: &str,
    nodes: &[NodeView],
    candidates: &[usize],
    counts: &[usize],
    hashes: &[u64],
) -> Option<usize> {
    let fewest = candidates.iter().map(|&i| counts[i]).min()?;
    let key = stable_hash(ip_name.as_bytes());
    candidates
        .iter()
        .copied()
        .filter(|&i| counts[i] == fewest)
        .max_by(|&a, &b| {
            weight(key, hashes[a])
                .cmp(&weight(key, hashes[b]))
                .then_with(|| nodes[b].name.cmp(&nodes[a].name))
        })
}

#[cfg(test)]
#[path = "assign_tests.rs"]
mod tests;
