//! Loop devices, driven by ioctl on `/dev/loop-control` and `/dev/loopN` (no `losetup` child
//! processes): attach a backing file, find an attachment, detach, grow, list, and read block
//! device sizes.
//!
//! Owns: the loop ioctl numbers and `#[repr(C)]` structs from `linux/loop.h` (`ioctl.rs`), the
//! sysfs scan that finds attachments (`sysfs.rs`), the steps of an attach and the in-process
//! serialisation of attaches of the same backing file (`attach.rs`).
//!
//! Must not touch: loop devices it did not attach itself, except to *read* their status
//! (`LOOP_GET_STATUS64`, sysfs). [`detach`] and [`set_capacity`] act on whatever device the
//! caller names, so callers must only pass devices they got from [`attach`] or
//! [`find_by_backing_file`] for a file they own. Nothing here mounts, formats or knows CSI.
//!
//! Devices are attached without `LO_FLAGS_AUTOCLEAR`: a bind mount of the device node holds no
//! open reference, so autoclear would detach the device under a live bind mount.

mod attach;
mod error;
mod ioctl;
mod sysfs;

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use self::attach::{backoff, bind, open_new_node, BindError, FileSlot};
use self::ioctl::{
    ctl_get_free, loop_noarg, LoopInfo64, LOOP_CLR_FD, LOOP_SET_CAPACITY, LO_FLAGS_AUTOCLEAR,
    LO_FLAGS_READ_ONLY,
};
use self::sysfs::{file_id, loop_numbers, read_backing, scan_for, stat_id};
use crate::host::blockdev;

pub use self::error::LoopError;

/// `/dev/loop-control`, the misc device that hands out free loop device numbers.
const LOOP_CONTROL: &str = "/dev/loop-control";
/// How many times [`attach`] asks for a fresh free device after losing a race for one.
const ATTACH_TRIES: u32 = 32;
/// How long [`detach`] waits for transient openers when the kernel deferred the teardown.
pub const DETACH_WAIT: Duration = Duration::from_millis(250);

/// A loop device node, `/dev/loopN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopDevice {
    /// `N` in `/dev/loopN`.
    pub number: u32,
    /// `/dev/loopN`.
    pub path: PathBuf,
}

impl LoopDevice {
    pub(super) fn from_number(number: u32) -> Self {
        LoopDevice {
            number,
            path: PathBuf::from(format!("/dev/loop{number}")),
        }
    }
}

/// An attached loop device as the kernel reports it in sysfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// The loop device.
    pub device: LoopDevice,
    /// The backing file's path as the kernel resolves it (relative to the kernel's view of the
    /// root, without the " (deleted)" suffix).
    pub backing: PathBuf,
    /// The kernel appended " (deleted)": the backing file was unlinked while attached.
    pub deleted: bool,
}

/// Finds the loop device whose backing file is `file`, matched by the backing file's
/// `st_dev` + `st_ino` (`LOOP_GET_STATUS64` `lo_device`/`lo_inode`), so it finds the device
/// whatever path the file was attached under. `Ok(None)` if the file is not attached.
/// Fails with [`LoopError::StatBacking`] if `file` cannot be stat'ed.
pub fn find_by_backing_file(file: &Path) -> Result<Option<LoopDevice>, LoopError> {
    let id = file_id(file)?;
    Ok(scan_for(id, |_| true)?.map(|(dev, _)| dev))
}

/// Attaches `file` to a free loop device, re-using an existing attachment of the same file
/// (same inode) in the same mode; an attachment in the other mode is
/// [`LoopError::ModeMismatch`]. An attachment already scheduled for autoclear (a deferred
/// detach) is not re-used.
///
/// Uses `LOOP_CTL_GET_FREE` + `LOOP_CONFIGURE`, retrying with a fresh free device (bounded) when
/// another attacher took the same one, and falls back to `LOOP_SET_FD` + `LOOP_SET_STATUS64` on
/// kernels without `LOOP_CONFIGURE`. The file is opened read-write, or read-only with
/// `LO_FLAGS_READ_ONLY` when `read_only`. Never sets `LO_FLAGS_AUTOCLEAR`.
pub fn attach(file: &Path, read_only: bool) -> Result<LoopDevice, LoopError> {
    attach_or_reuse(file, read_only).map(|(device, _)| device)
}

