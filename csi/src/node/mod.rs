//! The CSI Node service, generic over an [`Attacher`] and a [`Mounter`].
//!
//! Every call checks the real state (mountinfo, the attached device) rather than a cache, so
//! kubelet may retry anything after a crash. Handlers validate first (INVALID_ARGUMENT), take the
//! per-volume lock (ABORTED when busy), then act. Paths must lie under the kubelet directory.

pub mod context;
mod markers;
mod stage;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hearth_proto::csi::v1::node_server::Node;
use hearth_proto::csi::v1::node_service_capability::{self, rpc};
use hearth_proto::csi::v1::*;
use tonic::{Request, Response, Status};

use crate::attach::{Attacher, Condition};
use crate::controller::to_csi_condition;
use crate::locks::OperationLocks;
use crate::mount::{FsType, MountEntry, Mounter, Probe};
use crate::validate::{self, Access, Located};
use crate::CsiError;

pub use markers::FormatMarkers;

/// What the node service needs to know about its node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The node ID reported to the CO.
    pub node_id: String,
    /// Every staging and target path must lie under this directory.
    pub kubelet_dir: PathBuf,
    /// Reported as max_volumes_per_node.
    pub max_volumes_per_node: i64,
    /// Where format markers live.
    pub markers_dir: PathBuf,
    /// The backend can attach a raw block volume on several nodes at once (live migration).
    pub multi_node: bool,
}

/// The Node service.
pub struct NodeService<A, M> {
    attacher: Arc<A>,
    mounter: Arc<M>,
    config: NodeConfig,
    markers: FormatMarkers,
    locks: OperationLocks,
    /// Topology segments reported besides `topology.hearth.dev/node` (the node's zone...).
    topology: HashMap<String, String>,
}

impl<A: Attacher, M: Mounter> NodeService<A, M> {
    /// A node service; creates the marker directory.
    pub fn new(attacher: Arc<A>, mounter: Arc<M>, config: NodeConfig) -> std::io::Result<Self> {
        let markers = FormatMarkers::new(&config.markers_dir)?;
        Ok(Self {
            attacher,
            mounter,
            config,
            markers,
            locks: OperationLocks::default(),
            topology: HashMap::new(),
        })
    }

    /// Reports `segments` (for example `topology.kubernetes.io/zone`) in NodeGetInfo too, so
    /// zone-aware provisioning can match this node.
    #[must_use]
    pub fn with_topology(mut self, segments: HashMap<String, String>) -> Self {
        self.topology = segments;
        self
    }

