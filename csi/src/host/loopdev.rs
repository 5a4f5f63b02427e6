//! Loop devices, driven by ioctl on `/dev/loop-control` and `/dev/loopN` (no `losetup` child
//! processes): attach a backing file, find an attachment, detach, grow, list, and read block
//! device sizes.
//!
//! Owns: the loop ioctl numbers and `#[repr(C)]` structs from `linux/loop.h`, and the
//! in-process serialisation of attaches of the same backing file.
//!
//! Must not touch: loop devices it did not attach itself, except to *read* their status
//! (`LOOP_GET_STATUS64`, sysfs). [`detach`] and [`set_capacity`] act on whatever device the
//! caller names, so callers must only pass devices they got from [`attach`] or
//! [`find_by_backing_file`] for a file they own. Nothing here mounts, formats or knows CSI.
//!
//! Devices are attached without `LO_FLAGS_AUTOCLEAR`: a bind mount of the device node holds no
//! open reference, so autoclear would detach the device under a live bind mount.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::{stat, Mode};

/// `/dev/loop-control`, the misc device that hands out free loop device numbers.
const LOOP_CONTROL: &str = "/dev/loop-control";
/// Where sysfs lists block devices (`loopN/loop/backing_file` exists while `loopN` is bound).
const SYS_BLOCK: &str = "/sys/block";

// ioctl numbers from linux/loop.h (libc does not define them). They are plain numbers, not
// `_IO()`-encoded, so they are the same on every architecture.
const LOOP_SET_FD: libc::Ioctl = 0x4C00;
const LOOP_CLR_FD: libc::Ioctl = 0x4C01;
const LOOP_SET_STATUS64: libc::Ioctl = 0x4C04;
const LOOP_GET_STATUS64: libc::Ioctl = 0x4C05;
const LOOP_SET_CAPACITY: libc::Ioctl = 0x4C07;
const LOOP_CONFIGURE: libc::Ioctl = 0x4C0A;
const LOOP_CTL_GET_FREE: libc::Ioctl = 0x4C82;

/// `BLKGETSIZE64` from linux/fs.h: `_IOR(0x12, 114, size_t)`; the kernel writes a `u64`.
const BLKGETSIZE64: libc::Ioctl =
    nix::request_code_read!(0x12, 114, std::mem::size_of::<libc::size_t>()) as libc::Ioctl;

/// `lo_flags` bits from linux/loop.h.
const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

/// `LO_NAME_SIZE` / `LO_KEY_SIZE` from linux/loop.h.
const LO_NAME_SIZE: usize = 64;
const LO_KEY_SIZE: usize = 32;

/// How many times [`attach`] asks for a fresh free device after losing a race for one.
const ATTACH_TRIES: u32 = 32;
/// How long [`detach`] waits for transient openers when the kernel deferred the teardown.
pub const DETACH_WAIT: Duration = Duration::from_millis(250);
/// How long [`attach`] waits for devtmpfs to create `/dev/loopN` after `LOOP_CTL_GET_FREE`.
const NODE_WAIT: Duration = Duration::from_secs(2);

/// `struct loop_info64` from linux/loop.h.
#[repr(C)]
#[derive(Clone, Copy)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; LO_NAME_SIZE],
    lo_crypt_name: [u8; LO_NAME_SIZE],
    lo_encrypt_key: [u8; LO_KEY_SIZE],
    lo_init: [u64; 2],
}

/// `struct loop_config` from linux/loop.h (argument of `LOOP_CONFIGURE`, Linux 5.8+).
#[repr(C)]
#[derive(Clone, Copy)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

const _: () = assert!(std::mem::size_of::<LoopInfo64>() == 232);
const _: () = assert!(std::mem::size_of::<LoopConfig>() == 304);

