//! Command-line flags. Every flag also reads `HEARTH_<FLAG>` from the environment.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Hearth: the storage and networking agent of a Kubernetes virtualization platform.
#[derive(Debug, Parser)]
#[command(name = "hearth", version, about)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        env = "HEARTH_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Log formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run both roles in one process on this machine (loop devices over sparse files).
    Dev(DevArgs),
    /// Run the node role: CSI Identity and Node on a unix socket.
    Node(NodeArgs),
    /// Run the coordinator role: CSI Identity and Controller on a unix socket.
    Coordinator(CoordinatorArgs),
    /// Drive a CSI socket by hand, the way kubelet and the sidecars would.
    Csi(crate::csi_cmd::CsiArgs),
    /// Show an agent's health: checks, volumes, floating IPs and DRBD peers.
    Status(crate::status_cmd::StatusArgs),
    /// Node networking: apply a node network file, or keep a namespace converged to it.
    Net(crate::net::cmd::NetArgs),
    /// Print Hearth's CustomResourceDefinitions as one multi-document YAML stream.
    Crds,
}

/// Storage backends.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Backend {
    /// Sparse files attached as loop devices.
    Loopfile,
    /// LINSTOR resources (DRBD over LVM or ZFS), through the controller's REST API.
    Linstor,
}

/// How to reach the LINSTOR controller (with `--backend linstor`).
#[derive(Debug, Clone, Args)]
pub struct LinstorArgs {
    /// The controller: `http://host:3370`, `https://host:3371` or `linstor+ssl://host`.
    #[arg(long, env = "HEARTH_LINSTOR_URL")]
    pub linstor_url: Option<String>,
    /// CA certificate (PEM) for HTTPS.
    #[arg(long, env = "HEARTH_LINSTOR_CA_FILE")]
    pub linstor_ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for HTTPS with client authentication.
    #[arg(long, env = "HEARTH_LINSTOR_CERT_FILE")]
    pub linstor_cert_file: Option<PathBuf>,
    /// Client key (PEM) for HTTPS with client authentication.
    #[arg(long, env = "HEARTH_LINSTOR_KEY_FILE")]
    pub linstor_key_file: Option<PathBuf>,
}

/// Flags of `hearth dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// State directory: catalog, images, the CSI socket (DIR/csi.sock) and DIR/kubelet.
    #[arg(long, env = "HEARTH_STATE_DIR")]
    pub state_dir: PathBuf,
    /// The node name reported to the CO.
    #[arg(long, env = "HEARTH_NODE_NAME")]
    pub node_name: Option<String>,
    /// Serve /status, /metrics, /healthz and /readyz on this address.
    #[arg(long, env = "HEARTH_STATUS_ADDR")]
    pub status_addr: Option<std::net::SocketAddr>,
    /// Storage backend.
    #[arg(long, env = "HEARTH_BACKEND", value_enum, default_value = "loopfile")]
    pub backend: Backend,
    /// LINSTOR connection.
    #[command(flatten)]
    pub linstor: LinstorArgs,
    /// Staging and target paths must lie under this directory (default DIR/kubelet).
    #[arg(long, env = "HEARTH_KUBELET_DIR")]
    pub kubelet_dir: Option<PathBuf>,
    /// Reported as max_volumes_per_node.
    #[arg(long, env = "HEARTH_MAX_VOLUMES", default_value_t = 256)]
    pub max_volumes: i64,
}

/// Flags of `hearth node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The node name reported to the CO.
    #[arg(long, env = "HEARTH_NODE_NAME")]
    pub node_name: String,
    /// The CSI socket, `unix:///path/csi.sock`.
    #[arg(long, env = "HEARTH_CSI_ENDPOINT")]
    pub csi_endpoint: String,
    /// The coordinator's agent API. The session to it is not built yet; the flag is accepted
    /// so deployments can set it now.
    #[arg(long, env = "HEARTH_COORDINATOR")]
    pub coordinator: Option<String>,
    /// The node network file (docs/network.md): kept converged in this network namespace.
    #[arg(long, env = "HEARTH_NETWORK")]
    pub network: Option<PathBuf>,
    /// State directory (loopfile images, format markers).
    #[arg(long, env = "HEARTH_STATE_DIR", default_value = "/var/lib/hearth")]
    pub state_dir: PathBuf,
    /// Storage backend.
    #[arg(long, env = "HEARTH_BACKEND", value_enum, default_value = "loopfile")]
    pub backend: Backend,
    /// LINSTOR connection.
    #[command(flatten)]
    pub linstor: LinstorArgs,
    /// Staging and target paths must lie under this directory.
    #[arg(long, env = "HEARTH_KUBELET_DIR", default_value = "/var/lib/kubelet")]
    pub kubelet_dir: PathBuf,
    /// Serve /status, /metrics, /healthz and /readyz on this address.
    #[arg(long, env = "HEARTH_STATUS_ADDR")]
    pub status_addr: Option<std::net::SocketAddr>,
    /// Reported as max_volumes_per_node.
    #[arg(long, env = "HEARTH_MAX_VOLUMES", default_value_t = 256)]
    pub max_volumes: i64,
}

/// Flags of `hearth coordinator`.
#[derive(Debug, Args)]
pub struct CoordinatorArgs {
    /// The CSI socket, `unix:///path/csi.sock`.
    #[arg(long, env = "HEARTH_CSI_ENDPOINT")]
    pub csi_endpoint: String,
    /// The agent API address. Not served yet; accepted so deployments can set it now.
    #[arg(long, env = "HEARTH_LISTEN")]
    pub listen: Option<String>,
    /// State directory of the loopfile backend (catalog and images).
    #[arg(long, env = "HEARTH_STATE_DIR", default_value = "/var/lib/hearth")]
    pub state_dir: PathBuf,
    /// Storage backend.
    #[arg(long, env = "HEARTH_BACKEND", value_enum, default_value = "loopfile")]
    pub backend: Backend,
    /// LINSTOR connection.
    #[command(flatten)]
    pub linstor: LinstorArgs,
    /// The node whose loopfile images this coordinator manages (the volumes' topology).
    #[arg(long, env = "HEARTH_NODE_NAME")]
    pub node_name: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};

    #[test]
    fn crds_takes_no_arguments() {
        let cli = Cli::try_parse_from(["hearth", "crds"]).unwrap();
        assert!(matches!(cli.command, Command::Crds));
        assert!(Cli::try_parse_from(["hearth", "crds", "extra"]).is_err());
    }
}
