//! Resource definitions and volume definitions: create (in a resource group), get, list,
//! modify (properties, size), delete.
//!
//! Owns: their shapes and endpoints. A resource definition's name is the LINSTOR side of a
//! volume's identity; choosing it is the backend's job.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::error::LinstorError;
use super::rc::ApiCallRc;
use super::transport::Replay;
use super::wire;
use super::{LinstorClient, Props};

/// `ResourceDefinition`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceDefinition {
    /// Name.
    pub name: String,
    /// Properties (`DrbdOptions/Net/allow-two-primaries`, `Aux/...`).
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Props::is_empty"
    )]
    pub props: Props,
    /// Flags (`DELETE`, `CLONING`, ...).
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub flags: Vec<String>,
    /// The resource group it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_group_name: Option<String>,
    /// Its volume definitions (only when listed `with_volume_definitions`).
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub volume_definitions: Vec<VolumeDefinition>,
}

/// `ResourceDefinitionCreate`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceDefinitionCreate {
    /// The definition: name, resource group, properties.
    pub resource_definition: ResourceDefinition,
    /// Preferred DRBD TCP port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drbd_port: Option<u32>,
    /// DRBD peer slots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drbd_peer_slots: Option<u32>,
}

impl ResourceDefinitionCreate {
    /// A definition named `name` in `resource_group` (LINSTOR's default group when `None`).
    pub fn new(name: &str, resource_group: Option<&str>) -> Self {
        Self {
            resource_definition: ResourceDefinition {
                name: name.to_owned(),
                resource_group_name: resource_group.map(str::to_owned),
                ..ResourceDefinition::default()
            },
            ..Self::default()
        }
    }
}

/// `ResourceDefinitionModify`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceDefinitionModify {
    /// Properties to set.
    #[serde(skip_serializing_if = "Props::is_empty")]
    pub override_props: Props,
    /// Properties to delete.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub delete_props: Vec<String>,
    /// Property namespaces to delete.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub delete_namespaces: Vec<String>,
    /// Move the definition to another resource group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_group: Option<String>,
}

/// `VolumeDefinition`; the size is in KiB.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeDefinition {
    /// Volume number (0 for Hearth's single-volume resources); `None` lets LINSTOR choose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_number: Option<u32>,
    /// Size in KiB.
    pub size_kib: u64,
    /// Properties.
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Props::is_empty"
    )]
    pub props: Props,
    /// Flags (`RESIZE`, `DELETE`, ...).
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub flags: Vec<String>,
    /// Per-layer data; the DRBD layer carries the minor number.
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub layer_data: Vec<VolumeDefinitionLayer>,
}

impl VolumeDefinition {
    /// The DRBD minor number (`/dev/drbd<minor>`), when the DRBD layer reports one.
    pub fn drbd_minor(&self) -> Option<u32> {
        self.layer_data
            .iter()
            .filter(|l| l.layer_type == "DRBD")
            .find_map(|l| l.data.as_ref()?.minor_number)
    }
}

/// `VolumeDefinitionLayer`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeDefinitionLayer {
    /// `DRBD`, `STORAGE`, ...
    #[serde(rename = "type")]
    pub layer_type: String,
    /// The DRBD layer's data (other layers carry none Hearth reads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<DrbdVolumeDefinition>,
}

/// `DrbdVolumeDefinition`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DrbdVolumeDefinition {
    /// The DRBD minor number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minor_number: Option<u32>,
    /// The volume number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_number: Option<u32>,
}

/// `VolumeDefinitionCreate`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeDefinitionCreate {
    /// The definition.
    pub volume_definition: VolumeDefinition,
    /// A DRBD minor number to use instead of the next free one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drbd_minor_number: Option<u32>,
}

impl VolumeDefinitionCreate {
    /// Volume `volume_number` of `size_kib` KiB.
    pub fn new(volume_number: u32, size_kib: u64) -> Self {
        Self {
            volume_definition: VolumeDefinition {
                volume_number: Some(volume_number),
                size_kib,
                ..VolumeDefinition::default()
            },
            drbd_minor_number: None,
        }
    }
}

/// `VolumeDefinitionModify`: a new size (KiB; LINSTOR only grows) and properties.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeDefinitionModify {
    /// The new size in KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_kib: Option<u64>,
    /// Properties to set.
    #[serde(skip_serializing_if = "Props::is_empty")]
    pub override_props: Props,
    /// Properties to delete.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub delete_props: Vec<String>,
}

