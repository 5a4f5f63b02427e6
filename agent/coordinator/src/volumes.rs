//! Loopfile volumes on many nodes: the coordinator's `VolumeBackend` when node agents hold the
//! images. CreateVolume places the volume on one node (health, free space, topology), records
//! the placement in the store *before* asking that node's agent to create the image over its
//! session, so a retried call goes to the same node; the volume ID is derived from the CO name
//! ([`volume_id_for`]), so node and coordinator agree without a round trip. Delete, expand and
//! the condition are carried out by the owning node; the record is removed only after the node
//! confirmed the delete, so a volume is never forgotten while its image may exist.
//!
//! Snapshots and clones stay on one machine (`hearth dev`, or `hearth coordinator` without
//! `--listen`); this backend does not advertise them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hearth_csi::attach::Condition;
use hearth_csi::backend::{BackendFeatures, Snapshot, Volume, VolumeBackend, VolumeSpec};
use hearth_csi::loopfile::{is_volume_id, volume_id_for};
use hearth_csi::{CsiError, TOPOLOGY_NODE_KEY};
use hearth_proto::hearth::v1::{volume_call::Op, CreateLocal, ExpandLocal};

use super::engine::Engine;
use super::placement::{self, StorageNode, VolumeRequest};
use crate::store::{Store, StoreError, VolumeLocation};

/// How long a node may take to create, grow or delete an image.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Loopfile volumes held by node agents.
pub struct NodeLocalVolumes {
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
}

impl std::fmt::Debug for NodeLocalVolumes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeLocalVolumes").finish_non_exhaustive()
    }
}

fn store_err(e: StoreError) -> CsiError {
    match e {
        StoreError::Invalid(m) => CsiError::InvalidArgument(m),
        other => CsiError::Unavailable(format!("coordinator store: {other}")),
    }
}

fn topology(node: &str) -> Vec<BTreeMap<String, String>> {
    vec![BTreeMap::from([(
        TOPOLOGY_NODE_KEY.to_owned(),
        node.to_owned(),
    )])]
}

/// A volume as the store records it (the CO's name and parameters are not kept).
fn volume_of(r: VolumeLocation) -> Volume {
    Volume {
        topology: r.nodes.first().map(|n| topology(n)).unwrap_or_default(),
        context: BTreeMap::new(),
        id: r.id,
        name: String::new(),
        capacity_bytes: r.size_bytes,
        parameters: BTreeMap::new(),
        source: None,
    }
}

impl NodeLocalVolumes {
    /// The backend over the coordinator's store and engine.
    pub fn new(store: Arc<dyn Store>, engine: Arc<Engine>) -> Self {
        Self { store, engine }
    }

    async fn record(&self, id: &str) -> Result<Option<VolumeLocation>, CsiError> {
        Ok(self
            .store
            .volumes()
            .await
            .map_err(store_err)?
            .into_iter()
            .find(|v| v.id == id))
    }

    fn owner(record: &VolumeLocation) -> Result<&str, CsiError> {
        record
            .nodes
            .first()
            .map(String::as_str)
            .ok_or_else(|| CsiError::Internal(format!("volume {} has no node", record.id)))
    }

    /// Node views for placement: agents with a session, their labels and free space.
    fn nodes(&self) -> Vec<StorageNode> {
        self.engine
            .agents()
            .into_iter()
            .map(|(name, a)| {
                let mut labels = a.labels;
                labels.insert(TOPOLOGY_NODE_KEY.to_owned(), name.clone());
                StorageNode {
                    name,
                    labels,
                    healthy: a.healthy,
                    total_bytes: a.total_bytes.max(a.free_bytes),
                    free_bytes: a.free_bytes,
                    volumes: 0,
                }
            })
            .collect()
    }

    async fn place(&self, id: &str, spec: &VolumeSpec) -> Result<String, CsiError> {
        let request = VolumeRequest {
            id: id.to_owned(),
            size_bytes: spec.capacity_bytes,
            replicas: 1,
            requisite: spec.requisite.clone(),
            preferred: spec.preferred.clone(),
            node_selector: BTreeMap::new(),
        };
        let chosen = placement::place(&self.nodes(), &request)
            .map_err(|e| CsiError::ResourceExhausted(e.to_string()))?;
        chosen
            .into_iter()
            .next()
            .ok_or_else(|| CsiError::ResourceExhausted(format!("no node for volume {id}")))
    }
}

#[async_trait]
impl VolumeBackend for NodeLocalVolumes {
    fn features(&self) -> BackendFeatures {
        BackendFeatures {
            expansion: true,
            ..BackendFeatures::default()
        }
    }

