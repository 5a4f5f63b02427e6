//! The CSI Controller service, generic over a [`VolumeBackend`].
//!
//! Handlers are thin: validate every field (INVALID_ARGUMENT first), take the per-object lock
//! (ABORTED when busy), call the backend, and shape the response. Only the capabilities the
//! backend really has are advertised; the RPCs of the others answer UNIMPLEMENTED, as the spec
//! asks for capabilities a plugin does not report.
//!
//! The handlers live by object: volumes (`volumes.rs`), snapshots (`snapshots.rs`); the wire
//! conversions and the page tokens in `convert.rs`. This file holds the service, its
//! capabilities and the gRPC trait.

use std::sync::Arc;

use hearth_proto::csi::v1::controller_server::Controller;
use hearth_proto::csi::v1::controller_service_capability::{self, rpc};
use hearth_proto::csi::v1::*;
use tonic::{Request, Response, Status};

use crate::backend::VolumeBackend;
use crate::locks::OperationLocks;
use crate::CsiError;

mod convert;
mod snapshots;
mod volumes;

pub(crate) use convert::to_csi_condition;

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

    pub(super) fn capabilities(&self) -> Vec<rpc::Type> {
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

    pub(super) fn multi_node(&self) -> bool {
        self.backend.features().multi_node
    }

    pub(super) fn require_snapshots(&self) -> Result<(), CsiError> {
        if self.backend.features().snapshots {
            Ok(())
        } else {
            Err(CsiError::Unimplemented(
                "this backend does not support snapshots".into(),
            ))
        }
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