impl LoopInfo64 {
    fn zeroed() -> Self {
        LoopInfo64 {
            lo_device: 0,
            lo_inode: 0,
            lo_rdevice: 0,
            lo_offset: 0,
            lo_sizelimit: 0,
            lo_number: 0,
            lo_encrypt_type: 0,
            lo_encrypt_key_size: 0,
            lo_flags: 0,
            lo_file_name: [0; LO_NAME_SIZE],
            lo_crypt_name: [0; LO_NAME_SIZE],
            lo_encrypt_key: [0; LO_KEY_SIZE],
            lo_init: [0; 2],
        }
    }

    /// Info for a new attachment of `file`: flags plus the name truncated to 63 bytes + NUL.
    fn for_file(file: &Path, read_only: bool) -> Self {
        let mut info = LoopInfo64::zeroed();
        info.lo_flags = if read_only { LO_FLAGS_READ_ONLY } else { 0 };
        let name = file.as_os_str().as_bytes();
        let n = name.len().min(LO_NAME_SIZE - 1);
        info.lo_file_name[..n].copy_from_slice(&name[..n]);
        info
    }
}

/// A loop device node, `/dev/loopN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopDevice {
    /// `N` in `/dev/loopN`.
    pub number: u32,
    /// `/dev/loopN`.
    pub path: PathBuf,
}

impl LoopDevice {
    fn from_number(number: u32) -> Self {
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
fn io_errno(e: &io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

// ---------------------------------------------------------------------------------------------
// ioctl wrappers: one unsafe block each, typed arguments only.

/// `LOOP_CTL_GET_FREE`: the number of an unbound loop device (created if needed).
fn ctl_get_free(ctl: BorrowedFd<'_>) -> Result<u32, Errno> {
    // SAFETY: LOOP_CTL_GET_FREE takes no argument; `ctl` is a live fd borrowed for the call.
    let r = unsafe { libc::ioctl(ctl.as_raw_fd(), LOOP_CTL_GET_FREE) };
    let n = Errno::result(r)?;
    u32::try_from(n).map_err(|_| Errno::ERANGE)
}

/// `LOOP_CONFIGURE` with `config`.
fn loop_configure(dev: BorrowedFd<'_>, config: &LoopConfig) -> Result<(), Errno> {
    // SAFETY: `config` points to a valid, initialised `struct loop_config` (size asserted at
    // compile time) that outlives the call; the kernel only reads it.
    let r = unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_CONFIGURE, std::ptr::from_ref(config)) };
    Errno::result(r).map(drop)
}

/// `LOOP_SET_FD` binding `backing` (the kernel takes its own reference to the file).
fn loop_set_fd(dev: BorrowedFd<'_>, backing: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: LOOP_SET_FD takes the backing fd by value; both fds are live for the call.
    let r = unsafe {
        libc::ioctl(
            dev.as_raw_fd(),
            LOOP_SET_FD,
            libc::c_ulong::from(backing.as_raw_fd().unsigned_abs()),
        )
    };
    Errno::result(r).map(drop)
}

/// `LOOP_SET_STATUS64` with `info`.
fn loop_set_status64(dev: BorrowedFd<'_>, info: &LoopInfo64) -> Result<(), Errno> {
    // SAFETY: `info` points to a valid `struct loop_info64` that outlives the call; the kernel
    // only reads it.
    let r = unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_SET_STATUS64, std::ptr::from_ref(info)) };
    Errno::result(r).map(drop)
}

/// `LOOP_GET_STATUS64`; ENXIO when the device is not bound.
fn loop_get_status64(dev: BorrowedFd<'_>) -> Result<LoopInfo64, Errno> {
    let mut info = LoopInfo64::zeroed();
    // SAFETY: `info` is a valid, writable `struct loop_info64` that outlives the call; the
    // kernel writes at most `size_of::<loop_info64>()` bytes into it.
    let r = unsafe {
        libc::ioctl(
            dev.as_raw_fd(),
            LOOP_GET_STATUS64,
            std::ptr::from_mut(&mut info),
        )
    };
    Errno::result(r).map(|_| info)
}

