//! The CSI Controller service, generic over a [`VolumeBackend`].
//!
//! Handlers are thin: validate every field (INVALID_ARGUMENT first), take the per-object lock
//! (ABORTED when busy), call the backend, and shape the response. Only the capabilities the
//! backend really has are advertised; the RPCs of the others answer UNIMPLEMENTED, as the spec
//! asks for capabilities a plugin does not report.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use hearth_proto::csi::v1::controller_server::Controller;
use hearth_proto::csi::v1::controller_service_capability::{self, rpc};
use hearth_proto::csi::v1::volume_content_source::{self, SnapshotSource, VolumeSource};
use hearth_proto::csi::v1::{self as csi, *};
use tonic::{Request, Response, Status};

use crate::attach::Condition;
use crate::backend::{ContentSource, PublishSpec, Snapshot, Volume, VolumeBackend, VolumeSpec};
use crate::locks::OperationLocks;
use crate::validate::{self, DEFAULT_SIZE, MAX_SIZE, SIZE_UNIT};
use crate::CsiError;

/// The Controller service.
pub struct ControllerService<B> {
    backend: Arc<B>,
    locks: OperationLocks,
}

impl<B: VolumeBackend> ControllerService<B> {
    /// A controller over `backend`.
    pub fn new(backend: Arc<B>) -> Self {
        Self {
            backend,
            locks: OperationLocks::default(),
        }
    }

    fn capabilities(&self) -> Vec<rpc::Type> {
        let f = self.backend.features();
        let mut caps = vec![
            rpc::Type::CreateDeleteVolume,
            rpc::Type::ListVolumes,
            rpc::Type::GetCapacity,
            rpc::Type::GetVolume,
            rpc::Type::VolumeCondition,
            rpc::Type::SingleNodeMultiWriter,
        ];
        if f.snapshots {
            caps.extend([
                rpc::Type::CreateDeleteSnapshot,
                rpc::Type::ListSnapshots,
                rpc::Type::GetSnapshot,
            ]);
        }
        if f.clones {
            caps.push(rpc::Type::CloneVolume);
        }
        if f.expansion {
            caps.push(rpc::Type::ExpandVolume);
        }
        if f.publish {
            caps.extend([
                rpc::Type::PublishUnpublishVolume,
                rpc::Type::PublishReadonly,
            ]);
        }
        caps
    }

    fn multi_node(&self) -> bool {
        self.backend.features().multi_node
    }

    fn require_snapshots(&self) -> Result<(), CsiError> {
        if self.backend.features().snapshots {
            Ok(())
        } else {
            Err(CsiError::Unimplemented(
                "this backend does not support snapshots".into(),
            ))
        }
    }

    async fn create_volume(
        &self,
        req: CreateVolumeRequest,
    ) -> Result<CreateVolumeResponse, CsiError> {
        let name = validate::required("name", &req.name)?;
        validate::accesses(&req.volume_capabilities, self.multi_node())?;
        let parameters: BTreeMap<_, _> = req.parameters.into_iter().collect();
        self.backend.validate_parameters(&parameters)?;
        let (capacity_bytes, limit_bytes) =
            validate::capacity(req.capacity_range.as_ref(), DEFAULT_SIZE)?;
        let source = match req.volume_content_source.and_then(|s| s.r#type) {
            None => None,
            Some(volume_content_source::Type::Snapshot(s)) => {
                self.require_snapshots()?;
                Some(ContentSource::Snapshot(
                    validate::required("snapshot_id", &s.snapshot_id)?.to_owned(),
                ))
            }
            Some(volume_content_source::Type::Volume(v)) => {
                if !self.backend.features().clones {
                    return Err(CsiError::InvalidArgument(
                        "this backend cannot clone volumes".into(),
                    ));
                }
                Some(ContentSource::Volume(
                    validate::required("volume_id", &v.volume_id)?.to_owned(),
                ))
            }
        };
        let segments = |list: Vec<Topology>| -> Vec<BTreeMap<String, String>> {
            list.into_iter()
                .map(|s| s.segments.into_iter().collect())
                .collect()
        };
        let (requisite, preferred) = req
            .accessibility_requirements
            .map(|t| (segments(t.requisite), segments(t.preferred)))
            .unwrap_or_default();
        let _lock = self.locks.try_lock(&format!("name/{name}"))?;
        let spec = VolumeSpec {
            name: name.to_owned(),
            capacity_bytes,
            limit_bytes,
            parameters,
            source,
            requisite,
            preferred,
        };
        let volume = self.backend.create_volume(&spec).await?;
        tracing::info!(volume = %volume.id, name, bytes = volume.capacity_bytes, "volume ready");
        Ok(CreateVolumeResponse {
            volume: Some(to_csi_volume(volume)),
        })
    }