    /// Runs a mounter call on the blocking pool.
    async fn host<T: Send + 'static>(
        &self,
        f: impl FnOnce(&M) -> Result<T, crate::mount::MountError> + Send + 'static,
    ) -> Result<T, CsiError> {
        let m = Arc::clone(&self.mounter);
        Ok(tokio::task::spawn_blocking(move || f(&m)).await??)
    }

    fn path(&self, field: &str, value: &str) -> Result<PathBuf, CsiError> {
        validate::path_under(field, value, &self.config.kubelet_dir)
    }

    /// Where `value` lies, for calls that answer NOT_FOUND for a path that cannot hold one
    /// of this node's volumes (stats, expand): they check the volume first, then the path.
    fn locate(&self, field: &str, value: &str) -> Result<Located, CsiError> {
        validate::locate_under(field, value, &self.config.kubelet_dir)
    }

    /// The located path, or NOT_FOUND: this node puts volumes only under the kubelet directory.
    fn on_node(&self, id: &str, located: Located) -> Result<PathBuf, CsiError> {
        match located {
            Located::Under(path) => Ok(path),
            Located::Elsewhere(why) => Err(CsiError::NotFound(format!(
                "volume {id} is not there: {why}"
            ))),
        }
    }

    fn capability(&self, cap: Option<&VolumeCapability>) -> Result<Access, CsiError> {
        let cap =
            cap.ok_or_else(|| CsiError::InvalidArgument("volume_capability is required".into()))?;
        validate::access(cap, self.config.multi_node)
    }

    /// The mounts under the kubelet directory: the only ones this node's CSI calls make or
    /// judge. (Another node agent on the same host, as in tests, has its own directory.)
    async fn kubelet_mounts(&self) -> Result<Vec<MountEntry>, CsiError> {
        let root = self.config.kubelet_dir.clone();
        let mut mounts = self.host(|m| m.mounts()).await?;
        mounts.retain(|e| e.mount_point.starts_with(&root));
        Ok(mounts)
    }

    async fn mount_at(&self, path: &Path) -> Result<Option<MountEntry>, CsiError> {
        let p = path.to_owned();
        self.host(move |m| m.mount_at(&p)).await
    }

    /// A node-local volume (one node in its volume context) is staged only on that node; on
    /// another the error names where it lives. Replicated (multi-node) backends skip this.
    fn placed_here(&self, id: &str, context: &HashMap<String, String>) -> Result<(), CsiError> {
        match context.get(crate::VOLUME_CONTEXT_NODE_KEY) {
            Some(node) if !self.config.multi_node && *node != self.config.node_id => {
                Err(CsiError::FailedPrecondition(format!(
                    "volume {id} lives on node {node}, not on this node ({}): a loopfile volume \
                     is staged on the node that holds it",
                    self.config.node_id
                )))
            }
            _ => Ok(()),
        }
    }

    async fn unstage(&self, req: NodeUnstageVolumeRequest) -> Result<(), CsiError> {
        let id = validate::required("volume_id", &req.volume_id)?.to_owned();
        let staging = self.path("staging_target_path", &req.staging_target_path)?;
        let _lock = self.locks.try_lock(&id)?;
        let mounts = self.kubelet_mounts().await?;
        if let Some(staged) = mounts.iter().rev().find(|e| e.mount_point == staging) {
            if let Some(other) = mounts
                .iter()
                .find(|e| same_filesystem(e, staged) && e.mount_point != staging)
            {
                return Err(CsiError::FailedPrecondition(format!(
                    "volume {id} is still published at {}; unpublish it first",
                    other.mount_point.display()
                )));
            }
            let target = staging.clone();
            self.host(move |m| m.unmount(&target)).await?;
        }
        if let Some(device) = self.attacher.device(&id).await? {
            if let Some(bind) = mounts.iter().find(|e| is_device_bind(e, &device)) {
                return Err(CsiError::FailedPrecondition(format!(
                    "block volume {id} is still published at {}; unpublish it first",
                    bind.mount_point.display()
                )));
            }
            self.attacher.detach(&id).await?;
        }
        tracing::info!(volume = %id, "unstaged");
        Ok(())
    }

    async fn publish(&self, req: NodePublishVolumeRequest) -> Result<(), CsiError> {
        let id = validate::required("volume_id", &req.volume_id)?.to_owned();
        let target = self.path("target_path", &req.target_path)?;
        let staging = self.path("staging_target_path", &req.staging_target_path)?;
        let access = self.capability(req.volume_capability.as_ref())?;
        let opts = access.mount_options(req.readonly);
        let _lock = self.locks.try_lock(&id)?;
        let mounts = self.kubelet_mounts().await?;
        let source = match &access {
            Access::Block { .. } => {
                PublishSource::Device(self.attacher.device(&id).await?.ok_or_else(|| {
                    CsiError::FailedPrecondition(format!("volume {id} is not staged on this node"))
                })?)
            }
            Access::Mount { .. } => PublishSource::Staged(
                mounts
                    .iter()
                    .rev()
                    .find(|e| e.mount_point == staging)
                    .cloned()
                    .ok_or_else(|| {
                        CsiError::FailedPrecondition(format!(
                            "volume {id} is not staged at {}",
                            staging.display()
                        ))
                    })?,
            ),
        };
        let is_ours = |e: &MountEntry| source.shows(e);
        if let Some(existing) = mounts.iter().rev().find(|e| e.mount_point == target) {
            if is_ours(existing) && existing.read_only() == opts.readonly {
                return Ok(());
            }
            return Err(CsiError::AlreadyExists(format!(
                "{} is already mounted with another volume or another access mode",
                target.display()
            )));
        }
        if access.single_writer() && !opts.readonly {
            if let Some(other) = mounts.iter().find(|e| is_ours(e) && !e.read_only()) {
                return Err(CsiError::FailedPrecondition(format!(
                    "volume {id} is SINGLE_NODE_SINGLE_WRITER and already published at {}",
                    other.mount_point.display()
                )));
            }
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| CsiError::internal(format!("creating {}", parent.display()), e))?;
        }
        let from = match source {
            PublishSource::Device(device) => device,
            PublishSource::Staged(_) => staging,
        };
        self.host(move |m| m.bind(&from, &target, &opts)).await?;
        tracing::info!(volume = %id, target = %req.target_path, "published");
        Ok(())
    }

    async fn unpublish(&self, req: NodeUnpublishVolumeRequest) -> Result<(), CsiError> {
        let id = validate::required("volume_id", &req.volume_id)?.to_owned();
        let target = self.path("target_path", &req.target_path)?;
        let _lock = self.locks.try_lock(&id)?;
        self.host(move |m| {
            m.unmount(&target)?;
            remove_mount_point(&target)
        })
        .await?;
        tracing::info!(volume = %id, target = %req.target_path, "unpublished");
        Ok(())
    }

    async fn stats(
        &self,
        req: NodeGetVolumeStatsRequest,
    ) -> Result<NodeGetVolumeStatsResponse, CsiError> {
        let id = validate::required("volume_id", &req.volume_id)?.to_owned();
        let located = self.locate("volume_path", &req.volume_path)?;
        let device = self.attacher.device(&id).await?;
        if device.is_none() {
            return Err(not_attached(&id));
        }
        let path = self.on_node(&id, located)?;
        if !path.exists() {
            return Err(CsiError::NotFound(format!(
                "volume path {} does not exist",
                path.display()
            )));
        }
        let mount = self.mount_at(&path).await?.ok_or_else(|| {
            CsiError::NotFound(format!("volume {id} is not mounted at {}", path.display()))
        })?;
        let mut condition = self.attacher.condition(&id).await?;
        let usage = match device {
            Some(dev) if is_device_bind(&mount, &dev) => {
                let size = self.host(move |m| m.device_size(&dev)).await?;
                vec![VolumeUsage {
                    total: crate::validate::to_i64(size),
                    unit: volume_usage::Unit::Bytes as i32,
                    ..Default::default()
                }]
            }
            Some(_) => {
                let p = path.clone();
                match self.host(move |m| m.stats(&p)).await {
                    Ok(s) => vec![
                        VolumeUsage {
                            available: crate::validate::to_i64(s.available_bytes),
                            total: crate::validate::to_i64(s.total_bytes),
                            used: crate::validate::to_i64(s.used_bytes),
                            unit: volume_usage::Unit::Bytes as i32,
                        },
                        VolumeUsage {
                            available: crate::validate::to_i64(s.free_inodes),
                            total: crate::validate::to_i64(s.total_inodes),
                            used: crate::validate::to_i64(s.used_inodes),
                            unit: volume_usage::Unit::Inodes as i32,
                        },
                    ],
                    Err(e) => {
                        condition =
                            Condition::abnormal(format!("the filesystem does not answer: {e}"));
                        Vec::new()
                    }
                }
            }
            None => return Err(not_attached(&id)),
        };
        Ok(NodeGetVolumeStatsResponse {
            usage,
            volume_condition: Some(to_csi_condition(condition)),
        })
    }

    async fn expand(
        &self,
        req: NodeExpandVolumeRequest,
    ) -> Result<NodeExpandVolumeResponse, CsiError> {
        let id = validate::required("volume_id", &req.volume_id)?.to_owned();
        let located = self.locate("volume_path", &req.volume_path)?;
        let block = match req.volume_capability.as_ref() {
            Some(cap) => matches!(self.capability(Some(cap))?, Access::Block { .. }),
            None => false,
        };
        let (required, _) = validate::capacity(req.capacity_range.as_ref(), 0)?;
        let _lock = self.locks.try_lock(&id)?;
        let device = self
            .attacher
            .device(&id)
            .await?
            .ok_or_else(|| not_attached(&id))?;
        let path = self.on_node(&id, located)?;
        let size = self.attacher.grown_size(&id, required).await?;
        let mount = self.mount_at(&path).await?;
        let is_block = block || mount.as_ref().is_some_and(|m| is_device_bind(m, &device));
        if !is_block {
            if mount.is_none() {
                return Err(CsiError::NotFound(format!(
                    "volume {id} is not mounted at {}",
                    path.display()
                )));
            }
            let dev = device.clone();
            let fs = match self.host(move |m| m.probe(&dev)).await? {
                Probe::Signature(s) => FsType::parse(&s).ok_or_else(|| {
                    CsiError::FailedPrecondition(format!(
                        "volume {id} holds {s}, which Hearth cannot grow"
                    ))
                })?,
                other => {
                    return Err(CsiError::FailedPrecondition(format!(
                        "volume {id} has no filesystem to grow ({other:?})"
                    )))
                }
            };
            self.host(move |m| m.grow(&device, &path, fs)).await?;
        }
        tracing::info!(volume = %id, bytes = size, "grown on the node");
        Ok(NodeExpandVolumeResponse {
            capacity_bytes: crate::validate::to_i64(size),
        })
    }
}

