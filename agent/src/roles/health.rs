//! Wiring of the health pieces for a role: builds the collectors from what the role serves,
//! starts the status server, and wraps CSI services with the statistics layer. Owns no
//! collection logic; the role functions in `roles` call it and stay free of health details.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hearth_csi::backend::VolumeBackend;

use crate::cli::{StatusAuthMode, StatusServeArgs};
use crate::endpoints::access::kube::KubeAccessReviewer;
use crate::endpoints::access::StatusAuth;
use crate::endpoints::tls::{StatusTls, TlsSource};
use crate::endpoints::StatusSources;
use crate::health::csi_ops::{CsiRecorder, CsiStatsLayer, CsiStatsService};
use crate::health::drbd::{DrbdSource, Events2Drbd};
use crate::health::network::{NetlinkNetwork, NetworkSource};
use crate::health::node::ProcNode;
use crate::health::storage::{BackendStorage, DeviceMap, StorageSource};
use crate::health::{Collectors, Health};
use hearth_net::progress::NetProgress;

/// The longest one health collector may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// Scrapes within this interval share one snapshot.
const HEALTH_MAX_AGE: Duration = Duration::from_secs(1);
/// What the status endpoint reports on, besides the CSI counters.
pub struct StatusPlan {
    /// `--status-addr` and `--probe-addr`; nothing is served without them.
    pub serve: crate::endpoints::ServePlan,
    /// The node name.
    pub node_name: String,
    /// The CSI socket.
    pub socket: PathBuf,
    /// The state directory.
    pub state_dir: PathBuf,
    /// The kubelet directory (published vs staged mounts).
    pub kubelet_dir: PathBuf,
    /// The coordinator session, with `--coordinator`.
    pub coordinator: Option<Arc<dyn crate::health::SessionSource>>,
    /// Kubelet plugin registration, with `--kubelet-registration-dir`.
    pub registration: Option<Arc<crate::registration::Tracker>>,
    /// With `--network`: dump links and floating IPs, and judge readiness by the network
    /// reconciler's passes, which it publishes here.
    pub network: Option<NetProgress>,
    /// The `ovn:` section of the network file, when there is one.
    pub ovn: Option<hearth_net::ovn::OvnSpec>,
    /// The network file the `ovn:` section came from (re-read by the OVN check).
    pub network_file: Option<std::path::PathBuf>,
    /// True with the LINSTOR backend: follow `drbdsetup events2`.
    pub drbd: bool,
    /// The storage backend, set by the role once it is built.
    pub storage: Option<StorageParts>,
}

/// The backend's name, the backend and its local device map.
pub type StorageParts = (&'static str, Arc<dyn VolumeBackend>, Arc<dyn DeviceMap>);

/// Builds the health snapshot source, and starts the status server when `--status-addr` is
/// set (binding fails fast). The snapshot also feeds the coordinator session's reports.
pub async fn spawn_status(plan: StatusPlan, csi: Arc<CsiRecorder>) -> anyhow::Result<Arc<Health>> {
    let serve = plan.serve;
    let storage = plan.storage.map(|(name, backend, devices)| {
        Arc::new(BackendStorage {
            name: name.into(),
            node: plan.node_name.clone(),
            backend,
            devices,
            kubelet_dir: plan.kubelet_dir.clone(),
        }) as Arc<dyn StorageSource>
    });
    let network = match plan.network {
        Some(progress) => {
            let netlink = hearth_net::netlink::RtNetlink::open().context("opening netlink")?;
            Some(Arc::new(NetlinkNetwork {
                netlink: Arc::new(netlink),
                progress: Some(progress),
            }) as Arc<dyn NetworkSource>)
        }
        None => None,
    };
    let drbd = plan
        .drbd
        .then(|| Arc::new(Events2Drbd::start()) as Arc<dyn DrbdSource>);
    let collectors = Collectors {
        node_name: plan.node_name,
        storage,
        drbd,
        network,
        ovn: plan.ovn.map(|spec| {
            Arc::new(crate::health::ovn::OvsdbOvn {
                spec,
                file: plan.network_file.clone(),
            }) as Arc<dyn crate::health::ovn::OvnSource>
        }),
        node: Arc::new(ProcNode),
        csi: Arc::clone(&csi),
        coordinator: plan.coordinator,
        registration: plan.registration,
        socket: plan.socket,
        state_dir: plan.state_dir,
    };
    let health = Arc::new(Health::new(collectors, HEALTH_TIMEOUT, HEALTH_MAX_AGE));
    if serve.status.is_some() || serve.probe.is_some() {
        crate::endpoints::spawn(
            &serve,
            StatusSources {
                health: Arc::clone(&health),
                csi,
            },
        )
        .await?;
    }
    Ok(health)
}

/// The serve plan of `--status-addr` and the [`StatusServeArgs`]: with `--status-auth
/// kubernetes`, connects to the API server (in-cluster config or KUBECONFIG) for the reviews.
pub async fn serve_plan(
    status: Option<std::net::SocketAddr>,
    args: &StatusServeArgs,
) -> anyhow::Result<crate::endpoints::ServePlan> {
    let auth = match args.status_auth {
        StatusAuthMode::None => None,
        StatusAuthMode::Kubernetes => {
            let reviewer = KubeAccessReviewer::connect()
                .await
                .context("--status-auth kubernetes: connecting to the Kubernetes API")?;
            Some(Arc::new(StatusAuth::new(
                Arc::new(reviewer),
                args.status_token_audience.clone(),
            )))
        }
    };
    Ok(crate::endpoints::ServePlan {
        status,
        probe: args.probe_addr,
        auth,
        tls: status_tls(status, args)?,
    })
}

/// The status listener's TLS from `--status-tls-*`; the self-signed certificate names this
/// host (`NODE_NAME` or the hostname), `localhost` and the listener's address when it is one.
fn status_tls(
    status: Option<std::net::SocketAddr>,
    args: &StatusServeArgs,
) -> anyhow::Result<Option<StatusTls>> {
    let source = match (&args.status_tls_cert_file, &args.status_tls_key_file) {
        (Some(cert), Some(key)) => TlsSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ if args.status_tls_self_signed => {
            let mut names = vec!["localhost".to_owned()];
            let host = std::env::var("NODE_NAME")
                .ok()
                .or_else(|| nix::unistd::gethostname().ok()?.into_string().ok());
            names.extend(host);
            names.extend(
                status
                    .map(|a| a.ip())
                    .filter(|ip| !ip.is_unspecified())
                    .map(|ip| ip.to_string()),
            );
            TlsSource::SelfSigned(names)
        }
        _ => return Ok(None),
    };
    Ok(Some(StatusTls::new(&source).context("--status-tls")?))
}

/// Wraps a CSI service so its calls are counted.
pub fn counted<S>(csi: &Arc<CsiRecorder>, service: S) -> CsiStatsService<S> {
    tower::Layer::layer(&CsiStatsLayer::new(Arc::clone(csi)), service)
}
