//! The coordinator's status endpoints on `--status-addr`: `/healthz`, `/readyz` (ready when the
//! CSI socket is served; a standby replica is ready too, so a two-replica rollout completes),
//! `/status` (JSON or text: leadership, nodes and floating IPs), `/nodes/NAME/status` (the
//! node's health snapshot from its last report) and `/metrics` (OpenMetrics or the
//! classic Prometheus text, by `Accept`).
//! Served by the same hardened HTTP server as the node's.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Bytes;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::endpoints::{asks_for_text, metrics_reply, text_reply, typed_reply, Routes};
use hearth_coordinator::engine::{Engine, NodeView};
use hearth_coordinator::store::FloatingIpState;

/// The coordinator's `/status` document.
#[derive(Debug, Serialize)]
pub struct CoordinatorStatus {
    /// Always `coordinator`.
    pub role: &'static str,
    /// This replica's identity.
    pub id: String,
    /// Whether this replica leads (only the leader serves sessions and decides).
    pub leader: bool,
    /// Agent version.
    pub version: &'static str,
    /// Floating IPs moved off a node whose lease ended, since start.
    pub failovers: u64,
    /// The nodes that have opened a session since start.
    pub nodes: Vec<NodeView>,
    /// Every floating IP's address, owner and epoch.
    pub floating_ips: Vec<FloatingIpState>,
    /// Node sessions refused since start, by reason (docs/design/node-identity.md).
    pub session_refusals: std::collections::BTreeMap<String, u64>,
}

/// The coordinator's status routes.
#[derive(Debug)]
pub struct CoordinatorRoutes {
    /// The engine.
    pub engine: Arc<Engine>,
    /// The CSI socket (readiness).
    pub socket: PathBuf,
    /// Refused node sessions.
    pub refusals: Arc<hearth_coordinator::node_auth::Refusals>,
}

impl CoordinatorRoutes {
    fn status(&self) -> CoordinatorStatus {
        CoordinatorStatus {
            role: "coordinator",
            id: self.engine.id().to_owned(),
            leader: self.engine.leading(),
            version: env!("CARGO_PKG_VERSION"),
            failovers: self.engine.failovers(),
            nodes: self.engine.nodes(),
            floating_ips: self.engine.floating_ips(),
            session_refusals: self.refusals.counts(),
        }
    }
}

fn text(s: &CoordinatorStatus) -> String {
    use std::fmt::Write;
    let mut out = format!(
        "coordinator {} ({}), {} failover(s)\n\nNODES ({})\n",
        s.id,
        if s.leader { "leader" } else { "standby" },
        s.failovers,
        s.nodes.len()
    );
    for n in &s.nodes {
        let mark = if n.connected && n.lease_valid {
            "✓"
        } else {
            "✗"
        };
        let _ = writeln!(
            out,
            "  {mark} {:<32} {} {} lease {} floating IPs {}",
            n.name,
            if n.connected {
                "connected"
            } else {
                "disconnected"
            },
            if n.healthy { "healthy" } else { "unhealthy" },
            if n.lease_valid { "valid" } else { "ended" },
            n.floating_ips
        );
    }
    let _ = writeln!(out, "\nFLOATING IPS ({})", s.floating_ips.len());
    for f in &s.floating_ips {
        let _ = writeln!(
            out,
            "  {:<32} {:<40} {:<24} epoch {}",
            f.name,
            f.address,
            f.node.as_deref().unwrap_or("-"),
            f.epoch
        );
    }
    out
}

