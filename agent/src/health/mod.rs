//! Health: collectors behind narrow traits feed one [`Snapshot`], built on demand, cached for
//! a short while, and bounded by a per-collector timeout so a slow backend or netlink never
//! stalls a scrape. The snapshot feeds `/status`, `/metrics`, `/readyz` and `hearth status`.
//! Owns only reads: it never mounts, attaches, writes netlink or runs drbdsetup commands
//! other than the events2 follower, and it takes no CSI volume lock.

pub mod checks;
pub mod csi_ops;
pub mod drbd;
pub mod exposition;
pub mod metrics;
pub mod network;
pub mod node;
pub mod ovn;
pub mod snapshot;
pub mod storage;
pub mod text;

#[cfg(test)]
mod bench_tests;
#[cfg(test)]
mod schema_tests;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Mutex;

pub use snapshot::Snapshot;

/// The node's coordinator session as the status page shows it.
pub trait SessionSource: Send + Sync {
    /// The session's state and the floating IPs held under its lease.
    fn coordinator(&self) -> Coordinator;
}
use snapshot::{Coordinator, Section, SectionState};

/// A failed collection step.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The backend could not list its volumes.
    #[error("listing volumes from the backend: {0}")]
    ListVolumes(String),
    /// The backend could not list its pools' capacity.
    #[error("reading the backend's storage pools: {0}")]
    Capacity(String),
    /// A blocking worker was lost.
    #[error("health worker: {0}")]
    Worker(String),
    /// A procfs file could not be read.
    #[error("reading /proc/{what}: {message}")]
    ReadProc {
        /// The file.
        what: &'static str,
        /// The error.
        message: String,
    },
    /// The netlink dump failed.
    #[error("dumping links, addresses and routes: {0}")]
    DumpNetwork(String),
}

/// The collectors of one process. `None` means the feature is not configured.
pub struct Collectors {
    /// The node name.
    pub node_name: String,
    /// Pools and volumes.
    pub storage: Option<Arc<dyn storage::StorageSource>>,
    /// DRBD resources.
    pub drbd: Option<Arc<dyn drbd::DrbdSource>>,
    /// Links and floating IPs; `None` without a network file.
    pub network: Option<Arc<dyn network::NetworkSource>>,
    /// The OVN chassis; `None` without an `ovn:` section in the network file.
    pub ovn: Option<Arc<dyn ovn::OvnSource>>,
    /// procfs.
    pub node: Arc<dyn node::NodeSource>,
    /// CSI calls.
    pub csi: Arc<csi_ops::CsiRecorder>,
    /// The coordinator session, with `--coordinator`.
    pub coordinator: Option<Arc<dyn SessionSource>>,
    /// Kubelet plugin registration, with `--kubelet-registration-dir`.
    pub registration: Option<Arc<crate::registration::Tracker>>,
    /// The CSI socket.
    pub socket: PathBuf,
    /// The state directory.
    pub state_dir: PathBuf,
}

/// Builds and caches snapshots.
pub struct Health {
    collectors: Collectors,
    timeout: Duration,
    max_age: Duration,
    cache: Mutex<Option<(Instant, Arc<Snapshot>)>>,
}

/// A timed-out or failed section.
fn failed<T>(e: impl std::fmt::Display) -> Section<T> {
    Section::without(SectionState::Error, e.to_string())
}

async fn bounded<T>(
    limit: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, HealthError>>,
) -> Section<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(data)) => Section::ok(data),
        Ok(Err(e)) => failed(e),
        Err(_) => failed(format!("{what} did not answer within {limit:?}")),
    }
}

impl Health {
    /// Snapshots at most every `max_age`, each collector bounded by `timeout`.
    pub fn new(collectors: Collectors, timeout: Duration, max_age: Duration) -> Self {
        Self {
            collectors,
            timeout,
            max_age,
            cache: Mutex::new(None),
        }
    }

    /// The cached snapshot, or a new one when it is older than `max_age`. Concurrent callers
    /// share one collection.
    pub async fn snapshot(&self) -> Arc<Snapshot> {
        let mut cache = self.cache.lock().await;
        if let Some((at, snap)) = cache.as_ref() {
            if at.elapsed() < self.max_age {
                return Arc::clone(snap);
            }
        }
        let snap = Arc::new(self.collect().await);
        *cache = Some((Instant::now(), Arc::clone(&snap)));
        snap
    }

    /// Builds a fresh snapshot.
    pub async fn collect(&self) -> Snapshot {
        let c = &self.collectors;
        let start = Instant::now();
        let storage = match &c.storage {
            Some(s) => bounded(self.timeout, "the storage backend", s.storage()).await,
            None => Section::without(SectionState::NotConfigured, "no storage backend"),
        };
        let mut network = match &c.network {
            Some(n) => bounded(self.timeout, "netlink", n.network()).await,
            None => Section::without(SectionState::NotConfigured, "no --network file"),
        };
        let ovn = match &c.ovn {
            Some(o) => Some(
                tokio::time::timeout(self.timeout, o.ovn())
                    .await
                    .unwrap_or_else(|_| {
                        failed(format!("OVSDB did not answer within {:?}", self.timeout))
                    }),
            ),
            None => None,
        };
        let drbd = match &c.drbd {
            Some(d) => d.drbd(),
            None => Section::without(SectionState::NotConfigured, "no DRBD backend"),
        };
        let node = match c.node.node() {
            Ok(n) => Section::ok(n),
            Err(e) => failed(e),
        };
        let coordinator = match &c.coordinator {
            Some(source) => {
                let data = source.coordinator();
                // Leased floating IPs are announced by the session's holder: name their epoch
                // and last announcement where the network section lists the kernel's view.
                if let Some(net) = network.data.as_mut() {
                    for f in &mut net.floating_ips {
                        if let Some(h) = data.floating_ips.iter().find(|h| h.address == f.address) {
                            f.epoch = h.epoch;
                            f.last_announced_unix = h.last_announced_unix;
                        }
                    }
                }
                let reason = (data.session != "connected").then(|| {
                    data.last_error
                        .clone()
                        .unwrap_or_else(|| "connecting".into())
                });
                Section {
                    state: SectionState::Ok,
                    reason,
                    data: Some(data),
                }
            }
            None => Section::without(SectionState::NotConfigured, "no --coordinator"),
        };
        let kubelet_registration = c.registration.as_ref().map(|t| {
            let data = t.view();
            let reason = match data.state.as_str() {
                "registered" => None,
                "error" => data.error.clone(),
                _ => Some("kubelet has not registered the driver yet".into()),
            };
            Section {
                state: SectionState::Ok,
                reason,
                data: Some(data),
            }
        });
        let mut snap = Snapshot {
            schema_version: snapshot::SCHEMA_VERSION,
            node_name: c.node_name.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            collected_at_unix: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default(),
            collect_millis: 0.0,
            storage,
            drbd,
            network,
            ovn,
            coordinator,
            kubelet_registration,
            node,
            csi: c.csi.stats(),
            checks: Vec::new(),
        };
        snap.checks = checks::evaluate(&snap, &c.socket, &c.state_dir);
        snap.collect_millis = start.elapsed().as_secs_f64() * 1000.0;
        snap
    }
}
