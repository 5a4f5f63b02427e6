//! The volume handlers of the Controller service: create, delete, publish, unpublish, validate,
//! list, capacity, expand and get. Each validates first, locks the volume, then asks the backend.

use std::collections::BTreeMap;

use hearth_proto::csi::v1::volume_content_source;
use hearth_proto::csi::v1::*;

use super::convert::{paginate, to_csi_condition, to_csi_volume};
use super::ControllerService;
use crate::backend::{ContentSource, PublishSpec, Volume, VolumeBackend, VolumeSpec};
use crate::validate::{self, DEFAULT_SIZE, MAX_SIZE, SIZE_UNIT};
use crate::CsiError;

impl<B: VolumeBackend> ControllerService<B> {
    pub(super) async fn create_volume(
        &self,
        req: CreateVolumeRequest,
    ) -> Result<CreateVolumeResponse, CsiError> {
        let name = validate::required("name", &req.name)?;
        validate::accesses(&req.volume_capabilities, self.multi_node())?;
        let parameters: BTreeMap<_, _> = req.parameters.into_iter().collect();
        self.backend.validate_parameters(&parameters)?;
        validate::parameter_fs(&parameters)?;
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

    pub(super) async fn delete_volume(
        &self,
        req: DeleteVolumeRequest,
    ) -> Result<DeleteVolumeResponse, CsiError> {
        let id = validate::required("volume_id", &req.volume_id)?;
        let _lock = self.locks.try_lock(id)?;
        self.backend.delete_volume(id).await?;
        tracing::info!(volume = %id, "volume deleted");
        Ok(DeleteVolumeResponse {})
    }

    pub(super) async fn publish(
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

    pub(super) async fn unpublish(
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

    pub(super) async fn existing(&self, id: &str) -> Result<Volume, CsiError> {
        self.backend
            .get_volume(id)
            .await?
            .ok_or_else(|| CsiError::NotFound(format!("volume {id} does not exist")))
    }

    pub(super) async fn validate_capabilities(
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

    pub(super) async fn list_volumes(
        &self,
        req: ListVolumesRequest,
    ) -> Result<ListVolumesResponse, CsiError> {
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

    pub(super) async fn get_capacity(
        &self,
        req: GetCapacityRequest,
    ) -> Result<GetCapacityResponse, CsiError> {
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

    pub(super) async fn expand_volume(
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
        // A raw block volume has no filesystem to grow on the node.
        let block = req.volume_capability.as_ref().is_some_and(|c| {
            matches!(c.access_type, Some(volume_capability::AccessType::Block(_)))
        });
        Ok(ControllerExpandVolumeResponse {
            capacity_bytes: crate::validate::to_i64(capacity),
            node_expansion_required: !block,
        })
    }

    pub(super) async fn get_volume(
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
