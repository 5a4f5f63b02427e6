//! Whole-file copies for snapshots and clones: a reflink (`FICLONE`) where the filesystem can
//! share extents (xfs, btrfs), otherwise a sparse-aware copy that keeps holes as holes.
//!
//! Owns: creating the destination file (always new, never overwritten) and removing it again if
//! the copy fails. Must not touch: the source (opened read-only, never modified) or any
//! pre-existing file at the destination path. Knows nothing about volumes, CSI or loop devices.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::unistd::{lseek, Whence};

/// Bytes asked of one `copy_file_range` call (the kernel caps a call at ~2 GiB anyway).
const CHUNK: usize = 1 << 30;
/// Buffer for the read/write fallback.
const BUF: usize = 1 << 20;

/// How [`clone_file`] copied the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMethod {
    /// `FICLONE`: the destination shares the source's extents (copy-on-write).
    Reflink,
    /// Data extents copied one by one (`SEEK_DATA`/`SEEK_HOLE` + `copy_file_range`, or
    /// read/write), holes left as holes.
    SparseCopy,
}

/// Why [`clone_file`] failed. Each variant names the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("open source {path}: {errno}")]
    OpenSource {
        path: PathBuf,
        #[source]
        errno: Errno,
    },
    #[error("stat source {path}: {errno}")]
    StatSource {
        path: PathBuf,
        #[source]
        errno: Errno,
    },
    #[error("source {path} is not a regular file")]
    NotRegular { path: PathBuf },
    #[error("create destination {path}: {errno}")]
    CreateDest {
        path: PathBuf,
        #[source]
        errno: Errno,
    },
    #[error("FICLONE {src} -> {dst}: {errno}")]
    Reflink {
        src: PathBuf,
        dst: PathBuf,
        #[source]
        errno: Errno,
    },
    #[error("seek data/hole in {path} at offset {offset}: {errno}")]
    Seek {
        path: PathBuf,
        offset: u64,
        #[source]
        errno: Errno,
    },
    #[error("copy {src} -> {dst} at offset {offset}: {errno}")]
    CopyRange {
        src: PathBuf,
        dst: PathBuf,
        offset: u64,
        #[source]
        errno: Errno,
    },
    #[error("read {path} at offset {offset}: {errno}")]
    Read {
        path: PathBuf,
        offset: u64,
        #[source]
        errno: Errno,
    },
    #[error("write {path} at offset {offset}: {errno}")]
    Write {
        path: PathBuf,
        offset: u64,
        #[source]
        errno: Errno,
    },
    #[error("set length of {path} to {len}: {errno}")]
    SetLen {
        path: PathBuf,
        len: u64,
        #[source]
        errno: Errno,
    },
    #[error("fsync {path}: {errno}")]
    Sync {
        path: PathBuf,
        #[source]
        errno: Errno,
    },
}

