//! Resource groups: the placement policy (place count, pools, replicas on same/different
//! node properties, layer stack) and the properties (DRBD options) that Hearth keeps per
//! StorageClass.
//!
//! Owns: the `ResourceGroup`, `AutoSelectFilter` and `ResourceGroupModify` shapes and their
//! endpoints. It does not decide the policy; the backend maps StorageClass parameters.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::error::LinstorError;
use super::rc::ApiCallRc;
use super::transport::Replay;
use super::wire;
use super::{LinstorClient, Props};

/// `AutoSelectFilter`: where autoplace may put replicas. Empty fields are left out of
/// requests, so the controller applies its defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AutoSelectFilter {
    /// Diskful replicas to place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place_count: Option<u32>,
    /// Replicas to add to the existing ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_place_count: Option<u32>,
    /// Only these nodes.
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub node_name_list: Vec<String>,
    /// One storage pool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_pool: Option<String>,
    /// Any of these storage pools.
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub storage_pool_list: Vec<String>,
    /// Diskless pools to use for diskless replicas.
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub storage_pool_diskless_list: Vec<String>,
    /// Avoid nodes that hold these resources.
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub not_place_with_rsc: Vec<String>,
    /// Do not place beside resources whose names match this regular expression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_place_with_rsc_regex: Option<String>,
    /// Node properties (`Aux/zone`) every replica must share.
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub replicas_on_same: Vec<String>,
    /// Node properties on which the replicas must differ.
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub replicas_on_different: Vec<String>,
    /// The layer stack, top first (`DRBD`, `STORAGE`).
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub layer_stack: Vec<String>,
    /// Allowed storage providers (`LVM_THIN`, `ZFS`, ...).
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub provider_list: Vec<String>,
    /// Put diskless replicas on every other node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diskless_on_remaining: Option<bool>,
    /// At most this many replicas per value of a node property.
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "std::collections::BTreeMap::is_empty"
    )]
    pub x_replicas_on_different_map: std::collections::BTreeMap<String, u32>,
}

/// `ResourceGroup` (also the body of the create call).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceGroup {
    /// Name.
    pub name: String,
    /// Free text.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Properties inherited by its resource definitions (`DrbdOptions/...`).
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Props::is_empty"
    )]
    pub props: Props,
    /// The placement policy.
    pub select_filter: AutoSelectFilter,
    /// DRBD peer slots for new resources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_slots: Option<u32>,
}

/// `ResourceGroupModify`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceGroupModify {
    /// New description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Properties to set.
    #[serde(skip_serializing_if = "Props::is_empty")]
    pub override_props: Props,
    /// Properties to delete.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub delete_props: Vec<String>,
    /// Property namespaces to delete.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub delete_namespaces: Vec<String>,
    /// A new placement policy (replaces the fields it sets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub select_filter: Option<AutoSelectFilter>,
}

impl LinstorClient {
    /// `POST /v1/resource-groups`. An existing name is [`LinstorError::AlreadyExists`].
    pub async fn create_resource_group(
        &self,
        group: &ResourceGroup,
    ) -> Result<Vec<ApiCallRc>, LinstorError> {
        self.http
            .mutate(
                Method::POST,
                &["resource-groups"],
                &[],
                Some(group),
                Replay::Replayable,
            )
            .await
    }

    /// `GET /v1/resource-groups/{name}`.
    pub async fn get_resource_group(&self, name: &str) -> Result<ResourceGroup, LinstorError> {
        self.http.get(&["resource-groups", name], &[]).await
    }

    /// `GET /v1/resource-groups`.
    pub async fn list_resource_groups(&self) -> Result<Vec<ResourceGroup>, LinstorError> {
        self.http.get(&["resource-groups"], &[]).await
    }

    /// `PUT /v1/resource-groups/{name}`.
    pub async fn modify_resource_group(
        &self,
        name: &str,
        modify: &ResourceGroupModify,
    ) -> Result<Vec<ApiCallRc>, LinstorError> {
        self.http
            .mutate(
                Method::PUT,
                &["resource-groups", name],
                &[],
                Some(modify),
                Replay::Replayable,
            )
            .await
    }

    /// `DELETE /v1/resource-groups/{name}`.
    pub async fn delete_resource_group(&self, name: &str) -> Result<Vec<ApiCallRc>, LinstorError> {
        self.http
            .mutate::<()>(
                Method::DELETE,
                &["resource-groups", name],
                &[],
                None,
                Replay::Replayable,
            )
            .await
    }
}
