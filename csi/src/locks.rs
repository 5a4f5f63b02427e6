//! Per-object operation locks. A CSI call that finds another call in flight on the same volume
//! (or name, or snapshot) gets ABORTED, as the spec asks, instead of queueing behind it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use crate::CsiError;

/// The set of keys with an operation in flight.
#[derive(Debug, Default, Clone)]
pub struct OperationLocks {
    held: Arc<Mutex<HashSet<String>>>,
}

/// Releases its key when dropped.
#[derive(Debug)]
pub struct OperationGuard {
    held: Arc<Mutex<HashSet<String>>>,
    key: String,
}

impl OperationLocks {
    /// Takes the lock on `key`, or fails with ABORTED when an operation holds it.
    pub fn try_lock(&self, key: &str) -> Result<OperationGuard, CsiError> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if !held.insert(key.to_owned()) {
            return Err(CsiError::Aborted(format!(
                "an operation on {key} is already in progress"
            )));
        }
        Ok(OperationGuard {
            held: Arc::clone(&self.held),
            key: key.to_owned(),
        })
    }
}

impl Drop for OperationGuard {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_same_key_is_aborted_until_release() {
        let locks = OperationLocks::default();
        let first = locks.try_lock("vol-1").unwrap();
        assert!(matches!(locks.try_lock("vol-1"), Err(CsiError::Aborted(_))));
        let _other = locks.try_lock("vol-2").unwrap();
        drop(first);
        assert!(locks.try_lock("vol-1").is_ok());
    }
}
