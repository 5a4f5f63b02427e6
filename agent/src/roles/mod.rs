//! Wiring of the roles: which services each one serves, built from flags.
//!
//! - `dev`: Identity, Controller and Node on one socket, on this machine.
//! - `node`: Identity and Node.
//! - `coordinator`: Identity and Controller.
//!
//! Each role picks its backend from `--backend`: loopfile (sparse files on loop devices) or
//! linstor (a LINSTOR controller over REST).

pub mod coordinator;
pub mod health;
pub mod node;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hearth_csi::attach::Attacher;
use hearth_csi::backend::VolumeBackend;
use hearth_csi::controller::ControllerService;
use hearth_csi::drbd::DrbdsetupStatus;
use hearth_csi::identity::{IdentityService, Readiness};
use hearth_csi::linstor::client::{ClientConfig, LinstorClient, TlsFiles};
use hearth_csi::linstor::{
    DiskState, DrbdsetupState, LinstorAttacher, LinstorBackend, LinstorViewState,
};
use hearth_csi::loopfile::{Layout, LoopAttacher, LoopfileBackend};
use hearth_csi::mount::HostMounter;
use hearth_csi::node::{NodeConfig, NodeService};
use hearth_proto::csi::v1::controller_server::ControllerServer;
use hearth_proto::csi::v1::identity_server::IdentityServer;
use hearth_proto::csi::v1::node_server::NodeServer;
use tonic::transport::Server;

use crate::cli::{Backend, CoordinatorArgs, DevArgs, LinstorArgs, NodeArgs};
use crate::endpoints::LocalReadiness;
use crate::error::UsageError;
use crate::health::csi_ops::CsiRecorder;
use crate::health::storage::{DeviceMap, LoopDevices, NoDevices};
use crate::roles::health::{counted, spawn_status, StatusPlan};
use crate::serve;

/// How long NodeStage waits for a DRBD device to appear with current data, and
/// NodeExpandVolume for it to reach the size LINSTOR recorded.
const DEVICE_WAIT: Duration = Duration::from_secs(60);

/// The host name, lowercased as kubelet does for the default node name.
fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .map(|h| h.to_lowercase())
        .unwrap_or_else(|| "localhost".to_owned())
}

fn prepare_dir(dir: &Path, what: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {what} {}", dir.display()))?;
    dir.canonicalize()
        .with_context(|| format!("resolving {what} {}", dir.display()))
}

/// Connects to LINSTOR (version handshake included).
async fn linstor_client(args: &LinstorArgs) -> anyhow::Result<LinstorClient> {
    let url = args
        .linstor_url
        .clone()
        .ok_or_else(|| UsageError("--backend linstor needs --linstor-url".into()))?;
    let config = ClientConfig::new(&url).with_tls(TlsFiles {
        ca_file: args.linstor_ca_file.clone(),
        cert_file: args.linstor_cert_file.clone(),
        key_file: args.linstor_key_file.clone(),
    });
    LinstorClient::connect(&config)
        .await
        .with_context(|| format!("connecting to LINSTOR at {url}"))
}

/// The node side of LINSTOR: data state from drbdsetup where DRBD is installed, else from
/// LINSTOR's resource view.
fn linstor_attacher(client: LinstorClient, node: &str) -> LinstorAttacher {
    let state: Arc<dyn DiskState> = match DrbdsetupStatus::locate() {
        Ok(source) => Arc::new(DrbdsetupState::new(source)),
        Err(e) => {
            tracing::info!("{e}; judging DRBD data by LINSTOR's resource view");
            Arc::new(LinstorViewState::new(client.clone(), node))
        }
    };
    LinstorAttacher::new(client, node, state, DEVICE_WAIT)
}

async fn loopfile_backend(state_dir: &Path, node: &str) -> anyhow::Result<LoopfileBackend> {
    let (layout, node) = (Layout::new(state_dir), node.to_owned());
    Ok(tokio::task::spawn_blocking(move || LoopfileBackend::open(layout, &node)).await??)
}

fn loop_attacher(state_dir: &Path) -> anyhow::Result<LoopAttacher> {
    let attacher = LoopAttacher::new(Layout::new(state_dir));
    attacher.recover().context("recovering loop devices")?;
    Ok(attacher)
}

/// What a node service needs besides its attacher.
struct NodeSettings {
    state_dir: PathBuf,
    kubelet_dir: PathBuf,
    node_id: String,
    max_volumes: i64,
    multi_node: bool,
}