impl LinstorClient {
    /// `POST /v1/resource-definitions`. An existing name is [`LinstorError::AlreadyExists`].
    pub async fn create_resource_definition(
        &self,
        create: &ResourceDefinitionCreate,
    ) -> Result<Vec<ApiCallRc>, LinstorError> {
        self.http
            .mutate(
                Method::POST,
                &["resource-definitions"],
                &[],
                Some(create),
                Replay::Replayable,
            )
            .await
    }

    /// `GET /v1/resource-definitions/{name}`.
    pub async fn get_resource_definition(
        &self,
        name: &str,
    ) -> Result<ResourceDefinition, LinstorError> {
        self.http.get(&["resource-definitions", name], &[]).await
    }

    /// `GET /v1/resource-definitions`, with their volume definitions when asked.
    pub async fn list_resource_definitions(
        &self,
        with_volume_definitions: bool,
    ) -> Result<Vec<ResourceDefinition>, LinstorError> {
        let query: &[(&str, &str)] = if with_volume_definitions {
            &[("with_volume_definitions", "true")]
        } else {
            &[]
        };
        self.http.get(&["resource-definitions"], query).await
    }

    /// `PUT /v1/resource-definitions/{name}`: properties and resource group.
    pub async fn modify_resource_definition(
        &self,
        name: &str,
        modify: &ResourceDefinitionModify,
    ) -> Result<Vec<ApiCallRc>, LinstorError> {
        self.http
            .mutate(
                Method::PUT,
                &["resource-definitions", name],
                &[],
                Some(modify),
                Replay::Replayable,
            )
            .await
    }

    /// `DELETE /v1/resource-definitions/{name}`, with its resources and volume definitions.
    /// A definition that is gone is [`LinstorError::NotFound`].
    pub async fn delete_resource_definition(
        &self,
        name: &str,
    ) -> Result<Vec<ApiCallRc>, LinstorError> {
        self.http
            .mutate::<()>(
                Method::DELETE,
                &["resource-definitions", name],
                &[],
                None,
                Replay::Replayable,
            )
            .await
    }

    /// `POST /v1/resource-definitions/{rd}/volume-definitions`.
    pub async fn create_volume_definition(
        &self,
        rd: &str,
        create: &VolumeDefinitionCreate,
    ) -> Result<Vec<ApiCallRc>, LinstorError> {
        self.http
            .mutate(
                Method::POST,
                &["resource-definitions", rd, "volume-definitions"],
                &[],
                Some(create),
                Replay::Replayable,
            )
            .await
    }

    /// `GET /v1/resource-definitions/{rd}/volume-definitions/{volume_number}`.
    pub async fn get_volume_definition(
        &self,
        rd: &str,
        volume_number: u32,
    ) -> Result<VolumeDefinition, LinstorError> {
        let vnr = volume_number.to_string();
        self.http
            .get(
                &["resource-definitions", rd, "volume-definitions", &vnr],
                &[],
            )
            .await
    }

    /// `GET /v1/resource-definitions/{rd}/volume-definitions`.
    pub async fn list_volume_definitions(
        &self,
        rd: &str,
    ) -> Result<Vec<VolumeDefinition>, LinstorError> {
        self.http
            .get(&["resource-definitions", rd, "volume-definitions"], &[])
            .await
    }

    /// `PUT /v1/resource-definitions/{rd}/volume-definitions/{volume_number}`: resize (grow)
    /// and properties.
    pub async fn modify_volume_definition(
        &self,
        rd: &str,
        volume_number: u32,
        modify: &VolumeDefinitionModify,
    ) -> Result<Vec<ApiCallRc>, LinstorError> {
        let vnr = volume_number.to_string();
        self.http
            .mutate(
                Method::PUT,
                &["resource-definitions", rd, "volume-definitions", &vnr],
                &[],
                Some(modify),
                Replay::Replayable,
            )
            .await
    }

    /// `DELETE /v1/resource-definitions/{rd}/volume-definitions/{volume_number}`.
    pub async fn delete_volume_definition(
        &self,
        rd: &str,
        volume_number: u32,
    ) -> Result<Vec<ApiCallRc>, LinstorError> {
        let vnr = volume_number.to_string();
        self.http
            .mutate::<()>(
                Method::DELETE,
                &["resource-definitions", rd, "volume-definitions", &vnr],
                &[],
                None,
                Replay::Replayable,
            )
            .await
    }
}
