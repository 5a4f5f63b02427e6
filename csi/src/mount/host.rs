//! [`HostMounter`]: the [`Mounter`] that mounts in the agent's own mount namespace with
//! mount(2), umount2(2) and statvfs(2).
//!
//! This module owns the syscalls and the mount points it is asked to create (directories with
//! mode 0750, or empty files for device binds). It must not touch any other path, must not
//! change mount propagation, and must not detach busy mounts: a busy unmount is an error for
//! the caller to report. Formatting, probing and growing run external tools and live in
//! `format.rs`; mountinfo parsing lives in `mountinfo.rs`, the mount-flag policy in `flags.rs`
//! and mount-point paths in `points.rs`.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::statvfs::FsFlags;

use super::flags::{effective_flags, FlagEffect, PER_MOUNT_FLAGS};
use super::points::{
    bind_origin, ensure_dir, ensure_file, lexical_absolute, mount_point_key, refuse_symlink,
    top_mount_at,
};
use super::{
    format, mountinfo, FsStats, FsType, MountEntry, MountError, MountOptions, Mounter, Probe,
};
use crate::host::blockdev;

/// Bounds the unmount loop: no sane mount point has more mounts stacked on it.
const MAX_STACKED_MOUNTS: usize = 64;

/// The [`Mounter`] for the host: syscalls in the agent's mount namespace and the standard
/// filesystem tools.
#[derive(Debug, Default, Clone)]
pub struct HostMounter {
    _private: (),
}

impl HostMounter {
    /// A mounter for the agent's mount namespace.
    pub fn new() -> Self {
        Self::default()
    }
}

/// statvfs counts are `c_ulong` or `fsblkcnt_t`, u32 or u64 depending on the target.
fn widen<T: Into<u64>>(count: T) -> u64 {
    count.into()
}

fn errno_of(error: &io::Error) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO))
}

/// The per-mount security flags now in force at `path`, which a bind remount must keep unless
/// asked to clear them.
fn current_lock_flags(path: &Path) -> MsFlags {
    let Ok(stat) = nix::sys::statvfs::statvfs(path) else {
        return MsFlags::empty();
    };
    let mut flags = MsFlags::empty();
    for (st, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
    ] {
        if stat.flags().contains(st) {
            flags |= ms;
        }
    }
    flags
}

impl HostMounter {
    /// Remounts the bind at `target` with the per-mount flags of `flags`, keeping the security
    /// flags it has unless `flags` clears them.
    fn remount_bind(
        &self,
        source: &Path,
        target: &Path,
        flags: &FlagEffect,
    ) -> Result<(), MountError> {
        let keep = current_lock_flags(target) & !flags.clear;
        let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | keep | (flags.set & PER_MOUNT_FLAGS);
        nix::mount::mount(None::<&str>, target, None::<&str>, remount, None::<&str>).map_err(
            |errno| MountError::Mount {
                source_path: source.to_owned(),
                target: target.to_owned(),
                errno,
            },
        )
    }
}

impl Mounter for HostMounter {
    fn probe(&self, device: &Path) -> Result<Probe, MountError> {
        format::probe(device)
    }

    fn format(
        &self,
        device: &Path,
        fs: FsType,
        force: bool,
        extra: &[String],
    ) -> Result<(), MountError> {
        format::format(device, fs, force, extra)
    }

    fn filesystem_size(
        &self,
        device: &Path,
        fs: FsType,
    ) -> Result<Option<super::FsSize>, MountError> {
        super::superblock::read(device, fs).map_err(|e| MountError::Probe {
            device: device.to_owned(),
            reason: format!("reading the superblock: {e}"),
        })
    }

    fn grow_unmounted(&self, device: &Path, fs: FsType) -> Result<(), MountError> {
        format::grow_unmounted(device, fs)
    }

    fn post_mount_xfs(&self, mount_path: &Path, command: &str) -> Result<(), MountError> {
        format::post_mount_xfs(mount_path, command)
    }

    fn mount_device(
        &self,
        device: &Path,
        target: &Path,
        fs: FsType,
        opts: &MountOptions,
    ) -> Result<(), MountError> {
        let flags = effective_flags(opts)?;
        let target = lexical_absolute(target);
        let fail = |errno| MountError::Mount {
            source_path: device.to_owned(),
            target: target.clone(),
            errno,
        };
        refuse_symlink(&target)?;
        ensure_dir(&target)?;

        // Already mounted here? Fine if it is this device, same type and same read-only-ness.
        if let Some(existing) = self.mount_at(&target)? {
            let rdev = fs::metadata(device).map_err(|e| fail(errno_of(&e)))?.rdev();
            let same = u64::from(existing.major) == nix::sys::stat::major(rdev)
                && u64::from(existing.minor) == nix::sys::stat::minor(rdev)
                && existing.root == Path::new("/")
                && existing.fs_type == fs.as_str()
                && existing.read_only() == flags.set.contains(MsFlags::MS_RDONLY);
            if same {
                tracing::debug!(device = %device.display(), target = %target.display(), "already mounted");
                return Ok(());
            }
            return Err(fail(Errno::EBUSY));
        }

        let data = flags.data_string();
        tracing::info!(device = %device.display(), target = %target.display(), fs = fs.as_str(), "mounting");
        nix::mount::mount(
            Some(device),
            &target,
            Some(fs.as_str()),
            flags.set,
            data.as_deref(),
        )
        .map_err(fail)
    }

