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
    Net(crate::net_cmd::NetArgs),
    /// Print Hearth's CustomResourceDefinitions as one multi-document YAML stream.
    Crds,
    /// Internal: the node's fence guard (removes leased floating IPs when the agent dies).
    #[command(hide = true)]
    FenceGuard,
}

/// mTLS files for the agent API (both ends).
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// CA certificate (PEM) that signs the other end's certificate.
    #[arg(long, env = "HEARTH_TLS_CA_FILE")]
    pub tls_ca_file: Option<PathBuf>,
    /// This end's certificate (PEM). A node's must name the node.
    #[arg(long, env = "HEARTH_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// This end's private key (PEM).
    #[arg(long, env = "HEARTH_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
}

impl TlsArgs {
    /// The three files, all or none.
    pub fn files(&self) -> Result<Option<(PathBuf, PathBuf, PathBuf)>, crate::error::UsageError> {
        match (&self.tls_ca_file, &self.tls_cert_file, &self.tls_key_file) {
            (None, None, None) => Ok(None),
            (Some(ca), Some(cert), Some(key)) => Ok(Some((ca.clone(), cert.clone(), key.clone()))),
            _ => Err(crate::error::UsageError(
                "--tls-ca-file, --tls-cert-file and --tls-key-file go together".into(),
            )),
        }
    }

    /// The CA and the certificate with its key, each optional; the certificate and key go
    /// together (token authentication: a node needs only the CA, the coordinator no CA).
    pub fn parts(&self) -> Result<TlsParts, crate::error::UsageError> {
        let pair = match (&self.tls_cert_file, &self.tls_key_file) {
            (None, None) => None,
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            _ => {
                return Err(crate::error::UsageError(
                    "--tls-cert-file and --tls-key-file go together".into(),
                ))
            }
        };
        Ok((self.tls_ca_file.clone(), pair))
    }
}

/// The CA file and the (certificate, key) pair, each optional.
pub type TlsParts = (Option<PathBuf>, Option<(PathBuf, PathBuf)>);

/// How the coordinator tells which node a session comes from.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum NodeAuthMode {
    /// The node's client certificate must name it (mTLS; nothing on plaintext loopback).
    Mtls,
    /// The node presents a projected ServiceAccount token; a TokenReview says its node.
    Tokenreview,
}

/// Node identity flags of the coordinator (docs/design/node-identity.md).
#[derive(Debug, Clone, Args)]
pub struct NodeAuthArgs {
    /// How nodes prove their name: `mtls` (client certificates) or `tokenreview` (projected
    /// ServiceAccount tokens reviewed by the API server; TLS with this end's certificate).
    #[arg(long, env = "HEARTH_NODE_AUTH", value_enum, default_value = "mtls")]
    pub node_auth: NodeAuthMode,
    /// The audience node tokens must be valid for (`tokenreview`).
    #[arg(long, env = "HEARTH_NODE_TOKEN_AUDIENCE", default_value = hearth_coordinator::node_auth::DEFAULT_AUDIENCE)]
    pub node_token_audience: String,
    /// The node pods' ServiceAccount, in `--namespace` (`tokenreview`).
    #[arg(
        long,
        env = "HEARTH_NODE_SERVICE_ACCOUNT",
        default_value = "hearth-node"
    )]
    pub node_service_account: String,
}

/// Who may read `/status` and `/metrics` beyond loopback.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum StatusAuthMode {
    /// Anyone who reaches `--status-addr` (the default; fine on loopback).
    None,
    /// Clients with a bearer token the API server authenticates (TokenReview) for a user
    /// allowed to `get` the path as a non-resource URL (SubjectAccessReview).
    Kubernetes,
}

/// How the status endpoints are served besides `--status-addr` (docs/design/status-auth.md).
#[derive(Debug, Clone, Args)]
pub struct StatusServeArgs {
    /// Serve /healthz and /readyz alone on this address too, on connections of their own, for
    /// kubelet's probes: nothing sent to --status-addr can starve them.
    #[arg(long, env = "HEARTH_PROBE_ADDR")]
    pub probe_addr: Option<std::net::SocketAddr>,
    /// Who may read /status and /metrics from beyond loopback: `none` (anyone) or
    /// `kubernetes` (TokenReview and SubjectAccessReview; /healthz and /readyz stay open).
    #[arg(long, env = "HEARTH_STATUS_AUTH", value_enum, default_value = "none")]
    pub status_auth: StatusAuthMode,
    /// With `kubernetes`: the audience a client's token must be valid for (repeatable; the
    /// API server's own when not given).
    #[arg(long, env = "HEARTH_STATUS_TOKEN_AUDIENCE", value_delimiter = ',')]
    pub status_token_audience: Vec<String>,
    /// Serve --status-addr over HTTPS with this PEM certificate chain (read again when it
    /// changes); plain HTTP then answers on loopback only. Needs --status-tls-key-file.
    #[arg(
        long,
        env = "HEARTH_STATUS_TLS_CERT_FILE",
        requires = "status_tls_key_file",
        conflicts_with = "status_tls_self_signed"
    )]
    pub status_tls_cert_file: Option<std::path::PathBuf>,
    /// The private key (PEM) of --status-tls-cert-file.
    #[arg(
        long,
        env = "HEARTH_STATUS_TLS_KEY_FILE",
        requires = "status_tls_cert_file"
    )]
    pub status_tls_key_file: Option<std::path::PathBuf>,
    /// Serve --status-addr over HTTPS with a certificate made in memory at start (for the
    /// node's name and the listener's address); plain HTTP then answers on loopback only.
    #[arg(long, env = "HEARTH_STATUS_TLS_SELF_SIGNED")]
    pub status_tls_self_signed: bool,
}

