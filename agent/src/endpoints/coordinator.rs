//! The coordinator's status endpoints on `--status-addr`: `/healthz`, `/readyz` (ready when the
//! CSI socket is served; a standby replica is ready too, so a two-replica rollout completes),
//! `/status` (JSON or text: leadership, nodes and floating IPs), `/nodes/NAME/status` (the
//! node's health snapshot from its last report) and `/metrics` (OpenMetrics).
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

use crate::endpoints::{asks_for_text, text_reply, typed_reply, Routes};
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
}

/// The coordinator's status routes.
#[derive(Debug)]
pub struct CoordinatorRoutes {
    /// The engine.
    pub engine: Arc<Engine>,
    /// The CSI socket (readiness).
    pub socket: PathBuf,
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
            "/metrics" => typed_reply(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                metrics(&self.status()),
            ),
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
