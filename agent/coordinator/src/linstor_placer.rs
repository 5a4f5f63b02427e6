//! The coordinator's placement for LINSTOR volumes: node views from LINSTOR (online nodes, the
//! best allowed storage pool on each, `Aux/topology/*` properties as labels) joined with what
//! the coordinator knows of each node's agent (labels, health, lease), then the deterministic
//! [`placement`](super::placement) decides the replica nodes.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use hearth_csi::linstor::client::{LinstorClient, ViewFilter};
use hearth_csi::linstor::placement::{PlacementInput, Replica, ReplicaPlacer};
use hearth_csi::{CsiError, TOPOLOGY_NODE_KEY};

use super::engine::Engine;
use super::placement::{self, NodeView, VolumeRequest};

/// LINSTOR node properties with this prefix become labels (linstor-csi's convention).
const TOPOLOGY_PROP: &str = "Aux/topology/";

/// Places LINSTOR replicas with the coordinator's placement.
#[derive(Debug)]
pub struct LinstorPlacer {
    client: LinstorClient,
    engine: Arc<Engine>,
}

impl LinstorPlacer {
    /// A placer reading LINSTOR through `client` and agents' state from `engine`.
    pub fn new(client: LinstorClient, engine: Arc<Engine>) -> Self {
        Self { client, engine }
    }
}

#[async_trait]
impl ReplicaPlacer for LinstorPlacer {
    async fn place(&self, input: &PlacementInput<'_>) -> Result<Vec<Replica>, CsiError> {
        let nodes = self.client.list_nodes().await?;
        let filter = ViewFilter {
            storage_pools: input.pools.to_vec(),
            ..ViewFilter::default()
        };
        let pools = self.client.storage_pool_view(&filter).await?;
        let agents = self.engine.agents();
        let mut views = Vec::new();
        let mut pool_of: BTreeMap<String, String> = BTreeMap::new();
        for n in &nodes {
            let best = pools
                .iter()
                .filter(|p| {
                    p.node_name == n.name
                        && !p.provider_kind.eq_ignore_ascii_case("DISKLESS")
                        && (input.pools.is_empty() || input.pools.contains(&p.storage_pool_name))
                })
                .max_by_key(|p| (p.free_capacity.unwrap_or(0), p.storage_pool_name.clone()));
            let Some(best) = best else { continue };
            let mut labels: BTreeMap<String, String> = n
                .props
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix(TOPOLOGY_PROP)?.to_owned(), v.clone())))
                .collect();
            labels.insert(TOPOLOGY_NODE_KEY.to_owned(), n.name.clone());
            // A node whose agent the coordinator knows must be healthy with a valid lease; a
            // node without an agent session is judged by LINSTOR alone.
            let agent_ok = match agents.get(&n.name) {
                Some(a) => {
                    labels.extend(a.labels.clone());
                    a.healthy
                }
                None => true,
            };
            views.push(NodeView {
                name: n.name.clone(),
                labels,
                healthy: n.is_online() && agent_ok,
                total_bytes: best.total_capacity.unwrap_or(0).saturating_mul(1024),
                free_bytes: best.free_capacity.unwrap_or(0).saturating_mul(1024),
                volumes: 0,
            });
            pool_of.insert(n.name.clone(), best.storage_pool_name.clone());
        }
        let request = VolumeRequest {
            id: input.volume.to_owned(),
            size_bytes: input.size_bytes,
            replicas: input.replicas,
            requisite: input.requisite.to_vec(),
            preferred: input.preferred.to_vec(),
            node_selector: BTreeMap::new(),
        };
        let chosen = placement::place(&views, &request)
            .map_err(|e| CsiError::ResourceExhausted(e.to_string()))?;
        Ok(chosen
            .into_iter()
            .filter_map(|node| {
                let pool = pool_of.get(&node)?.clone();
                Some(Replica { node, pool })
            })
            .collect())
    }
}
