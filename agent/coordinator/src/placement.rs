//! Volume placement: which nodes hold a new volume's replicas. Pure and deterministic: the
//! same nodes and request give the same nodes in the same order, whatever order the nodes
//! come in. It decides only; recording the decision and creating the volume are the caller's.
//!
//! **Filters** (a node failing one is counted against the first it fails, in this order):
//! healthy; matches the request's node selector; matches one requisite topology segment (when
//! there are any); has `size_bytes` free.
//!
//! **Order** of the survivors, for each replica in turn (the first is the most wanted):
//! 1. hard: a node holds at most one replica;
//! 2. soft: a zone (`topology.kubernetes.io/zone`; nodes without one form one zone) that no
//!    earlier replica of this volume uses. For the first replica every zone is unused, so
//!    this only spreads the later ones;
//! 3. the first preferred topology segment the node matches, in the request's order (CSI:
//!    "in order from first to last"); nodes matching none come after;
//! 4. `2 × free fraction after placing + (1 − volumes / most volumes among candidates)`:
//!    emptier and less loaded nodes first;
//! 5. the highest rendezvous weight of (volume id, node name), then the name.
//!
//! **Speed.** [`Cluster`] indexes the nodes once (name hashes, zones, an inverted label index
//! for selectors and topology segments), so one placement is one pass over the nodes with
//! integer and float arithmetic only, plus one short pass per replica over the survivors.
//! Place one volume after another with [`Cluster::place`] and [`Cluster::commit`].

use std::collections::BTreeMap;
use std::fmt;

use super::hash::{stable_hash, weight};
use super::labels::Labels;

/// The label holding a node's zone.
pub const ZONE_KEY: &str = "topology.kubernetes.io/zone";

/// What placement needs to know about a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// The node's name.
    pub name: String,
    /// Its labels, including its topology segments (`topology.hearth.dev/node`,
    /// `topology.kubernetes.io/zone`).
    pub labels: Labels,
    /// Whether it holds a live lease.
    pub healthy: bool,
    /// Storage pool size.
    pub total_bytes: u64,
    /// Storage pool free space.
    pub free_bytes: u64,
    /// How many volumes (replicas) it holds.
    pub volumes: u32,
}

/// A volume to place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeRequest {
    /// The volume ID (the tie-break key).
    pub id: String,
    /// Bytes each replica needs.
    pub size_bytes: u64,
    /// Replicas, each on a distinct node.
    pub replicas: u32,
    /// CSI accessibility requirements, requisite: when not empty, every replica's node matches
    /// one of these segments.
    pub requisite: Vec<Labels>,
    /// CSI accessibility requirements, preferred, most preferred first.
    pub preferred: Vec<Labels>,
    /// Only nodes with all these labels (from the StorageClass); empty: any node.
    pub node_selector: Labels,
}

/// How many nodes each filter removed; each node is counted once, at the first filter it fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    /// Nodes without a live lease.
    pub unhealthy: usize,
    /// Healthy nodes not matching the node selector.
    pub selector: usize,
    /// ... matching it, but none of the requisite topology segments.
    pub requisite: usize,
    /// ... matching those, but with less free space than the volume needs.
    pub space: usize,
}

/// Why a volume could not be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// The request itself is wrong.
    #[error("volume {volume}: {message}")]
    InvalidRequest {
        /// The volume ID.
        volume: String,
        /// What is wrong.
        message: String,
    },
    /// Fewer nodes pass the filters than there are replicas.
    #[error(
        "volume {volume}: {replicas} replica(s) of {size} need as many distinct nodes, but {fit} of {nodes} node(s) fit ({removed})",
        size = Bytes(*.size_bytes)
    )]
    NoFit {
        /// The volume ID.
        volume: String,
        /// Replicas asked for.
        replicas: u32,
        /// Bytes each replica needs.
        size_bytes: u64,
        /// Nodes that passed every filter.
        fit: usize,
        /// Nodes known.
        nodes: usize,
        /// What each filter removed.
        removed: Removed,
    },
}

impl fmt::Display for Removed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} unhealthy, {} not matching the node selector, {} outside the requisite \
             topology, {} without enough free space",
            self.unhealthy, self.selector, self.requisite, self.space
        )
    }
}

