//! Assembling the coordinator role's agent API: the store, the config, the engine and the
//! gRPC server.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::cli::{LeaseArgs, NodeAuthArgs, NodeAuthMode, TlsArgs};
use crate::error::UsageError;
use hearth_coordinator::engine::{Engine, Timing};
use hearth_coordinator::node_auth::{KubeTokenReviewer, Policy, Refusals, TokenAuth};
use hearth_coordinator::server::{self, AgentApi, NodeAuth, TlsFiles};
use hearth_coordinator::store::sqlite::SqliteStore;
use hearth_coordinator::store::Store;

/// The leader-election Lease's name (in `--namespace`).
pub const LEASE_NAME: &str = "hearth-coordinator";

/// The lease timings from flags, checked.
pub fn timing(args: &LeaseArgs) -> Result<Timing, UsageError> {
    let t = Timing {
        report_interval: Duration::from_millis(args.report_interval_ms),
        lease: Duration::from_millis(args.lease_ms),
        margin: Duration::from_millis(args.lease_margin_ms),
        answer: Duration::from_millis(args.report_interval_ms)
            + hearth_coordinator::decide::ANSWER_SLACK,
        ..Timing::default()
    };
    if t.report_interval.is_zero() || t.lease < t.report_interval * 2 {
        return Err(UsageError(format!(
            "--lease-ms ({}) must be at least twice --report-interval-ms ({}), which must be > 0",
            args.lease_ms, args.report_interval_ms
        )));
    }
    Ok(t)
}

/// Opens the store named by `--store`.
pub async fn open_store(
    spec: Option<&str>,
    state_dir: &Path,
    namespace: &str,
) -> anyhow::Result<Arc<dyn Store>> {
    let default = format!("sqlite:{}", state_dir.join("coordinator.db").display());
    let spec = spec.unwrap_or(&default);
    if let Some(path) = spec.strip_prefix("sqlite:") {
        let store = SqliteStore::open(PathBuf::from(path))
            .await
            .with_context(|| format!("opening {spec}"))?;
        return Ok(Arc::new(store));
    }
    if spec == "kubernetes" {
        let store = hearth_coordinator::store::kube::KubeStore::connect(namespace, LEASE_NAME)
            .await
            .context("connecting to the Kubernetes API (in-cluster config or KUBECONFIG)")?;
        return Ok(Arc::new(store));
    }
    Err(UsageError(format!(
        "--store {spec}: expected sqlite:PATH or kubernetes"
    ))
    .into())
}

/// Makes the store's pools and floating IPs exactly those of the config file; returns its
/// `ovn:` section.
pub async fn apply_config(
    store: &dyn Store,
    path: &Path,
) -> anyhow::Result<Option<hearth_coordinator::ovn_nat::OvnNatConfig>> {
    let config = hearth_coordinator::config::load(path).map_err(|e| UsageError(e.to_string()))?;
    let file = &config.file;
    for f in store.floating_ips().await? {
        if !file.floating_ips.iter().any(|c| c.name == f.name) {
            store.delete_floating_ip(&f.name).await?;
        }
    }
    for p in store.pools().await? {
        if !file.floating_ip_pools.iter().any(|c| c.name == p.name) {
            store.delete_pool(&p.name).await?;
        }
    }
    for p in &file.floating_ip_pools {
        store.put_pool(p).await?;
    }
    for f in &file.floating_ips {
        store.put_floating_ip(f).await?;
    }
    tracing::info!(file = %path.display(), pools = file.floating_ip_pools.len(),
        floating_ips = file.floating_ips.len(), "coordinator config applied");
    Ok(file.ovn.clone())
}

/// Starts the OVN NAT loop for floating IPs with a target; returns its status.
pub fn start_ovn_nat(
    config: hearth_coordinator::ovn_nat::OvnNatConfig,
    store: Arc<dyn Store>,
    engine: &Arc<Engine>,
) -> hearth_coordinator::ovn_nat::run::SharedStatus {
    let status = hearth_coordinator::ovn_nat::run::SharedStatus::default();
    let every = engine
        .timing()
        .report_interval
        .min(Duration::from_millis(500));
    tokio::spawn(hearth_coordinator::ovn_nat::run::run(
        config,
        store,
        Arc::clone(engine),
        Arc::clone(&status),
        every,
    ));
    status
}

/// How nodes are authenticated, from the flags: by certificate, or by TokenReview through
/// the in-cluster kube client (tokens of `--node-service-account` in `namespace`).
pub async fn node_auth(args: &NodeAuthArgs, namespace: &str) -> anyhow::Result<NodeAuth> {
    Ok(match args.node_auth {
        NodeAuthMode::Mtls => NodeAuth::Certificates,
        NodeAuthMode::Tokenreview => {
            let reviewer = KubeTokenReviewer::connect()
                .await
                .context("--node-auth tokenreview needs the Kubernetes API")?;
            NodeAuth::Token(Arc::new(TokenAuth::new(
                Arc::new(reviewer),
                Policy {
                    audience: args.node_token_audience.clone(),
                    namespace: namespace.to_owned(),
                    service_account: args.node_service_account.clone(),
                },
            )))
        }
    })
}