    fn validate_parameters(&self, parameters: &BTreeMap<String, String>) -> Result<(), CsiError> {
        hearth_csi::loopfile::validate_parameters(parameters)
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume, CsiError> {
        if spec.source.is_some() {
            return Err(CsiError::InvalidArgument(
                "loopfile volumes on node agents cannot be restored or cloned; \
                 snapshots and clones work with hearth dev"
                    .into(),
            ));
        }
        let id = volume_id_for(&spec.name);
        let node = match self.record(&id).await? {
            Some(r) => Self::owner(&r)?.to_owned(),
            None => {
                let node = self.place(&id, spec).await?;
                // Recorded before the node acts, and created once: a retry, or a call that
                // another replica serves at the same time, goes to the same node.
                let record = VolumeLocation {
                    id: id.clone(),
                    nodes: vec![node.clone()],
                    size_bytes: spec.capacity_bytes,
                };
                match self.store.create_volume(&record).await {
                    Ok(()) => {
                        tracing::info!(volume = %id, name = %spec.name, %node, "volume placed");
                        node
                    }
                    Err(StoreError::Conflict(_)) => {
                        let placed = self.record(&id).await?.ok_or_else(|| {
                            CsiError::Aborted(format!("volume {id}: placement raced; retry"))
                        })?;
                        Self::owner(&placed)?.to_owned()
                    }
                    Err(e) => return Err(store_err(e)),
                }
            }
        };
        let op = Op::Create(CreateLocal {
            name: spec.name.clone(),
            capacity_bytes: spec.capacity_bytes,
            limit_bytes: spec.limit_bytes,
            parameters: spec
                .parameters
                .clone()
                .into_iter()
                .collect::<HashMap<_, _>>(),
        });
        let reply = match self.engine.call(&node, op, CALL_TIMEOUT).await {
            Ok(r) => r,
            Err(e @ (CsiError::ResourceExhausted(_) | CsiError::InvalidArgument(_))) => {
                // Nothing was made there: forget the placement so a retry may go elsewhere.
                let _ = self.store.delete_volume(&id).await;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        if reply.volume_id != id {
            return Err(CsiError::Internal(format!(
                "node {node} created {} for {}, expected {id}",
                reply.volume_id, spec.name
            )));
        }
        Ok(Volume {
            id,
            name: spec.name.clone(),
            capacity_bytes: reply.capacity_bytes,
            parameters: spec.parameters.clone(),
            source: None,
            topology: topology(&node),
            context: BTreeMap::new(),
        })
    }

    async fn delete_volume(&self, volume_id: &str) -> Result<(), CsiError> {
        if !is_volume_id(volume_id) {
            return Ok(());
        }
        let Some(record) = self.record(volume_id).await? else {
            return Ok(());
        };
        let node = Self::owner(&record)?.to_owned();
        self.engine
            .call(
                &node,
                Op::DeleteVolumeId(volume_id.to_owned()),
                CALL_TIMEOUT,
            )
            .await?;
        self.store
            .delete_volume(volume_id)
            .await
            .map_err(store_err)?;
        tracing::info!(volume = %volume_id, %node, "volume deleted");
        Ok(())
    }

    async fn get_volume(&self, volume_id: &str) -> Result<Option<Volume>, CsiError> {
        Ok(self.record(volume_id).await?.map(volume_of))
    }

    async fn list_volumes(&self) -> Result<Vec<Volume>, CsiError> {
        let mut out: Vec<Volume> = self
            .store
            .volumes()
            .await
            .map_err(store_err)?
            .into_iter()
            .filter(|r| is_volume_id(&r.id))
            .map(volume_of)
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn volume_condition(&self, volume_id: &str) -> Result<Condition, CsiError> {
        let record = self
            .record(volume_id)
            .await?
            .ok_or_else(|| CsiError::NotFound(format!("volume {volume_id} does not exist")))?;
        let node = Self::owner(&record)?.to_owned();
        match self
            .engine
            .call(&node, Op::GetVolumeId(volume_id.to_owned()), CALL_TIMEOUT)
            .await
        {
            Ok(r) if !r.found => Ok(Condition {
                abnormal: true,
                message: format!("node {node} has no image for this volume"),
            }),
            Ok(r) => Ok(Condition {
                abnormal: r.abnormal,
                message: r.condition,
            }),
            Err(e) => Ok(Condition {
                abnormal: true,
                message: format!("node {node} cannot be asked: {e}"),
            }),
        }
    }

    async fn expand_volume(&self, volume_id: &str, capacity_bytes: u64) -> Result<u64, CsiError> {
        let record = self
            .record(volume_id)
            .await?
            .ok_or_else(|| CsiError::NotFound(format!("volume {volume_id} does not exist")))?;
        let node = Self::owner(&record)?.to_owned();
        let op = Op::Expand(ExpandLocal {
            volume_id: volume_id.to_owned(),
            capacity_bytes,
        });
        let reply = self.engine.call(&node, op, CALL_TIMEOUT).await?;
        let grown = VolumeLocation {
            size_bytes: reply.capacity_bytes,
            ..record.clone()
        };
        // Compare-and-swap on the record read above: a placement changed meanwhile is not
        // overwritten (the call is retried and reads it again).
        self.store
            .update_volume(&record, &grown)
            .await
            .map_err(store_err)?;
        Ok(reply.capacity_bytes)
    }

    async fn create_snapshot(
        &self,
        _name: &str,
        _source_volume_id: &str,
    ) -> Result<Snapshot, CsiError> {
        Err(CsiError::Unimplemented(
            "snapshots of loopfile volumes on node agents are not supported".into(),
        ))
    }

    async fn delete_snapshot(&self, _snapshot_id: &str) -> Result<(), CsiError> {
        Err(CsiError::Unimplemented(
            "snapshots of loopfile volumes on node agents are not supported".into(),
        ))
    }

    async fn list_snapshots(&self) -> Result<Vec<Snapshot>, CsiError> {
        Ok(Vec::new())
    }

    async fn available_capacity(
        &self,
        _parameters: &BTreeMap<String, String>,
        segment: Option<&BTreeMap<String, String>>,
    ) -> Result<u64, CsiError> {
        Ok(self
            .nodes()
            .iter()
            .filter(|n| n.healthy)
            .filter(|n| segment.is_none_or(|s| s.iter().all(|(k, v)| n.labels.get(k) == Some(v))))
            .map(|n| n.free_bytes)
            .max()
            .unwrap_or(0))
    }
}