/// NOT_FOUND: the volume has no device on this node (unknown, or not staged here).
fn not_attached(id: &str) -> CsiError {
    CsiError::NotFound(format!("volume {id} is not attached on this node"))
}

/// What a publish binds from.
enum PublishSource {
    /// A block volume: the device node.
    Device(PathBuf),
    /// A filesystem volume: the staging mount.
    Staged(MountEntry),
}

impl PublishSource {
    /// True when `entry` is a publish of this source (not the staging mount itself).
    fn shows(&self, entry: &MountEntry) -> bool {
        match self {
            Self::Device(device) => is_device_bind(entry, device),
            Self::Staged(staged) => {
                same_filesystem(entry, staged) && entry.mount_point != staged.mount_point
            }
        }
    }
}

/// True when `entry` is a mount of the whole filesystem on the device numbered `number`.
fn is_mount_of(entry: &MountEntry, number: (u32, u32)) -> bool {
    (entry.major, entry.minor) == number && entry.root == Path::new("/")
}

/// True when `a` and `b` show the same filesystem (bind mounts of one another).
fn same_filesystem(a: &MountEntry, b: &MountEntry) -> bool {
    a.major == b.major && a.minor == b.minor && a.root == b.root
}

/// True when `entry` is a bind mount of the device node `device` (from devtmpfs).
fn is_device_bind(entry: &MountEntry, device: &Path) -> bool {
    device
        .strip_prefix("/dev")
        .is_ok_and(|rel| entry.fs_type == "devtmpfs" && entry.root == Path::new("/").join(rel))
}