/// The running coordinator: its engine, the bound agent API address, the refusal counts.
pub type Started = (Arc<Engine>, Option<std::net::SocketAddr>, Arc<Refusals>);

/// Starts the engine and, with `listen`, the agent API (nodes proven by `auth`, by default
/// certificates).
pub async fn start(
    store: Arc<dyn Store>,
    timing: Timing,
    id: &str,
    listen: Option<std::net::SocketAddr>,
    tls: &TlsArgs,
    auth: Option<NodeAuth>,
) -> anyhow::Result<Started> {
    let auth = auth.unwrap_or_default();
    let tls = match (&auth, tls.parts()?) {
        (_, (None, None)) => None,
        (NodeAuth::Token(_), (ca_file, Some((cert_file, key_file)))) => Some(TlsFiles {
            ca_file,
            cert_file,
            key_file,
        }),
        (NodeAuth::Certificates, _) => {
            tls.files()?.map(|(ca_file, cert_file, key_file)| TlsFiles {
                ca_file: Some(ca_file),
                cert_file,
                key_file,
            })
        }
        (NodeAuth::Token(_), (Some(_), None)) => {
            return Err(UsageError(
                "--node-auth tokenreview over TLS needs --tls-cert-file and --tls-key-file".into(),
            )
            .into())
        }
    };
    let refusals = Arc::new(Refusals::default());
    let engine = Engine::new(store, timing, id);
    tokio::spawn(Arc::clone(&engine).run());
    let mut bound = None;
    if let Some(addr) = listen {
        let listener = server::bind(addr, tls.is_some()).await?;
        bound = Some(listener.local_addr()?);
        let api = AgentApi::with_auth(Arc::clone(&engine), auth, Arc::clone(&refusals));
        tokio::spawn(async move {
            if let Err(err) = server::serve(api, listener, tls).await {
                tracing::error!("{err}");
            }
        });
    }
    Ok((engine, bound, refusals))
}

/// The coordinator's CSI readiness: the local checks, and "waiting" while another coordinator
/// leads (the CSI Probe answers `ready: false`, which the sidecars wait out).
pub struct LeaderReadiness {
    /// The socket and state directory checks.
    pub local: crate::endpoints::LocalReadiness,
    /// Whose leadership is asked.
    pub engine: Arc<Engine>,
}

impl hearth_csi::identity::Readiness for LeaderReadiness {
    fn ready(&self) -> Result<(), String> {
        self.local.ready()
    }

    fn waiting(&self) -> Option<String> {
        standby_reason(self.engine.leading())
    }
}

fn standby_reason(leading: bool) -> Option<String> {
    (!leading).then(|| "this coordinator is a standby; the leader serves the CSI controller".into())
}

/// A gRPC interceptor that lets calls through only while `engine` leads; a standby answers
/// UNAVAILABLE (retry), never from state it does not own.
pub fn leader_only(
    engine: Arc<Engine>,
) -> impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone {
    move |request| match standby_reason(engine.leading()) {
        None => Ok(request),
        Some(reason) => Err(tonic::Status::unavailable(reason)),
    }
}

/// How often [`stepped_down`] looks at the leadership.
const STEP_DOWN_POLL: Duration = Duration::from_millis(200);

/// Resolves when the term this coordinator served in is over: it stopped leading, or leads
/// again in a newer term (another coordinator may have led in between). A gap shorter than a
/// poll within one term is no loss: nobody else led, so the sidecars beside it stay.
pub async fn stepped_down(engine: Arc<Engine>) {
    let mut served = engine.term();
    loop {
        tokio::time::sleep(STEP_DOWN_POLL).await;
        match term_over(served, engine.term()) {
            Some(next) => served = next,
            None => {
                tracing::warn!(
                    "no longer leading: closing the CSI connections of the sidecars beside it"
                );
                return;
            }
        }
    }
}

/// `None` when the term `served` is over given the term leading `now`; else the term to
/// watch from now on.
fn term_over(served: Option<u64>, now: Option<u64>) -> Option<Option<u64>> {
    match served {
        Some(term) if now != Some(term) => None,
        Some(term) => Some(Some(term)),
        None => Some(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_term_is_over_when_leadership_ends_or_moves_on() {
        // A standby that starts leading watches its new term.
        assert_eq!(term_over(None, None), Some(None));
        assert_eq!(term_over(None, Some(3)), Some(Some(3)));
        // Leading on in the same term.
        assert_eq!(term_over(Some(3), Some(3)), Some(Some(3)));
        // Stopped, or leading again in a newer term: cut.
        assert_eq!(term_over(Some(3), None), None);
        assert_eq!(term_over(Some(3), Some(4)), None);
    }

    #[test]
    fn a_standby_says_why_it_waits() {
        assert!(standby_reason(true).is_none());
        assert!(standby_reason(false).is_some_and(|r| r.contains("standby")));
    }
}
