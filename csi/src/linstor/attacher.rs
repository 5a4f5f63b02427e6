//! The LINSTOR Attacher: on the node, a volume is the DRBD device LINSTOR made available here
//! (ControllerPublish). Attach waits until the device node exists and its data is current:
//! the local disk UpToDate, or, for a diskless client, an UpToDate peer. It never mounts a
//! device whose data may be stale. NodeExpandVolume waits, bounded, for the device to reach
//! the size LINSTOR recorded (the satellites grow it after the controller).
//!
//! Where the data state comes from is a narrow trait, [`DiskState`]: `drbdsetup` on a node
//! with DRBD, or LINSTOR's resource view (what the satellites report) where there is none.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::backend::found;
use super::client::{LinstorClient, ViewFilter};
use super::names;
use super::publish::DEVICE_PATH_KEY;
use crate::attach::{Attacher, Attachment, Condition};
use crate::drbd::{DrbdStatusSource, Readiness, ReadyVia};
use crate::host::loopdev;
use crate::CsiError;

/// Whether a volume's data on this node is current.
#[async_trait::async_trait]
pub trait DiskState: Send + Sync + 'static {
    /// The readiness of volume 0 of resource `rd` on this node.
    async fn readiness(&self, rd: &str) -> Result<Readiness, CsiError>;
}

/// Readiness from the local DRBD kernel state (`drbdsetup`).
pub struct DrbdsetupState<S> {
    source: S,
}

impl<S: DrbdStatusSource + 'static> DrbdsetupState<S> {
    /// Readiness from `source`.
    pub fn new(source: S) -> Self {
        Self { source }
    }
}

#[async_trait::async_trait]
impl<S: DrbdStatusSource + 'static> DiskState for DrbdsetupState<S> {
    async fn readiness(&self, rd: &str) -> Result<Readiness, CsiError> {
        let state = self
            .source
            .status()
            .await
            .map_err(|e| CsiError::Unavailable(e.to_string()))?;
        Ok(state.readiness(rd, 0))
    }
}

/// Readiness from LINSTOR's resource view: the disk states the satellites report.
pub struct LinstorViewState {
    client: LinstorClient,
    node: String,
}

impl LinstorViewState {
    /// Readiness of resources on `node`, asked of LINSTOR.
    pub fn new(client: LinstorClient, node: &str) -> Self {
        Self {
            client,
            node: node.to_owned(),
        }
    }
}

#[async_trait::async_trait]
impl DiskState for LinstorViewState {
    async fn readiness(&self, rd: &str) -> Result<Readiness, CsiError> {
        let filter = ViewFilter {
            resources: vec![rd.to_owned()],
            ..Default::default()
        };
        let all = self.client.resource_view(&filter).await?;
        let disk = |r: &super::client::Resource| {
            r.volumes
                .first()
                .and_then(|v| v.disk_state())
                .unwrap_or("unknown")
                .to_owned()
        };
        let Some(local) = all.iter().find(|r| r.node_name == self.node) else {
            return Ok(Readiness::NotReady(format!(
                "{rd} has no replica on {}",
                self.node
            )));
        };
        let local_disk = disk(local);
        if local_disk == "UpToDate" {
            return Ok(Readiness::Ready(ReadyVia::LocalDisk));
        }
        if local.is_diskless() {
            let peers: Vec<String> = all
                .iter()
                .filter(|r| r.node_name != self.node && disk(r) == "UpToDate")
                .map(|r| r.node_name.clone())
                .collect();
            return Ok(if peers.is_empty() {
                Readiness::NotReady(format!(
                    "{rd} is diskless on {} and no peer is UpToDate",
                    self.node
                ))
            } else {
                Readiness::Ready(ReadyVia::Peers(peers))
            });
        }
        if local_disk == "Inconsistent" || local_disk == "Outdated" {
            // Syncing from a connected UpToDate peer: DRBD serves I/O now.
            let states = local
                .volumes
                .first()
                .and_then(|v| v.state.as_ref())
                .map(|s| &s.replication_states);
            let source = states.into_iter().flatten().find(|(peer, st)| {
                let syncing = matches!(
                    st.replication_state.as_deref(),
                    Some(
                        "SyncTarget" | "PausedSyncT" | "WFBitMapT" | "WFSyncUUID" | "StartingSyncT"
                    )
                );
                syncing
                    && all
                        .iter()
                        .any(|r| &r.node_name == *peer && disk(r) == "UpToDate")
            });
            if let Some((peer, st)) = source {
                return Ok(Readiness::Ready(ReadyVia::Resync {
                    from: peer.clone(),
                    percent: st.done_percentage.map(|p| format!("{:.0}", p.floor())),
                }));
            }
            return Ok(Readiness::NotReady(format!(
                "{rd}'s local disk on {} is {local_disk}, and no connected UpToDate peer to sync from",
                self.node
            )));
        }
        Ok(Readiness::NotReady(format!(
            "{rd}'s local disk on {} is {local_disk}",
            self.node
        )))
    }
}

