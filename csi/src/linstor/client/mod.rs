//! An async client for the LINSTOR controller's REST API (v1), covering what a CSI driver
//! needs: nodes and storage pools, resource groups, resource and volume definitions,
//! resources (explicit, autoplaced, made available), the resource/storage-pool/snapshot
//! views, snapshots (also multi-snapshots, restore), clones with status polling, properties,
//! and S3 remotes with backup shipping.
//!
//! - **Transport**: plain HTTP, or HTTPS with a CA file and a client certificate
//!   (`linstor+ssl://`, as Cozystack deploys LINSTOR). See [`ClientConfig`].
//! - **Handshake**: [`LinstorClient::connect`] asks `GET /v1/controller/version` first and
//!   refuses a REST API that is not 1.x at 1.0.4 or later.
//! - **Errors**: every mutation's `ApiCallRc` list is checked, even under a 2xx status, and the
//!   first error entry is mapped by its exact code (see [`LinstorError`], [`consts`]).
//! - **Retries**: bounded, with backoff and jitter, only where a replay is safe (the rule is in
//!   [`transport`]); [`LinstorClient::calls`] counts every try.
//! - **Sizes** are KiB, as on the wire.
//!
//! Owns: the wire protocol. Must not touch: CSI types, placement policy, the node's devices.
//! Callers decide what "already exists" or "not found" means for them.

mod clone;
pub mod config;
pub mod consts;
mod controller;
#[cfg(test)]
mod decode_tests;
mod definitions;
pub mod error;
mod groups;
mod nodes;
pub mod rc;
mod remotes;
mod resources;
mod snapshots;
mod tls;
pub mod transport;
mod wire;

use std::sync::Arc;

pub use clone::{CloneRequest, CloneStarted, CloneStatus};
pub use config::{ClientConfig, RetryPolicy, TlsFiles};
pub use controller::ControllerVersion;
pub use definitions::{
    DrbdVolumeDefinition, ResourceDefinition, ResourceDefinitionCreate, ResourceDefinitionModify,
    VolumeDefinition, VolumeDefinitionCreate, VolumeDefinitionLayer, VolumeDefinitionModify,
};
pub use error::LinstorError;
pub use groups::{AutoSelectFilter, ResourceGroup, ResourceGroupModify};
pub use nodes::{NetInterface, Node, StoragePool};
pub use rc::{ApiCallRc, RcKind};
pub use remotes::{Backup, BackupCreate, BackupDelete, BackupList, RemoteList, S3Remote};
pub use resources::{
    AutoPlaceRequest, MakeAvailable, PropsModify, Resource, ResourceCreate, ResourceState, Volume,
    VolumeState,
};
pub use snapshots::{Snapshot, SnapshotNode, SnapshotRestore, SnapshotVolumeDefinition};

/// LINSTOR properties: a flat map of `Namespace/Key` to value.
pub type Props = std::collections::BTreeMap<String, String>;

/// Filters of the view endpoints (`/v1/view/...`): empty lists do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewFilter {
    /// Only these nodes.
    pub nodes: Vec<String>,
    /// Only these resources (resource and snapshot views).
    pub resources: Vec<String>,
    /// Only these storage pools (resource and storage-pool views).
    pub storage_pools: Vec<String>,
}

impl ViewFilter {
    fn query(&self, with_resources: bool, with_pools: bool) -> Vec<(&'static str, &str)> {
        let mut q: Vec<(&'static str, &str)> =
            self.nodes.iter().map(|n| ("nodes", n.as_str())).collect();
        if with_resources {
            q.extend(self.resources.iter().map(|r| ("resources", r.as_str())));
        }
        if with_pools {
            q.extend(
                self.storage_pools
                    .iter()
                    .map(|p| ("storage_pools", p.as_str())),
            );
        }
        q
    }
}

/// A LINSTOR controller client. Cheap to clone; clones share the connection pool and the
/// call counter.
#[derive(Debug, Clone)]
pub struct LinstorClient {
    http: Arc<transport::Transport>,
}

impl LinstorClient {
    /// Builds the client without sending anything (use [`LinstorClient::handshake`] later).
    pub fn new(config: &ClientConfig) -> Result<Self, LinstorError> {
        Ok(Self {
            http: Arc::new(transport::Transport::new(config)?),
        })
    }

    /// Builds the client and performs the version handshake.
    pub async fn connect(config: &ClientConfig) -> Result<Self, LinstorError> {
        let client = Self::new(config)?;
        client.handshake().await?;
        Ok(client)
    }

    /// REST calls sent so far by this client and its clones, retries included.
    pub fn calls(&self) -> u64 {
        self.http.calls()
    }

    /// The normalised controller URL (`http(s)://host:port/`).
    pub fn base_url(&self) -> &str {
        self.http.base().as_str()
    }
}