/// [`attach`], saying whether the device is a new attachment (`true`) or one that was there
/// already (`false`), from the same single scan.
pub fn attach_or_reuse(file: &Path, read_only: bool) -> Result<(LoopDevice, bool), LoopError> {
    let id = file_id(file)?;
    let _slot = FileSlot::acquire(id);

    if let Some((dev, flags)) = scan_for(id, |flags| flags & LO_FLAGS_AUTOCLEAR == 0)? {
        let attached_read_only = flags & LO_FLAGS_READ_ONLY != 0;
        if attached_read_only != read_only {
            return Err(LoopError::ModeMismatch {
                backing: file.to_path_buf(),
                device: dev.path,
                attached_read_only,
            });
        }
        return Ok((dev, false));
    }

    let access = if read_only {
        OFlag::O_RDONLY
    } else {
        OFlag::O_RDWR
    };
    let backing = open(file, access | OFlag::O_CLOEXEC, Mode::empty()).map_err(|errno| {
        LoopError::OpenBacking {
            path: file.to_path_buf(),
            errno,
        }
    })?;
    // The path may have been replaced between stat and open; the device must be backed by the
    // file we checked (and locked) above.
    let st = nix::sys::stat::fstat(backing.as_fd()).map_err(|errno| LoopError::StatBacking {
        path: file.to_path_buf(),
        errno,
    })?;
    if stat_id(&st) != id {
        return Err(LoopError::StatBacking {
            path: file.to_path_buf(),
            errno: Errno::ESTALE,
        });
    }

    let control = open(
        LOOP_CONTROL,
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| LoopError::OpenControl { errno })?;
    let info = LoopInfo64::for_file(file, read_only);

    for attempt in 0..ATTACH_TRIES {
        let number = ctl_get_free(control.as_fd()).map_err(|errno| LoopError::GetFree { errno })?;
        let dev = LoopDevice::from_number(number);
        let dev_fd = open_new_node(&dev, read_only)?;
        match bind(&dev, dev_fd.as_fd(), backing.as_fd(), file, &info) {
            Ok(()) => return Ok((dev, true)),
            // Another attacher (thread or process) bound this device first; ask again.
            Err(BindError::Busy) => backoff(attempt),
            Err(BindError::Failed(e)) => return Err(e),
        }
    }
    Err(LoopError::NoFreeDevice {
        backing: file.to_path_buf(),
        tries: ATTACH_TRIES,
    })
}

/// Detaches `dev` (`LOOP_CLR_FD`). Succeeds if it is already detached (ENXIO) or the device
/// node no longer exists.
///
/// The kernel tears the device down at its last close. If something else holds it open at that
/// moment (udev/blkid probing, another process's status query), the teardown is deferred to
/// that opener's close (the kernel sets autoclear); this waits up to [`DETACH_WAIT`] for such
/// transient openers, then returns `Ok` regardless (e.g. a device that is still mounted is
/// torn down when it is unmounted).
pub fn detach(dev: &LoopDevice) -> Result<(), LoopError> {
    let fd = match open(&dev.path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENXIO | Errno::ENODEV) => return Ok(()),
        Err(errno) => {
            return Err(LoopError::OpenDevice {
                path: dev.path.clone(),
                errno,
            })
        }
    };
    // What to wait for below; a sysfs hiccup only skips the wait, it does not fail the detach.
    let backing = read_backing(dev.number).ok().flatten();
    match loop_noarg(fd.as_fd(), LOOP_CLR_FD) {
        Ok(()) => {}
        Err(Errno::ENXIO) => return Ok(()),
        Err(errno) => {
            return Err(LoopError::ClearFd {
                device: dev.path.clone(),
                errno,
            })
        }
    }
    // Usually the teardown runs right here, in our (last) close.
    drop(fd);
    let started = Instant::now();
    let mut pause = Duration::from_micros(50);
    while backing.is_some()
        && read_backing(dev.number).ok().flatten() == backing
        && started.elapsed() < DETACH_WAIT
    {
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
    Ok(())
}

/// `LOOP_SET_CAPACITY` so `dev` sees its grown (or shrunk) backing file; returns the device's
/// new size in bytes.
pub fn set_capacity(dev: &LoopDevice) -> Result<u64, LoopError> {
    // O_RDONLY: works for read-only devices too, and closing a read-only fd does not make udev
    // re-probe the device; the ioctl accepts non-writers with CAP_SYS_ADMIN.
    let fd =
        open(&dev.path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|errno| {
            LoopError::OpenDevice {
                path: dev.path.clone(),
                errno,
            }
        })?;
    loop_noarg(fd.as_fd(), LOOP_SET_CAPACITY).map_err(|errno| LoopError::SetCapacity {
        device: dev.path.clone(),
        errno,
    })?;
    blockdev::size_of_fd(fd.as_fd()).map_err(|errno| LoopError::Size {
        path: dev.path.clone(),
        errno,
    })
}

/// Every attached loop device with its backing file path as the kernel reports it in sysfs
/// (`/sys/block/loopN/loop/backing_file`), ascending by device number. `deleted` is set when the
/// kernel marked the path " (deleted)" (the backing file was unlinked).
pub fn list_attached() -> Result<Vec<Attached>, LoopError> {
    let mut out = Vec::new();
    for number in loop_numbers()? {
        if let Some((backing, deleted)) = read_backing(number)? {
            out.push(Attached {
                device: LoopDevice::from_number(number),
                backing,
                deleted,
            });
        }
    }
    Ok(out)
}

/// Size of the block device at `path` in bytes (`BLKGETSIZE64`).
pub fn device_size(path: &Path) -> Result<u64, LoopError> {
    let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|errno| {
        LoopError::OpenBlockDevice {
            path: path.to_path_buf(),
            errno,
        }
    })?;
    blockdev::size_of_fd(fd.as_fd()).map_err(|errno| LoopError::Size {
        path: path.to_path_buf(),
        errno,
    })
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