    async fn delete_volume(
        &self,
        req: DeleteVolumeRequest,
    ) -> Result<DeleteVolumeResponse, CsiError> {
        let id = validate::required("volume_id", &req.volume_id)?;
        let _lock = self.locks.try_lock(id)?;
        self.backend.delete_volume(id).await?;
        tracing::info!(volume = %id, "volume deleted");
        Ok(DeleteVolumeResponse {})
    }

    async fn publish(
        &self,
        req: ControllerPublishVolumeRequest,
    ) -> Result<ControllerPublishVolumeResponse, CsiError> {
        if !self.backend.features().publish {
            return Err(CsiError::Unimplemented(
                "PUBLISH_UNPUBLISH_VOLUME is not a capability of this backend".into(),
            ));
        }
        let id = validate::required("volume_id", &req.volume_id)?;
        let node = validate::required("node_id", &req.node_id)?;
        let cap = req
            .volume_capability
            .as_ref()
            .ok_or_else(|| CsiError::InvalidArgument("volume_capability is required".into()))?;
        let access = validate::access(cap, self.multi_node())?;
        let multi_writer = matches!(access, validate::Access::Block { .. })
            && !access.reader_only()
            && cap.access_mode.as_ref().is_some_and(|m| {
                m.mode == volume_capability::access_mode::Mode::MultiNodeMultiWriter as i32
                    || m.mode == volume_capability::access_mode::Mode::MultiNodeSingleWriter as i32
            });
        let _lock = self.locks.try_lock(id)?;
        let spec = PublishSpec {
            volume_id: id.to_owned(),
            node_id: node.to_owned(),
            readonly: req.readonly || access.reader_only(),
            multi_writer,
        };
        let publish_context = self.backend.publish(&spec).await?;
        tracing::info!(volume = %id, node, "published to node");
        Ok(ControllerPublishVolumeResponse { publish_context })
    }

    async fn unpublish(
        &self,
        req: ControllerUnpublishVolumeRequest,
    ) -> Result<ControllerUnpublishVolumeResponse, CsiError> {
        if !self.backend.features().publish {
            return Err(CsiError::Unimplemented(
                "PUBLISH_UNPUBLISH_VOLUME is not a capability of this backend".into(),
            ));
        }
        let id = validate::required("volume_id", &req.volume_id)?;
        let _lock = self.locks.try_lock(id)?;
        // An empty node_id means every node, as the spec allows.
        self.backend.unpublish(id, &req.node_id).await?;
        tracing::info!(volume = %id, node = %req.node_id, "unpublished from node");
        Ok(ControllerUnpublishVolumeResponse {})
    }

    async fn existing(&self, id: &str) -> Result<Volume, CsiError> {
        self.backend
            .get_volume(id)
            .await?
            .ok_or_else(|| CsiError::NotFound(format!("volume {id} does not exist")))
    }