/// Removes an unmounted publish target: an empty directory or the file a block bind used.
/// A directory that still holds files is left alone, so no data is ever removed.
fn remove_mount_point(target: &Path) -> Result<(), crate::mount::MountError> {
    let result = match std::fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() => std::fs::remove_dir(target),
        Ok(_) => std::fs::remove_file(target),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(|source| crate::mount::MountError::MountPoint {
        path: target.to_owned(),
        source,
    })
}

#[tonic::async_trait]
impl<A: Attacher, M: Mounter> Node for NodeService<A, M> {
    async fn node_stage_volume(
        &self,
        r: Request<NodeStageVolumeRequest>,
    ) -> Result<Response<NodeStageVolumeResponse>, Status> {
        self.stage(r.into_inner()).await?;
        Ok(Response::new(NodeStageVolumeResponse {}))
    }

    async fn node_unstage_volume(
        &self,
        r: Request<NodeUnstageVolumeRequest>,
    ) -> Result<Response<NodeUnstageVolumeResponse>, Status> {
        self.unstage(r.into_inner()).await?;
        Ok(Response::new(NodeUnstageVolumeResponse {}))
    }

    async fn node_publish_volume(
        &self,
        r: Request<NodePublishVolumeRequest>,
    ) -> Result<Response<NodePublishVolumeResponse>, Status> {
        self.publish(r.into_inner()).await?;
        Ok(Response::new(NodePublishVolumeResponse {}))
    }

    async fn node_unpublish_volume(
        &self,
        r: Request<NodeUnpublishVolumeRequest>,
    ) -> Result<Response<NodeUnpublishVolumeResponse>, Status> {
        self.unpublish(r.into_inner()).await?;
        Ok(Response::new(NodeUnpublishVolumeResponse {}))
    }

    async fn node_get_volume_stats(
        &self,
        r: Request<NodeGetVolumeStatsRequest>,
    ) -> Result<Response<NodeGetVolumeStatsResponse>, Status> {
        Ok(Response::new(self.stats(r.into_inner()).await?))
    }

    async fn node_expand_volume(
        &self,
        r: Request<NodeExpandVolumeRequest>,
    ) -> Result<Response<NodeExpandVolumeResponse>, Status> {
        Ok(Response::new(self.expand(r.into_inner()).await?))
    }

    async fn node_get_capabilities(
        &self,
        _r: Request<NodeGetCapabilitiesRequest>,
    ) -> Result<Response<NodeGetCapabilitiesResponse>, Status> {
        let capabilities = [
            rpc::Type::StageUnstageVolume,
            rpc::Type::GetVolumeStats,
            rpc::Type::ExpandVolume,
            rpc::Type::VolumeCondition,
            rpc::Type::SingleNodeMultiWriter,
        ]
        .into_iter()
        .map(|t| NodeServiceCapability {
            r#type: Some(node_service_capability::Type::Rpc(
                node_service_capability::Rpc { r#type: t as i32 },
            )),
        })
        .collect();
        Ok(Response::new(NodeGetCapabilitiesResponse { capabilities }))
    }

    async fn node_get_info(
        &self,
        _r: Request<NodeGetInfoRequest>,
    ) -> Result<Response<NodeGetInfoResponse>, Status> {
        Ok(Response::new(NodeGetInfoResponse {
            node_id: self.config.node_id.clone(),
            max_volumes_per_node: self.config.max_volumes_per_node,
            accessible_topology: Some(Topology {
                segments: self
                    .topology
                    .clone()
                    .into_iter()
                    .chain([(
                        crate::TOPOLOGY_NODE_KEY.to_owned(),
                        self.config.node_id.clone(),
                    )])
                    .collect(),
            }),
        }))
    }
}

#[cfg(test)]
mod tests;
