//! Leadership of the embedded store: an exclusive, non-blocking `flock` on `<db>-lead`. The
//! kernel drops the lock when its holder exits, however it exits, so a coordinator that
//! overlaps its predecessor on the same file waits for it. Not for NFS, where `flock` is
//! unreliable; the embedded store belongs on local disk anyway.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::store::StoreError;

/// The lock file and, once taken, the held lock.
pub(super) struct LeadLock {
    path: PathBuf,
    held: Arc<Mutex<Option<Flock<File>>>>,
}

impl LeadLock {
    /// The lock beside the database at `db`; nothing is opened yet.
    pub(super) fn beside(db: &std::path::Path) -> Self {
        let mut path = OsString::from(db.as_os_str());
        path.push("-lead");
        Self {
            path: path.into(),
            held: Arc::new(Mutex::new(None)),
        }
    }

    /// The lock file's path.
    pub(super) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Whether this store holds the lock, taking it if it is free.
    pub(super) async fn try_hold(&self) -> Result<bool, StoreError> {
        let (held, path) = (Arc::clone(&self.held), self.path.clone());
        tokio::task::spawn_blocking(move || {
            let mut held = held
                .lock()
                .map_err(|_| StoreError::Backend("sqlite: lead mutex poisoned".into()))?;
            if held.is_some() {
                return Ok(true);
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| StoreError::Backend(format!("open {}: {e}", path.display())))?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => {
                    *held = Some(lock);
                    Ok(true)
                }
                Err((_, Errno::EWOULDBLOCK)) => Ok(false),
                Err((_, errno)) => Err(StoreError::Backend(format!(
                    "flock {}: {errno}",
                    path.display()
                ))),
            }
        })
        .await
        .map_err(|e| StoreError::Backend(format!("sqlite lead task: {e}")))?
    }

    /// Releases the lock as if the process had exited.
    #[cfg(test)]
    pub(super) fn release(&self) {
        if let Ok(mut held) = self.held.lock() {
            *held = None;
        }
    }
}