    async fn validate_capabilities(
        &self,
        req: ValidateVolumeCapabilitiesRequest,
    ) -> Result<ValidateVolumeCapabilitiesResponse, CsiError> {
        let id = validate::required("volume_id", &req.volume_id)?;
        if req.volume_capabilities.is_empty() {
            return Err(CsiError::InvalidArgument(
                "volume_capabilities is required".into(),
            ));
        }
        let volume = self.existing(id).await?;
        let parameters: BTreeMap<_, _> = req.parameters.clone().into_iter().collect();
        let unsupported = req
            .volume_capabilities
            .iter()
            .find_map(|c| validate::access(c, self.multi_node()).err())
            .map(|e| e.to_string())
            .or_else(|| {
                (!parameters.is_empty() && parameters != volume.parameters)
                    .then(|| "parameters differ from the volume's".to_owned())
            });
        Ok(match unsupported {
            Some(message) => ValidateVolumeCapabilitiesResponse {
                confirmed: None,
                message,
            },
            None => ValidateVolumeCapabilitiesResponse {
                confirmed: Some(validate_volume_capabilities_response::Confirmed {
                    volume_context: req.volume_context,
                    volume_capabilities: req.volume_capabilities,
                    parameters: req.parameters,
                    mutable_parameters: req.mutable_parameters,
                }),
                message: String::new(),
            },
        })
    }

    async fn list_volumes(&self, req: ListVolumesRequest) -> Result<ListVolumesResponse, CsiError> {
        let all = self.backend.list_volumes().await?;
        let (page, next_token) = paginate(all, |v| &v.id, &req.starting_token, req.max_entries)?;
        let mut entries = Vec::with_capacity(page.len());
        for volume in page {
            let condition = self.backend.volume_condition(&volume.id).await.ok();
            entries.push(list_volumes_response::Entry {
                status: Some(list_volumes_response::VolumeStatus {
                    published_node_ids: Vec::new(),
                    volume_condition: condition.map(to_csi_condition),
                }),
                volume: Some(to_csi_volume(volume)),
            });
        }
        Ok(ListVolumesResponse {
            entries,
            next_token,
        })
    }

    async fn get_capacity(&self, req: GetCapacityRequest) -> Result<GetCapacityResponse, CsiError> {
        let parameters: BTreeMap<_, _> = req.parameters.into_iter().collect();
        self.backend.validate_parameters(&parameters)?;
        let servable = req
            .volume_capabilities
            .iter()
            .all(|c| validate::access(c, self.multi_node()).is_ok());
        let segment: Option<BTreeMap<_, _>> = req
            .accessible_topology
            .map(|t| t.segments.into_iter().collect());
        let available = if servable {
            self.backend
                .available_capacity(&parameters, segment.as_ref())
                .await?
        } else {
            0
        };
        let available = available / SIZE_UNIT * SIZE_UNIT;
        Ok(GetCapacityResponse {
            available_capacity: crate::validate::to_i64(available),
            maximum_volume_size: Some(crate::validate::to_i64(available.min(MAX_SIZE))),
            minimum_volume_size: Some(crate::validate::to_i64(SIZE_UNIT)),
        })
    }

    async fn create_snapshot(
        &self,
        req: CreateSnapshotRequest,
    ) -> Result<CreateSnapshotResponse, CsiError> {
        self.require_snapshots()?;
        let name = validate::required("name", &req.name)?;
        let source = validate::required("source_volume_id", &req.source_volume_id)?;
        if !req.parameters.is_empty() {
            return Err(CsiError::InvalidArgument(format!(
                "unknown VolumeSnapshotClass parameter {:?}: this backend takes none",
                req.parameters
                    .keys()
                    .next()
                    .map(String::as_str)
                    .unwrap_or_default()
            )));
        }
        let _lock = self.locks.try_lock(&format!("snapshot-name/{name}"))?;
        let snapshot = self.backend.create_snapshot(name, source).await?;
        tracing::info!(snapshot = %snapshot.id, volume = %source, "snapshot ready");
        Ok(CreateSnapshotResponse {
            snapshot: Some(to_csi_snapshot(snapshot)),
        })
    }

    async fn delete_snapshot(
        &self,
        req: DeleteSnapshotRequest,
    ) -> Result<DeleteSnapshotResponse, CsiError> {
        self.require_snapshots()?;
        let id = validate::required("snapshot_id", &req.snapshot_id)?;
        let _lock = self.locks.try_lock(id)?;
        self.backend.delete_snapshot(id).await?;
        Ok(DeleteSnapshotResponse {})
    }