/// Bytes for people: `10 GiB`, `1.5 TiB`, `512 B`.
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        }
        let mut v = self.0 as f64;
        let mut unit = "B";
        for u in UNITS {
            if v < 1024.0 {
                break;
            }
            v /= 1024.0;
            unit = u;
        }
        if v.fract() == 0.0 {
            write!(f, "{v:.0} {unit}")
        } else {
            write!(f, "{v:.1} {unit}")
        }
    }
}

/// The nodes, indexed for placement.
#[derive(Debug, Clone)]
pub struct Cluster {
    nodes: Vec<NodeView>,
    name_hash: Vec<u64>,
    /// Zone ids; 0 is "no zone label".
    zone: Vec<u32>,
    /// label key → value → ids of the nodes carrying it, ascending.
    index: BTreeMap<String, BTreeMap<String, Vec<u32>>>,
}

/// A node that passed the filters.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    node: u32,
    zone: u32,
    rank: u32,
    volumes: u32,
    free_fraction: f64,
    score: f64,
    weight: u64,
}

impl Cluster {
    /// Indexes `nodes`.
    pub fn new(nodes: Vec<NodeView>) -> Self {
        let mut zones: BTreeMap<&str, u32> = BTreeMap::new();
        let mut index: BTreeMap<String, BTreeMap<String, Vec<u32>>> = BTreeMap::new();
        let mut zone = Vec::with_capacity(nodes.len());
        for (i, n) in nodes.iter().enumerate() {
            let next = zones.len() as u32 + 1;
            zone.push(match n.labels.get(ZONE_KEY) {
                Some(z) => *zones.entry(z).or_insert(next),
                None => 0,
            });
            for (k, v) in &n.labels {
                index
                    .entry(k.clone())
                    .or_default()
                    .entry(v.clone())
                    .or_default()
                    .push(i as u32);
            }
        }
        let name_hash = nodes
            .iter()
            .map(|n| stable_hash(n.name.as_bytes()))
            .collect();
        Self {
            nodes,
            name_hash,
            zone,
            index,
        }
    }

    /// The nodes, in the order given to [`Cluster::new`]; [`Cluster::place`] returns indexes
    /// into this slice.
    pub fn nodes(&self) -> &[NodeView] {
        &self.nodes
    }

    /// Records that `node` is (un)healthy.
    pub fn set_healthy(&mut self, node: usize, healthy: bool) {
        self.nodes[node].healthy = healthy;
    }

    /// Records a placement: each chosen node loses `size_bytes` of free space and gains a
    /// volume.
    pub fn commit(&mut self, chosen: &[usize], size_bytes: u64) {
        for &i in chosen {
            let n = &mut self.nodes[i];
            n.free_bytes = n.free_bytes.saturating_sub(size_bytes);
            n.volumes = n.volumes.saturating_add(1);
        }
    }

