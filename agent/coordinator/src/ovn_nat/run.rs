//! The loop that keeps the northbound database as [`super::desired`] says: on the leader, every
//! pass reads the store's floating IPs, the engine's node views and the active gateway
//! chassis, writes the difference, and publishes [`OvnNatStatus`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::{desired, unix, NodeFacts, OvnNatConfig, OvnNatStatus};
use crate::engine::Engine;
use crate::store::Store;
use hearth_net::ovn::nb::{self, gateway};
use hearth_net::ovsdb::Client;

/// The published status, shared with the status endpoint.
pub type SharedStatus = Arc<Mutex<OvnNatStatus>>;

/// Runs forever, one pass every `every`.
pub async fn run(
    config: OvnNatConfig,
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    status: SharedStatus,
    every: Duration,
) {
    let mut nb_client: Option<Client> = None;
    let mut sb_client: Option<Client> = None;
    if let Ok(mut s) = status.lock() {
        s.router = config.router.clone();
    }
    loop {
        tokio::time::sleep(every).await;
        if !engine.leading() {
            continue;
        }
        if nb_client.is_none() {
            match Client::connect(&config.northbound).await {
                Ok(c) => nb_client = Some(c),
                Err(e) => {
                    publish_error(&status, format!("northbound: {e}"));
                    continue;
                }
            }
        }
        if sb_client.is_none() {
            if let Some(sb) = &config.southbound {
                sb_client = Client::connect(sb)
                    .await
                    .map_err(|e| tracing::warn!("southbound {sb}: {e}"))
                    .ok();
            }
        }
        let active = match &sb_client {
            Some(sb) => gateway::active_chassis(sb, &config.gateway_port)
                .await
                .map_err(|e| tracing::warn!("active gateway: {e}"))
                .ok()
                .flatten(),
            None => None,
        };
        let fips = match store.floating_ips().await {
            Ok(f) => f,
            Err(e) => {
                publish_error(&status, format!("store: {e}"));
                continue;
            }
        };
        let nodes: Vec<NodeFacts> = engine
            .agents()
            .into_iter()
            .map(|(name, a)| NodeFacts {
                name,
                labels: a.labels,
                healthy: a.healthy,
                lease_valid: a.healthy,
            })
            .collect();
        let (want, mut per_fip) = desired(
            &config,
            &fips,
            &engine.floating_ips(),
            &nodes,
            active.as_deref(),
        );
        let result = match &nb_client {
            Some(db) => nb::apply(db, &want).await,
            None => continue,
        };
        let Ok(mut s) = status.lock() else { continue };
        if s.gateway_chassis != active {
            if s.gateway_chassis.is_some() {
                s.gateway_changes += 1;
            }
            tracing::info!(router = %config.router,
                chassis = active.as_deref().unwrap_or("-"), "gateway chassis");
            s.gateway_chassis = active.clone();
            s.gateway_since_unix = active.as_ref().map(|_| unix(SystemTime::now()));
        }
        for f in &mut per_fip {
            if f.problem.is_none() {
                f.gateway_chassis = s.gateway_chassis.clone();
                f.gateway_since_unix = s.gateway_since_unix;
            }
        }
        s.floating_ips = per_fip;
        s.priorities = want.ha.map(|h| h.members).unwrap_or_default();
        match result {
            Ok(applied) => {
                if applied.ops > 0 {
                    tracing::info!(router = %config.router, ops = applied.ops,
                        nats = want.nats.len(), "northbound NAT rows written");
                }
                s.error = None;
            }
            Err(e) => {
                tracing::warn!(router = %config.router, "northbound: {e}");
                s.error = Some(e.to_string());
            }
        }
    }
}

fn publish_error(status: &SharedStatus, e: String) {
    tracing::warn!("ovn nat: {e}");
    if let Ok(mut s) = status.lock() {
        s.error = Some(e);
    }
}
