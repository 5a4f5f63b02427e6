//! The Attacher: the node-side step that turns a volume into a local block device.
//!
//! For loopfile that is a loop device over the volume's sparse file; for LINSTOR it is the DRBD
//! device. Every method checks the real state, so retries after a crash re-use what exists.
//! [`fake::FakeAttacher`] is the recording fake the node service's unit tests use.

pub mod fake;

use std::collections::HashMap;
use std::path::PathBuf;

use crate::CsiError;

/// The health of a volume as the node sees it (CSI `VolumeCondition`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Condition {
    /// True when something is wrong.
    pub abnormal: bool,
    /// What is wrong, or a short "healthy" note.
    pub message: String,
}

impl Condition {
    /// A healthy condition.
    pub fn healthy(message: impl Into<String>) -> Self {
        Self {
            abnormal: false,
            message: message.into(),
        }
    }

    /// An abnormal condition.
    pub fn abnormal(message: impl Into<String>) -> Self {
        Self {
            abnormal: true,
            message: message.into(),
        }
    }
}

/// A volume made available as a local block device by [`Attacher::attach`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The device node.
    pub device: PathBuf,
    /// True when this call made the attachment, false when it was there already. A caller
    /// whose later step fails undoes only an attachment it made.
    pub fresh: bool,
}

/// Makes volumes available as local block devices.
#[async_trait::async_trait]
pub trait Attacher: Send + Sync + 'static {
    /// Attaches the volume and returns its device node, re-using an existing attachment, and
    /// says which of the two happened (one look at the host, not a lookup then an attach).
    /// Returns NOT_FOUND when the volume does not exist.
    async fn attach(
        &self,
        volume_id: &str,
        publish_context: &HashMap<String, String>,
    ) -> Result<Attachment, CsiError>;

    /// The device node of the volume if it is attached now.
    async fn device(&self, volume_id: &str) -> Result<Option<PathBuf>, CsiError>;

    /// Detaches the volume. Succeeds when it is not attached.
    async fn detach(&self, volume_id: &str) -> Result<(), CsiError>;

    /// Makes the attached device see a grown volume and returns the device size in bytes.
    async fn refresh_size(&self, volume_id: &str) -> Result<u64, CsiError>;

    /// The device size once it is at least `required` bytes, for NodeExpandVolume. A backend
    /// whose devices grow at once (loopfile) answers from [`Attacher::refresh_size`]: a smaller
    /// device means the volume was not grown, OUT_OF_RANGE. A backend that grows devices some
    /// time after the controller's resize (LINSTOR's satellites) waits for it, bounded, and
    /// then answers UNAVAILABLE, which the CO retries.
    async fn grown_size(&self, volume_id: &str, required: u64) -> Result<u64, CsiError> {
        let size = self.refresh_size(volume_id).await?;
        if size < required {
            return Err(CsiError::OutOfRange(format!(
                "the device is {size} bytes, less than the {required} bytes asked for; grow the volume first"
            )));
        }
        Ok(size)
    }

    /// The volume's health as the node sees it.
    async fn condition(&self, volume_id: &str) -> Result<Condition, CsiError>;
}
