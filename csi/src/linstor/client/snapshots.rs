//! Snapshots: create (one resource, or several at once with a multi-snapshot), get, list per
//! resource definition, the snapshot view, delete, and restore into a new resource definition
//! (volume definitions first, then resources).
//!
//! Owns: the `Snapshot` shapes and these endpoints. Clones are in [`super::clone`].

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::error::LinstorError;
use super::rc::ApiCallRc;
use super::transport::Replay;
use super::wire;
use super::{LinstorClient, Props, ViewFilter};

/// The snapshot flag set once every node took its snapshot.
pub const FLAG_SUCCESSFUL: &str = "SUCCESSFUL";
/// The snapshot flag of a failed snapshot.
pub const FLAG_FAILED_DEPLOYMENT: &str = "FAILED_DEPLOYMENT";

/// `Snapshot` (also the create body: `name`, optionally `nodes`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Snapshot {
    /// Snapshot name.
    pub name: String,
    /// The resource definition it was taken of.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource_name: String,
    /// Nodes holding it (in a create request: where to take it; empty: every diskful node).
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub nodes: Vec<String>,
    /// Properties.
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Props::is_empty"
    )]
    pub props: Props,
    /// Flags (`SUCCESSFUL`, `FAILED_DEPLOYMENT`, `SHIPPING`, ...).
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub flags: Vec<String>,
    /// The volume definitions at snapshot time (sizes in KiB).
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub volume_definitions: Vec<SnapshotVolumeDefinition>,
    /// Per-node data, with creation times.
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub snapshots: Vec<SnapshotNode>,
}

impl Snapshot {
    /// True once LINSTOR flagged it `SUCCESSFUL`.
    pub fn is_successful(&self) -> bool {
        self.flags.iter().any(|f| f == FLAG_SUCCESSFUL)
    }

    /// True when LINSTOR flagged it `FAILED_DEPLOYMENT`.
    pub fn is_failed(&self) -> bool {
        self.flags.iter().any(|f| f == FLAG_FAILED_DEPLOYMENT)
    }

    /// The earliest per-node creation time, in milliseconds since the epoch.
    pub fn created_ms(&self) -> Option<i64> {
        self.snapshots
            .iter()
            .filter_map(|s| s.create_timestamp)
            .min()
    }
}

/// `SnapshotVolumeDefinition`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SnapshotVolumeDefinition {
    /// Volume number.
    pub volume_number: u32,
    /// Size in KiB.
    pub size_kib: u64,
}

/// `SnapshotNode`: the snapshot on one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SnapshotNode {
    /// Snapshot name.
    pub snapshot_name: String,
    /// Node.
    pub node_name: String,
    /// Creation time, milliseconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_timestamp: Option<i64>,
    /// Flags.
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub flags: Vec<String>,
}

/// `SnapshotRestore`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SnapshotRestore {
    /// The resource definition to restore into (it must exist, without volumes).
    pub to_resource: String,
    /// Nodes to restore resources on (empty: the nodes that hold the snapshot).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
}

/// `CreateMultiSnapshotRequest`.
#[derive(Debug, Serialize)]
struct MultiSnapshot<'a> {
    snapshots: Vec<MultiEntry<'a>>,
}

#[derive(Debug, Serialize)]
struct MultiEntry<'a> {
    name: &'a str,
    resource_name: &'a str,
}

impl LinstorClient {
    /// `POST /v1/resource-definitions/{rd}/snapshots`: snapshot `name` on `nodes` (empty:
    /// every diskful node). An existing name is [`LinstorError::AlreadyExists`].
    pub async fn create_snapshot(
        &self,
        rd: &str,
        name: &str,
        nodes: &[String],
    ) -> Result<Vec<ApiCallRc>, LinstorError> {
        let body = Snapshot {
            name: name.to_owned(),
            nodes: nodes.to_vec(),
            ..Snapshot::default()
        };
        self.http
            .mutate(
                Method::POST,
                &["resource-definitions", rd, "snapshots"],
                &[],
                Some(&body),
                Replay::Replayable,
            )
            .await
    }

    /// `POST /v1/actions/snapshot/multi`: one snapshot `name` of each of `rds`, with I/O
    /// suspended across all of them.
    pub async fn create_multi_snapshot(
        &self,
        name: &str,
        rds: &[String],
    ) -> Result<Vec<ApiCallRc>, LinstorError> {
        let body = MultiSnapshot {
            snapshots: rds
                .iter()
                .map(|rd| MultiEntry {
                    name,
                    resource_name: rd,
                })
                .collect(),
        };
        self.http
            .mutate(
                Method::POST,
                &["actions", "snapshot", "multi"],
                &[],
                Some(&body),
                Replay::Replayable,
            )
            .await
    }

    /// `GET /v1/resource-definitions/{rd}/snapshots/{name}`.
    pub async fn get_snapshot(&self, rd: &str, name: &str) -> Result<Snapshot, LinstorError> {
        self.http
            .get(&["resource-definitions", rd, "snapshots", name], &[])
            .await
    }

    /// `GET /v1/resource-definitions/{rd}/snapshots`.
    pub async fn list_snapshots(&self, rd: &str) -> Result<Vec<Snapshot>, LinstorError> {
        self.http
            .get(&["resource-definitions", rd, "snapshots"], &[])
            .await
    }

    /// `GET /v1/view/snapshots`, filtered by nodes and resources.
    pub async fn snapshot_view(&self, filter: &ViewFilter) -> Result<Vec<Snapshot>, LinstorError> {
        self.http
            .get(&["view", "snapshots"], &filter.query(true, false))
            .await
    }

    /// `DELETE /v1/resource-definitions/{rd}/snapshots/{name}`.
    pub async fn delete_snapshot(
        &self,
        rd: &str,
        name: &str,
    ) -> Result<Vec<ApiCallRc>, LinstorError> {
        self.http
            .mutate::<()>(
                Method::DELETE,
                &["resource-definitions", rd, "snapshots", name],
                &[],
                None,
                Replay::Replayable,
            )
            .await
    }

    /// `POST /v1/resource-definitions/{rd}/snapshot-restore-volume-definition/{name}`: the
    /// snapshot's volume definitions into `restore.to_resource` (the first restore step).
    pub async fn restore_volume_definitions(
        &self,
        rd: &str,
        name: &str,
        restore: &SnapshotRestore,
    ) -> Result<Vec<ApiCallRc>, LinstorError> {
        let path = [
            "resource-definitions",
            rd,
            "snapshot-restore-volume-definition",
            name,
        ];
        self.http
            .mutate(Method::POST, &path, &[], Some(restore), Replay::Replayable)
            .await
    }

    /// `POST /v1/resource-definitions/{rd}/snapshot-restore-resource/{name}`: resources of
    /// `restore.to_resource` with the snapshot's data (the second restore step).
    pub async fn restore_resources(
        &self,
        rd: &str,
        name: &str,
        restore: &SnapshotRestore,
    ) -> Result<Vec<ApiCallRc>, LinstorError> {
        let path = [
            "resource-definitions",
            rd,
            "snapshot-restore-resource",
            name,
        ];
        self.http
            .mutate(Method::POST, &path, &[], Some(restore), Replay::Replayable)
            .await
    }
}
