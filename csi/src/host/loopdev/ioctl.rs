//! The loop driver's kernel interface: ioctl numbers, the `#[repr(C)]` structs from
//! `linux/loop.h`, and one typed wrapper (one unsafe block) per ioctl. Nothing above this file
//! calls `libc::ioctl` on a loop device.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;

// ioctl numbers from linux/loop.h (libc does not define them). They are plain numbers, not
// `_IO()`-encoded, so they are the same on every architecture.
pub(super) const LOOP_SET_FD: libc::Ioctl = 0x4C00;
pub(super) const LOOP_CLR_FD: libc::Ioctl = 0x4C01;
pub(super) const LOOP_SET_STATUS64: libc::Ioctl = 0x4C04;
pub(super) const LOOP_GET_STATUS64: libc::Ioctl = 0x4C05;
pub(super) const LOOP_SET_CAPACITY: libc::Ioctl = 0x4C07;
pub(super) const LOOP_CONFIGURE: libc::Ioctl = 0x4C0A;
pub(super) const LOOP_CTL_GET_FREE: libc::Ioctl = 0x4C82;

/// `lo_flags` bits from linux/loop.h.
pub(super) const LO_FLAGS_READ_ONLY: u32 = 1;
pub(super) const LO_FLAGS_AUTOCLEAR: u32 = 4;

/// `LO_NAME_SIZE` / `LO_KEY_SIZE` from linux/loop.h.
pub(super) const LO_NAME_SIZE: usize = 64;
pub(super) const LO_KEY_SIZE: usize = 32;

/// `struct loop_info64` from linux/loop.h.
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct LoopInfo64 {
    pub(super) lo_device: u64,
    pub(super) lo_inode: u64,
    pub(super) lo_rdevice: u64,
    pub(super) lo_offset: u64,
    pub(super) lo_sizelimit: u64,
    pub(super) lo_number: u32,
    pub(super) lo_encrypt_type: u32,
    pub(super) lo_encrypt_key_size: u32,
    pub(super) lo_flags: u32,
    pub(super) lo_file_name: [u8; LO_NAME_SIZE],
    pub(super) lo_crypt_name: [u8; LO_NAME_SIZE],
    pub(super) lo_encrypt_key: [u8; LO_KEY_SIZE],
    pub(super) lo_init: [u64; 2],
}

/// `struct loop_config` from linux/loop.h (argument of `LOOP_CONFIGURE`, Linux 5.8+).
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct LoopConfig {
    pub(super) fd: u32,
    pub(super) block_size: u32,
    pub(super) info: LoopInfo64,
    pub(super) reserved: [u64; 8],
}

const _: () = assert!(std::mem::size_of::<LoopInfo64>() == 232);
const _: () = assert!(std::mem::size_of::<LoopConfig>() == 304);

impl LoopInfo64 {
    pub(super) fn zeroed() -> Self {
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
    pub(super) fn for_file(file: &Path, read_only: bool) -> Self {
        let mut info = LoopInfo64::zeroed();
        info.lo_flags = if read_only { LO_FLAGS_READ_ONLY } else { 0 };
        let name = file.as_os_str().as_bytes();
        let n = name.len().min(LO_NAME_SIZE - 1);
        info.lo_file_name[..n].copy_from_slice(&name[..n]);
        info
    }
}

// ioctl wrappers: one unsafe block each, typed arguments only.

/// `LOOP_CTL_GET_FREE`: the number of an unbound loop device (created if needed).
pub(super) fn ctl_get_free(ctl: BorrowedFd<'_>) -> Result<u32, Errno> {
    // SAFETY: LOOP_CTL_GET_FREE takes no argument; `ctl` is a live fd borrowed for the call.
    let r = unsafe { libc::ioctl(ctl.as_raw_fd(), LOOP_CTL_GET_FREE) };
    let n = Errno::result(r)?;
    u32::try_from(n).map_err(|_| Errno::ERANGE)
}

/// `LOOP_CONFIGURE` with `config`.
pub(super) fn loop_configure(dev: BorrowedFd<'_>, config: &LoopConfig) -> Result<(), Errno> {
    // SAFETY: `config` points to a valid, initialised `struct loop_config` (size asserted at
    // compile time) that outlives the call; the kernel only reads it.
    let r = unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_CONFIGURE, std::ptr::from_ref(config)) };
    Errno::result(r).map(drop)
}

/// `LOOP_SET_FD` binding `backing` (the kernel takes its own reference to the file).
pub(super) fn loop_set_fd(dev: BorrowedFd<'_>, backing: BorrowedFd<'_>) -> Result<(), Errno> {
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
pub(super) fn loop_set_status64(dev: BorrowedFd<'_>, info: &LoopInfo64) -> Result<(), Errno> {
    // SAFETY: `info` points to a valid `struct loop_info64` that outlives the call; the kernel
    // only reads it.
    let r = unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_SET_STATUS64, std::ptr::from_ref(info)) };
    Errno::result(r).map(drop)
}

/// `LOOP_GET_STATUS64`; ENXIO when the device is not bound.
pub(super) fn loop_get_status64(dev: BorrowedFd<'_>) -> Result<LoopInfo64, Errno> {
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
pub(super) fn loop_noarg(dev: BorrowedFd<'_>, request: libc::Ioctl) -> Result<(), Errno> {
    // SAFETY: only called with LOOP_CLR_FD / LOOP_SET_CAPACITY, which take no argument; `dev`
    // is a live fd borrowed for the call.
    let r = unsafe { libc::ioctl(dev.as_raw_fd(), request) };
    Errno::result(r).map(drop)
}
