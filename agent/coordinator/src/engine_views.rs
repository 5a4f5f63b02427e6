//! What the engine shows of its state: nodes for the status page, agents for placement, a
//! node's last health snapshot and the floating IPs' states. Read-only, under the engine's
//! lock, computed at the moment of asking.

use std::collections::BTreeMap;

use tokio::time::Instant;

use super::{decide, Engine, FloatingIpState};

/// A node as shown on the coordinator's status.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeView {
    /// Name.
    pub name: String,
    /// Whether a session is open.
    pub connected: bool,
    /// Whether it reported healthy.
    pub healthy: bool,
    /// Whether its lease is valid in the coordinator's reckoning.
    pub lease_valid: bool,
    /// Floating IPs it owns.
    pub floating_ips: usize,
    /// Agent version.
    pub version: String,
    /// Storage capacity it reported, bytes.
    pub total_bytes: u64,
    /// Free storage it reported, bytes.
    pub free_bytes: u64,
    /// When its health snapshot last arrived (seconds since the Unix epoch).
    pub snapshot_unix: Option<u64>,
}

/// A node's agent as placement sees it.
#[derive(Debug, Clone)]
pub struct AgentView {
    /// The labels it reported.
    pub labels: BTreeMap<String, String>,
    /// Session open, reported healthy and lease valid.
    pub healthy: bool,
    /// Storage capacity it reported, bytes.
    pub total_bytes: u64,
    /// Free storage it reported, bytes.
    pub free_bytes: u64,
}

impl Engine {
    /// What placement needs of each node whose agent has opened a session: its labels, and
    /// whether it is healthy now (session open, reported healthy, lease valid).
    pub fn agents(&self) -> BTreeMap<String, AgentView> {
        let inner = self.lock();
        let now = Instant::now();
        inner
            .nodes
            .iter()
            .map(|(name, n)| {
                let healthy = n.session.is_some()
                    && n.facts.healthy
                    && n.facts
                        .last_grant
                        .is_some_and(|g| now < g + self.timing.lease);
                (
                    name.clone(),
                    AgentView {
                        labels: n.facts.labels.clone(),
                        healthy,
                        total_bytes: n.capacity.total_bytes,
                        free_bytes: n.capacity.free_bytes,
                    },
                )
            })
            .collect()
    }

    /// The nodes, for the status page.
    pub fn nodes(&self) -> Vec<NodeView> {
        let inner = self.lock();
        let now = Instant::now();
        inner.with_view(now, |v| {
            inner
                .nodes
                .iter()
                .map(|(name, n)| NodeView {
                    name: name.clone(),
                    connected: n.session.is_some(),
                    healthy: n.facts.healthy,
                    lease_valid: decide::owner_alive(v, &self.timing, name, now),
                    floating_ips: inner
                        .states
                        .values()
                        .filter(|s| s.node.as_deref() == Some(name.as_str()))
                        .count(),
                    version: n.version.clone(),
                    total_bytes: n.capacity.total_bytes,
                    free_bytes: n.capacity.free_bytes,
                    snapshot_unix: n.snapshot.as_ref().map(|(_, at)| *at),
                })
                .collect()
        })
    }

    /// A node's last health snapshot (JSON), as its agent reported it.
    pub fn snapshot(&self, node: &str) -> Option<String> {
        self.lock()
            .nodes
            .get(node)
            .and_then(|n| n.snapshot.as_ref().map(|(s, _)| s.clone()))
    }

    /// The floating IPs' states, for the status page.
    pub fn floating_ips(&self) -> Vec<FloatingIpState> {
        self.lock().states.values().cloned().collect()
    }
}
