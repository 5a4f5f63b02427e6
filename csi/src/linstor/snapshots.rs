//! Snapshots of LINSTOR volumes: a CSI snapshot is a LINSTOR snapshot of the volume's
//! resource definition, with the ID `<resource definition>/<snapshot>`.

use std::time::{Duration, UNIX_EPOCH};

use super::backend::{existing_ok, found, is_live, is_ours, LinstorBackend};
use super::client::{self, ViewFilter};
use super::names;
use crate::backend::Snapshot;
use crate::CsiError;

fn to_snapshot(s: &client::Snapshot) -> Snapshot {
    let created = s
        .created_ms()
        .and_then(|ms| u64::try_from(ms).ok())
        .map_or(UNIX_EPOCH, |ms| UNIX_EPOCH + Duration::from_millis(ms));
    Snapshot {
        id: names::snapshot_id(&s.resource_name, &s.name),
        name: s.name.clone(),
        source_volume_id: s.resource_name.clone(),
        size_bytes: s
            .volume_definitions
            .first()
            .map_or(0, |v| v.size_kib.saturating_mul(1024)),
        created,
        ready: s.is_successful(),
    }
}

impl LinstorBackend {
    pub(super) async fn snapshot(&self, name: &str, source: &str) -> Result<Snapshot, CsiError> {
        let missing = || CsiError::NotFound(format!("source volume {source} does not exist"));
        if !names::is_linstor_name(source) {
            return Err(missing());
        }
        match found(self.client.get_resource_definition(source).await)? {
            Some(rd) if is_live(&rd) => {}
            _ => return Err(missing()),
        }
        let snap = names::snapshot_name(name);
        // The CSI name is unique across volumes: the same name on another volume is a conflict.
        let filter = ViewFilter::default();
        let clash = self
            .client
            .snapshot_view(&filter)
            .await?
            .into_iter()
            .find(|s| s.name == snap && s.resource_name != source);
        if let Some(other) = clash {
            return Err(CsiError::AlreadyExists(format!(
                "snapshot {name} exists for volume {}",
                other.resource_name
            )));
        }
        existing_ok(self.client.create_snapshot(source, &snap, &[]).await)?;
        let taken = self.client.get_snapshot(source, &snap).await?;
        if taken.is_failed() {
            return Err(CsiError::Internal(format!(
                "LINSTOR reports snapshot {snap} of {source} as failed"
            )));
        }
        Ok(to_snapshot(&taken))
    }

    pub(super) async fn snapshots(&self) -> Result<Vec<Snapshot>, CsiError> {
        let ours: std::collections::HashSet<String> = self
            .client
            .list_resource_definitions(false)
            .await?
            .into_iter()
            .filter(is_ours)
            .map(|rd| rd.name)
            .collect();
        let mut out: Vec<Snapshot> = self
            .client
            .snapshot_view(&ViewFilter::default())
            .await?
            .iter()
            .filter(|s| ours.contains(&s.resource_name))
            .map(to_snapshot)
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}
