//! Resources: replicas of a resource definition on nodes. Create on explicit nodes (diskful in
//! a storage pool, or diskless), autoplace, make-available (diskless attach), get, list,
//! delete, modify properties, and the resource view with volumes (`device_path`,
//! `state.disk_state`).
//!
//! Owns: the `Resource`, `Volume`, `ResourceCreate`, `AutoPlaceRequest`, `MakeAvailable` and
//! `PropsModify` shapes and their endpoints.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::error::LinstorError;
use super::groups::AutoSelectFilter;
use super::rc::ApiCallRc;
use super::transport::Replay;
use super::wire;
use super::{LinstorClient, Props, ViewFilter};

/// The flag of a diskless DRBD replica in requests; responses carry `DISKLESS` too.
pub const FLAG_DRBD_DISKLESS: &str = "DRBD_DISKLESS";
/// The generic diskless flag in responses.
pub const FLAG_DISKLESS: &str = "DISKLESS";
/// The flag of the diskless replica LINSTOR adds for quorum.
pub const FLAG_TIE_BREAKER: &str = "TIE_BREAKER";
/// The resource property naming the storage pool of a diskful replica.
pub const PROP_STOR_POOL_NAME: &str = "StorPoolName";

/// `Resource` / `ResourceWithVolumes`: one replica on one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resource {
    /// The resource definition's name.
    pub name: String,
    /// The node.
    pub node_name: String,
    /// Properties (`StorPoolName`, ...).
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Props::is_empty"
    )]
    pub props: Props,
    /// Flags (`DISKLESS`, `DRBD_DISKLESS`, `TIE_BREAKER`, `DELETE`, `INACTIVE`, ...).
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub flags: Vec<String>,
    /// Runtime state (absent in create requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<ResourceState>,
    /// Volumes (in the resource view and list answers).
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub volumes: Vec<Volume>,
    /// Creation time, milliseconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_timestamp: Option<i64>,
}

impl Resource {
    /// True when the replica has no local disk (a diskless DRBD client).
    pub fn is_diskless(&self) -> bool {
        self.flags
            .iter()
            .any(|f| f == FLAG_DISKLESS || f == FLAG_DRBD_DISKLESS)
    }

    /// True for the quorum tiebreaker LINSTOR placed.
    pub fn is_tie_breaker(&self) -> bool {
        self.flags.iter().any(|f| f == FLAG_TIE_BREAKER)
    }

    /// True when LINSTOR reports the resource open (a DRBD Primary) on its node.
    pub fn in_use(&self) -> bool {
        self.state.as_ref().and_then(|s| s.in_use) == Some(true)
    }
}

/// `ResourceState`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceState {
    /// The device is open on this node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_use: Option<bool>,
}

/// `Volume`: a resource's volume on one node; sizes in KiB.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Volume {
    /// Volume number.
    pub volume_number: u32,
    /// The storage pool it lives in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_pool_name: Option<String>,
    /// The pool's provider kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_kind: Option<String>,
    /// The block device on the node: `/dev/drbd<minor>` with DRBD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_path: Option<String>,
    /// Allocated size, KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocated_size_kib: Option<u64>,
    /// Usable size, KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usable_size_kib: Option<u64>,
    /// Properties.
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Props::is_empty"
    )]
    pub props: Props,
    /// Flags.
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub flags: Vec<String>,
    /// Runtime state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<VolumeState>,
}

impl Volume {
    /// The DRBD disk state (`UpToDate`, `Diskless`, `Inconsistent`, ...), if reported.
    pub fn disk_state(&self) -> Option<&str> {
        self.state.as_ref()?.disk_state.as_deref()
    }
}

/// `VolumeState`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeState {
    /// The DRBD disk state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_state: Option<String>,
    /// Per peer node: the DRBD replication state towards it (`Established`, `SyncTarget`,
    /// ...) and the resync progress.
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "std::collections::BTreeMap::is_empty"
    )]
    pub replication_states: std::collections::BTreeMap<String, ReplicationState>,
}

/// `ReplicationState`: one peer's replication state as LINSTOR reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReplicationState {
    /// `Established`, `SyncTarget`, `PausedSyncT`, `Off`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication_state: Option<String>,
    /// The resync progress in percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_percentage: Option<f64>,
}

// `done_percentage` is a finite percentage from the controller, never NaN.
impl Eq for ReplicationState {}

/// `ResourceCreate`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceCreate {
    /// The resource: `name`, `node_name`, flags and properties.
    pub resource: Resource,
    /// The layer list, top first; empty lets the resource group decide.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layer_list: Vec<String>,
}

impl ResourceCreate {
    /// A diskful replica of `rd` on `node`, in `storage_pool` (or the group's choice).
    pub fn diskful(rd: &str, node: &str, storage_pool: Option<&str>) -> Self {
        let mut props = Props::new();
        if let Some(pool) = storage_pool {
            props.insert(PROP_STOR_POOL_NAME.to_owned(), pool.to_owned());
        }
        Self::with(rd, node, Vec::new(), props)
    }

    /// A diskless DRBD replica (`DRBD_DISKLESS`) of `rd` on `node`.
    pub fn diskless(rd: &str, node: &str) -> Self {
        Self::with(rd, node, vec![FLAG_DRBD_DISKLESS.to_owned()], Props::new())
    }

    fn with(rd: &str, node: &str, flags: Vec<String>, props: Props) -> Self {
        Self {
            resource: Resource {
                name: rd.to_owned(),
                node_name: node.to_owned(),
                flags,
                props,
                ..Resource::default()
            },
            layer_list: Vec::new(),
        }
    }
}