    async fn list_snapshots(
        &self,
        req: ListSnapshotsRequest,
    ) -> Result<ListSnapshotsResponse, CsiError> {
        self.require_snapshots()?;
        let all: Vec<_> = self
            .backend
            .list_snapshots()
            .await?
            .into_iter()
            .filter(|s| req.snapshot_id.is_empty() || s.id == req.snapshot_id)
            .filter(|s| {
                req.source_volume_id.is_empty() || s.source_volume_id == req.source_volume_id
            })
            .collect();
        let (page, next_token) = paginate(all, |s| &s.id, &req.starting_token, req.max_entries)?;
        let entries = page
            .into_iter()
            .map(|s| list_snapshots_response::Entry {
                snapshot: Some(to_csi_snapshot(s)),
            })
            .collect();
        Ok(ListSnapshotsResponse {
            entries,
            next_token,
        })
    }

    async fn get_snapshot(&self, req: GetSnapshotRequest) -> Result<GetSnapshotResponse, CsiError> {
        self.require_snapshots()?;
        let id = validate::required("snapshot_id", &req.snapshot_id)?;
        let snapshot = self
            .backend
            .list_snapshots()
            .await?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| CsiError::NotFound(format!("snapshot {id} does not exist")))?;
        Ok(GetSnapshotResponse {
            snapshot: Some(to_csi_snapshot(snapshot)),
        })
    }

    async fn expand_volume(
        &self,
        req: ControllerExpandVolumeRequest,
    ) -> Result<ControllerExpandVolumeResponse, CsiError> {
        if !self.backend.features().expansion {
            return Err(CsiError::Unimplemented(
                "this backend cannot grow volumes".into(),
            ));
        }
        let id = validate::required("volume_id", &req.volume_id)?;
        let range = req
            .capacity_range
            .as_ref()
            .ok_or_else(|| CsiError::InvalidArgument("capacity_range is required".into()))?;
        if let Some(cap) = &req.volume_capability {
            validate::access(cap, self.multi_node())?;
        }
        let (size, limit) = validate::capacity(Some(range), 0)?;
        let _lock = self.locks.try_lock(id)?;
        let volume = self.existing(id).await?;
        if limit != 0 && volume.capacity_bytes > limit {
            return Err(CsiError::OutOfRange(format!(
                "volume {id} is already {} bytes, above limit_bytes {limit}; volumes never shrink",
                volume.capacity_bytes
            )));
        }
        let capacity = self.backend.expand_volume(id, size).await?;
        tracing::info!(volume = %id, bytes = capacity, "volume grown");
        Ok(ControllerExpandVolumeResponse {
            capacity_bytes: crate::validate::to_i64(capacity),
            node_expansion_required: true,
        })
    }

    async fn get_volume(
        &self,
        req: ControllerGetVolumeRequest,
    ) -> Result<ControllerGetVolumeResponse, CsiError> {
        let id = validate::required("volume_id", &req.volume_id)?;
        let volume = self.existing(id).await?;
        let condition = self.backend.volume_condition(id).await?;
        Ok(ControllerGetVolumeResponse {
            volume: Some(to_csi_volume(volume)),
            status: Some(controller_get_volume_response::VolumeStatus {
                published_node_ids: Vec::new(),
                volume_condition: Some(to_csi_condition(condition)),
            }),
        })
    }
}

const TOKEN_PREFIX: &str = "after/";