fn node_service<A: Attacher>(
    attacher: A,
    s: NodeSettings,
) -> anyhow::Result<NodeService<A, HostMounter>> {
    if s.max_volumes < 1 {
        return Err(UsageError(format!(
            "--max-volumes must be at least 1, not {}",
            s.max_volumes
        ))
        .into());
    }
    let config = NodeConfig {
        node_id: s.node_id,
        kubelet_dir: s.kubelet_dir,
        max_volumes_per_node: s.max_volumes,
        markers_dir: s.state_dir.join("node").join("formatting"),
        multi_node: s.multi_node,
    };
    NodeService::new(Arc::new(attacher), Arc::new(HostMounter::default()), config)
        .context("preparing the node state directory")
}

/// Serves Identity, Controller and Node on one socket (`hearth dev`).
async fn serve_all<B: VolumeBackend, A: Attacher>(
    backend: B,
    attacher: A,
    settings: NodeSettings,
    listener: tokio::net::UnixListener,
    (mut status, kind, devices): (StatusPlan, &'static str, Arc<dyn DeviceMap>),
    reports: Option<Arc<crate::roles::node::HealthReports>>,
) -> anyhow::Result<()> {
    let socket = status.socket.clone();
    let node = node_service(attacher, settings)?;
    let readiness: Arc<dyn Readiness> = Arc::new(LocalReadiness {
        socket: socket.clone(),
        state_dir: status.state_dir.clone(),
    });
    let identity = IdentityService::new(true, backend.features().expansion, readiness);
    let backend = Arc::new(backend);
    status.storage = Some((
        kind,
        Arc::clone(&backend) as Arc<dyn VolumeBackend>,
        devices,
    ));
    let csi = Arc::new(CsiRecorder::default());
    let health = spawn_status(status, Arc::clone(&csi)).await?;
    if let Some(reports) = reports {
        reports.attach(health);
    }
    let router = Server::builder()
        .add_service(counted(&csi, IdentityServer::new(identity)))
        .add_service(counted(
            &csi,
            ControllerServer::new(ControllerService::new(backend)),
        ))
        .add_service(counted(&csi, NodeServer::new(node)));
    serve::serve(router, listener, &socket).await
}

/// The embedded coordinator of `hearth dev`: SQLite in the state directory, the agent API on a
/// loopback port, and this machine's session to it (it holds the config's floating IPs).
async fn embedded_coordinator(
    state_dir: &Path,
    node_id: &str,
    config: &Path,
    reports: Arc<crate::roles::node::HealthReports>,
) -> anyhow::Result<Arc<dyn crate::health::SessionSource>> {
    let store = crate::roles::coordinator::open_store(None, state_dir, "default").await?;
    crate::roles::coordinator::apply_config(&*store, config).await?;
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let no_tls = crate::cli::TlsArgs {
        tls_ca_file: None,
        tls_cert_file: None,
        tls_key_file: None,
    };
    let timing = hearth_coordinator::engine::Timing::default();
    let (_engine, bound, _refusals) =
        crate::roles::coordinator::start(store, timing, node_id, Some(loopback), &no_tls, None)
            .await?;
    let addr = bound.context("the embedded agent API did not bind")?;
    let session = crate::roles::node::start(
        &format!("http://{addr}"),
        node_id,
        std::collections::BTreeMap::new(),
        &no_tls,
        None,
        reports,
        None,
    )?;
    Ok(Arc::new(session))
}

/// `hearth dev`: both roles in one process.
pub async fn dev(args: DevArgs) -> anyhow::Result<()> {
    let state_dir = prepare_dir(&args.state_dir, "state directory")?;
    let kubelet_dir = args
        .kubelet_dir
        .clone()
        .unwrap_or_else(|| state_dir.join("kubelet"));
    let kubelet_dir = prepare_dir(&kubelet_dir, "kubelet directory")?;
    let node_id = args.node_name.clone().unwrap_or_else(hostname);
    let socket = state_dir.join("csi.sock");
    let listener = serve::bind(&socket).await?;
    tracing::info!(node = %node_id, state_dir = %state_dir.display(), kubelet_dir = %kubelet_dir.display(),
        backend = ?args.backend, "hearth dev starting");
    let mut settings = NodeSettings {
        state_dir: state_dir.clone(),
        kubelet_dir: kubelet_dir.clone(),
        node_id: node_id.clone(),
        max_volumes: args.max_volumes,
        multi_node: false,
    };
    // The embedded coordinator's agent API and this machine's session to it hold floating IPs;
    // without a config there are none, so they are not started (and cost no memory).
    let (session, reports) = match args.config.as_deref() {
        Some(config) => {
            let reports = Arc::new(crate::roles::node::HealthReports::default());
            let session =
                embedded_coordinator(&state_dir, &node_id, config, Arc::clone(&reports)).await?;
            (Some(session), Some(reports))
        }
        None => (None, None),
    };
    let serve = crate::roles::health::serve_plan(args.status_addr, &args.status_serve).await?;
    let mut status = StatusPlan {
        serve,
        node_name: node_id.clone(),
        socket,
        state_dir: state_dir.clone(),
        kubelet_dir,
        coordinator: session,
        registration: None,
        network: None,
        ovn: None,
        network_file: None,
        drbd: false,
        storage: None,
    };
    match args.backend {
        Backend::Loopfile => {
            let backend = loopfile_backend(&state_dir, &node_id).await?;
            let attacher = loop_attacher(&state_dir)?;
            let devices = LoopDevices {
                volumes_dir: Layout::new(&state_dir).volumes_dir(),
                sys_block: "/sys/block".into(),
            };
            let status = (status, "loopfile", Arc::new(devices) as Arc<dyn DeviceMap>);
            serve_all(backend, attacher, settings, listener, status, reports).await
        }
        Backend::Linstor => {
            let client = linstor_client(&args.linstor).await?;
            settings.multi_node = true;
            status.drbd = true;
            let attacher = linstor_attacher(client.clone(), &node_id);
            let status = (status, "linstor", Arc::new(NoDevices) as Arc<dyn DeviceMap>);
            serve_all(
                LinstorBackend::new(client),
                attacher,
                settings,
                listener,
                status,
                reports,
            )
            .await
        }
    }
}

/// The `--node-labels` that are topology (a `topology.` domain, such as
/// `topology.kubernetes.io/zone` and `/region`): NodeGetInfo reports them, so the CO's
/// zone-aware provisioning sees the zone the coordinator places by.
fn topology_segments(
    labels: &std::collections::BTreeMap<String, String>,
) -> std::collections::HashMap<String, String> {
    labels
        .iter()
        .filter(|(k, _)| {
            k.split_once('/')
                .is_some_and(|(domain, _)| domain.starts_with("topology."))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// With `--kubelet-registration-dir`: where to register and what CSI path to announce.
fn registration_plan(
    args: &NodeArgs,
    socket: &Path,
) -> Result<Option<crate::registration::Plan>, UsageError> {
    let Some(dir) = &args.kubelet_registration_dir else {
        if args.kubelet_registration_path.is_some() {
            return Err(UsageError(
                "--kubelet-registration-path needs --kubelet-registration-dir".into(),
            ));
        }
        return Ok(None);
    };
    let endpoint = args.kubelet_registration_path.as_deref().unwrap_or(socket);
    crate::registration::Plan::new(dir, hearth_csi::DRIVER_NAME, endpoint)
        .map(Some)
        .map_err(|e| UsageError(e.to_string()))
}

/// `hearth node`: the node role.
pub async fn node(args: NodeArgs) -> anyhow::Result<()> {
    let socket = serve::parse_endpoint(&args.csi_endpoint)?;
    let state_dir = prepare_dir(&args.state_dir, "state directory")?;
    let kubelet_dir = prepare_dir(&args.kubelet_dir, "kubelet directory")?;
    let reports = Arc::new(crate::roles::node::HealthReports::default());
    let labels = crate::roles::node::parse_labels(&args.node_labels)?;
    let (mut ovn, mut network) = (None, None);
    if let Some(file) = args.network.clone() {
        // Fail fast on a file that does not parse, then keep it converged in the background.
        let bad =
            |e: &dyn std::fmt::Display| UsageError(format!("--network {}: {e}", file.display()));
        let loaded = hearth_net::controller::load(&file).map_err(|e| match e {
            hearth_net::controller::ControllerError::Load { source, .. } => bad(&source),
            other => bad(&other),
        })?;
        ovn = loaded.ovn.clone();
        let progress = hearth_net::progress::NetProgress::default();
        network = Some(progress.clone());
        let opts = hearth_net::controller::Options {
            progress: Some(progress),
            ..Default::default()
        };
        tokio::spawn(async move {
            if let Err(e) = hearth_net::controller::run_loaded(file, loaded, opts).await {
                tracing::error!("network reconciler stopped: {e}");
            }
        });
    }
    let registration = registration_plan(&args, &socket)?;
    let listener = serve::bind(&socket).await?;
    let settings = NodeSettings {
        state_dir: state_dir.clone(),
        kubelet_dir: kubelet_dir.clone(),
        node_id: args.node_name.clone(),
        max_volumes: args.max_volumes,
        multi_node: args.backend == Backend::Linstor,
    };
    let readiness: Arc<dyn Readiness> = Arc::new(LocalReadiness {
        socket: socket.clone(),
        state_dir: state_dir.clone(),
    });
    let identity = IdentityService::new(false, true, readiness);
    let csi = Arc::new(CsiRecorder::default());
    let serve = crate::roles::health::serve_plan(args.status_addr, &args.status_serve).await?;
    let mut status = StatusPlan {
        serve,
        node_name: args.node_name.clone(),
        socket: socket.clone(),
        state_dir: state_dir.clone(),
        kubelet_dir,
        coordinator: None,
        registration: None,
        network,
        ovn,
        network_file: args.network.clone(),
        drbd: args.backend == Backend::Linstor,
        storage: None,
    };
    let router = Server::builder().add_service(counted(&csi, IdentityServer::new(identity)));
    let mut local_volumes = None;
    let router = match args.backend {
        Backend::Loopfile => {
            let backend: Arc<dyn VolumeBackend> =
                Arc::new(loopfile_backend(&state_dir, &args.node_name).await?);
            let devices = LoopDevices {
                volumes_dir: Layout::new(&state_dir).volumes_dir(),
                sys_block: "/sys/block".into(),
            };
            status.storage = Some(("loopfile", Arc::clone(&backend), Arc::new(devices)));
            // The coordinator creates, grows and deletes this node's images over the session.
            local_volumes = Some(backend);
            let node = node_service(loop_attacher(&state_dir)?, settings)?
                .with_topology(topology_segments(&labels));
            router.add_service(counted(&csi, NodeServer::new(node)))
        }
        Backend::Linstor => {
            let client = linstor_client(&args.linstor).await?;
            let backend = LinstorBackend::new(client.clone());
            status.storage = Some(("linstor", Arc::new(backend), Arc::new(NoDevices)));
            let node = node_service(linstor_attacher(client, &args.node_name), settings)?
                .with_topology(topology_segments(&labels));
            router.add_service(counted(&csi, NodeServer::new(node)))
        }
    };
    let mut handles = None;
    if let Some(url) = &args.coordinator {
        let session = crate::roles::node::start(
            url,
            &args.node_name,
            labels,
            &args.tls,
            args.node_token_file.as_deref(),
            Arc::clone(&reports) as Arc<dyn crate::node::session::ReportSource>,
            local_volumes,
        )?;
        handles = Some(session.clone());
        status.coordinator = Some(Arc::new(session));
    }
    let tracker = registration.map(|plan| Arc::new(crate::registration::Tracker::new(plan)));
    status.registration = tracker.clone();
    let with_session = status.coordinator.is_some();
    let health = spawn_status(status, csi).await?;
    if with_session {
        reports.attach(health);
    }
    // Registered only once the CSI socket is bound: kubelet calls NodeGetInfo on it at once.
    let registrar = match tracker {
        Some(t) => Some(crate::registration::start(
            t,
            Arc::new(crate::registration::HostSockets),
        )?),
        None => None,
    };
    let served = serve::serve(router, listener, &socket).await;
    // Kubelet deregisters the driver when the registration socket goes.
    if let Some(r) = registrar {
        r.stop().await;
    }
    // SIGTERM (a rolling update): hand the floating IPs over before exiting.
    if let Some(h) = handles {
        h.hand_over(std::time::Duration::from_secs(1)).await;
    }
    served
}

/// The coordinator's flags that can be checked without the store: lease timings, the TLS
/// files (together, readable), plaintext only on loopback, the store's syntax, the config file.
fn check_coordinator_flags(
    args: &CoordinatorArgs,
) -> Result<hearth_coordinator::engine::Timing, UsageError> {
    let timing = crate::roles::coordinator::timing(&args.lease)?;
    let tls = args.tls.files()?;
    if let Some((ca, cert, key)) = &tls {
        for (flag, path) in [
            ("--tls-ca-file", ca),
            ("--tls-cert-file", cert),
            ("--tls-key-file", key),
        ] {
            std::fs::metadata(path)
                .map_err(|e| UsageError(format!("{flag} {}: {e}", path.display())))?;
        }
    }
    if let Some(listen) = args.listen {
        if tls.is_none() && !listen.ip().is_loopback() {
            return Err(UsageError(format!(
                "--listen {listen}: plaintext is allowed only on a loopback address; \
                 give --tls-cert-file, --tls-key-file and --tls-ca-file"
            )));
        }
    }
    if let Some(spec) = args.store.as_deref() {
        if spec != "kubernetes" && !spec.starts_with("sqlite:") {
            return Err(UsageError(format!(
                "--store {spec}: expected sqlite:PATH or kubernetes"
            )));
        }
    }
    if let Some(config) = &args.config {
        hearth_coordinator::config::load(config).map_err(|e| UsageError(e.to_string()))?;
    }
    Ok(timing)
}

/// `hearth coordinator`: the coordinator role.
pub async fn coordinator(args: CoordinatorArgs) -> anyhow::Result<()> {
    let socket = serve::parse_endpoint(&args.csi_endpoint)?;
    // Every flag is checked before the store is taken (and leadership with it).
    let timing = check_coordinator_flags(&args)?;
    let state_dir = prepare_dir(&args.state_dir, "state directory")?;
    let store =
        crate::roles::coordinator::open_store(args.store.as_deref(), &state_dir, &args.namespace)
            .await?;
    let mut ovn = None;
    if let Some(config) = &args.config {
        ovn = crate::roles::coordinator::apply_config(&*store, config).await?;
    }
    let id = args.id.clone().unwrap_or_else(hostname);
    let auth = crate::roles::coordinator::node_auth(&args.node_auth, &args.namespace).await?;
    // The agent API logs the address it bound (`agent API listening`), port 0 resolved.
    let (engine, _bound, refusals) = crate::roles::coordinator::start(
        Arc::clone(&store),
        timing,
        &id,
        args.listen,
        &args.tls,
        Some(auth),
    )
    .await?;
    let ovn = ovn.map(|c| crate::roles::coordinator::start_ovn_nat(c, Arc::clone(&store), &engine));
    let node_id = args.node_name.clone().unwrap_or_else(hostname);
    let listener = serve::bind(&socket).await?;
    let serve = crate::roles::health::serve_plan(args.status_addr, &args.status_serve).await?;
    if serve.status.is_some() || serve.probe.is_some() {
        let routes = crate::endpoints::coordinator::CoordinatorRoutes {
            engine: Arc::clone(&engine),
            store: Arc::clone(&store),
            socket: socket.clone(),
            ovn,
            refusals: Arc::clone(&refusals),
        };
        crate::endpoints::spawn(&serve, routes).await?;
    }
    let readiness: Arc<dyn Readiness> = Arc::new(crate::roles::coordinator::LeaderReadiness {
        local: LocalReadiness {
            socket: socket.clone(),
            state_dir: state_dir.clone(),
        },
        engine: Arc::clone(&engine),
    });
    let identity = IdentityService::new(true, true, readiness);
    let csi = CoordinatorCsi {
        identity,
        engine: Arc::clone(&engine),
        listener,
        socket,
    };
    match args.backend {
        // With the agent API, loopfile images live on the node agents; without it, here.
        Backend::Loopfile if args.listen.is_some() => {
            csi.serve(hearth_coordinator::volumes::NodeLocalVolumes::new(
                store,
                Arc::clone(&engine),
            ))
            .await
        }
        Backend::Loopfile => {
            csi.serve(loopfile_backend(&state_dir, &node_id).await?)
                .await
        }
        Backend::Linstor => {
            let client = linstor_client(&args.linstor).await?;
            let placer = hearth_coordinator::linstor_placer::LinstorPlacer::new(
                client.clone(),
                Arc::clone(&engine),
            );
            csi.serve(LinstorBackend::new(client).with_placer(Arc::new(placer)))
                .await
        }
    }
}

/// The coordinator's CSI socket: Identity and Controller, the controller answering only while
/// this coordinator leads. A standby's Probe says `ready: false`, so the sidecars beside it
/// wait; when it stops leading, its CSI connections are cut (the sidecars restart and wait).
struct CoordinatorCsi {
    identity: IdentityService,
    engine: Arc<hearth_coordinator::engine::Engine>,
    listener: tokio::net::UnixListener,
    socket: PathBuf,
}

impl CoordinatorCsi {
    async fn serve<B: VolumeBackend>(self, backend: B) -> anyhow::Result<()> {
        let controller = tonic::service::interceptor::InterceptedService::new(
            ControllerServer::new(ControllerService::new(Arc::new(backend))),
            crate::roles::coordinator::leader_only(Arc::clone(&self.engine)),
        );
        let identity = IdentityServer::new(self.identity);
        let engine = self.engine;
        serve::serve_with_cuts(
            move || {
                Server::builder()
                    .add_service(identity.clone())
                    .add_service(controller.clone())
            },
            self.listener,
            &self.socket,
            || crate::roles::coordinator::stepped_down(Arc::clone(&engine)),
        )
        .await
    }
}