/// `AutoPlaceRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AutoPlaceRequest {
    /// Where to place; fields left empty come from the resource group.
    pub select_filter: AutoSelectFilter,
    /// Diskless replicas on every other node.
    #[serde(skip_serializing_if = "wire::is_false")]
    pub diskless_on_remaining: bool,
    /// The layer list, top first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layer_list: Vec<String>,
}

/// `ResourceMakeAvailable`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MakeAvailable {
    /// Create a diskful replica even where a diskless one would do.
    pub diskful: bool,
    /// The layer list, top first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layer_list: Vec<String>,
}

/// A properties change (`ResourceModify`, `ControllerPropsModify`, `SnapshotModify`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PropsModify {
    /// Properties to set.
    #[serde(skip_serializing_if = "Props::is_empty")]
    pub override_props: Props,
    /// Properties to delete.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub delete_props: Vec<String>,
    /// Property namespaces to delete.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub delete_namespaces: Vec<String>,
}

impl LinstorClient {
    /// `POST /v1/resource-definitions/{rd}/resources`: replicas on explicit nodes, in one
    /// call. A replica that exists is [`LinstorError::AlreadyExists`].
    pub async fn create_resources(
        &self,
        rd: &str,
        resources: &[ResourceCreate],
    ) -> Result<Vec<ApiCallRc>, LinstorError> {
        self.http
            .mutate(
                Method::POST,
                &["resource-definitions", rd, "resources"],
                &[],
                Some(resources),
                Replay::Replayable,
            )
            .await
    }

    /// `POST /v1/resource-definitions/{rd}/autoplace`.
    pub async fn autoplace(
        &self,
        rd: &str,
        request: &AutoPlaceRequest,
    ) -> Result<Vec<ApiCallRc>, LinstorError> {
        self.http
            .mutate(
                Method::POST,
                &["resource-definitions", rd, "autoplace"],
                &[],
                Some(request),
                Replay::Replayable,
            )
            .await
    }

    /// `POST /v1/resource-definitions/{rd}/resources/{node}/make-available`: a diskless
    /// replica on `node` unless it has one already (idempotent).
    pub async fn make_available(
        &self,
        rd: &str,
        node: &str,
        request: &MakeAvailable,
    ) -> Result<Vec<ApiCallRc>, LinstorError> {
        self.http
            .mutate(
                Method::POST,
                &[
                    "resource-definitions",
                    rd,
                    "resources",
                    node,
                    "make-available",
                ],
                &[],
                Some(request),
                Replay::Replayable,
            )
            .await
    }

    /// `GET /v1/resource-definitions/{rd}/resources/{node}`.
    pub async fn get_resource(&self, rd: &str, node: &str) -> Result<Resource, LinstorError> {
        self.http
            .get(&["resource-definitions", rd, "resources", node], &[])
            .await
    }

    /// `GET /v1/resource-definitions/{rd}/resources/{node}/volumes/{volume_number}`.
    pub async fn get_resource_volume(
        &self,
        rd: &str,
        node: &str,
        volume_number: u32,
    ) -> Result<Volume, LinstorError> {
        let vnr = volume_number.to_string();
        let path = [
            "resource-definitions",
            rd,
            "resources",
            node,
            "volumes",
            &vnr,
        ];
        self.http.get(&path, &[]).await
    }

    /// `GET /v1/resource-definitions/{rd}/resources`.
    pub async fn list_resources(&self, rd: &str) -> Result<Vec<Resource>, LinstorError> {
        self.http
            .get(&["resource-definitions", rd, "resources"], &[])
            .await
    }

    /// `PUT /v1/resource-definitions/{rd}/resources/{node}`: properties of one replica.
    pub async fn modify_resource(
        &self,
        rd: &str,
        node: &str,
        modify: &PropsModify,
    ) -> Result<Vec<ApiCallRc>, LinstorError> {
        self.http
            .mutate(
                Method::PUT,
                &["resource-definitions", rd, "resources", node],
                &[],
                Some(modify),
                Replay::Replayable,
            )
            .await
    }

    /// `DELETE /v1/resource-definitions/{rd}/resources/{node}`. A replica that is open is
    /// [`LinstorError::InUse`]; one that is gone is [`LinstorError::NotFound`].
    pub async fn delete_resource(
        &self,
        rd: &str,
        node: &str,
    ) -> Result<Vec<ApiCallRc>, LinstorError> {
        self.delete_resource_with(rd, node, false).await
    }

    /// The same with `keep_tiebreaker=true` when asked: LINSTOR keeps a diskless replica it
    /// would otherwise replace by a new quorum tiebreaker, as that tiebreaker.
    pub async fn delete_resource_with(
        &self,
        rd: &str,
        node: &str,
        keep_tiebreaker: bool,
    ) -> Result<Vec<ApiCallRc>, LinstorError> {
        let query: &[(&str, &str)] = if keep_tiebreaker {
            &[("keep_tiebreaker", "true")]
        } else {
            &[]
        };
        self.http
            .mutate::<()>(
                Method::DELETE,
                &["resource-definitions", rd, "resources", node],
                query,
                None,
                Replay::Replayable,
            )
            .await
    }

    /// `GET /v1/view/resources`: resources with volumes, filtered by nodes, resources and
    /// storage pools.
    pub async fn resource_view(&self, filter: &ViewFilter) -> Result<Vec<Resource>, LinstorError> {
        self.http
            .get(&["view", "resources"], &filter.query(true, true))
            .await
    }
}
