//! NodeStageVolume: attach, format a blank device (never one with data), grow a filesystem
//! smaller than its device, mount at the staging path, run the class's post-mount command.
//!
//! Growth at stage covers a restore or clone into a larger volume and a volume grown while no
//! node had it: an unmounted ext4 grows before the mount (`e2fsck -f -p`, `resize2fs`, no
//! capability needed), an XFS right after it (`xfs_growfs`). A filesystem within one block of
//! its device is left alone. A failed step after the mount unmounts again, so a retry starts
//! from the same place.

use std::path::{Path, PathBuf};

use hearth_proto::csi::v1::NodeStageVolumeRequest;

use super::context::StageOptions;
use super::{is_mount_of, NodeService};
use crate::attach::Attacher;
use crate::mount::{FsType, Mounter, Probe};
use crate::validate::{self, Access};
use crate::CsiError;

impl<A: Attacher, M: Mounter> NodeService<A, M> {
    pub(super) async fn stage(&self, req: NodeStageVolumeRequest) -> Result<(), CsiError> {
        let id = validate::required("volume_id", &req.volume_id)?.to_owned();
        let staging = self.path("staging_target_path", &req.staging_target_path)?;
        let access = self.capability(req.volume_capability.as_ref())?;
        let access =
            validate::with_context_fs(access, req.volume_capability.as_ref(), &req.volume_context)?;
        let options = StageOptions::from_context(&req.volume_context)?;
        let _lock = self.locks.try_lock(&id)?;
        self.placed_here(&id, &req.volume_context)?;
        let attachment = self.attacher.attach(&id, &req.publish_context).await?;
        let result = self
            .stage_on(&id, attachment.device, &staging, &access, &options)
            .await;
        if result.is_err() && attachment.fresh {
            // Leave the host as it was: a failed first stage keeps no loop device.
            if let Err(e) = self.attacher.detach(&id).await {
                tracing::warn!(volume = %id, "detaching after a failed stage: {e}");
            }
        }
        result
    }

    async fn stage_on(
        &self,
        id: &str,
        device: PathBuf,
        staging: &Path,
        access: &Access,
        options: &StageOptions,
    ) -> Result<(), CsiError> {
        let Access::Mount { fs, flags, .. } = access else {
            return Ok(());
        };
        let fs = *fs;
        if let Some(existing) = self.mount_at(staging).await? {
            let dev = device.clone();
            let number = self.host(move |m| m.device_number(&dev)).await?;
            return if is_mount_of(&existing, number) {
                Ok(())
            } else {
                Err(CsiError::AlreadyExists(format!(
                    "{} already has {} mounted from {}",
                    staging.display(),
                    existing.fs_type,
                    existing.source
                )))
            };
        }
        let fresh = self
            .ensure_formatted(id, &device, fs, &options.mkfs_args)
            .await?;
        let grow = !fresh && self.smaller_than_device(&device, fs).await?;
        if grow && fs == FsType::Ext4 && !self.mounted_anywhere(&device).await? {
            let dev = device.clone();
            self.host(move |m| m.grow_unmounted(&dev, fs)).await?;
            tracing::info!(volume = %id, "grew an ext4 smaller than its device before mounting");
        }
        let mut opts = access.mount_options(false);
        opts.flags = options.flags_for(fs, flags);
        let (dev, target) = (device.clone(), staging.to_owned());
        self.host(move |m| m.mount_device(&dev, &target, fs, &opts))
            .await?;
        if let Err(e) = self
            .after_mount(id, &device, staging, fs, grow, options)
            .await
        {
            let target = staging.to_owned();
            if let Err(u) = self.host(move |m| m.unmount(&target)).await {
                tracing::warn!(volume = %id, "unmounting after a failed stage: {u}");
            }
            return Err(e);
        }
        tracing::info!(volume = %id, "staged");
        Ok(())
    }

    /// The steps on the mounted filesystem: XFS growth, then the class's xfs_io command.
    async fn after_mount(
        &self,
        id: &str,
        device: &Path,
        staging: &Path,
        fs: FsType,
        grow: bool,
        options: &StageOptions,
    ) -> Result<(), CsiError> {
        if fs != FsType::Xfs {
            return Ok(());
        }
        if grow {
            let (dev, path) = (device.to_owned(), staging.to_owned());
            self.host(move |m| m.grow(&dev, &path, fs)).await?;
            tracing::info!(volume = %id, "grew an XFS smaller than its device");
        }
        if let Some(command) = options.post_mount_xfs.clone() {
            let path = staging.to_owned();
            self.host(move |m| m.post_mount_xfs(&path, &command))
                .await?;
        }
        Ok(())
    }

    /// True when the device is larger than its filesystem by more than one block.
    async fn smaller_than_device(&self, device: &Path, fs: FsType) -> Result<bool, CsiError> {
        let dev = device.to_owned();
        let (size, device_bytes) = self
            .host(move |m| Ok((m.filesystem_size(&dev, fs)?, m.device_size(&dev)?)))
            .await?;
        Ok(size.is_some_and(|s| device_bytes > s.bytes.saturating_add(s.block_size)))
    }

    /// True when the device is mounted anywhere on this host (then it must not be grown
    /// unmounted).
    async fn mounted_anywhere(&self, device: &Path) -> Result<bool, CsiError> {
        let dev = device.to_owned();
        self.host(move |m| {
            let number = m.device_number(&dev)?;
            Ok(m.mounts()?.iter().any(|e| (e.major, e.minor) == number))
        })
        .await
    }

    /// Formats the device if it is blank, or if a format of Hearth's own was interrupted;
    /// returns true when it formatted. Refuses anything that holds other data.
    async fn ensure_formatted(
        &self,
        id: &str,
        device: &Path,
        fs: FsType,
        mkfs_args: &[String],
    ) -> Result<bool, CsiError> {
        let dev = device.to_owned();
        let probe = self.host(move |m| m.probe(&dev)).await?;
        let interrupted = self.markers.pending(id);
        match probe {
            Probe::Signature(found) if found == fs.as_str() && !interrupted => return Ok(false),
            Probe::Signature(found) if !interrupted => {
                return Err(CsiError::FailedPrecondition(format!(
                    "volume {id} holds {found}, not {}; refusing to reformat a device with data",
                    fs.as_str()
                )))
            }
            Probe::UnknownData if !interrupted => {
                return Err(CsiError::FailedPrecondition(format!(
                    "volume {id} holds data without a filesystem signature; refusing to format it"
                )))
            }
            Probe::Blank | Probe::Signature(_) | Probe::UnknownData => {}
        }
        if interrupted {
            tracing::warn!(volume = %id, "finishing a format that a crash interrupted");
        }
        if let Some(why) = crate::mount::extra::refused_for(fs, mkfs_args) {
            return Err(CsiError::InvalidArgument(format!(
                "volume_context {}: {why}",
                super::context::FS_OPTIONS_CONTEXT
            )));
        }
        self.markers
            .begin(id)
            .map_err(|e| CsiError::internal("writing the format marker", e))?;
        let (dev, args) = (device.to_owned(), mkfs_args.to_vec());
        self.host(move |m| m.format(&dev, fs, interrupted, &args))
            .await?;
        self.markers
            .finish(id)
            .map_err(|e| CsiError::internal("removing the format marker", e))?;
        tracing::info!(volume = %id, fs = fs.as_str(), "formatted a blank device");
        Ok(true)
    }
}

#[cfg(test)]
#[path = "stage_tests.rs"]
mod tests;
