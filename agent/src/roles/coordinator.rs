//! Assembling the coordinator role's agent API: the store, the config, the engine and the
//! gRPC server.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::cli::{LeaseArgs, TlsArgs};
use crate::UsageError;
use hearth_coordinator::engine::{Engine, Timing};
use hearth_coordinator::server::{self, TlsFiles};
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

/// Makes the store's pools and floating IPs exactly those of the config file.
pub async fn apply_config(store: &dyn Store, path: &Path) -> anyhow::Result<()> {
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
    Ok(())
}

/// Starts the engine and, with `listen`, the agent API. Returns the engine.
pub async fn start(
    store: Arc<dyn Store>,
    timing: Timing,
    id: &str,
    listen: Option<std::net::SocketAddr>,
    tls: &TlsArgs,
) -> anyhow::Result<(Arc<Engine>, Option<std::net::SocketAddr>)> {
    let tls = tls.files()?.map(|(ca_file, cert_file, key_file)| TlsFiles {
        ca_file,
        cert_file,
        key_file,
    });
    let engine = Engine::new(store, timing, id);
    tokio::spawn(Arc::clone(&engine).run());
    let mut bound = None;
    if let Some(addr) = listen {
        let listener = server::bind(addr, tls.is_some()).await?;
        bound = Some(listener.local_addr()?);
        let e = Arc::clone(&engine);
        tokio::spawn(async move {
            if let Err(err) = server::serve(e, listener, tls).await {
                tracing::error!("{err}");
            }
        });
    }
    Ok((engine, bound))
}
