//! The steps of an attach: the in-process slot that serialises attaches of one file, opening a
//! fresh device node, binding the backing file (`LOOP_CONFIGURE`, or the pre-5.8 pair), and the
//! backoff after losing a race for a free device.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::{Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use super::ioctl::{
    loop_configure, loop_noarg, loop_set_fd, loop_set_status64, LoopConfig, LoopInfo64,
    LOOP_CLR_FD, LO_FLAGS_READ_ONLY,
};
use super::{LoopDevice, LoopError};

/// How long [`attach`] waits for devtmpfs to create `/dev/loopN` after `LOOP_CTL_GET_FREE`.
const NODE_WAIT: Duration = Duration::from_secs(2);

// In-process serialisation of attaches of the same file (keyed by st_dev + st_ino), so two
// threads attaching one file end up on one device; attaches of different files run in
// parallel.

pub(super) static ATTACHING: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());
pub(super) static ATTACHING_DONE: Condvar = Condvar::new();

/// Holds the per-file attach slot; releases it on drop (also on error paths and panics).
pub(super) struct FileSlot {
    key: (u64, u64),
}

impl FileSlot {
    pub(super) fn acquire(key: (u64, u64)) -> Self {
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

/// Opens a device node just handed out by `LOOP_CTL_GET_FREE`, waiting briefly for devtmpfs to
/// create it if the device is brand new.
pub(super) fn open_new_node(dev: &LoopDevice, read_only: bool) -> Result<OwnedFd, LoopError> {
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
pub(super) enum BindError {
    /// Someone else bound the device first (EBUSY): try another.
    Busy,
    Failed(LoopError),
}

/// Binds `backing` to the device: `LOOP_CONFIGURE`, or `LOOP_SET_FD` + `LOOP_SET_STATUS64` on
/// kernels that reject `LOOP_CONFIGURE` with EINVAL/ENOTTY.
pub(super) fn bind(
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
pub(super) fn bind_legacy(
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
pub(super) fn backoff(attempt: u32) {
    use std::hash::{BuildHasher, Hasher};
    // Each RandomState gets fresh keys, so this is a cheap, non-cryptographic random number.
    let jitter = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        % 200;
    let micros = 50 * u64::from(attempt.min(20) + 1) + jitter;
    thread::sleep(Duration::from_micros(micros));
}