fn metrics(s: &CoordinatorStatus) -> String {
    let mut registry = Registry::default();
    let info = Family::<Vec<(String, String)>, Gauge>::default();
    info.get_or_create(&vec![
        ("role".into(), "coordinator".into()),
        ("id".into(), s.id.clone()),
        ("version".into(), s.version.into()),
    ])
    .set(1);
    registry.register(
        "hearth_info",
        "The agent's role, identity and version.",
        info,
    );
    let leader = Gauge::<i64>::default();
    leader.set(i64::from(s.leader));
    registry.register(
        "hearth_coordinator_leader",
        "1 while this replica leads.",
        leader,
    );
    let nodes = Family::<Vec<(String, String)>, Gauge>::default();
    for state in ["connected", "lease_valid", "healthy"] {
        let n = s
            .nodes
            .iter()
            .filter(|n| match state {
                "connected" => n.connected,
                "lease_valid" => n.lease_valid,
                _ => n.healthy,
            })
            .count();
        nodes
            .get_or_create(&vec![("state".into(), state.into())])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    registry.register(
        "hearth_coordinator_nodes",
        "Nodes by state (a node counts in every state it is in).",
        nodes,
    );
    let fips = Family::<Vec<(String, String)>, Gauge>::default();
    let assigned = s.floating_ips.iter().filter(|f| f.node.is_some()).count();
    for (state, n) in [
        ("assigned", assigned),
        ("unassigned", s.floating_ips.len() - assigned),
    ] {
        fips.get_or_create(&vec![("state".into(), state.into())])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    registry.register(
        "hearth_coordinator_floating_ips",
        "Floating IPs with and without an owner.",
        fips,
    );
    let failovers = Counter::<u64, AtomicU64>::default();
    failovers.inc_by(s.failovers);
    registry.register(
        "hearth_coordinator_failovers",
        "Floating IPs moved off a node whose lease ended.",
        failovers,
    );
    let refusals = Family::<Vec<(String, String)>, Counter<u64, AtomicU64>>::default();
    for (reason, n) in &s.session_refusals {
        refusals
            .get_or_create(&vec![("reason".into(), reason.clone())])
            .inc_by(*n);
    }
    registry.register(
        "hearth_coordinator_session_refusals",
        "Node sessions refused, by reason (no_token, not_authenticated, audience, \
         service_account, unbound, node_mismatch, certificate, review_failed).",
        refusals,
    );
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &registry);
    out
}

#[async_trait::async_trait]
impl Routes for CoordinatorRoutes {
    async fn route(&self, req: &Request<()>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET {
            return text_reply(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into());
        }
        match req.uri().path() {
            "/healthz" => text_reply(StatusCode::OK, "ok\n".into()),
            "/readyz" if self.socket.exists() => {
                let role = if self.engine.leading() {
                    "leader"
                } else {
                    "standby"
                };
                text_reply(StatusCode::OK, format!("ready ({role})\n"))
            }
            "/readyz" => text_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "not ready:\n✗ csi_socket: {} is not served\n",
                    self.socket.display()
                ),
            ),
            "/status" if asks_for_text(req) => text_reply(StatusCode::OK, text(&self.status())),
            "/status" => match serde_json::to_string_pretty(&self.status()) {
                Ok(json) => typed_reply(StatusCode::OK, "application/json", json + "\n"),
                Err(e) => text_reply(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
            },
            "/metrics" => metrics_reply(req, metrics(&self.status())),
            path => match path
                .strip_prefix("/nodes/")
                .and_then(|rest| rest.strip_suffix("/status"))
                .and_then(|node| self.engine.snapshot(node))
            {
                // The node's own /status JSON, as its last report carried it.
                Some(json) => typed_reply(StatusCode::OK, "application/json", json + "\n"),
                None => text_reply(StatusCode::NOT_FOUND, "not found\n".into()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::exposition::{classic, tests::promtool_findings};

    #[test]
    fn the_metrics_in_classic_text_pass_promtool() {
        let s = CoordinatorStatus {
            role: "coordinator",
            id: "replica-0".into(),
            leader: true,
            version: "0.1.0",
            failovers: 3,
            nodes: Vec::new(),
            floating_ips: Vec::new(),
            session_refusals: [("node_mismatch".to_owned(), 2)].into_iter().collect(),
        };
        let om = metrics(&s);
        assert!(om.ends_with("# EOF\n"));
        let text = classic(&om);
        assert!(text.contains("# TYPE hearth_coordinator_failovers_total counter\nhearth_coordinator_failovers_total 3\n"), "{text}");
        assert!(
            text.contains(
                "hearth_coordinator_session_refusals_total{reason=\"node_mismatch\"} 2\n"
            ),
            "{text}"
        );
        if let Some(findings) = promtool_findings(&text) {
            assert_eq!(findings, "", "{text}");
        }
    }
}
