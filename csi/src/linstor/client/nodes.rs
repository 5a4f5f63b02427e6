//! Nodes and storage pools: listing, single-object GETs, and the storage-pool view that
//! capacity queries use.
//!
//! Owns: the `Node`, `NetInterface` and `StoragePool` shapes (only the fields Hearth reads;
//! unknown fields are ignored). Read-only: Hearth never creates nodes or pools.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::LinstorError;
use super::rc::ApiCallRc;
use super::wire;
use super::{LinstorClient, Props, ViewFilter};

/// `Node`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Node {
    /// The node name (the Kubernetes node name in Cozystack).
    pub name: String,
    /// `Controller`, `Satellite`, `Combined` or `Auxiliary`.
    #[serde(rename = "type")]
    pub node_type: String,
    /// Flags, e.g. `EVICTED`, `DELETE`.
    #[serde(deserialize_with = "wire::null_default")]
    pub flags: Vec<String>,
    /// Properties (`Aux/...` carry topology labels).
    #[serde(deserialize_with = "wire::null_default")]
    pub props: Props,
    /// Network interfaces.
    #[serde(deserialize_with = "wire::null_default")]
    pub net_interfaces: Vec<NetInterface>,
    /// `ONLINE`, `OFFLINE`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_status: Option<String>,
    /// Storage providers the satellite supports (`LVM_THIN`, `ZFS`, ...).
    #[serde(deserialize_with = "wire::null_default")]
    pub storage_providers: Vec<String>,
    /// Layers the satellite supports (`DRBD`, `STORAGE`, ...).
    #[serde(deserialize_with = "wire::null_default")]
    pub resource_layers: Vec<String>,
}

impl Node {
    /// True when the controller reports the satellite connected and online.
    pub fn is_online(&self) -> bool {
        self.connection_status.as_deref() == Some("ONLINE")
    }
}

/// `NetInterface`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetInterface {
    /// Interface name (`default`).
    pub name: String,
    /// IP address.
    pub address: String,
    /// Satellite port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub satellite_port: Option<u32>,
    /// `PLAIN` or `SSL`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub satellite_encryption_type: Option<String>,
}

/// `StoragePool`; capacities in KiB.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoragePool {
    /// Pool name, e.g. `data`.
    pub storage_pool_name: String,
    /// The node it is on.
    pub node_name: String,
    /// `LVM`, `LVM_THIN`, `ZFS`, `ZFS_THIN`, `DISKLESS`, ...
    pub provider_kind: String,
    /// Properties.
    #[serde(deserialize_with = "wire::null_default")]
    pub props: Props,
    /// Static traits (`Provisioning: Thin`, `SupportsSnapshots: true`).
    #[serde(deserialize_with = "wire::null_default")]
    pub static_traits: BTreeMap<String, String>,
    /// Free space, KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free_capacity: Option<u64>,
    /// Total space, KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_capacity: Option<u64>,
    /// The free-space manager (`node:pool`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free_space_mgr_name: Option<String>,
    /// Whether the pool can take snapshots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supports_snapshots: Option<bool>,
    /// Current problems with the pool.
    #[serde(deserialize_with = "wire::null_default")]
    pub reports: Vec<ApiCallRc>,
}

impl StoragePool {
    /// True for the diskless pseudo-pool, which has no capacity.
    pub fn is_diskless(&self) -> bool {
        self.provider_kind == "DISKLESS"
    }
}

impl LinstorClient {
    /// `GET /v1/nodes`.
    pub async fn list_nodes(&self) -> Result<Vec<Node>, LinstorError> {
        self.http.get(&["nodes"], &[]).await
    }

    /// `GET /v1/nodes/{node}`.
    pub async fn get_node(&self, node: &str) -> Result<Node, LinstorError> {
        self.http.get(&["nodes", node], &[]).await
    }

    /// `GET /v1/nodes/{node}/storage-pools`.
    pub async fn list_storage_pools(&self, node: &str) -> Result<Vec<StoragePool>, LinstorError> {
        self.http.get(&["nodes", node, "storage-pools"], &[]).await
    }

    /// `GET /v1/nodes/{node}/storage-pools/{pool}`.
    pub async fn get_storage_pool(
        &self,
        node: &str,
        pool: &str,
    ) -> Result<StoragePool, LinstorError> {
        self.http
            .get(&["nodes", node, "storage-pools", pool], &[])
            .await
    }

    /// `GET /v1/view/storage-pools`, filtered by `filter.nodes` and `filter.storage_pools`.
    pub async fn storage_pool_view(
        &self,
        filter: &ViewFilter,
    ) -> Result<Vec<StoragePool>, LinstorError> {
        self.http
            .get(&["view", "storage-pools"], &filter.query(false, true))
            .await
    }
}
