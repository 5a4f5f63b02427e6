//! Snapshots of loopfile volumes: a snapshot is a copy of the volume's image under
//! `snapshots/`, recorded before the copy and marked ready after it, so a crash leaves a
//! record that says what to finish or undo.

use std::time::SystemTime;

use super::super::catalog::{RecordState, SnapshotRecord};
use super::super::{is_snapshot_id, new_id, SNAPSHOT_PREFIX};
use super::{remove_image, Inner};
use crate::backend::Snapshot;
use crate::CsiError;

impl Inner {
    pub(super) fn snapshot_ready(&self, id: &str) -> Result<Option<SnapshotRecord>, CsiError> {
        if !is_snapshot_id(id) {
            return Ok(None);
        }
        Ok(self
            .catalog
            .snapshot(id)?
            .filter(|s| s.state == RecordState::Ready))
    }

    pub(super) fn remove_snapshot_files(&self, id: &str) -> Result<(), CsiError> {
        remove_image(&self.layout.snapshot_image(id))?;
        self.catalog.remove_snapshot(id)?;
        Ok(())
    }

    pub(super) fn create_snapshot(
        &self,
        name: &str,
        source_volume_id: &str,
    ) -> Result<Snapshot, CsiError> {
        if let Some(existing) = self.catalog.snapshot_by_name(name)? {
            if existing.source_volume_id != source_volume_id {
                return Err(CsiError::AlreadyExists(format!(
                    "snapshot {name} exists with source volume {}",
                    existing.source_volume_id
                )));
            }
            match existing.state {
                RecordState::Ready => return Ok(to_snapshot(existing)),
                RecordState::Deleting => {
                    return Err(CsiError::Aborted(format!(
                        "snapshot {name} is being deleted; retry"
                    )))
                }
                RecordState::Creating => return self.finish_snapshot(existing),
            }
        }
        let volume = self.volume_ready(source_volume_id)?.ok_or_else(|| {
            CsiError::NotFound(format!("source volume {source_volume_id} does not exist"))
        })?;
        self.ensure_space(volume.capacity_bytes)?;
        let record = SnapshotRecord {
            id: new_id(SNAPSHOT_PREFIX),
            name: name.to_owned(),
            source_volume_id: volume.id,
            size_bytes: volume.capacity_bytes,
            created: SystemTime::now(),
            state: RecordState::Creating,
        };
        self.catalog.insert_snapshot(&record)?;
        self.finish_snapshot(record)
    }

    pub(super) fn finish_snapshot(&self, mut record: SnapshotRecord) -> Result<Snapshot, CsiError> {
        let image = self.layout.snapshot_image(&record.id);
        if !image.exists() {
            let source = self.layout.volume_image(&record.source_volume_id);
            let made = if self.volume_ready(&record.source_volume_id)?.is_some() {
                self.materialize(&record.id, &image, record.size_bytes, Some(&source))
            } else {
                Err(CsiError::NotFound(format!(
                    "source volume {} does not exist",
                    record.source_volume_id
                )))
            };
            if let Err(e) = made {
                self.catalog.remove_snapshot(&record.id)?;
                return Err(e);
            }
        }
        self.catalog
            .set_snapshot_state(&record.id, RecordState::Ready)?;
        record.state = RecordState::Ready;
        Ok(to_snapshot(record))
    }

    pub(super) fn delete_snapshot(&self, id: &str) -> Result<(), CsiError> {
        if !is_snapshot_id(id) || self.catalog.snapshot(id)?.is_none() {
            return Ok(());
        }
        self.catalog.set_snapshot_state(id, RecordState::Deleting)?;
        self.remove_snapshot_files(id)
    }
}

pub(super) fn to_snapshot(r: SnapshotRecord) -> Snapshot {
    Snapshot {
        id: r.id,
        name: r.name,
        source_volume_id: r.source_volume_id,
        size_bytes: r.size_bytes,
        created: r.created,
        ready: r.state == RecordState::Ready,
    }
}