/// Pages over `items` (ordered by ID). The token is the last ID of the previous page, so
/// volumes added or deleted between pages neither repeat nor shift the pages.
fn paginate<T>(
    items: Vec<T>,
    id: impl Fn(&T) -> &String,
    starting_token: &str,
    max_entries: i32,
) -> Result<(Vec<T>, String), CsiError> {
    let max = usize::try_from(max_entries)
        .map_err(|_| CsiError::InvalidArgument(format!("max_entries {max_entries} is negative")))?;
    let after = if starting_token.is_empty() {
        None
    } else {
        Some(starting_token.strip_prefix(TOKEN_PREFIX).ok_or_else(|| {
            CsiError::Aborted(format!(
                "starting_token {starting_token:?} was not issued by this plugin"
            ))
        })?)
    };
    let mut rest: Vec<T> = items
        .into_iter()
        .filter(|i| after.is_none_or(|a| id(i).as_str() > a))
        .collect();
    if max == 0 || rest.len() <= max {
        return Ok((rest, String::new()));
    }
    rest.truncate(max);
    let next = rest
        .last()
        .map(|l| format!("{TOKEN_PREFIX}{}", id(l)))
        .unwrap_or_default();
    Ok((rest, next))
}

/// The one node all of a volume's topology segments name, if they name one.
fn single_node(topology: &[std::collections::BTreeMap<String, String>]) -> Option<String> {
    let mut nodes = topology.iter().map(|t| t.get(crate::TOPOLOGY_NODE_KEY));
    let first = nodes.next()??;
    nodes.all(|n| n == Some(first)).then(|| first.clone())
}

fn to_csi_volume(v: Volume) -> csi::Volume {
    let volume_context = single_node(&v.topology)
        .map(|n| HashMap::from([(crate::VOLUME_CONTEXT_NODE_KEY.to_owned(), n)]))
        .unwrap_or_default();
    csi::Volume {
        capacity_bytes: crate::validate::to_i64(v.capacity_bytes),
        volume_id: v.id,
        volume_context,
        content_source: v.source.map(|s| VolumeContentSource {
            r#type: Some(match s {
                ContentSource::Snapshot(snapshot_id) => {
                    volume_content_source::Type::Snapshot(SnapshotSource { snapshot_id })
                }
                ContentSource::Volume(volume_id) => {
                    volume_content_source::Type::Volume(VolumeSource { volume_id })
                }
            }),
        }),
        accessible_topology: v
            .topology
            .into_iter()
            .map(|s| Topology {
                segments: s.into_iter().collect(),
            })
            .collect(),
    }
}

fn to_csi_snapshot(s: Snapshot) -> csi::Snapshot {
    csi::Snapshot {
        size_bytes: crate::validate::to_i64(s.size_bytes),
        snapshot_id: s.id,
        source_volume_id: s.source_volume_id,
        creation_time: Some(prost_types::Timestamp::from(s.created)),
        ready_to_use: s.ready,
        group_snapshot_id: String::new(),
    }
}

/// Converts a condition to its CSI message.
pub(crate) fn to_csi_condition(c: Condition) -> VolumeCondition {
    VolumeCondition {
        abnormal: c.abnormal,
        message: c.message,
    }
}

#[tonic::async_trait]
impl<B: VolumeBackend> Controller for ControllerService<B> {
    async fn create_volume(
        &self,
        r: Request<CreateVolumeRequest>,
    ) -> Result<Response<CreateVolumeResponse>, Status> {
        Ok(Response::new(self.create_volume(r.into_inner()).await?))
    }

    async fn delete_volume(
        &self,
        r: Request<DeleteVolumeRequest>,
    ) -> Result<Response<DeleteVolumeResponse>, Status> {
        Ok(Response::new(self.delete_volume(r.into_inner()).await?))
    }

    async fn controller_publish_volume(
        &self,
        r: Request<ControllerPublishVolumeRequest>,
    ) -> Result<Response<ControllerPublishVolumeResponse>, Status> {
        Ok(Response::new(self.publish(r.into_inner()).await?))
    }

    async fn controller_unpublish_volume(
        &self,
        r: Request<ControllerUnpublishVolumeRequest>,
    ) -> Result<Response<ControllerUnpublishVolumeResponse>, Status> {
        Ok(Response::new(self.unpublish(r.into_inner()).await?))
    }

    async fn validate_volume_capabilities(
        &self,
        r: Request<ValidateVolumeCapabilitiesRequest>,
    ) -> Result<Response<ValidateVolumeCapabilitiesResponse>, Status> {
        Ok(Response::new(
            self.validate_capabilities(r.into_inner()).await?,
        ))
    }