/// The errno behind an `io::Error` (EIO when it carries none).
fn io_errno(e: &io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Copies `src` to a NEW file `dst` (`O_CREAT|O_EXCL`: fails with
/// [`CopyError::CreateDest`]/EEXIST if it exists) and fsyncs it and its directory.
///
/// Tries `FICLONE` first (reflink on xfs/btrfs); on EOPNOTSUPP/EXDEV/EINVAL/ENOTTY falls back to
/// a sparse-aware copy: `SEEK_DATA`/`SEEK_HOLE` over the source, `copy_file_range` for each data
/// extent (read/write where that is unsupported), then sets the length to the source's so
/// trailing holes stay holes. The destination gets the source's permission bits (minus umask).
/// Returns which method was used. On failure it removes the partial `dst` (only ever a file this
/// call created).
pub fn clone_file(src: &Path, dst: &Path) -> Result<CopyMethod, CopyError> {
    let source = File::open(src).map_err(|e| CopyError::OpenSource {
        path: src.to_path_buf(),
        errno: io_errno(&e),
    })?;
    let meta = source.metadata().map_err(|e| CopyError::StatSource {
        path: src.to_path_buf(),
        errno: io_errno(&e),
    })?;
    if !meta.file_type().is_file() {
        return Err(CopyError::NotRegular {
            path: src.to_path_buf(),
        });
    }

    let dest = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(meta.mode() & 0o777)
        .custom_flags(libc::O_CLOEXEC)
        .open(dst)
        .map_err(|e| CopyError::CreateDest {
            path: dst.to_path_buf(),
            errno: io_errno(&e),
        })?;
    let mut partial = RemoveOnDrop(Some(dst.to_path_buf()));

    let method = match reflink(&source, &dest) {
        Ok(()) => CopyMethod::Reflink,
        Err(Errno::EOPNOTSUPP | Errno::EXDEV | Errno::EINVAL | Errno::ENOTTY | Errno::ENOSYS) => {
            sparse_copy(&source, src, &dest, dst, meta.len())?;
            CopyMethod::SparseCopy
        }
        Err(errno) => {
            return Err(CopyError::Reflink {
                src: src.to_path_buf(),
                dst: dst.to_path_buf(),
                errno,
            })
        }
    };

    dest.sync_all().map_err(|e| CopyError::Sync {
        path: dst.to_path_buf(),
        errno: io_errno(&e),
    })?;
    sync_parent(dst)?;
    partial.0 = None;
    Ok(method)
}

/// Removes the destination unless disarmed (set to `None`) after a successful copy.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// `FICLONE`: makes `dest` share all of `source`'s extents (and length).
fn reflink(source: &File, dest: &File) -> Result<(), Errno> {
    // SAFETY: FICLONE takes the source fd by value; both fds are owned by live `File`s for the
    // duration of the call and the kernel reads no memory from us.
    let r = unsafe {
        libc::ioctl(
            dest.as_raw_fd(),
            libc::FICLONE,
            libc::c_ulong::from(source.as_raw_fd().unsigned_abs()),
        )
    };
    Errno::result(r).map(drop)
}

/// Copies the data extents of `source` (length `len`) to the same offsets in `dest`, then sets
/// `dest`'s length to `len`.
fn sparse_copy(
    source: &File,
    src: &Path,
    dest: &File,
    dst: &Path,
    len: u64,
) -> Result<(), CopyError> {
    let mut use_copy_range = true;
    let mut pos = 0u64;
    while pos < len {
        let Some((start, end)) = next_extent(source, src, pos, len)? else {
            break;
        };
        if use_copy_range {
            match copy_range(source, src, dest, dst, start, end)? {
                RangeCopy::Done => {
                    pos = end;
                    continue;
                }
                // Unsupported here: do this and every later extent with read/write. A partly
                // copied extent is simply rewritten.
                RangeCopy::Unsupported => use_copy_range = false,
            }
        }
        read_write(source, src, dest, dst, start, end)?;
        pos = end;
    }
    dest.set_len(len).map_err(|e| CopyError::SetLen {
        path: dst.to_path_buf(),
        len,
        errno: io_errno(&e),
    })
}

/// The next data extent `[start, end)` at or after `pos`, clipped to `len`; None when only holes
/// remain. Filesystems without `SEEK_DATA` support (EINVAL/EOPNOTSUPP) get one extent to `len`.
fn next_extent(
    source: &File,
    src: &Path,
    pos: u64,
    len: u64,
) -> Result<Option<(u64, u64)>, CopyError> {
    let seek_err = |offset: u64, errno: Errno| CopyError::Seek {
        path: src.to_path_buf(),
        offset,
        errno,
    };
    let off = i64::try_from(pos).map_err(|_| seek_err(pos, Errno::EOVERFLOW))?;
    let start = match lseek(source.as_fd(), off, Whence::SeekData) {
        Ok(s) => u64::try_from(s).map_err(|_| seek_err(pos, Errno::EOVERFLOW))?,
        // No data at or after `pos` (only a trailing hole, or the file shrank).
        Err(Errno::ENXIO) => return Ok(None),
        Err(Errno::EINVAL | Errno::EOPNOTSUPP) => return Ok(Some((pos, len))),
        Err(errno) => return Err(seek_err(pos, errno)),
    };
    if start >= len {
        return Ok(None);
    }
    let start_off = i64::try_from(start).map_err(|_| seek_err(start, Errno::EOVERFLOW))?;
    let end = match lseek(source.as_fd(), start_off, Whence::SeekHole) {
        Ok(e) => u64::try_from(e).map_err(|_| seek_err(start, Errno::EOVERFLOW))?,
        Err(Errno::ENXIO) => return Ok(None),
        Err(errno) => return Err(seek_err(start, errno)),
    };
    Ok(Some((start, end.min(len))))
}

/// Result of trying `copy_file_range` on one extent.
enum RangeCopy {
    Done,
    Unsupported,
}

/// Copies `[start, end)` with `copy_file_range` at identical offsets.
fn copy_range(
    source: &File,
    src: &Path,
    dest: &File,
    dst: &Path,
    start: u64,
    end: u64,
) -> Result<RangeCopy, CopyError> {
    let mut at = start;
    while at < end {
        let err = |errno: Errno| CopyError::CopyRange {
            src: src.to_path_buf(),
            dst: dst.to_path_buf(),
            offset: at,
            errno,
        };
        let off = i64::try_from(at).map_err(|_| err(Errno::EOVERFLOW))?;
        let want = usize::try_from(end - at).unwrap_or(CHUNK).min(CHUNK);
        match copy_file_range_at(source, dest, off, want) {
            // The source shrank under us: what is left of it was copied.
            Ok(0) => break,
            Ok(n) => at += n as u64,
            Err(Errno::EINTR) => {}
            Err(Errno::EXDEV | Errno::EINVAL | Errno::EOPNOTSUPP | Errno::ENOSYS)
                if at == start =>
            {
                return Ok(RangeCopy::Unsupported)
            }
            Err(errno) => return Err(err(errno)),
        }
    }
    Ok(RangeCopy::Done)
}

/// One `copy_file_range` of up to `len` bytes from `source` to `dest`, both at offset `off`
/// (explicit offsets: the files' own positions are neither used nor moved).
fn copy_file_range_at(source: &File, dest: &File, off: i64, len: usize) -> Result<usize, Errno> {
    let mut off_in: libc::loff_t = off;
    let mut off_out: libc::loff_t = off;
    // SAFETY: both fds belong to live `File`s for the duration of the call; the offset pointers
    // point to live, writable `loff_t`s that the kernel updates; no other memory is passed.
    let r = unsafe {
        libc::copy_file_range(
            source.as_raw_fd(),
            std::ptr::from_mut(&mut off_in),
            dest.as_raw_fd(),
            std::ptr::from_mut(&mut off_out),
            len,
            0,
        )
    };
    Errno::result(r).map(|n| n.unsigned_abs())
}

/// Copies `[start, end)` with positioned reads and writes.
fn read_write(
    source: &File,
    src: &Path,
    dest: &File,
    dst: &Path,
    start: u64,
    end: u64,
) -> Result<(), CopyError> {
    let mut buf = vec![0u8; BUF];
    let mut at = start;
    while at < end {
        let want = usize::try_from(end - at).unwrap_or(BUF).min(BUF);
        let n = match source.read_at(&mut buf[..want], at) {
            Ok(0) => break, // the source shrank under us
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(CopyError::Read {
                    path: src.to_path_buf(),
                    offset: at,
                    errno: io_errno(&e),
                })
            }
        };
        dest.write_all_at(&buf[..n], at)
            .map_err(|e| CopyError::Write {
                path: dst.to_path_buf(),
                offset: at,
                errno: io_errno(&e),
            })?;
        at += n as u64;
    }
    Ok(())
}

/// fsyncs the directory holding `path`, so the new directory entry is durable too.
fn sync_parent(path: &Path) -> Result<(), CopyError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = File::open(parent).map_err(|e| CopyError::Sync {
        path: parent.to_path_buf(),
        errno: io_errno(&e),
    })?;
    dir.sync_all().map_err(|e| CopyError::Sync {
        path: parent.to_path_buf(),
        errno: io_errno(&e),
    })
}

#[cfg(test)]
#[path = "copy_tests.rs"]
mod tests;
