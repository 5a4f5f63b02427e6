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
pub use model::{FloatingIp, FloatingIpPool, FloatingIpState, VolumeLocation};
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
    /// `Conflict` if it is not, if another floating IP holds `state.address` (of two writers
    /// giving one address to two floating IPs, at most one wins), if the stored state has
    /// another address (an address stays with its floating IP until it is deleted), or if the
    /// stored state was written in a newer term than `state.term` (a deposed leader); `NotFound` if
    /// the floating IP is not declared. `Invalid` unless `state.epoch > expected_epoch`: an
    /// epoch that does not grow would let two writers that read the same epoch both win.
    async fn swap_floating_ip_state(
        &self,
        expected_epoch: u64,
        state: &FloatingIpState,
    ) -> Result<(), StoreError>;

    /// Every volume placement.
    async fn volumes(&self) -> Result<Vec<VolumeLocation>, StoreError>;
    /// Replaces the placement `expected` with `volume` (the same ID), never creating one:
    /// `NotFound` if no record of that ID exists, `Conflict` if the stored record is not
    /// `expected` (another writer changed it since it was read), `Invalid` if the IDs differ.
    async fn update_volume(
        &self,
        expected: &VolumeLocation,
        volume: &VolumeLocation,
    ) -> Result<(), StoreError>;
    /// Creates a volume placement once: `Conflict` if a record of that ID exists already, so
    /// of two writers placing one new volume exactly one wins.
    async fn create_volume(&self, volume: &VolumeLocation) -> Result<(), StoreError>;
    /// Deletes a volume placement; `Ok` if it is absent.
    async fn delete_volume(&self, id: &str) -> Result<(), StoreError>;

    /// Takes or renews leadership for `holder` for `ttl`: `Some(term)` while it leads, the term
    /// growing with each change of leader; `None` while another holder leads.
    async fn lead(&self, holder: &str, ttl: Duration) -> Result<Option<u64>, StoreError>;

    /// Floating IPs moved off a node whose lease ended, counted over the store's life (so the
    /// count survives a coordinator restart). `None` where the store keeps no count.
    async fn failovers(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }

    /// Adds `n` to the count of [`Store::failovers`] (nothing where the store keeps none).
    async fn add_failovers(&self, _n: u64) -> Result<(), StoreError> {
        Ok(())
    }
}
