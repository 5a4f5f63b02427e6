//! The Mounter: format, mount, bind, unmount, resize and filesystem statistics.
//!
//! This is the only code in Hearth that mounts or formats. Every method checks the real state
//! (mountinfo, blkid) so callers can retry freely. It never formats a device that holds data:
//! [`Mounter::probe`] tells blank from formatted from unknown data, and the caller decides.
//! It also reads the two facts of a block device that judging mounts needs: its size and its
//! device number.
//!
//! [`HostMounter`] is the real one (`host.rs`, with the flag policy in `flags.rs` and mount-point
//! handling in `points.rs`); [`fake::FakeMounter`] is a recording fake over an in-memory mount
//! table, for unit tests of the callers.

pub mod extra;
pub mod fake;
mod flags;
mod format;
mod host;
pub mod mountinfo;
mod points;
pub mod superblock;

use std::path::{Path, PathBuf};

pub use host::HostMounter;
pub use mountinfo::MountEntry;
pub use superblock::FsSize;

/// A filesystem Hearth can create and grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsType {
    /// ext4, the default.
    Ext4,
    /// XFS.
    Xfs,
}

impl FsType {
    /// The name as mount(2), blkid and CSI `fs_type` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ext4 => "ext4",
            Self::Xfs => "xfs",
        }
    }

    /// Parses a CSI `fs_type`; empty means the default, ext4.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "" | "ext4" => Some(Self::Ext4),
            "xfs" => Some(Self::Xfs),
            _ => None,
        }
    }
}

/// What a device holds, from a probe that reads it but never writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// No signature and the first MiB reads as zeros: safe to format.
    Blank,
    /// A filesystem or other signature that blkid names (`ext4`, `xfs`, `LVM2_member`, `dos`...).
    Signature(String),
    /// No signature blkid knows, but non-zero bytes: treat as data, never format.
    UnknownData,
}

/// Options for a mount, from the CSI volume capability and the readonly flag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// Mount read-only.
    pub readonly: bool,
    /// Mount flags from `VolumeCapability.mount.mount_flags`, e.g. `noatime`, `discard`.
    /// Validated by [`validate_mount_flags`] before they reach a Mounter.
    pub flags: Vec<String>,
}

/// Filesystem usage from statvfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsStats {
    /// Total bytes.
    pub total_bytes: u64,
    /// Bytes available to unprivileged users.
    pub available_bytes: u64,
    /// Bytes in use.
    pub used_bytes: u64,
    /// Total inodes.
    pub total_inodes: u64,
    /// Free inodes.
    pub free_inodes: u64,
    /// Inodes in use.
    pub used_inodes: u64,
}

