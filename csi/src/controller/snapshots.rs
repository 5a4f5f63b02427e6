//! The snapshot handlers of the Controller service: create, delete, list and get. Each answers
//! UNIMPLEMENTED when the backend has no snapshots.

use hearth_proto::csi::v1::*;

use super::convert::{paginate, to_csi_snapshot};
use super::ControllerService;
use crate::backend::VolumeBackend;
use crate::validate;
use crate::CsiError;

impl<B: VolumeBackend> ControllerService<B> {
    pub(super) async fn create_snapshot(
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

    pub(super) async fn delete_snapshot(
        &self,
        req: DeleteSnapshotRequest,
    ) -> Result<DeleteSnapshotResponse, CsiError> {
        self.require_snapshots()?;
        let id = validate::required("snapshot_id", &req.snapshot_id)?;
        let _lock = self.locks.try_lock(id)?;
        self.backend.delete_snapshot(id).await?;
        Ok(DeleteSnapshotResponse {})
    }

    pub(super) async fn list_snapshots(
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

    pub(super) async fn get_snapshot(
        &self,
        req: GetSnapshotRequest,
    ) -> Result<GetSnapshotResponse, CsiError> {
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
}
