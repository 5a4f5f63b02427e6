//! The coordinator's durable state behind one trait, [`Store`], with two implementations:
//! SQLite (the embedded default) and Kubernetes (CRDs, and a Lease for leader election).
//! Both pass one contract suite (`contract_tests.rs`). This module owns the coordinator's
//! records and how they persist; it must not decide placement or allocation (that is the
//! coordinator's job) and never touches the node.

#[cfg(test)]
mod contract_tests;
#[cfg(test)]
mod fake_apiserver;
pub mod kube;
pub mod model;
pub mod sqlite;
mod validate;

use std::time::Duration;

use async_trait::async_trait;

pub use self::kube::KubeStore;
pub use model::{FloatingIp, FloatingIpPool, FloatingIpState, VolumeRecord};
pub use sqlite::SqliteStore;

/// Errors of a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A compare-and-swap lost: the record changed since it was read, or the address is taken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The named record does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A record failed validation.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The store itself failed (I/O, database, apiserver).
    #[error("store: {0}")]
    Backend(String),
}

/// The coordinator's durable state. Every write is atomic; readers never see half a change.
///
/// Names of pools and floating IPs must be DNS-1123 subdomains in both stores (they are object
/// names on Kubernetes), so a configuration moves between the stores unchanged.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Every pool.
    async fn pools(&self) -> Result<Vec<FloatingIpPool>, StoreError>;
    /// Creates or replaces a pool.
    async fn put_pool(&self, pool: &FloatingIpPool) -> Result<(), StoreError>;
    /// Deletes a pool; `Ok` if it is absent.
    async fn delete_pool(&self, name: &str) -> Result<(), StoreError>;

    /// Every floating IP as declared.
    async fn floating_ips(&self) -> Result<Vec<FloatingIp>, StoreError>;
    /// Creates or replaces a floating IP's declaration (its state is kept).
    async fn put_floating_ip(&self, fip: &FloatingIp) -> Result<(), StoreError>;
    /// Deletes a floating IP and its state; `Ok` if it is absent.
    async fn delete_floating_ip(&self, name: &str) -> Result<(), StoreError>;

    /// Every floating IP's state.
    async fn floating_ip_states(&self) -> Result<Vec<FloatingIpState>, StoreError>;
    /// Writes `state` if the stored state's epoch is `expected_epoch` (0: no state stored yet).
    /// `Conflict` if it is not, or if another floating IP holds `state.address`; `NotFound` if
    /// the floating IP is not declared. `Invalid` unless `state.epoch > expected_epoch`: an
    /// epoch that does not grow would let two writers that read the same epoch both win.
    async fn swap_floating_ip_state(
        &self,
        expected_epoch: u64,
        state: &FloatingIpState,
    ) -> Result<(), StoreError>;

    /// Every volume placement.
    async fn volumes(&self) -> Result<Vec<VolumeRecord>, StoreError>;
    /// Creates or replaces a volume placement.
    async fn put_volume(&self, volume: &VolumeRecord) -> Result<(), StoreError>;
    /// Deletes a volume placement; `Ok` if it is absent.
    async fn delete_volume(&self, id: &str) -> Result<(), StoreError>;

    /// Takes or renews leadership for `holder` for `ttl`. `Ok(false)` while another holder's
    /// lease is valid. A single-process store may always answer `Ok(true)`.
    async fn lead(&self, holder: &str, ttl: Duration) -> Result<bool, StoreError>;
}
