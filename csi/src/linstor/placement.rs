//! Replica placement decided outside LINSTOR's autoplacer: the coordinator knows which nodes'
//! agents are alive and healthy and their labels, and places replicas with its own
//! deterministic scoring. The backend asks a [`ReplicaPlacer`] when one is set and the
//! StorageClass leaves the choice open.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::CsiError;

/// What a placement needs to know about the volume.
#[derive(Debug, Clone)]
pub struct PlacementInput<'a> {
    /// The resource definition's name (the tie-break key).
    pub volume: &'a str,
    /// Bytes each replica needs.
    pub size_bytes: u64,
    /// Diskful replicas, each on a distinct node.
    pub replicas: u32,
    /// Storage pools a replica may use (empty: any diskful pool).
    pub pools: &'a [String],
    /// CSI requisite topology segments.
    pub requisite: &'a [BTreeMap<String, String>],
    /// CSI preferred topology segments, best first.
    pub preferred: &'a [BTreeMap<String, String>],
}

/// A chosen replica: the node and the storage pool on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    /// The node.
    pub node: String,
    /// The storage pool.
    pub pool: String,
}

/// Chooses the nodes of a new volume's replicas.
#[async_trait]
pub trait ReplicaPlacer: Send + Sync + std::fmt::Debug {
    /// `input.replicas` replicas on distinct nodes; `ResourceExhausted` (with the reason) when
    /// no such set exists.
    async fn place(&self, input: &PlacementInput<'_>) -> Result<Vec<Replica>, CsiError>;
}
