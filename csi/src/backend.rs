//! The VolumeBackend: the controller side of a storage backend.
//!
//! It creates, deletes, grows, snapshots and lists volumes. It never touches the node (that is
//! the [`crate::attach::Attacher`]) and never mounts (that is the [`crate::mount::Mounter`]).
//! The CSI controller service validates every request before it reaches a backend, so a backend
//! gets resolved sizes and known parameters.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use crate::attach::Condition;
use crate::CsiError;

/// Where a new volume's data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentSource {
    /// Restore a snapshot.
    Snapshot(String),
    /// Clone a volume.
    Volume(String),
}

/// A validated CreateVolume request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    /// The CO's name for the volume; the idempotency key.
    pub name: String,
    /// The size to create, in bytes, already resolved from the capacity range.
    pub capacity_bytes: u64,
    /// The largest size the caller accepts (0: no limit). Used to judge an existing volume.
    pub limit_bytes: u64,
    /// StorageClass parameters the backend knows.
    pub parameters: BTreeMap<String, String>,
    /// Data to restore or clone.
    pub source: Option<ContentSource>,
    /// Topology segments the volume must be reachable from, one of them at least (empty: any).
    pub requisite: Vec<BTreeMap<String, String>>,
    /// Topology segments the CO prefers, best first (WaitForFirstConsumer puts the pod's node
    /// first).
    pub preferred: Vec<BTreeMap<String, String>>,
}

/// A volume as the backend knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The plugin's ID.
    pub id: String,
    /// The CO's name.
    pub name: String,
    /// The size in bytes.
    pub capacity_bytes: u64,
    /// The parameters it was created with.
    pub parameters: BTreeMap<String, String>,
    /// Where its data came from.
    pub source: Option<ContentSource>,
    /// The topology segments it is reachable from.
    pub topology: Vec<BTreeMap<String, String>>,
    /// Volume-context entries for the node besides the filesystem (see
    /// [`crate::node::context`]): the class's mkfs and mount options, `nouuid` for a copy.
    pub context: BTreeMap<String, String>,
}

/// A snapshot as the backend knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The plugin's ID.
    pub id: String,
    /// The CO's name.
    pub name: String,
    /// The volume it was taken from.
    pub source_volume_id: String,
    /// The size of the source volume when it was taken, in bytes.
    pub size_bytes: u64,
    /// When it was taken.
    pub created: SystemTime,
    /// Whether it can be restored from now.
    pub ready: bool,
}

/// A storage pool behind the backend, with its capacity (for the status endpoint).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PoolCapacity {
    /// The pool's name (`data`; `state-dir` for loopfile).
    pub name: String,
    /// The node it is on.
    pub node: String,
    /// LINSTOR's provider kind (`LVM_THIN`, `ZFS`, ...) or `filesystem`.
    pub kind: String,
    /// Total bytes, when the backend knows them.
    pub total_bytes: Option<u64>,
    /// Free bytes, when the backend knows them.
    pub free_bytes: Option<u64>,
}

/// What a backend can do beyond the basics; the controller advertises only these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackendFeatures {
    /// Snapshots and restore.
    pub snapshots: bool,
    /// Clones from a volume.
    pub clones: bool,
    /// Growing volumes.
    pub expansion: bool,
    /// ControllerPublish/Unpublish: the volume must be made available on a node before the
    /// node stages it (LINSTOR's diskless attach).
    pub publish: bool,
    /// A volume may be attached on more than one node (raw block, for live migration).
    pub multi_node: bool,
}

/// A validated ControllerPublishVolume request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishSpec {
    /// The volume.
    pub volume_id: String,
    /// The node to make it available on.
    pub node_id: String,
    /// True for a read-only attachment.
    pub readonly: bool,
    /// True when the capability allows more than one node to write (raw block only).
    pub multi_writer: bool,
}

/// The controller side of a storage backend.
#[async_trait::async_trait]
pub trait VolumeBackend: Send + Sync + 'static {
    /// What this backend supports.
    fn features(&self) -> BackendFeatures;

    /// Checks StorageClass parameters; unknown keys are INVALID_ARGUMENT.
    fn validate_parameters(&self, parameters: &BTreeMap<String, String>) -> Result<(), CsiError>;

    /// Creates a volume, or returns the existing one of the same name when it is compatible.
    /// ALREADY_EXISTS when the name exists with another size, parameters or source.
    async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume, CsiError>;

    /// Deletes a volume. Succeeds when it does not exist.
    async fn delete_volume(&self, volume_id: &str) -> Result<(), CsiError>;

    /// One volume, or None.
    async fn get_volume(&self, volume_id: &str) -> Result<Option<Volume>, CsiError>;

    /// Every volume, ordered by ID (the controller pages over this order).
    async fn list_volumes(&self) -> Result<Vec<Volume>, CsiError>;

    /// The controller's view of a volume's health.
    async fn volume_condition(&self, volume_id: &str) -> Result<Condition, CsiError>;

    /// Grows a volume to at least `capacity_bytes`; returns the new size. Never shrinks.
    async fn expand_volume(&self, volume_id: &str, capacity_bytes: u64) -> Result<u64, CsiError>;

    /// Takes a snapshot, or returns the existing one of the same name and source.
    async fn create_snapshot(
        &self,
        name: &str,
        source_volume_id: &str,
    ) -> Result<Snapshot, CsiError>;

    /// Deletes a snapshot. Succeeds when it does not exist.
    async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), CsiError>;

    /// Every snapshot, ordered by ID.
    async fn list_snapshots(&self) -> Result<Vec<Snapshot>, CsiError>;

    /// Makes the volume available on a node and returns the publish context the node needs
    /// (for LINSTOR: the DRBD device path). NOT_FOUND for an unknown volume or node.
    async fn publish(&self, spec: &PublishSpec) -> Result<HashMap<String, String>, CsiError> {
        let _ = spec;
        Err(CsiError::Unimplemented(
            "this backend has no controller publish".into(),
        ))
    }

    /// Undoes [`VolumeBackend::publish`]. Succeeds when the volume is not published there.
    async fn unpublish(&self, volume_id: &str, node_id: &str) -> Result<(), CsiError> {
        let _ = (volume_id, node_id);
        Err(CsiError::Unimplemented(
            "this backend has no controller publish".into(),
        ))
    }

    /// Bytes available for new volumes with these parameters, reachable from `segment` when
    /// one is given (0 when the backend cannot place a volume there).
    async fn available_capacity(
        &self,
        parameters: &BTreeMap<String, String>,
        segment: Option<&BTreeMap<String, String>>,
    ) -> Result<u64, CsiError>;

    /// The pools that hold volumes on `node`, with capacity and free space (read-only; for
    /// the status endpoint). None known by default.
    async fn pools(&self, node: &str) -> Result<Vec<PoolCapacity>, CsiError> {
        let _ = node;
        Ok(Vec::new())
    }
}
