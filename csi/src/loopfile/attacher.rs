//! The loopfile Attacher: attaches a volume's image to a loop device on this node.
//!
//! The truth is the kernel's: the loop device whose backing file is the image. Nothing is
//! cached, so a restart finds every attachment again. It touches only loop devices whose backing
//! file lies in this state directory's `volumes/`.

use std::collections::HashMap;
use std::path::PathBuf;

use super::{is_volume_id, Layout};
use crate::attach::{Attacher, Attachment, Condition};
use crate::host::loopdev::{self, LoopDevice, LoopError};
use crate::CsiError;

impl From<LoopError> for CsiError {
    fn from(err: LoopError) -> Self {
        CsiError::Internal(err.to_string())
    }
}

/// Attaches loopfile volumes as loop devices.
#[derive(Debug, Clone)]
pub struct LoopAttacher {
    layout: Layout,
}

impl LoopAttacher {
    /// An attacher for the images under `layout`.
    pub fn new(layout: Layout) -> Self {
        Self { layout }
    }

    /// Loop devices of this state directory, with whether their image was deleted.
    fn ours(&self) -> Result<Vec<loopdev::Attached>, CsiError> {
        let dir = self.layout.volumes_dir();
        let dir = dir.canonicalize().unwrap_or(dir);
        Ok(loopdev::list_attached()?
            .into_iter()
            .filter(|a| a.backing.starts_with(&dir))
            .collect())
    }

    /// The loop device of a volume, found by its image, or by its image's name when the image was
    /// deleted under it.
    fn find(&self, volume_id: &str) -> Result<Option<LoopDevice>, CsiError> {
        if !is_volume_id(volume_id) {
            return Ok(None);
        }
        let image = self.layout.volume_image(volume_id);
        if image.exists() {
            return Ok(loopdev::find_by_backing_file(&image)?);
        }
        let name = format!("{volume_id}.img");
        Ok(self
            .ours()?
            .into_iter()
            .find(|a| a.backing.file_name().is_some_and(|n| n == name.as_str()))
            .map(|a| a.device))
    }

    /// Detaches loop devices whose image was deleted. They can only be left by a crash or by a
    /// volume deleted behind Hearth's back; a mounted one is left alone (detach fails busy).
    pub fn recover(&self) -> Result<(), CsiError> {
        for stale in self.ours()?.into_iter().filter(|a| a.deleted) {
            tracing::warn!(device = %stale.device.path.display(), backing = %stale.backing.display(),
                "detaching a loop device whose image was deleted");
            if let Err(e) = loopdev::detach(&stale.device) {
                tracing::warn!(device = %stale.device.path.display(), "could not detach: {e}");
            }
        }
        Ok(())
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CsiError> + Send + 'static,
) -> Result<T, CsiError> {
    tokio::task::spawn_blocking(f).await?
}

#[async_trait::async_trait]
impl Attacher for LoopAttacher {
    async fn attach(
        &self,
        volume_id: &str,
        _publish_context: &HashMap<String, String>,
    ) -> Result<Attachment, CsiError> {
        let image = self.layout.volume_image(volume_id);
        if !is_volume_id(volume_id) || !image.exists() {
            return Err(CsiError::NotFound(format!(
                "volume {volume_id} does not exist"
            )));
        }
        blocking(move || {
            let (device, fresh) = loopdev::attach_or_reuse(&image, false)?;
            Ok(Attachment {
                device: device.path,
                fresh,
            })
        })
        .await
    }

    async fn device(&self, volume_id: &str) -> Result<Option<PathBuf>, CsiError> {
        let this = self.clone();
        let id = volume_id.to_owned();
        blocking(move || Ok(this.find(&id)?.map(|d| d.path))).await
    }

    async fn detach(&self, volume_id: &str) -> Result<(), CsiError> {
        let this = self.clone();
        let id = volume_id.to_owned();
        blocking(move || {
            if let Some(dev) = this.find(&id)? {
                loopdev::detach(&dev)?;
            }
            Ok(())
        })
        .await
    }

    async fn refresh_size(&self, volume_id: &str) -> Result<u64, CsiError> {
        let this = self.clone();
        let id = volume_id.to_owned();
        blocking(move || match this.find(&id)? {
            Some(dev) => Ok(loopdev::set_capacity(&dev)?),
            None => Err(CsiError::FailedPrecondition(format!(
                "volume {id} is not attached on this node"
            ))),
        })
        .await
    }

    async fn condition(&self, volume_id: &str) -> Result<Condition, CsiError> {
        let this = self.clone();
        let id = volume_id.to_owned();
        blocking(move || {
            let image = this.layout.volume_image(&id);
            let attached = this.find(&id)?;
            Ok(match (image.exists(), attached) {
                (true, Some(dev)) => {
                    Condition::healthy(format!("attached as {}", dev.path.display()))
                }
                (true, None) => Condition::healthy("image present, not attached"),
                (false, Some(dev)) => Condition::abnormal(format!(
                    "the image was deleted while attached as {}",
                    dev.path.display()
                )),
                (false, None) => Condition::abnormal("the volume's image is missing"),
            })
        })
        .await
    }
}