/// Attaches LINSTOR volumes on one node.
#[derive(Clone)]
pub struct LinstorAttacher {
    client: LinstorClient,
    node: String,
    state: Arc<dyn DiskState>,
    wait: Duration,
}

impl LinstorAttacher {
    /// An attacher for `node`, judging data by `state`, waiting up to `wait` for a device
    /// (and for a device to reach a grown size).
    pub fn new(
        client: LinstorClient,
        node: &str,
        state: Arc<dyn DiskState>,
        wait: Duration,
    ) -> Self {
        Self {
            client,
            node: node.to_owned(),
            state,
            wait,
        }
    }

    async fn device_path(&self, id: &str) -> Result<Option<PathBuf>, CsiError> {
        if !names::is_linstor_name(id) {
            return Ok(None);
        }
        let volume = found(self.client.get_resource_volume(id, &self.node, 0).await)?;
        Ok(volume.and_then(|v| v.device_path).map(PathBuf::from))
    }
}

#[async_trait::async_trait]
impl Attacher for LinstorAttacher {
    async fn attach(
        &self,
        volume_id: &str,
        publish_context: &HashMap<String, String>,
    ) -> Result<Attachment, CsiError> {
        let device = match publish_context.get(DEVICE_PATH_KEY) {
            Some(p) if p.starts_with("/dev/") && !p.contains("..") => PathBuf::from(p),
            Some(p) => {
                return Err(CsiError::InvalidArgument(format!(
                    "publish context device path {p:?} is not under /dev"
                )))
            }
            None => self.device_path(volume_id).await?.ok_or_else(|| {
                CsiError::NotFound(format!(
                    "volume {volume_id} is not available on {}; ControllerPublish it first",
                    self.node
                ))
            })?,
        };
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            let why = if !device.exists() {
                format!("{} does not exist yet", device.display())
            } else {
                match self.state.readiness(volume_id).await? {
                    Readiness::Ready(via) => {
                        tracing::debug!(volume = %volume_id, "data current: {}", Readiness::Ready(via).message());
                        // ControllerPublish made the device; nothing here to undo.
                        return Ok(Attachment {
                            device,
                            fresh: false,
                        });
                    }
                    Readiness::NotReady(why) => why,
                }
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(CsiError::Unavailable(format!(
                    "volume {volume_id} is not ready to mount: {why}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn device(&self, volume_id: &str) -> Result<Option<PathBuf>, CsiError> {
        Ok(self.device_path(volume_id).await?.filter(|p| p.exists()))
    }

    async fn detach(&self, _volume_id: &str) -> Result<(), CsiError> {
        // The DRBD device stays while LINSTOR keeps the replica here; ControllerUnpublish
        // removes a temporary one. DRBD demotes itself when the last opener closes.
        Ok(())
    }

    async fn refresh_size(&self, volume_id: &str) -> Result<u64, CsiError> {
        let device = self.device(volume_id).await?.ok_or_else(|| {
            CsiError::NotFound(format!("volume {volume_id} has no device on {}", self.node))
        })?;
        tokio::task::spawn_blocking(move || loopdev::device_size(&device))
            .await?
            .map_err(|e| CsiError::internal("reading the device size", e))
    }

    async fn grown_size(&self, volume_id: &str, required: u64) -> Result<u64, CsiError> {
        // LINSTOR records a new size before the satellites grow the devices
        // (CtrlVlmDfnModifyApiCallHandler): wait for this node's device to catch up.
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            let size = self.refresh_size(volume_id).await?;
            if size >= required {
                return Ok(size);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(CsiError::Unavailable(format!(
                    "the device of {volume_id} on {} is {size} bytes, not yet the {required} \
                     bytes asked for: LINSTOR has not grown it here yet; retry",
                    self.node
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn condition(&self, volume_id: &str) -> Result<Condition, CsiError> {
        Ok(match self.state.readiness(volume_id).await? {
            Readiness::Ready(via) => Condition::healthy(Readiness::Ready(via).message()),
            Readiness::NotReady(why) => Condition::abnormal(why),
        })
    }
}