/// A failed mount-side step. Each variant names the step and carries the path.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// A mount flag is unknown, not allowed (bind, remount...) or malformed.
    #[error("mount flag {flag:?} is not allowed: {reason}")]
    InvalidFlag {
        /// The flag as given.
        flag: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Reading /proc/self/mountinfo failed.
    #[error("reading mountinfo: {0}")]
    ReadMountinfo(String),
    /// blkid failed to probe the device.
    #[error("probing {device}: {reason}")]
    Probe {
        /// The device.
        device: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// mkfs failed.
    #[error("formatting {device} as {fs}: {reason}")]
    Format {
        /// The device.
        device: PathBuf,
        /// The filesystem.
        fs: &'static str,
        /// mkfs's stderr or the spawn error.
        reason: String,
    },
    /// mount(2) failed.
    #[error("mounting {source_path} on {target}: {errno}")]
    Mount {
        /// The device or directory mounted.
        source_path: PathBuf,
        /// The mount point.
        target: PathBuf,
        /// The error from the kernel.
        errno: nix::errno::Errno,
    },
    /// umount(2) failed.
    #[error("unmounting {target}: {errno}")]
    Unmount {
        /// The mount point.
        target: PathBuf,
        /// The error from the kernel.
        errno: nix::errno::Errno,
    },
    /// Creating or removing a mount point failed.
    #[error("preparing mount point {path}: {source}")]
    MountPoint {
        /// The mount point.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A StorageClass's post-mount command failed.
    #[error("post-mount command on {path}: {reason}")]
    PostMount {
        /// The mount point.
        path: PathBuf,
        /// The tool's stderr, the spawn error, or why the command was refused.
        reason: String,
    },
    /// Growing the filesystem failed.
    #[error("growing the filesystem on {device}: {reason}")]
    Resize {
        /// The device.
        device: PathBuf,
        /// The tool's stderr or the spawn error.
        reason: String,
    },
    /// The process lacks a capability the kernel demands for this step.
    #[error("{step} needs {capability}, which this process does not have; run the agent privileged or add the capability")]
    MissingCapability {
        /// The capability, e.g. `CAP_SYS_RESOURCE`.
        capability: &'static str,
        /// What was being done.
        step: &'static str,
    },
    /// Reading a block device's size or number failed.
    #[error("reading block device facts: {0}")]
    BlockDevice(#[from] crate::host::blockdev::BlockDeviceError),
    /// statvfs failed.
    #[error("statvfs {path}: {errno}")]
    Stats {
        /// The path.
        path: PathBuf,
        /// The error from the kernel.
        errno: nix::errno::Errno,
    },
}

/// The only interface through which Hearth mounts, formats or unmounts.
///
/// Methods are synchronous (they are syscalls and short-lived tools); async callers run them on
/// the blocking pool.
pub trait Mounter: Send + Sync + 'static {
    /// Reads what the device holds without writing to it.
    fn probe(&self, device: &Path) -> Result<Probe, MountError>;

    /// Creates a filesystem on `device`. Callers must have probed it [`Probe::Blank`], or know
    /// that an earlier format of their own was interrupted (`force`). Without `force` the
    /// device is probed again and anything but [`Probe::Blank`] is refused: mkfs tools cannot be
    /// relied on for that (mke2fs never asks when stdin is not a terminal). `extra` are mkfs
    /// arguments from the StorageClass (`fsOpts`), checked by [`extra::mkfs_args`].
    fn format(
        &self,
        device: &Path,
        fs: FsType,
        force: bool,
        extra: &[String],
    ) -> Result<(), MountError>;

    /// The size of the `fs` filesystem on `device`, from its superblock; None when there is
    /// no such superblock. Reads, never writes.
    fn filesystem_size(&self, device: &Path, fs: FsType) -> Result<Option<FsSize>, MountError>;

    /// Grows the filesystem on the unmounted `device` to fill it (ext4 only; XFS grows only
    /// mounted, with [`Mounter::grow`]).
    fn grow_unmounted(&self, device: &Path, fs: FsType) -> Result<(), MountError>;

    /// Runs a StorageClass's post-mount command on a mounted XFS (`xfs_io -c <command>`).
    fn post_mount_xfs(&self, mount_path: &Path, command: &str) -> Result<(), MountError>;

    /// Mounts the filesystem on `device` at the directory `target` (created if missing).
    /// Succeeds without doing anything when `device` is already mounted there with the same type
    /// and read-only-ness; anything else already mounted at `target` is `EBUSY`. A `target` that
    /// is a symbolic link is refused.
    fn mount_device(
        &self,
        device: &Path,
        target: &Path,
        fs: FsType,
        opts: &MountOptions,
    ) -> Result<(), MountError>;

    /// Bind-mounts `source` (a directory or a device node) on `target`. A missing target is
    /// created as a directory or an empty file to match the source. Read-only binds are remounted
    /// read-only in a second step, as the kernel requires (a failed remount undoes the bind).
    /// Succeeds without doing anything when `source` is already bound there the same way,
    /// finishes a read-only bind whose remount did not happen, and refuses (`EBUSY`) anything
    /// else already mounted at `target`. A `target` that is a symbolic link is refused.
    ///
    /// A read-only bind of a device node does not stop writes to the device: the kernel only
    /// refuses writes to regular files, directories and symlinks on a read-only mount.
    fn bind(&self, source: &Path, target: &Path, opts: &MountOptions) -> Result<(), MountError>;

    /// Unmounts every mount stacked on `target`. Returns false when nothing was mounted there.
    /// A busy mount is an error (`EBUSY`), never detached lazily; a symbolic link at `target` is
    /// not followed.
    fn unmount(&self, target: &Path) -> Result<bool, MountError>;

    /// The top-most mount at `target`, from mountinfo.
    fn mount_at(&self, target: &Path) -> Result<Option<MountEntry>, MountError>;

    /// Every mount in this mount namespace, from mountinfo.
    fn mounts(&self) -> Result<Vec<MountEntry>, MountError>;

    /// Grows the filesystem on `device`, mounted at `mount_path`, to fill the device.
    fn grow(&self, device: &Path, mount_path: &Path, fs: FsType) -> Result<(), MountError>;

    /// Filesystem usage at `path`.
    fn stats(&self, path: &Path) -> Result<FsStats, MountError>;

    /// Size in bytes of the block device node `device`.
    fn device_size(&self, device: &Path) -> Result<u64, MountError>;

    /// The (major, minor) number of the block device node `device`: what mountinfo shows as
    /// the device of a filesystem mounted from it.
    fn device_number(&self, device: &Path) -> Result<(u32, u32), MountError>;
}

/// Checks mount flags from a CSI capability. Flags that change what is mounted or where
/// (bind, move, remount, ...) are refused; everything else is passed to mount(2) as a flag it
/// knows or as filesystem data.
pub fn validate_mount_flags(flags: &[String]) -> Result<(), MountError> {
    for flag in flags {
        flags::parse_flag(flag)?;
    }
    Ok(())
}
