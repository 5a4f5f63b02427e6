//! The engine's two decisions in one place: an address for a new floating IP, and an owner.
//! (Provisional bodies; replaced by the pool and assignment modules.)

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::store::{FloatingIp, FloatingIpPool};

/// A node that may take a floating IP.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

/// An address from `pool` for a floating IP (`requested` if given), not in `taken`.
pub fn allocate(
    pool: &FloatingIpPool,
    requested: Option<IpAddr>,
    taken: &BTreeSet<IpAddr>,
) -> Result<IpAddr, String> {
    if let Some(r) = requested {
        return if taken.contains(&r) {
            Err(format!("{r} is taken"))
        } else {
            Ok(r)
        };
    }
    for cidr in &pool.cidrs {
        let (base, len) = cidr.split_once('/').ok_or("bad cidr")?;
        let base: std::net::Ipv4Addr = base.parse().map_err(|_| "bad cidr")?;
        let len: u32 = len.parse().map_err(|_| "bad cidr")?;
        let n = 1u32 << (32 - len);
        for i in 1..n.saturating_sub(1) {
            let a = IpAddr::V4((u32::from(base) + i).into());
            if !taken.contains(&a) {
                return Ok(a);
            }
        }
    }
    Err(format!("pool {} is exhausted", pool.name))
}

/// The owner for `fip`: a candidate matching the selectors with the fewest owned.
pub fn choose(
    fip: &FloatingIp,
    pool: &FloatingIpPool,
    candidates: &[Candidate],
    owned: &BTreeMap<String, usize>,
) -> Option<String> {
    candidates
        .iter()
        .filter(|c| {
            pool.node_selector
                .iter()
                .chain(&fip.node_selector)
                .all(|(k, v)| c.labels.get(k) == Some(v))
        })
        .min_by_key(|c| (owned.get(&c.name).copied().unwrap_or(0), c.name.clone()))
        .map(|c| c.name.clone())
}