    async fn list_volumes(
        &self,
        r: Request<ListVolumesRequest>,
    ) -> Result<Response<ListVolumesResponse>, Status> {
        Ok(Response::new(self.list_volumes(r.into_inner()).await?))
    }

    async fn get_capacity(
        &self,
        r: Request<GetCapacityRequest>,
    ) -> Result<Response<GetCapacityResponse>, Status> {
        Ok(Response::new(self.get_capacity(r.into_inner()).await?))
    }

    async fn controller_get_capabilities(
        &self,
        _r: Request<ControllerGetCapabilitiesRequest>,
    ) -> Result<Response<ControllerGetCapabilitiesResponse>, Status> {
        let capabilities = self
            .capabilities()
            .into_iter()
            .map(|t| ControllerServiceCapability {
                r#type: Some(controller_service_capability::Type::Rpc(
                    controller_service_capability::Rpc { r#type: t as i32 },
                )),
            })
            .collect();
        Ok(Response::new(ControllerGetCapabilitiesResponse {
            capabilities,
        }))
    }

    async fn create_snapshot(
        &self,
        r: Request<CreateSnapshotRequest>,
    ) -> Result<Response<CreateSnapshotResponse>, Status> {
        Ok(Response::new(self.create_snapshot(r.into_inner()).await?))
    }

    async fn delete_snapshot(
        &self,
        r: Request<DeleteSnapshotRequest>,
    ) -> Result<Response<DeleteSnapshotResponse>, Status> {
        Ok(Response::new(self.delete_snapshot(r.into_inner()).await?))
    }

    async fn list_snapshots(
        &self,
        r: Request<ListSnapshotsRequest>,
    ) -> Result<Response<ListSnapshotsResponse>, Status> {
        Ok(Response::new(self.list_snapshots(r.into_inner()).await?))
    }

    async fn get_snapshot(
        &self,
        r: Request<GetSnapshotRequest>,
    ) -> Result<Response<GetSnapshotResponse>, Status> {
        Ok(Response::new(self.get_snapshot(r.into_inner()).await?))
    }

    async fn controller_expand_volume(
        &self,
        r: Request<ControllerExpandVolumeRequest>,
    ) -> Result<Response<ControllerExpandVolumeResponse>, Status> {
        Ok(Response::new(self.expand_volume(r.into_inner()).await?))
    }

    async fn controller_get_volume(
        &self,
        r: Request<ControllerGetVolumeRequest>,
    ) -> Result<Response<ControllerGetVolumeResponse>, Status> {
        Ok(Response::new(self.get_volume(r.into_inner()).await?))
    }

    async fn controller_modify_volume(
        &self,
        _r: Request<ControllerModifyVolumeRequest>,
    ) -> Result<Response<ControllerModifyVolumeResponse>, Status> {
        Err(CsiError::Unimplemented(
            "MODIFY_VOLUME is not a capability: volumes have no mutable parameters".into(),
        )
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_follows_ids_and_rejects_foreign_tokens() {
        let ids: Vec<String> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (p1, t1) = paginate(ids.clone(), |s| s, "", 2).unwrap();
        assert_eq!(p1, ["a", "b"]);
        let (p2, t2) = paginate(ids.clone(), |s| s, &t1, 2).unwrap();
        assert_eq!(p2, ["c", "d"]);
        // "c" deleted between pages: the next page still starts after "d".
        let fewer: Vec<String> = ids.iter().filter(|s| *s != "c").cloned().collect();
        let (p3, t3) = paginate(fewer, |s| s, &t2, 2).unwrap();
        assert_eq!((p3, t3.as_str()), (vec!["e".to_string()], ""));
        assert!(matches!(
            paginate(ids.clone(), |s| s, "invalid-token", 2),
            Err(CsiError::Aborted(_))
        ));
        assert!(matches!(
            paginate(ids, |s| s, "", -1),
            Err(CsiError::InvalidArgument(_))
        ));
    }
}