    fn bind(&self, source: &Path, target: &Path, opts: &MountOptions) -> Result<(), MountError> {
        let flags = effective_flags(opts)?;
        let target = lexical_absolute(target);
        let fail = |errno| MountError::Mount {
            source_path: source.to_owned(),
            target: target.clone(),
            errno,
        };
        let source_is_dir = fs::metadata(source)
            .map_err(|e| fail(errno_of(&e)))?
            .is_dir();
        refuse_symlink(&target)?;
        if source_is_dir {
            ensure_dir(&target)?;
        } else {
            ensure_file(&target)?;
        }
        let needs_remount = !(flags.set & PER_MOUNT_FLAGS).is_empty();

        let entries = mountinfo::read()?;
        if let Some(existing) = top_mount_at(&entries, &mount_point_key(&target)) {
            let origin = (existing.major, existing.minor, existing.root.clone());
            if bind_origin(&entries, source) != Some(origin) {
                return Err(fail(Errno::EBUSY));
            }
            let want_read_only = flags.set.contains(MsFlags::MS_RDONLY);
            if existing.read_only() == want_read_only {
                tracing::debug!(source = %source.display(), target = %target.display(), "already bound");
                return Ok(());
            }
            if want_read_only {
                // Bound by an earlier call whose read-only remount did not happen: finish it.
                return self.remount_bind(source, &target, &flags);
            }
            // Read-only there, read-write asked: a conflict, not something to flip silently.
            return Err(fail(Errno::EBUSY));
        }

        tracing::info!(source = %source.display(), target = %target.display(), readonly = opts.readonly, "bind mounting");
        nix::mount::mount(
            Some(source),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(fail)?;
        if needs_remount {
            if let Err(error) = self.remount_bind(source, &target, &flags) {
                // Never leave a writable bind behind when read-only was asked for.
                if let Err(errno) = nix::mount::umount2(&target, MntFlags::UMOUNT_NOFOLLOW) {
                    tracing::warn!(target = %target.display(), %errno, "undoing a bind whose remount failed");
                }
                return Err(error);
            }
        }
        Ok(())
    }

    fn unmount(&self, target: &Path) -> Result<bool, MountError> {
        let target = lexical_absolute(target);
        let key = mount_point_key(&target);
        let fail = |errno| MountError::Unmount {
            target: target.clone(),
            errno,
        };
        let mut unmounted = false;
        for _ in 0..MAX_STACKED_MOUNTS {
            match nix::mount::umount2(&target, MntFlags::UMOUNT_NOFOLLOW) {
                Ok(()) => {
                    tracing::info!(target = %target.display(), "unmounted");
                    unmounted = true;
                }
                // Not a mount point (any more), or no such path: nothing is mounted there...
                Err(Errno::EINVAL | Errno::ENOENT) => {
                    // ...unless mountinfo disagrees, e.g. when the mount point is hidden under a
                    // later mount. Say so rather than report success.
                    let entries = mountinfo::read()?;
                    return match top_mount_at(&entries, &key) {
                        None => Ok(unmounted),
                        Some(_) => Err(fail(Errno::EINVAL)),
                    };
                }
                Err(errno) => return Err(fail(errno)),
            }
            if top_mount_at(&mountinfo::read()?, &key).is_none() {
                return Ok(true);
            }
        }
        Err(fail(Errno::EBUSY))
    }

    fn mount_at(&self, target: &Path) -> Result<Option<MountEntry>, MountError> {
        let entries = mountinfo::read()?;
        Ok(top_mount_at(&entries, &mount_point_key(target)).cloned())
    }

    fn mounts(&self) -> Result<Vec<MountEntry>, MountError> {
        mountinfo::read()
    }

    fn grow(&self, device: &Path, mount_path: &Path, fs: FsType) -> Result<(), MountError> {
        format::grow(device, mount_path, fs)
    }

    fn stats(&self, path: &Path) -> Result<FsStats, MountError> {
        let stat = nix::sys::statvfs::statvfs(path).map_err(|errno| MountError::Stats {
            path: path.to_owned(),
            errno,
        })?;
        let fragment = widen(stat.fragment_size());
        let blocks = widen(stat.blocks());
        let total_inodes = widen(stat.files());
        let free_inodes = widen(stat.files_free());
        Ok(FsStats {
            total_bytes: blocks.saturating_mul(fragment),
            available_bytes: widen(stat.blocks_available()).saturating_mul(fragment),
            used_bytes: blocks
                .saturating_sub(widen(stat.blocks_free()))
                .saturating_mul(fragment),
            total_inodes,
            free_inodes,
            used_inodes: total_inodes.saturating_sub(free_inodes),
        })
    }

    fn device_size(&self, device: &Path) -> Result<u64, MountError> {
        Ok(blockdev::device_size(device)?)
    }

    fn device_number(&self, device: &Path) -> Result<(u32, u32), MountError> {
        Ok(blockdev::device_number(device)?)
    }
}

#[cfg(test)]
#[path = "host_tests.rs"]
mod tests;
