//! Finding loop devices: the sysfs scan (`/sys/block/loopN/loop/backing_file`) and the
//! `LOOP_GET_STATUS64` check that a device is bound to a given file. Reads only.

use std::ffi::OsStr;
use std::fs;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::{stat, Mode};

use super::error::io_errno;
use super::ioctl::{loop_get_status64, LO_FLAGS_AUTOCLEAR, LO_FLAGS_READ_ONLY};
use super::{LoopDevice, LoopError};

/// Where sysfs lists block devices (`loopN/loop/backing_file` exists while `loopN` is bound).
const SYS_BLOCK: &str = "/sys/block";

/// Numbers of the loop devices sysfs knows about, ascending.
pub(super) fn loop_numbers() -> Result<Vec<u32>, LoopError> {
    let dir = fs::read_dir(SYS_BLOCK).map_err(|e| LoopError::ReadSysfs {
        path: PathBuf::from(SYS_BLOCK),
        errno: io_errno(&e),
    })?;
    let mut numbers = Vec::new();
    for entry in dir {
        let entry = entry.map_err(|e| LoopError::ReadSysfs {
            path: PathBuf::from(SYS_BLOCK),
            errno: io_errno(&e),
        })?;
        let name = entry.file_name();
        if let Some(n) = name
            .as_bytes()
            .strip_prefix(b"loop")
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| d.parse::<u32>().ok())
        {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// `/sys/block/loopN/loop/backing_file`.
pub(super) fn backing_file_attr(number: u32) -> PathBuf {
    PathBuf::from(format!("{SYS_BLOCK}/loop{number}/loop/backing_file"))
}

/// Parses a `backing_file` attribute: strips the trailing newline and " (deleted)" suffix.
/// None for an empty attribute (device torn down while being read).
pub(super) fn parse_backing(raw: &[u8]) -> Option<(PathBuf, bool)> {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    if raw.is_empty() {
        return None;
    }
    let (path, deleted) = match raw.strip_suffix(b" (deleted)") {
        Some(p) => (p, true),
        None => (raw, false),
    };
    Some((PathBuf::from(OsStr::from_bytes(path)), deleted))
}

/// Reads and parses `loopN`'s backing file; None when the device is not (or no longer) bound.
pub(super) fn read_backing(number: u32) -> Result<Option<(PathBuf, bool)>, LoopError> {
    let attr = backing_file_attr(number);
    match fs::read(&attr) {
        Ok(raw) => Ok(parse_backing(&raw)),
        Err(e) => match io_errno(&e) {
            // Not bound, or the device went away between readdir and read.
            Errno::ENOENT | Errno::ENXIO | Errno::ENODEV => Ok(None),
            errno => Err(LoopError::ReadSysfs { path: attr, errno }),
        },
    }
}

/// The `lo_flags` of `loopN` if the kernel says it is bound to the file identified by `id`
/// (`LOOP_GET_STATUS64` `lo_device`/`lo_inode`). Without a device node, falls back to the
/// sysfs flags when `path_matched` (sysfs path already resolved to `id`).
pub(super) fn status_of(
    number: u32,
    id: (u64, u64),
    path_matched: bool,
) -> Result<Option<u32>, LoopError> {
    let dev = LoopDevice::from_number(number);
    let fd = match open(
        &dev.path,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        // No device node (e.g. a /dev without devtmpfs).
        Err(Errno::ENOENT) if path_matched => return sysfs_flags(number),
        // The device disappeared meanwhile, or there is no node to ask.
        Err(Errno::ENOENT | Errno::ENXIO | Errno::ENODEV) => return Ok(None),
        Err(errno) => {
            return Err(LoopError::OpenDevice {
                path: dev.path,
                errno,
            })
        }
    };
    match loop_get_status64(fd.as_fd()) {
        Ok(info) if (info.lo_device, info.lo_inode) == id => Ok(Some(info.lo_flags)),
        Ok(_) | Err(Errno::ENXIO) => Ok(None),
        Err(errno) => Err(LoopError::Status {
            device: dev.path,
            errno,
        }),
    }
}

/// `lo_flags` (READ_ONLY and AUTOCLEAR only) of a bound `loopN` from sysfs; None if it is gone.
pub(super) fn sysfs_flags(number: u32) -> Result<Option<u32>, LoopError> {
    let read_bit = |attr: String| -> Result<Option<bool>, LoopError> {
        match fs::read(&attr) {
            Ok(raw) => Ok(Some(raw.first() == Some(&b'1'))),
            Err(e) => match io_errno(&e) {
                Errno::ENOENT | Errno::ENXIO | Errno::ENODEV => Ok(None),
                errno => Err(LoopError::ReadSysfs {
                    path: PathBuf::from(attr),
                    errno,
                }),
            },
        }
    };
    let Some(ro) = read_bit(format!("{SYS_BLOCK}/loop{number}/ro"))? else {
        return Ok(None);
    };
    let Some(autoclear) = read_bit(format!("{SYS_BLOCK}/loop{number}/loop/autoclear"))? else {
        return Ok(None);
    };
    let mut flags = 0;
    if ro {
        flags |= LO_FLAGS_READ_ONLY;
    }
    if autoclear {
        flags |= LO_FLAGS_AUTOCLEAR;
    }
    Ok(Some(flags))
}

/// `(st_dev, st_ino)` of `file`, in the same encoding the kernel uses for `lo_device`/`lo_inode`.
pub(super) fn file_id(file: &Path) -> Result<(u64, u64), LoopError> {
    let st = stat(file).map_err(|errno| LoopError::StatBacking {
        path: file.to_path_buf(),
        errno,
    })?;
    Ok(stat_id(&st))
}

/// `(st_dev, st_ino)` of a stat result. On Linux `st_dev` is new_encode_dev(), the same encoding
/// as the kernel's huge_encode_dev() in `lo_device`; the widenings are lossless.
pub(super) fn stat_id(st: &libc::stat) -> (u64, u64) {
    #[allow(clippy::useless_conversion)] // dev_t/ino_t are u64 on most targets, not all
    let id = (u64::from(st.st_dev), u64::from(st.st_ino));
    id
}

/// First bound loop device backed by `id` whose flags satisfy `accept`.
///
/// Reads each device's sysfs `backing_file` and only asks the kernel (opening `/dev/loopN`) about
/// devices whose path resolves to `id`, or does not resolve here at all (attached from another
/// mount namespace). Devices of other files are never opened: a transient open would make a
/// concurrent `LOOP_CLR_FD` on them defer the teardown to our close.
pub(super) fn scan_for(
    id: (u64, u64),
    accept: impl Fn(u32) -> bool,
) -> Result<Option<(LoopDevice, u32)>, LoopError> {
    for number in loop_numbers()? {
        let Some((path, deleted)) = read_backing(number)? else {
            continue; // not bound
        };
        if deleted {
            continue; // the path no longer names the backing inode, and `id` exists
        }
        let path_matched = match stat(&path) {
            Ok(st) if stat_id(&st) == id => true,
            Ok(_) => continue,
            Err(_) => false,
        };
        if let Some(flags) = status_of(number, id, path_matched)? {
            if accept(flags) {
                return Ok(Some((LoopDevice::from_number(number), flags)));
            }
        }
    }
    Ok(None)
}