/// `LOOP_CLR_FD`, or `LOOP_SET_CAPACITY`: argument-less loop ioctls.
fn loop_noarg(dev: BorrowedFd<'_>, request: libc::Ioctl) -> Result<(), Errno> {
    // SAFETY: only called with LOOP_CLR_FD / LOOP_SET_CAPACITY, which take no argument; `dev`
    // is a live fd borrowed for the call.
    let r = unsafe { libc::ioctl(dev.as_raw_fd(), request) };
    Errno::result(r).map(drop)
}

/// `BLKGETSIZE64`: size of the block device in bytes.
fn blk_get_size64(dev: BorrowedFd<'_>) -> Result<u64, Errno> {
    let mut size: u64 = 0;
    // SAFETY: BLKGETSIZE64 writes one u64 through the pointer, which points to a live,
    // writable u64 for the duration of the call.
    let r = unsafe { libc::ioctl(dev.as_raw_fd(), BLKGETSIZE64, std::ptr::from_mut(&mut size)) };
    Errno::result(r).map(|_| size)
}

// ---------------------------------------------------------------------------------------------
// In-process serialisation of attaches of the same file (keyed by st_dev + st_ino), so two
// threads attaching one file end up on one device; attaches of different files run in
// parallel.

static ATTACHING: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());
static ATTACHING_DONE: Condvar = Condvar::new();

/// Holds the per-file attach slot; releases it on drop (also on error paths and panics).
struct FileSlot {
    key: (u64, u64),
}

impl FileSlot {
    fn acquire(key: (u64, u64)) -> Self {
        let mut held = ATTACHING.lock().unwrap_or_else(PoisonError::into_inner);
        while held.contains(&key) {
            held = ATTACHING_DONE
                .wait(held)
                .unwrap_or_else(PoisonError::into_inner);
        }
        held.push(key);
        FileSlot { key }
    }
}

impl Drop for FileSlot {
    fn drop(&mut self) {
        let mut held = ATTACHING.lock().unwrap_or_else(PoisonError::into_inner);
        held.retain(|k| *k != self.key);
        drop(held);
        ATTACHING_DONE.notify_all();
    }
}

// ---------------------------------------------------------------------------------------------
// sysfs scanning

