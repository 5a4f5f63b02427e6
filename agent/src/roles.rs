//! Wiring of the roles: which services each one serves, built from flags.
//!
//! - `dev`: Identity, Controller and Node on one socket, loopfile backend, on this machine.
//! - `node`: Identity and Node.
//! - `coordinator`: Identity and Controller.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use hearth_csi::controller::ControllerService;
use hearth_csi::identity::{IdentityService, Readiness};
use hearth_csi::loopfile::{Layout, LoopAttacher, LoopfileBackend};
use hearth_csi::mount::HostMounter;
use hearth_csi::node::{NodeConfig, NodeService};
use hearth_proto::csi::v1::controller_server::ControllerServer;
use hearth_proto::csi::v1::identity_server::IdentityServer;
use hearth_proto::csi::v1::node_server::NodeServer;
use tonic::transport::Server;

use crate::cli::{CoordinatorArgs, DevArgs, NodeArgs};
use crate::serve;
use crate::status::LocalReadiness;
use crate::UsageError;

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

fn prepare_dir(dir: &Path, what: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {what} {}", dir.display()))?;
    dir.canonicalize()
        .with_context(|| format!("resolving {what} {}", dir.display()))
}

fn node_service(
    state_dir: &Path,
    kubelet_dir: PathBuf,
    node_id: String,
    max_volumes: i64,
) -> anyhow::Result<NodeService<LoopAttacher, HostMounter>> {
    if max_volumes < 1 {
        return Err(UsageError(format!(
            "--max-volumes must be at least 1, not {max_volumes}"
        ))
        .into());
    }
    let attacher = LoopAttacher::new(Layout::new(state_dir));
    attacher.recover().context("recovering loop devices")?;
    let config = NodeConfig {
        node_id,
        kubelet_dir,
        max_volumes_per_node: max_volumes,
        markers_dir: state_dir.join("node").join("formatting"),
    };
    NodeService::new(Arc::new(attacher), Arc::new(HostMounter::default()), config)
        .context("preparing the node state directory")
}

fn spawn_status(addr: Option<std::net::SocketAddr>, readiness: Arc<dyn Readiness>) {
    if let Some(addr) = addr {
        tokio::spawn(async move {
            if let Err(e) = crate::status::serve(addr, readiness).await {
                tracing::error!("status server stopped: {e:#}");
            }
        });
    }
}

/// `hearth dev`: both roles in one process.
pub async fn dev(args: DevArgs) -> anyhow::Result<()> {
    let state_dir = prepare_dir(&args.state_dir, "state directory")?;
    let kubelet_dir = prepare_dir(
        &args
            .kubelet_dir
            .clone()
            .unwrap_or_else(|| state_dir.join("kubelet")),
        "kubelet directory",
    )?;
    let node_id = args.node_name.clone().unwrap_or_else(hostname);
    let socket = state_dir.join("csi.sock");
    let listener = serve::bind(&socket).await?;

    let backend = {
        let (layout, node) = (Layout::new(&state_dir), node_id.clone());
        tokio::task::spawn_blocking(move || LoopfileBackend::open(layout, &node)).await??
    };
    let node = node_service(
        &state_dir,
        kubelet_dir.clone(),
        node_id.clone(),
        args.max_volumes,
    )?;
    let readiness: Arc<dyn Readiness> = Arc::new(LocalReadiness {
        socket: socket.clone(),
        state_dir: state_dir.clone(),
    });
    let identity = IdentityService::new(true, true, Arc::clone(&readiness));
    spawn_status(args.status_addr, readiness);
    tracing::info!(node = %node_id, state_dir = %state_dir.display(), kubelet_dir = %kubelet_dir.display(), "hearth dev starting");

    let router = Server::builder()
        .add_service(IdentityServer::new(identity))
        .add_service(ControllerServer::new(ControllerService::new(Arc::new(
            backend,
        ))))
        .add_service(NodeServer::new(node));
    serve::serve(router, listener, &socket).await
}

/// `hearth node`: the node role.
pub async fn node(args: NodeArgs) -> anyhow::Result<()> {
    let socket = serve::parse_endpoint(&args.csi_endpoint)?;
    let state_dir = prepare_dir(&args.state_dir, "state directory")?;
    let kubelet_dir = prepare_dir(&args.kubelet_dir, "kubelet directory")?;
    if let Some(url) = &args.coordinator {
        tracing::warn!(%url, "the coordinator session is not built yet; serving CSI Node only");
    }
    let listener = serve::bind(&socket).await?;
    let node = node_service(
        &state_dir,
        kubelet_dir,
        args.node_name.clone(),
        args.max_volumes,
    )?;
    let readiness: Arc<dyn Readiness> = Arc::new(LocalReadiness {
        socket: socket.clone(),
        state_dir,
    });
    let identity = IdentityService::new(false, true, Arc::clone(&readiness));
    spawn_status(args.status_addr, readiness);
    let router = Server::builder()
        .add_service(IdentityServer::new(identity))
        .add_service(NodeServer::new(node));
    serve::serve(router, listener, &socket).await
}

/// `hearth coordinator`: the coordinator role.
pub async fn coordinator(args: CoordinatorArgs) -> anyhow::Result<()> {
    let socket = serve::parse_endpoint(&args.csi_endpoint)?;
    let state_dir = prepare_dir(&args.state_dir, "state directory")?;
    if let Some(listen) = &args.listen {
        tracing::warn!(%listen, "the agent API is not built yet; serving CSI Controller only");
    }
    let node_id = args.node_name.clone().unwrap_or_else(hostname);
    let listener = serve::bind(&socket).await?;
    let backend = {
        let layout = Layout::new(&state_dir);
        tokio::task::spawn_blocking(move || LoopfileBackend::open(layout, &node_id)).await??
    };
    let readiness: Arc<dyn Readiness> = Arc::new(LocalReadiness {
        socket: socket.clone(),
        state_dir,
    });
    let identity = IdentityService::new(true, true, readiness);
    let router = Server::builder()
        .add_service(IdentityServer::new(identity))
        .add_service(ControllerServer::new(ControllerService::new(Arc::new(
            backend,
        ))));
    serve::serve(router, listener, &socket).await
}
