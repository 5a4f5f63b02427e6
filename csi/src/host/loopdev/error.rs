//! [`LoopError`]: why a loop device operation failed, one variant per step.

use std::io;
use std::path::PathBuf;

use nix::errno::Errno;

use super::LOOP_CONTROL;

/// Why a loop device operation failed. Each variant names the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    #[error("stat backing file {path}: {errno}")]
    StatBacking {
        path: PathBuf,
        #[source]
        errno: Errno,
    },
    #[error("open backing file {path}: {errno}")]
    OpenBacking {
        path: PathBuf,
        #[source]
        errno: Errno,
    },
    #[error("open {LOOP_CONTROL}: {errno}")]
    OpenControl {
        #[source]
        errno: Errno,
    },
    #[error("LOOP_CTL_GET_FREE on {LOOP_CONTROL}: {errno}")]
    GetFree {
        #[source]
        errno: Errno,
    },
    #[error("open loop device {path}: {errno}")]
    OpenDevice {
        path: PathBuf,
        #[source]
        errno: Errno,
    },
    #[error("LOOP_CONFIGURE {device} with {backing}: {errno}")]
    Configure {
        device: PathBuf,
        backing: PathBuf,
        #[source]
        errno: Errno,
    },
    #[error("LOOP_SET_FD {device} with {backing}: {errno}")]
    SetFd {
        device: PathBuf,
        backing: PathBuf,
        #[source]
        errno: Errno,
    },
    #[error("LOOP_SET_STATUS64 {device}: {errno}")]
    SetStatus {
        device: PathBuf,
        #[source]
        errno: Errno,
    },
    #[error("no free loop device for {backing} after {tries} tries (each lost a race: EBUSY)")]
    NoFreeDevice { backing: PathBuf, tries: u32 },
    #[error(
        "{backing} is already attached to {device} with read_only={attached_read_only}, \
         requested the other mode"
    )]
    ModeMismatch {
        backing: PathBuf,
        device: PathBuf,
        attached_read_only: bool,
    },
    #[error("LOOP_CLR_FD {device}: {errno}")]
    ClearFd {
        device: PathBuf,
        #[source]
        errno: Errno,
    },
    #[error("LOOP_SET_CAPACITY {device}: {errno}")]
    SetCapacity {
        device: PathBuf,
        #[source]
        errno: Errno,
    },
    #[error("LOOP_GET_STATUS64 {device}: {errno}")]
    Status {
        device: PathBuf,
        #[source]
        errno: Errno,
    },
    #[error("read sysfs {path}: {errno}")]
    ReadSysfs {
        path: PathBuf,
        #[source]
        errno: Errno,
    },
    #[error("open block device {path}: {errno}")]
    OpenBlockDevice {
        path: PathBuf,
        #[source]
        errno: Errno,
    },
    #[error("BLKGETSIZE64 {path}: {errno}")]
    Size {
        path: PathBuf,
        #[source]
        errno: Errno,
    },
}

/// The errno behind an `io::Error` (EIO when it carries none).
pub(super) fn io_errno(e: &io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}
