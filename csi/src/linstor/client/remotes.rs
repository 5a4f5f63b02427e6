//! Remotes and backups: S3 remotes (create, list, delete) and shipping snapshots to them as
//! backups (create, list, delete).
//!
//! Owns: these shapes and endpoints. S3 keys are secrets: the `Debug` of [`S3Remote`] hides
//! them, and nothing here logs a request body.

use std::collections::BTreeMap;
use std::fmt;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::error::LinstorError;
use super::rc::ApiCallRc;
use super::transport::Replay;
use super::wire;
use super::LinstorClient;

/// `S3Remote`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct S3Remote {
    /// Remote name.
    pub remote_name: String,
    /// S3 endpoint URL.
    pub endpoint: String,
    /// Bucket.
    pub bucket: String,
    /// Region.
    pub region: String,
    /// Access key (secret).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub access_key: String,
    /// Secret key (secret).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub secret_key: String,
    /// Path-style bucket addressing.
    pub use_path_style: bool,
}

impl fmt::Debug for S3Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Remote")
            .field("remote_name", &self.remote_name)
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key", &"<redacted>")
            .field("secret_key", &"<redacted>")
            .field("use_path_style", &self.use_path_style)
            .finish()
    }
}

/// `RemoteList` (only the S3 remotes are read).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RemoteList {
    /// S3 remotes.
    #[serde(deserialize_with = "wire::null_default")]
    pub s3_remotes: Vec<S3Remote>,
}

/// `BackupCreate`: ship a snapshot (or a new one) of `rsc_name` to a remote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackupCreate {
    /// The resource definition.
    pub rsc_name: String,
    /// The node to ship from (empty: LINSTOR chooses).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// The snapshot to ship (empty: LINSTOR takes a new one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snap_name: Option<String>,
    /// Ship only the difference to the last backup.
    pub incremental: bool,
}

/// `Backup`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Backup {
    /// Backup ID.
    pub id: String,
    /// The resource it came from.
    pub origin_rsc: String,
    /// The snapshot it came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin_snap: Option<String>,
    /// The node it was shipped from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin_node: Option<String>,
    /// Start, milliseconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<i64>,
    /// End, milliseconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_timestamp: Option<i64>,
    /// Shipped completely.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    /// Still shipping.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping: Option<bool>,
    /// Can be restored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restorable: Option<bool>,
}

/// `BackupList`: the LINSTOR backups found on a remote, by ID.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackupList {
    /// Backups, by ID.
    #[serde(deserialize_with = "wire::null_default")]
    pub linstor: BTreeMap<String, Backup>,
}

/// Which backups `DELETE /v1/remotes/{remote}/backups` removes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupDelete {
    /// One backup by ID.
    pub id: Option<String>,
    /// Every backup of this resource.
    pub resource_name: Option<String>,
    /// Also delete the backups based on the selected ones.
    pub cascading: bool,
}

impl LinstorClient {
    /// `POST /v1/remotes/s3`. An existing name is [`LinstorError::AlreadyExists`].
    pub async fn create_s3_remote(
        &self,
        remote: &S3Remote,
    ) -> Result<Vec<ApiCallRc>, LinstorError> {
        self.http
            .mutate(
                Method::POST,
                &["remotes", "s3"],
                &[],
                Some(remote),
                Replay::Replayable,
            )
            .await
    }

    /// `GET /v1/remotes/s3`.
    pub async fn list_s3_remotes(&self) -> Result<Vec<S3Remote>, LinstorError> {
        self.http.get(&["remotes", "s3"], &[]).await
    }

    /// `GET /v1/remotes`. The OpenAPI file declares a list of `RemoteList` while LINSTOR and
    /// golinstor use one object; both are accepted and merged.
    pub async fn list_remotes(&self) -> Result<RemoteList, LinstorError> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(RemoteList),
            Many(Vec<RemoteList>),
        }
        Ok(match self.http.get::<OneOrMany>(&["remotes"], &[]).await? {
            OneOrMany::One(l) => l,
            OneOrMany::Many(v) => RemoteList {
                s3_remotes: v.into_iter().flat_map(|l| l.s3_remotes).collect(),
            },
        })
    }

    /// `DELETE /v1/remotes?remote_name={name}`.
    pub async fn delete_remote(&self, name: &str) -> Result<Vec<ApiCallRc>, LinstorError> {
        self.http
            .mutate::<()>(
                Method::DELETE,
                &["remotes"],
                &[("remote_name", name)],
                None,
                Replay::Replayable,
            )
            .await
    }

    /// `POST /v1/remotes/{remote}/backups`: ship a backup. Sent at most once unless the
    /// connection was never made, since a replay would ship a second backup.
    pub async fn create_backup(
        &self,
        remote: &str,
        backup: &BackupCreate,
    ) -> Result<Vec<ApiCallRc>, LinstorError> {
        self.http
            .mutate(
                Method::POST,
                &["remotes", remote, "backups"],
                &[],
                Some(backup),
                Replay::Once,
            )
            .await
    }

    /// `GET /v1/remotes/{remote}/backups`, optionally only those of one resource.
    pub async fn list_backups(
        &self,
        remote: &str,
        rsc_name: Option<&str>,
    ) -> Result<BackupList, LinstorError> {
        let query: Vec<(&str, &str)> = rsc_name.map(|r| ("rsc_name", r)).into_iter().collect();
        self.http.get(&["remotes", remote, "backups"], &query).await
    }

    /// `DELETE /v1/remotes/{remote}/backups?...`.
    pub async fn delete_backups(
        &self,
        remote: &str,
        which: &BackupDelete,
    ) -> Result<Vec<ApiCallRc>, LinstorError> {
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(id) = &which.id {
            query.push(("id", id));
        }
        if let Some(r) = &which.resource_name {
            query.push(("resource_name", r));
        }
        if which.cascading {
            query.push(("cascading", "true"));
        }
        self.http
            .mutate::<()>(
                Method::DELETE,
                &["remotes", remote, "backups"],
                &query,
                None,
                Replay::Replayable,
            )
            .await
    }
}
