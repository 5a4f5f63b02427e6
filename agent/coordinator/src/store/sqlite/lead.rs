//! Leadership of the embedded store: an exclusive, non-blocking `flock` on the database file
//! itself. The kernel drops the lock when its holder exits, however it exits, so a coordinator
//! that overlaps its predecessor on the same file waits for it. There is no separate lock file
//! to delete: removing the database removes the state too. Every hold also checks that the
//! path still names the locked file (same device and inode), so a database moved or replaced
//! under a running leader ends its leadership instead of letting a second one in.
//!
//! SQLite's own locks are POSIX record locks, which on Linux are independent of `flock`; the
//! descriptor held here stays open for the store's lifetime, so closing it never drops
//! SQLite's locks early. Not for NFS, where `flock` is unreliable; the embedded store belongs
//! on local disk anyway.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::store::StoreError;

/// The open database file: idle, or locked by this store.
enum Fd {
    Idle(File),
    Held(Flock<File>),
    /// Between states (only while the mutex is held).
    Gone,
}

/// The lock on the database file.
pub(super) struct LeadLock {
    path: PathBuf,
    fd: Arc<Mutex<Fd>>,
}

/// Whether `path` still names the file behind `file`.
fn same_file(path: &Path, file: &File) -> Result<bool, StoreError> {
    let open = file
        .metadata()
        .map_err(|e| StoreError::Backend(format!("fstat {}: {e}", path.display())))?;
    match std::fs::metadata(path) {
        Ok(now) => Ok(now.dev() == open.dev() && now.ino() == open.ino()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StoreError::Backend(format!("stat {}: {e}", path.display()))),
    }
}

impl LeadLock {
    /// Opens the database file at `db` (it must exist) without locking it. The descriptor
    /// stays open for the store's lifetime: closing a second descriptor of the file would drop
    /// the process's POSIX locks on it, SQLite's included.
    pub(super) fn open(db: &Path) -> Result<Self, StoreError> {
        let file = OpenOptions::new()
            .read(true)
            .open(db)
            .map_err(|e| StoreError::Backend(format!("open {}: {e}", db.display())))?;
        Ok(Self {
            path: db.to_path_buf(),
            fd: Arc::new(Mutex::new(Fd::Idle(file))),
        })
    }

    /// The locked file's path.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this store holds the lock, taking it if it is free. `Ok(false)` also when the
    /// path no longer names the file that was locked.
    pub(super) async fn try_hold(&self) -> Result<bool, StoreError> {
        let (fd, path) = (Arc::clone(&self.fd), self.path.clone());
        tokio::task::spawn_blocking(move || {
            let mut fd = fd
                .lock()
                .map_err(|_| StoreError::Backend("sqlite: lead mutex poisoned".into()))?;
            match std::mem::replace(&mut *fd, Fd::Gone) {
                Fd::Held(lock) => {
                    let same = same_file(&path, &lock);
                    *fd = Fd::Held(lock);
                    if !same? {
                        tracing::error!(path = %path.display(),
                            "the database file was replaced or removed under the leader");
                        return Ok(false);
                    }
                    Ok(true)
                }
                Fd::Idle(file) => match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                    Ok(lock) => {
                        let same = same_file(&path, &lock);
                        *fd = Fd::Held(lock);
                        same
                    }
                    Err((file, errno)) => {
                        *fd = Fd::Idle(file);
                        match errno {
                            Errno::EWOULDBLOCK => Ok(false),
                            e => Err(StoreError::Backend(format!(
                                "flock {}: {e}",
                                path.display()
                            ))),
                        }
                    }
                },
                Fd::Gone => Err(StoreError::Backend("sqlite: lead lock lost".into())),
            }
        })
        .await
        .map_err(|e| StoreError::Backend(format!("sqlite lead task: {e}")))?
    }

    /// Releases the lock as if the process had exited.
    #[cfg(test)]
    pub(super) fn release(&self) {
        if let Ok(mut fd) = self.fd.lock() {
            if let Fd::Held(lock) = std::mem::replace(&mut *fd, Fd::Gone) {
                match lock.unlock() {
                    Ok(file) => *fd = Fd::Idle(file),
                    Err((lock, _)) => *fd = Fd::Held(lock),
                }
            }
        }
    }
}