/// Numbers of the loop devices sysfs knows about, ascending.
fn loop_numbers() -> Result<Vec<u32>, LoopError> {
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
fn backing_file_attr(number: u32) -> PathBuf {
    PathBuf::from(format!("{SYS_BLOCK}/loop{number}/loop/backing_file"))
}

/// Parses a `backing_file` attribute: strips the trailing newline and " (deleted)" suffix.
/// None for an empty attribute (device torn down while being read).
fn parse_backing(raw: &[u8]) -> Option<(PathBuf, bool)> {
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
fn read_backing(number: u32) -> Result<Option<(PathBuf, bool)>, LoopError> {
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
fn status_of(number: u32, id: (u64, u64), path_matched: bool) -> Result<Option<u32>, LoopError> {
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
fn sysfs_flags(number: u32) -> Result<Option<u32>, LoopError> {
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
fn file_id(file: &Path) -> Result<(u64, u64), LoopError> {
    let st = stat(file).map_err(|errno| LoopError::StatBacking {
        path: file.to_path_buf(),
        errno,
    })?;
    Ok(stat_id(&st))
}

/// `(st_dev, st_ino)` of a stat result. On Linux `st_dev` is new_encode_dev(), the same encoding
/// as the kernel's huge_encode_dev() in `lo_device`; the widenings are lossless.
fn stat_id(st: &libc::stat) -> (u64, u64) {
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
fn scan_for(
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

// ---------------------------------------------------------------------------------------------
// public API

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
        return Ok(dev);
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
            Ok(()) => return Ok(dev),
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
    blk_get_size64(fd.as_fd()).map_err(|errno| LoopError::Size {
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
    blk_get_size64(fd.as_fd()).map_err(|errno| LoopError::Size {
        path: path.to_path_buf(),
        errno,
    })
}

// ---------------------------------------------------------------------------------------------
// attach helpers

/// Opens a device node just handed out by `LOOP_CTL_GET_FREE`, waiting briefly for devtmpfs to
/// create it if the device is brand new.
fn open_new_node(dev: &LoopDevice, read_only: bool) -> Result<OwnedFd, LoopError> {
    // The kernel marks the device read-only if it was opened without write access.
    let access = if read_only {
        OFlag::O_RDONLY
    } else {
        OFlag::O_RDWR
    };
    let started = Instant::now();
    let mut pause = Duration::from_micros(100);
    loop {
        match open(&dev.path, access | OFlag::O_CLOEXEC, Mode::empty()) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT | Errno::ENXIO) if started.elapsed() < NODE_WAIT => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(errno) => {
                return Err(LoopError::OpenDevice {
                    path: dev.path.clone(),
                    errno,
                })
            }
        }
    }
}

/// Outcome of one attempt to bind a backing file to a free device.
enum BindError {
    /// Someone else bound the device first (EBUSY): try another.
    Busy,
    Failed(LoopError),
}

/// Binds `backing` to the device: `LOOP_CONFIGURE`, or `LOOP_SET_FD` + `LOOP_SET_STATUS64` on
/// kernels that reject `LOOP_CONFIGURE` with EINVAL/ENOTTY.
fn bind(
    dev: &LoopDevice,
    dev_fd: BorrowedFd<'_>,
    backing: BorrowedFd<'_>,
    file: &Path,
    info: &LoopInfo64,
) -> Result<(), BindError> {
    let config = LoopConfig {
        fd: backing.as_raw_fd().unsigned_abs(),
        block_size: 0,
        info: *info,
        reserved: [0; 8],
    };
    match loop_configure(dev_fd, &config) {
        Ok(()) => Ok(()),
        Err(Errno::EBUSY) => Err(BindError::Busy),
        // No LOOP_CONFIGURE (Linux < 5.8).
        Err(Errno::EINVAL | Errno::ENOTTY) => bind_legacy(dev, dev_fd, backing, file, info),
        Err(errno) => Err(BindError::Failed(LoopError::Configure {
            device: dev.path.clone(),
            backing: file.to_path_buf(),
            errno,
        })),
    }
}

/// The pre-5.8 way to bind: `LOOP_SET_FD`, then `LOOP_SET_STATUS64` for the name and flags
/// (undone with `LOOP_CLR_FD` if the second step fails).
fn bind_legacy(
    dev: &LoopDevice,
    dev_fd: BorrowedFd<'_>,
    backing: BorrowedFd<'_>,
    file: &Path,
    info: &LoopInfo64,
) -> Result<(), BindError> {
    match loop_set_fd(dev_fd, backing) {
        Ok(()) => {}
        Err(Errno::EBUSY) => return Err(BindError::Busy),
        Err(errno) => {
            return Err(BindError::Failed(LoopError::SetFd {
                device: dev.path.clone(),
                backing: file.to_path_buf(),
                errno,
            }))
        }
    }
    // LO_FLAGS_READ_ONLY is not settable here; SET_FD derived it from the fds' modes.
    let mut status = *info;
    status.lo_flags &= !LO_FLAGS_READ_ONLY;
    if let Err(errno) = loop_set_status64(dev_fd, &status) {
        // Undo the half-made attachment: it is ours, nobody else has it yet.
        let _ = loop_noarg(dev_fd, LOOP_CLR_FD);
        return Err(BindError::Failed(LoopError::SetStatus {
            device: dev.path.clone(),
            errno,
        }));
    }
    Ok(())
}

/// Short, growing, jittered pause after losing a race for a free device, so racing attachers
/// do not retry in lockstep.
fn backoff(attempt: u32) {
    use std::hash::{BuildHasher, Hasher};
    // Each RandomState gets fresh keys, so this is a cheap, non-cryptographic random number.
    let jitter = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        % 200;
    let micros = 50 * u64::from(attempt.min(20) + 1) + jitter;
    thread::sleep(Duration::from_micros(micros));
}

#[cfg(test)]
#[path = "loopdev_tests.rs"]
mod tests;
