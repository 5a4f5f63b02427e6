//! Facts about a block device node that any device kind shares: its size (`BLKGETSIZE64`) and
//! its device number (`st_rdev`). Reads only; nothing here changes a device.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

/// `BLKGETSIZE64` from linux/fs.h: `_IOR(0x12, 114, size_t)`; the kernel writes a `u64`.
const BLKGETSIZE64: libc::Ioctl =
    nix::request_code_read!(0x12, 114, std::mem::size_of::<libc::size_t>()) as libc::Ioctl;

/// Why reading a block device's facts failed. Each variant names the step and the path.
#[derive(Debug, thiserror::Error)]
pub enum BlockDeviceError {
    /// The device node could not be opened.
    #[error("open block device {path}: {errno}")]
    Open {
        /// The device node.
        path: PathBuf,
        /// The error from the kernel.
        #[source]
        errno: Errno,
    },
    /// `BLKGETSIZE64` failed (not a block device, or the device went away).
    #[error("BLKGETSIZE64 {path}: {errno}")]
    Size {
        /// The device node.
        path: PathBuf,
        /// The error from the kernel.
        #[source]
        errno: Errno,
    },
    /// stat(2) failed.
    #[error("stat {path}: {errno}")]
    Stat {
        /// The device node.
        path: PathBuf,
        /// The error from the kernel.
        #[source]
        errno: Errno,
    },
    /// The path is not a block device node.
    #[error("{path} is not a block device")]
    NotBlock {
        /// The path.
        path: PathBuf,
    },
}

/// `BLKGETSIZE64` on an open block device: its size in bytes.
pub(crate) fn size_of_fd(dev: BorrowedFd<'_>) -> Result<u64, Errno> {
    let mut size: u64 = 0;
    // SAFETY: BLKGETSIZE64 writes one u64 through the pointer, which points to a live,
    // writable u64 for the duration of the call.
    let r = unsafe { libc::ioctl(dev.as_raw_fd(), BLKGETSIZE64, std::ptr::from_mut(&mut size)) };
    Errno::result(r).map(|_| size)
}

/// Size of the block device at `path` in bytes (`BLKGETSIZE64`).
pub fn device_size(path: &Path) -> Result<u64, BlockDeviceError> {
    let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|errno| {
        BlockDeviceError::Open {
            path: path.to_path_buf(),
            errno,
        }
    })?;
    size_of_fd(fd.as_fd()).map_err(|errno| BlockDeviceError::Size {
        path: path.to_path_buf(),
        errno,
    })
}

/// The (major, minor) device number of the block device node at `path`: what mountinfo shows
/// for a filesystem mounted from it.
pub fn device_number(path: &Path) -> Result<(u32, u32), BlockDeviceError> {
    let st = nix::sys::stat::stat(path).map_err(|errno| BlockDeviceError::Stat {
        path: path.to_path_buf(),
        errno,
    })?;
    if st.st_mode & libc::S_IFMT != libc::S_IFBLK {
        return Err(BlockDeviceError::NotBlock {
            path: path.to_path_buf(),
        });
    }
    let (major, minor) = (
        nix::sys::stat::major(st.st_rdev),
        nix::sys::stat::minor(st.st_rdev),
    );
    // Linux device numbers are 12-bit major, 20-bit minor: both fit.
    Ok((
        u32::try_from(major).unwrap_or(u32::MAX),
        u32::try_from(minor).unwrap_or(u32::MAX),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkgetsize64_is_the_kernels_number() {
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        {
            let expected: libc::Ioctl = 0x8008_1272;
            assert_eq!(BLKGETSIZE64, expected);
        }
    }

    #[test]
    fn a_regular_file_is_not_a_block_device() {
        let file = tempfile::NamedTempFile::new().unwrap();
        assert!(matches!(
            device_number(file.path()),
            Err(BlockDeviceError::NotBlock { .. })
        ));
        assert!(matches!(
            device_size(file.path()),
            Err(BlockDeviceError::Size { .. })
        ));
        assert!(matches!(
            device_size(Path::new("/nonexistent/device")),
            Err(BlockDeviceError::Open { .. })
        ));
    }
}
