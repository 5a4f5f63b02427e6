//! The coordinator's status endpoints on `--status-addr`: `/healthz`, `/readyz` (ready when the
//! CSI socket is served; a standby replica is ready too, so a two-replica rollout completes),
//! `/status` (JSON or text: leadership, nodes, floating IPs and the volumes placed on node
//! agents; the text is [`crate::cluster_view`]'s table, as `hearth status` prints it),
//! `/nodes/NAME/status` (the node's health snapshot from its last report) and `/metrics`
//! (OpenMetrics or the classic Prometheus text, by `Accept`).
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
use hearth_coordinator::ovn_nat::run::SharedStatus;
use hearth_coordinator::ovn_nat::OvnNatStatus;
use hearth_coordinator::store::{FloatingIpState, Store, VolumeLocation};

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
    /// Floating IPs moved off a node whose lease ended: over the store's life with SQLite
    /// (a restart keeps counting), since this replica led with `--store kubernetes`.
    pub failovers: u64,
    /// The nodes that have opened a session since start.
    pub nodes: Vec<NodeView>,
    /// Every floating IP's address, owner and epoch.
    pub floating_ips: Vec<FloatingIpState>,
    /// The volumes placed on node agents (loopfile), with the nodes that hold them.
    pub volumes: Vec<VolumeLocation>,
    /// Why `volumes` is empty when the store could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes_error: Option<String>,
    /// When this document was built (seconds since the Unix epoch).
    pub collected_at_unix: u64,
    /// OVN NAT floating IPs and the gateway chassis (with an `ovn:` config section).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ovn: Option<OvnNatStatus>,
    /// Node sessions refused since start, by reason (docs/design/node-identity.md).
    pub session_refusals: std::collections::BTreeMap<String, u64>,
}

/// The coordinator's status routes.
pub struct CoordinatorRoutes {
    /// The engine.
    pub engine: Arc<Engine>,
    /// The store (volumes).
    pub store: Arc<dyn Store>,
    /// The CSI socket (readiness).
    pub socket: PathBuf,
    /// The OVN NAT loop's status, when it runs.
    pub ovn: Option<SharedStatus>,
    /// Refused node sessions.
    pub refusals: Arc<hearth_coordinator::node_auth::Refusals>,
}

impl std::fmt::Debug for CoordinatorRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoordinatorRoutes")
            .field("engine", &self.engine)
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

impl CoordinatorRoutes {
    async fn status(&self) -> CoordinatorStatus {
        let (volumes, volumes_error) = match self.store.volumes().await {
            Ok(mut v) => {
                v.sort_by(|a, b| a.id.cmp(&b.id));
                (v, None)
            }
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        CoordinatorStatus {
            role: "coordinator",
            id: self.engine.id().to_owned(),
            leader: self.engine.leading(),
            version: env!("CARGO_PKG_VERSION"),
            failovers: self.engine.failovers(),
            nodes: self.engine.nodes(),
            floating_ips: self.engine.floating_ips(),
            volumes,
            volumes_error,
            collected_at_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            ovn: self
                .ovn
                .as_ref()
                .and_then(|o| o.lock().ok().map(|s| s.clone())),
            session_refusals: self.refusals.counts(),
        }
    }
}

fn text(s: &CoordinatorStatus) -> String {
    use std::fmt::Write;
    // The same table `hearth status` prints, from the same JSON.
    let mut out = match serde_json::to_value(s).and_then(serde_json::from_value) {
        Ok(doc) => crate::cluster_view::render(&doc, true),
        Err(e) => format!("encoding: {e}\n"),
    };
    if let Some(o) = &s.ovn {
        let _ = writeln!(
            out,
            "\nOVN NAT on router {} (gateway {} since {}, {} change(s)){}",
            o.router,
            o.gateway_chassis.as_deref().unwrap_or("-"),
            o.gateway_since_unix.map_or("-".into(), |t| t.to_string()),
            o.gateway_changes,
            o.error
                .as_ref()
                .map_or(String::new(), |e| format!(" error: {e}"))
        );
        for f in &o.floating_ips {
            let _ = writeln!(
                out,
                "  {:<32} {:<40} -> {:<24} {}",
                f.name,
                f.address.map_or("-".into(), |a| a.to_string()),
                f.target,
                f.problem.as_deref().unwrap_or("ok")
            );
        }
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
    if let Some(o) = &s.ovn {
        let rows = Gauge::<i64>::default();
        let ok = o
            .floating_ips
            .iter()
            .filter(|f| f.problem.is_none())
            .count();
        rows.set(i64::try_from(ok).unwrap_or(i64::MAX));
        registry.register(
            "hearth_coordinator_ovn_nat_floating_ips",
            "Floating IPs with a target that have their NAT row on the gateway router.",
            rows,
        );
        let gw = Family::<Vec<(String, String)>, Gauge>::default();
        if let Some(c) = &o.gateway_chassis {
            gw.get_or_create(&vec![("chassis".into(), c.clone())])
                .set(i64::try_from(o.gateway_since_unix.unwrap_or(0)).unwrap_or(0));
        }
        registry.register(
            "hearth_coordinator_ovn_gateway_since_seconds",
            "The active gateway chassis, valued with the Unix time since when it is active.",
            gw,
        );
        let changes = Counter::<u64, AtomicU64>::default();
        changes.inc_by(o.gateway_changes);
        registry.register(
            "hearth_coordinator_ovn_gateway_changes",
            "Changes of the active gateway chassis seen since start.",
            changes,
        );
        let errors = Gauge::<i64>::default();
        errors.set(i64::from(o.error.is_some()));
        registry.register(
            "hearth_coordinator_ovn_nat_error",
            "1 while the last northbound pass failed.",
            errors,
        );
    }
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
            // Fails when the engine's loops stall (a store call that hangs), so the liveness
            // probe restarts a wedged coordinator.
            "/healthz" => match self.engine.stalled() {
                None => text_reply(StatusCode::OK, "ok\n".into()),
                Some(why) => {
                    text_reply(StatusCode::SERVICE_UNAVAILABLE, format!("stalled: {why}\n"))
                }
            },
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
            "/status" if asks_for_text(req) => {
                text_reply(StatusCode::OK, text(&self.status().await))
            }
            "/status" => match serde_json::to_string_pretty(&self.status().await) {
                Ok(json) => typed_reply(StatusCode::OK, "application/json", json + "\n"),
                Err(e) => text_reply(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
            },
            "/metrics" => metrics_reply(req, metrics(&self.status().await)),
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
            volumes: Vec::new(),
            volumes_error: None,
            collected_at_unix: 0,
            ovn: None,
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