/// Lease timings of the agent API (coordinator side; nodes learn them in the Welcome).
#[derive(Debug, Clone, Args)]
pub struct LeaseArgs {
    /// How often nodes report; each report renews the node's lease.
    #[arg(long, env = "HEARTH_REPORT_INTERVAL_MS", default_value_t = 100)]
    pub report_interval_ms: u64,
    /// How long a lease lasts from the report it answers.
    #[arg(long, env = "HEARTH_LEASE_MS", default_value_t = 350)]
    pub lease_ms: u64,
    /// Extra wait before an expired lease's floating IPs move.
    #[arg(long, env = "HEARTH_LEASE_MARGIN_MS", default_value_t = 100)]
    pub lease_margin_ms: u64,
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
    /// The probe listener and who may read the status.
    #[command(flatten)]
    pub status_serve: StatusServeArgs,
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
    /// The coordinator config (floating-IP pools and floating IPs) for the embedded
    /// coordinator; its floating IPs are held by this machine.
    #[arg(long, env = "HEARTH_CONFIG")]
    pub config: Option<PathBuf>,
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
    /// The coordinator's agent API: `https://host:9811` (mTLS), or `http://127.0.0.1:9811`
    /// (plaintext, loopback only).
    #[arg(long, env = "HEARTH_COORDINATOR")]
    pub coordinator: Option<String>,
    /// mTLS to the coordinator.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// A projected ServiceAccount token proving this node to the coordinator (re-read for
    /// each session); with it, `https://` needs only `--tls-ca-file`.
    #[arg(long, env = "HEARTH_NODE_TOKEN_FILE")]
    pub node_token_file: Option<PathBuf>,
    /// Labels reported to the coordinator for placement, `k=v,k2=v2` (for example
    /// `topology.kubernetes.io/zone=a`).
    #[arg(long, env = "HEARTH_NODE_LABELS", value_delimiter = ',')]
    pub node_labels: Vec<String>,
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
    /// The probe listener and who may read the status.
    #[command(flatten)]
    pub status_serve: StatusServeArgs,
    /// Reported as max_volumes_per_node.
    #[arg(long, env = "HEARTH_MAX_VOLUMES", default_value_t = 256)]
    pub max_volumes: i64,
    /// Register the CSI driver with kubelet natively: serve kubelet's plugin-registration API
    /// on `DIR/csi.hearth.dev-reg.sock` (DIR is kubelet's `plugins_registry`, e.g.
    /// `/var/lib/kubelet/plugins_registry`). Off when unset (node-driver-registrar's job).
    #[arg(long, env = "HEARTH_KUBELET_REGISTRATION_DIR")]
    pub kubelet_registration_dir: Option<PathBuf>,
    /// The CSI socket's path as kubelet sees it, announced in the registration (default: the
    /// `--csi-endpoint` path, right when the agent and kubelet share a mount namespace).
    #[arg(long, env = "HEARTH_KUBELET_REGISTRATION_PATH")]
    pub kubelet_registration_path: Option<PathBuf>,
}

/// Flags of `hearth coordinator`.
#[derive(Debug, Args)]
pub struct CoordinatorArgs {
    /// The CSI socket, `unix:///path/csi.sock`.
    #[arg(long, env = "HEARTH_CSI_ENDPOINT")]
    pub csi_endpoint: String,
    /// Serve the agent API (node sessions) on this address. Plaintext only on loopback.
    #[arg(long, env = "HEARTH_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// mTLS for the agent API.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// How nodes prove who they are.
    #[command(flatten)]
    pub node_auth: NodeAuthArgs,
    /// The coordinator config: floating-IP pools and floating IPs (docs/coordinator.md).
    #[arg(long, env = "HEARTH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the cluster state lives: `sqlite:PATH` (default `sqlite:STATE_DIR/coordinator.db`)
    /// or `kubernetes` (CRDs and a Lease for leader election).
    #[arg(long, env = "HEARTH_STORE")]
    pub store: Option<String>,
    /// The namespace of the leader-election Lease (with `--store kubernetes`).
    #[arg(long, env = "HEARTH_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// This replica's identity for leader election (default: the host name).
    #[arg(long, env = "HEARTH_ID")]
    pub id: Option<String>,
    /// Serve /status, /metrics, /healthz and /readyz on this address.
    #[arg(long, env = "HEARTH_STATUS_ADDR")]
    pub status_addr: Option<std::net::SocketAddr>,
    /// The probe listener and who may read the status.
    #[command(flatten)]
    pub status_serve: StatusServeArgs,
    /// Lease timings.
    #[command(flatten)]
    pub lease: LeaseArgs,
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
