//! Clones of a resource definition: start one (`POST .../clone`), read its status, and poll
//! until it is COMPLETE or FAILED, within a deadline.
//!
//! Owns: the clone shapes and the polling loop. It never deletes a failed clone; the caller
//! decides (a failed create must not leak, so the backend deletes it).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::LinstorError;
use super::transport::Replay;
use super::wire;
use super::{LinstorClient, Props};

/// `ResourceDefinitionCloneRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CloneRequest {
    /// The new resource definition's name.
    pub name: String,
    /// Put the clone in this resource group (and its storage pools).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_group: Option<String>,
    /// The layer list, top first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layer_list: Vec<String>,
    /// Properties to set on the clone.
    #[serde(skip_serializing_if = "Props::is_empty")]
    pub override_props: Props,
    /// Properties not to copy.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub delete_props: Vec<String>,
}

/// `ResourceDefinitionCloneStarted`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CloneStarted {
    /// The status path (`/v1/resource-definitions/{src}/clone/{clone}`).
    pub location: String,
    /// The source.
    pub source_name: String,
    /// The clone.
    pub clone_name: String,
    /// The controller's messages.
    #[serde(deserialize_with = "wire::null_default")]
    pub messages: Vec<super::rc::ApiCallRc>,
}

/// `ResourceDefinitionCloneStatus`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CloneStatus {
    /// `CLONING`, `COMPLETE` or `FAILED`.
    pub status: String,
}

impl CloneStatus {
    /// The clone is ready to use.
    pub fn is_complete(&self) -> bool {
        self.status == "COMPLETE"
    }

    /// The clone failed; its resource definition is not usable.
    pub fn is_failed(&self) -> bool {
        self.status == "FAILED"
    }
}

/// How often [`LinstorClient::wait_clone`] polls.
pub const CLONE_POLL_INTERVAL: Duration = Duration::from_millis(200);

impl LinstorClient {
    /// `POST /v1/resource-definitions/{rd}/clone`: starts cloning `rd` into `request.name`.
    /// A clone name that exists is [`LinstorError::AlreadyExists`].
    pub async fn clone_resource_definition(
        &self,
        rd: &str,
        request: &CloneRequest,
    ) -> Result<CloneStarted, LinstorError> {
        let started: CloneStarted = self
            .http
            .post_for(
                &["resource-definitions", rd, "clone"],
                request,
                Replay::Replayable,
            )
            .await?;
        let op = format!("POST /v1/resource-definitions/{rd}/clone");
        super::rc::check(&op, 201, &started.messages)?;
        Ok(started)
    }

    /// `GET /v1/resource-definitions/{rd}/clone/{clone}`.
    pub async fn clone_status(&self, rd: &str, clone: &str) -> Result<CloneStatus, LinstorError> {
        self.http
            .get(&["resource-definitions", rd, "clone", clone], &[])
            .await
    }

    /// Polls [`LinstorClient::clone_status`] until COMPLETE (Ok), FAILED
    /// ([`LinstorError::CloneFailed`]) or `timeout` ([`LinstorError::Timeout`]).
    pub async fn wait_clone(
        &self,
        rd: &str,
        clone: &str,
        timeout: Duration,
    ) -> Result<(), LinstorError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let status = self.clone_status(rd, clone).await?;
            if status.is_complete() {
                return Ok(());
            }
            if status.is_failed() {
                return Err(LinstorError::CloneFailed {
                    from: rd.to_owned(),
                    to: clone.to_owned(),
                });
            }
            if tokio::time::Instant::now() + CLONE_POLL_INTERVAL > deadline {
                return Err(LinstorError::Timeout {
                    op: format!(
                        "wait for clone of {rd} to {clone} (last status {:?})",
                        status.status
                    ),
                    after: timeout,
                });
            }
            tokio::time::sleep(CLONE_POLL_INTERVAL).await;
        }
    }
}
