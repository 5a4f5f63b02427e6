//! The health snapshot: one serde tree with stable snake_case field names, the only shape
//! `/status`, `/metrics`, `/readyz` and `hearth status` read. Documented in docs/status.md.
//! Owns the types only; collectors fill them, and nothing here touches the system.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the `/status` schema; bumped only on an incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// One picture of the node.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The node name.
    pub node_name: String,
    /// The agent's version.
    pub version: String,
    /// When the snapshot was built (seconds since the Unix epoch).
    pub collected_at_unix: f64,
    /// How long building it took, in milliseconds.
    pub collect_millis: f64,
    /// Volumes and pools.
    pub storage: Section<Storage>,
    /// DRBD resources.
    pub drbd: Section<Drbd>,
    /// Links, owned addresses and routes, floating IPs.
    pub network: Section<Network>,
    /// OVN chassis state; absent until the OVN collector exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ovn: Option<Section<serde_json::Value>>,
    /// The session to the coordinator.
    pub coordinator: Section<Coordinator>,
    /// Kubelet plugin registration; present with `--kubelet-registration-dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet_registration: Option<Section<KubeletRegistration>>,
    /// Load, memory, disk and network counters.
    pub node: Section<NodeStats>,
    /// CSI calls served since start.
    pub csi: CsiStats,
    /// Readiness checks, each with a reason and a hint when failing.
    pub checks: Vec<Check>,
}

/// A collector's result: its data, or why there is none.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Section<T> {
    /// `ok`, `error`, `not_configured` or `unavailable`.
    pub state: SectionState,
    /// Why the state is not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The data when `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
}

impl<T> Section<T> {
    /// Collected.
    pub fn ok(data: T) -> Self {
        Self {
            state: SectionState::Ok,
            reason: None,
            data: Some(data),
        }
    }
    /// Not collected because of `state` (with `reason`).
    pub fn without(state: SectionState, reason: impl Into<String>) -> Self {
        Self {
            state,
            reason: Some(reason.into()),
            data: None,
        }
    }
}

/// Whether a section holds data.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SectionState {
    /// Collected.
    Ok,
    /// Collection failed (see reason).
    Error,
    /// The feature is not configured or not built (see reason).
    #[default]
    NotConfigured,
    /// The source is missing on this host, e.g. drbdsetup.
    Unavailable,
}

/// The storage backend's view.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Storage {
    /// `loopfile` or `linstor`.
    pub backend: String,
    /// Pools with capacity.
    pub pools: Vec<StoragePool>,
    /// Every volume the backend knows.
    pub volumes: Vec<VolumeHealth>,
}

/// A storage pool.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StoragePool {
    /// Pool name (`state-dir` for loopfile).
    pub name: String,
    /// The node it is on.
    pub node: String,
    /// LINSTOR's provider kind (`LVM_THIN`, `ZFS`, ...) or `filesystem` (loopfile).
    pub kind: String,
    /// Total bytes, when known.
    pub total_bytes: Option<u64>,
    /// Free bytes, when known.
    pub free_bytes: Option<u64>,
}

/// One volume.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct VolumeHealth {
    /// The CSI volume ID.
    pub id: String,
    /// Provisioned size.
    pub size_bytes: u64,
    /// The local block device, when attached.
    pub device: Option<String>,
    /// Staging mount points on this node.
    pub staged_paths: Vec<String>,
    /// Published (pod target) paths on this node.
    pub published_paths: Vec<String>,
    /// Filesystem usage of the staged mount, when mounted.
    pub fs_used_bytes: Option<u64>,
    /// Filesystem size of the staged mount, when mounted.
    pub fs_total_bytes: Option<u64>,
    /// False when the backend reports the volume abnormal.
    pub healthy: bool,
    /// The backend's condition message.
    pub condition: String,
}

/// DRBD resources from `drbdsetup events2`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Drbd {
    /// Resources by name.
    pub resources: Vec<DrbdResource>,
}

/// One DRBD resource.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DrbdResource {
    /// Resource name.
    pub name: String,
    /// Primary or Secondary.
    pub role: String,
    /// Local disk states, one per volume.
    pub disk_states: Vec<String>,
    /// Peers.
    pub peers: Vec<DrbdPeer>,
}

/// One DRBD peer of a resource.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DrbdPeer {
    /// The peer's name.
    pub name: String,
    /// Connection state.
    pub connection: String,
    /// The peer's role.
    pub role: String,
    /// Replication states, one per volume.
    pub replication: Vec<String>,
    /// Peer disk states, one per volume.
    pub peer_disk_states: Vec<String>,
    /// Out-of-sync data toward this peer.
    pub out_of_sync_kib: u64,
}

/// Network state in the agent's namespace.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Network {
    /// All links.
    pub links: Vec<LinkHealth>,
    /// Addresses Hearth's reconciler owns (`192.0.2.10/24 dev br-ext`).
    pub owned_addresses: Vec<String>,
    /// Routes Hearth's reconciler owns, as `ip route` prints them.
    pub owned_routes: Vec<String>,
    /// Floating IPs this node answers for.
    pub floating_ips: Vec<FloatingIpHealth>,
    /// The network reconciler's last pass; null when no reconciler runs in this process.
    pub reconciler: Option<Reconciler>,
}

