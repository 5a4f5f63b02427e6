//! The coordinator's records: what an operator declares (pools, floating IPs) and what the
//! coordinator decides (addresses, owners with epochs, volume placements). The same shapes are
//! rows in SQLite and objects (CRDs) in Kubernetes.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// A pool that floating IPs are allocated from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FloatingIpPool {
    /// Unique name.
    pub name: String,
    /// Whole networks, `203.0.113.0/28` or `2001:db8::/120`. Network and broadcast addresses of
    /// IPv4 networks shorter than /31 are never handed out.
    #[serde(default)]
    pub cidrs: Vec<String>,
    /// Inclusive ranges, `203.0.113.10-203.0.113.20`.
    #[serde(default)]
    pub ranges: Vec<String>,
    /// Addresses or networks never handed out.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// The interface where agents add and announce the addresses.
    pub interface: String,
    /// Only nodes with all these labels may hold this pool's addresses.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
}

/// A floating IP an operator asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FloatingIp {
    /// Unique name.
    pub name: String,
    /// The pool to allocate from.
    pub pool: String,
    /// A specific address of the pool; any free one when absent.
    #[serde(default)]
    pub address: Option<IpAddr>,
    /// Only nodes with all these labels may hold it (on top of the pool's selector).
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
}

/// What the coordinator decided for a floating IP: its address and current owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FloatingIpState {
    /// The floating IP's name.
    pub name: String,
    /// The allocated address; it stays with the floating IP until the floating IP is deleted.
    pub address: IpAddr,
    /// The node that answers for it, if any.
    pub node: Option<String>,
    /// Grows by one at every change of owner (including to none).
    pub epoch: u64,
}

/// Where a volume of a node-local backend lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeRecord {
    /// The CSI volume ID.
    pub id: String,
    /// The nodes holding its data (one for loopfile, the replicas for LINSTOR).
    pub nodes: Vec<String>,
    /// Capacity in bytes.
    pub size_bytes: u64,
}