    /// The nodes for `req`'s replicas, most wanted first, as indexes into [`Cluster::nodes`].
    pub fn place(&self, req: &VolumeRequest) -> Result<Vec<usize>, PlacementError> {
        if req.replicas == 0 {
            return Err(PlacementError::InvalidRequest {
                volume: req.id.clone(),
                message: "asks for 0 replicas".to_owned(),
            });
        }
        let n = self.nodes.len();
        let selected = (!req.node_selector.is_empty()).then(|| self.mask(&[&req.node_selector]));
        let requisite = (!req.requisite.is_empty())
            .then(|| self.mask(&req.requisite.iter().collect::<Vec<_>>()));
        let no_rank = u32::try_from(req.preferred.len()).unwrap_or(u32::MAX);
        let mut rank = Vec::new();
        if !req.preferred.is_empty() {
            rank = vec![no_rank; n];
            // Backwards, so the earliest matching segment wins.
            for (r, seg) in req.preferred.iter().enumerate().rev() {
                for id in self.matching(seg) {
                    rank[id as usize] = r as u32;
                }
            }
        }
        let key = stable_hash(req.id.as_bytes());
        let mut removed = Removed::default();
        let mut candidates: Vec<Candidate> = Vec::with_capacity(n);
        let mut most_volumes = 0;
        for (i, node) in self.nodes.iter().enumerate() {
            if !node.healthy {
                removed.unhealthy += 1;
            } else if selected.as_ref().is_some_and(|m| !m[i]) {
                removed.selector += 1;
            } else if requisite.as_ref().is_some_and(|m| !m[i]) {
                removed.requisite += 1;
            } else if node.free_bytes < req.size_bytes {
                removed.space += 1;
            } else {
                let free_fraction = if node.total_bytes == 0 {
                    0.0
                } else {
                    (node.free_bytes - req.size_bytes) as f64 / node.total_bytes as f64
                };
                most_volumes = most_volumes.max(node.volumes);
                candidates.push(Candidate {
                    node: i as u32,
                    zone: self.zone[i],
                    rank: rank.get(i).copied().unwrap_or(no_rank),
                    volumes: node.volumes,
                    free_fraction,
                    score: 0.0,
                    weight: weight(key, self.name_hash[i]),
                });
            }
        }
        if candidates.len() < req.replicas as usize {
            return Err(PlacementError::NoFit {
                volume: req.id.clone(),
                replicas: req.replicas,
                size_bytes: req.size_bytes,
                fit: candidates.len(),
                nodes: n,
                removed,
            });
        }
        for c in &mut candidates {
            let load = if most_volumes == 0 {
                1.0
            } else {
                1.0 - f64::from(c.volumes) / f64::from(most_volumes)
            };
            c.score = 2.0 * c.free_fraction + load;
        }
        let mut chosen: Vec<usize> = Vec::with_capacity(req.replicas as usize);
        let mut used_zones: Vec<u32> = Vec::with_capacity(req.replicas as usize);
        for _ in 0..req.replicas {
            let mut best: Option<usize> = None;
            for (j, c) in candidates.iter().enumerate() {
                if chosen.contains(&(c.node as usize)) {
                    continue;
                }
                if best.is_none_or(|b| self.better(c, &candidates[b], &used_zones)) {
                    best = Some(j);
                }
            }
            // At least `replicas` candidates, so one is left for each replica.
            let Some(b) = best else { break };
            chosen.push(candidates[b].node as usize);
            used_zones.push(candidates[b].zone);
        }
        Ok(chosen)
    }

    /// Whether `a` goes before `b` given the zones used by earlier replicas.
    fn better(&self, a: &Candidate, b: &Candidate, used_zones: &[u32]) -> bool {
        let (a_new, b_new) = (!used_zones.contains(&a.zone), !used_zones.contains(&b.zone));
        a_new
            .cmp(&b_new)
            .then(b.rank.cmp(&a.rank))
            .then(a.score.total_cmp(&b.score))
            .then(a.weight.cmp(&b.weight))
            .then_with(|| {
                self.nodes[b.node as usize]
                    .name
                    .cmp(&self.nodes[a.node as usize].name)
            })
            .is_gt()
    }

    /// Which nodes match at least one of `segments`, as a mask over the nodes.
    fn mask(&self, segments: &[&Labels]) -> Vec<bool> {
        let mut m = vec![false; self.nodes.len()];
        for seg in segments {
            for id in self.matching(seg) {
                m[id as usize] = true;
            }
        }
        m
    }

    /// Ids of the nodes whose labels contain all of `segment`, from the inverted index.
    fn matching(&self, segment: &Labels) -> Vec<u32> {
        let mut lists = Vec::with_capacity(segment.len());
        for (k, v) in segment {
            match self.index.get(k).and_then(|vals| vals.get(v)) {
                Some(ids) => lists.push(ids.as_slice()),
                None => return Vec::new(),
            }
        }
        lists.sort_by_key(|l| l.len());
        match lists.split_first() {
            None => (0..self.nodes.len() as u32).collect(),
            Some((first, rest)) => first
                .iter()
                .copied()
                .filter(|id| rest.iter().all(|l| l.binary_search(id).is_ok()))
                .collect(),
        }
    }
}

/// Places one volume on `nodes` and returns the chosen nodes' names, most wanted first. For
/// many volumes, build a [`Cluster`] once instead.
pub fn place(nodes: &[NodeView], req: &VolumeRequest) -> Result<Vec<String>, PlacementError> {
    let cluster = Cluster::new(nodes.to_vec());
    let chosen = cluster.place(req)?;
    Ok(chosen.into_iter().map(|i| nodes[i].name.clone()).collect())
}

#[cfg(test)]
#[path = "placement_tests.rs"]
mod tests;