/// The network reconciler's last pass (`hearth node --network`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Reconciler {
    /// When the last pass ended (seconds since the Unix epoch); null before the first one.
    pub last_pass_unix: Option<f64>,
    /// The last pass left no failure and no conflict.
    pub converged: bool,
    /// Steps of the last pass that failed.
    pub failures: u32,
    /// Desired objects blocked by objects Hearth does not own.
    pub conflicts: u32,
    /// The first failures and conflicts, as the agent logs them.
    pub problems: Vec<String>,
    /// The resync period: a converged reconciler passes at least this often.
    pub resync_seconds: f64,
    /// Why the reconciler stopped, when it did.
    pub stopped: Option<String>,
}

/// A link.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LinkHealth {
    /// Interface name.
    pub name: String,
    /// Administratively up.
    pub up: bool,
    /// MTU.
    pub mtu: Option<u32>,
    /// Created and managed by Hearth.
    pub owned: bool,
}

/// A floating IP held by this node.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FloatingIpHealth {
    /// The address.
    pub address: String,
    /// The interface it is announced on.
    pub dev: String,
    /// The coordinator's epoch; null until the coordinator session exists.
    pub epoch: Option<u64>,
    /// The last announcement (seconds since the Unix epoch), when known.
    pub last_announced_unix: Option<f64>,
}

/// The coordinator session.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Coordinator {
    /// The coordinator URL.
    pub url: String,
    /// Session state: `connected` or `connecting`.
    pub session: String,
    /// The coordinator's identity, from its Welcome.
    pub coordinator_id: Option<String>,
    /// When the current session opened (seconds since the Unix epoch).
    pub connected_since_unix: Option<u64>,
    /// Sessions opened since the agent started (reconnects + 1).
    pub sessions: u64,
    /// Why the last attempt or session ended.
    pub last_error: Option<String>,
    /// Whether this node holds a valid lease (it may answer for floating IPs).
    pub lease_valid: bool,
    /// Milliseconds left on the lease.
    pub lease_left_ms: Option<u64>,
    /// The floating IPs this node holds under its lease.
    pub floating_ips: Vec<FloatingIpHealth>,
    /// What answers ARP/NDP for them from this process; null without one.
    #[serde(default)]
    pub responder: Option<ResponderCounters>,
}

/// The floating-IP responder's counters since the agent started.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResponderCounters {
    /// ARP requests and neighbour solicitations seen for a held address, on its interface.
    pub requests: u64,
    /// Answers sent (ARP replies, solicited neighbour advertisements).
    pub answered: u64,
    /// Requests not answered because the answer gate was shut (no lease, session failed).
    pub refused: u64,
}

/// The node agent's registration with kubelet (`--kubelet-registration-dir`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct KubeletRegistration {
    /// The registration socket kubelet's plugin watcher finds.
    pub socket: String,
    /// The CSI driver name registered.
    pub driver: String,
    /// The CSI socket path announced to kubelet.
    pub endpoint: String,
    /// `waiting` (not notified yet), `registered` or `error`.
    pub state: String,
    /// Kubelet's error, with `error`.
    pub error: Option<String>,
    /// How often kubelet called GetInfo.
    pub get_info_calls: u64,
    /// How often kubelet called NotifyRegistrationStatus.
    pub notifications: u64,
    /// When kubelet last notified (seconds since the Unix epoch).
    pub notified_unix: Option<f64>,
}

/// Node counters from procfs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeStats {
    /// 1, 5 and 15 minute load averages.
    pub load: [f64; 3],
    /// MemTotal.
    pub memory_total_bytes: u64,
    /// MemAvailable.
    pub memory_available_bytes: u64,
    /// Per block device counters.
    pub disks: Vec<DiskCounters>,
    /// Per interface counters.
    pub interfaces: Vec<InterfaceCounters>,
}

/// `/proc/diskstats` for one device.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DiskCounters {
    /// Device name.
    pub name: String,
    /// Bytes read.
    pub read_bytes: u64,
    /// Bytes written.
    pub written_bytes: u64,
}

/// `/proc/net/dev` for one interface.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InterfaceCounters {
    /// Interface name.
    pub name: String,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Send errors.
    pub tx_errors: u64,
}

/// CSI calls.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CsiStats {
    /// Per RPC (`/csi.v1.Node/NodeStageVolume`).
    pub operations: BTreeMap<String, OperationStats>,
}

/// One RPC's counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OperationStats {
    /// Calls served.
    pub count: u64,
    /// Failed calls by gRPC code name (`NotFound`).
    pub errors: BTreeMap<String, u64>,
    /// Total time spent, seconds.
    pub seconds_sum: f64,
}

/// A readiness or health check.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Check {
    /// Short name: `csi_socket`, `backend`, `network`.
    pub name: String,
    /// Passing.
    pub ok: bool,
    /// Counts toward `/readyz`.
    pub required: bool,
    /// What is wrong (or what was verified).
    pub reason: String,
    /// What to look at when failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}
