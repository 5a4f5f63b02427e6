//! A floating-IP pool as sorted, disjoint address intervals, and [`allocate`]. Pure: it reads
//! a pool record and a set of taken addresses, and never touches the store or the network.
//!
//! A pool is kept as intervals, never as a list of addresses, so an IPv6 /64 (or /0) costs the
//! same as an IPv4 /28. Allocation walks the taken addresses that fall inside each interval,
//! so it costs O(intervals + taken · log taken).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::store::model::FloatingIpPool;

/// Why a pool record could not be turned into a [`Pool`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}[{index}] {value:?}: {message}")]
pub struct PoolError {
    /// `cidrs`, `ranges` or `exclude`.
    pub field: &'static str,
    /// The entry's index in that list.
    pub index: usize,
    /// The entry as written.
    pub value: String,
    /// What is wrong with it.
    pub message: String,
}

/// Why [`allocate`] gave no address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// Every address of the pool is taken.
    #[error("pool {pool}: no free address left ({size} addresses, all taken)")]
    Exhausted {
        /// The pool.
        pool: String,
        /// How many addresses the pool has (saturating).
        size: u128,
    },
    /// The requested address is not one of the pool's.
    #[error(
        "pool {pool}: {address} is not one of its addresses (outside its CIDRs and ranges, \
         or the network or broadcast address of an IPv4 CIDR)"
    )]
    NotInPool {
        /// The pool.
        pool: String,
        /// The requested address.
        address: IpAddr,
    },
    /// The requested address is in the pool's `exclude` list.
    #[error("pool {pool}: {address} is excluded")]
    Excluded {
        /// The pool.
        pool: String,
        /// The requested address.
        address: IpAddr,
    },
    /// The requested address already belongs to another floating IP.
    #[error("pool {pool}: {address} is already taken")]
    Taken {
        /// The pool.
        pool: String,
        /// The requested address.
        address: IpAddr,
    },
}

/// An inclusive interval of one family. IPv4 keys are the u32 value widened; ordering by
/// `(v6, start)` matches `IpAddr`'s ordering (every IPv4 address sorts before every IPv6 one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Block {
    v6: bool,
    start: u128,
    end: u128,
}

fn key(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

fn addr(v6: bool, k: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(k))
    } else {
        // Keys of IPv4 blocks never exceed u32::MAX: they come from IPv4 addresses.
        IpAddr::V4(Ipv4Addr::from(u32::try_from(k).unwrap_or(u32::MAX)))
    }
}

/// A parsed pool: the usable addresses (CIDRs and ranges, less IPv4 network and broadcast
/// addresses, less exclusions) as sorted, disjoint, non-adjacent intervals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    name: String,
    blocks: Vec<Block>,
    excluded: Vec<Block>,
}

impl Pool {
    /// Parses a pool record. Checks each CIDR (no host bits), range (`a-b`, one family, in
    /// order) and exclusion (address or CIDR), and names the first bad entry.
    pub fn parse(def: &FloatingIpPool) -> Result<Self, PoolError> {
        let mut blocks = Vec::new();
        for (index, s) in def.cidrs.iter().enumerate() {
            let err = |message: String| PoolError {
                field: "cidrs",
                index,
                value: s.clone(),
                message,
            };
            let net = parse_net(s).map_err(err)?;
            let (v6, mut start) = key(net.network());
            let mut end = key(net.broadcast()).1;
            if !v6 && net.prefix_len() < 31 {
                start += 1;
                end -= 1;
            }
            blocks.push(Block { v6, start, end });
        }
        for (index, s) in def.ranges.iter().enumerate() {
            let b = parse_range(s).map_err(|message| PoolError {
                field: "ranges",
                index,
                value: s.clone(),
                message,
            })?;
            blocks.push(b);
        }
        let mut excluded = Vec::new();
        for (index, s) in def.exclude.iter().enumerate() {
            let b = match s.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    let (v6, k) = key(ip);
                    Block {
                        v6,
                        start: k,
                        end: k,
                    }
                }
                Err(_) => {
                    let net = parse_net(s).map_err(|message| PoolError {
                        field: "exclude",
                        index,
                        value: s.clone(),
                        message: format!("not an address, and {message}"),
                    })?;
                    let (v6, start) = key(net.network());
                    Block {
                        v6,
                        start,
                        end: key(net.broadcast()).1,
                    }
                }
            };
            excluded.push(b);
        }
        let excluded = normalize(excluded);
        let blocks = subtract(&normalize(blocks), &excluded);
        Ok(Self {
            name: def.name.clone(),
            blocks,
            excluded,
        })
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `ip` may be handed out from this pool (ignoring what is taken).
    pub fn contains(&self, ip: IpAddr) -> bool {
        find(&self.blocks, ip)
    }

    /// Whether `ip` is in the pool's `exclude` list.
    pub fn is_excluded(&self, ip: IpAddr) -> bool {
        find(&self.excluded, ip)
    }

    /// How many addresses may be handed out (saturating at `u128::MAX`).
    pub fn size(&self) -> u128 {
        self.blocks.iter().fold(0u128, |n, b| {
            n.saturating_add((b.end - b.start).saturating_add(1))
        })
    }

    /// The lowest address this pool shares with `other`, if any.
    pub fn overlap(&self, other: &Pool) -> Option<IpAddr> {
        let (mut i, mut j) = (0, 0);
        while i < self.blocks.len() && j < other.blocks.len() {
            let (a, b) = (self.blocks[i], other.blocks[j]);
            if a.v6 == b.v6 && a.start <= b.end && b.start <= a.end {
                return Some(addr(a.v6, a.start.max(b.start)));
            }
            if (a.v6, a.end) < (b.v6, b.end) {
                i += 1;
            } else {
                j += 1;
            }
        }
        None
    }
}

/// Picks an address of `pool` that is not in `taken`: `requested` if it is one of the pool's
/// and free, otherwise (no request) the lowest free address.
///
/// A request for an address that is outside the pool, excluded or taken is an error, not a
/// silent substitute: the operator asked for that address, and handing out another one
/// would announce the wrong IP. A caller that wants "this one or any" calls again with `None`.
/// `taken` may hold addresses of other pools; they are ignored.
pub fn allocate(
    pool: &Pool,
    requested: Option<IpAddr>,
    taken: &BTreeSet<IpAddr>,
) -> Result<IpAddr, AllocError> {
    if let Some(address) = requested {
        let pool_name = || pool.name.clone();
        if !pool.contains(address) {
            return Err(if pool.is_excluded(address) {
                AllocError::Excluded {
                    pool: pool_name(),
                    address,
                }
            } else {
                AllocError::NotInPool {
                    pool: pool_name(),
                    address,
                }
            });
        }
        if taken.contains(&address) {
            return Err(AllocError::Taken {
                pool: pool_name(),
                address,
            });
        }
        return Ok(address);
    }
    for b in &pool.blocks {
        // The taken addresses inside the block come in order; the first gap is free.
        let mut candidate = Some(b.start);
        for t in taken.range(addr(b.v6, b.start)..=addr(b.v6, b.end)) {
            match candidate {
                Some(c) if key(*t).1 == c => candidate = c.checked_add(1).filter(|n| *n <= b.end),
                _ => break,
            }
        }
        if let Some(c) = candidate {
            return Ok(addr(b.v6, c));
        }
    }
    Err(AllocError::Exhausted {
        pool: pool.name.clone(),
        size: pool.size(),
    })
}

fn find(blocks: &[Block], ip: IpAddr) -> bool {
    let (v6, k) = key(ip);
    let i = blocks.partition_point(|b| (b.v6, b.end) < (v6, k));
    blocks.get(i).is_some_and(|b| b.v6 == v6 && b.start <= k)
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    let net: IpNet = s
        .trim()
        .parse()
        .map_err(|_| "not a CIDR like 203.0.113.0/28 or 2001:db8::/64".to_owned())?;
    if net.trunc() != net {
        return Err(format!("host bits are set; the network is {}", net.trunc()));
    }
    Ok(net)
}

fn parse_range(s: &str) -> Result<Block, String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| "not a range like 203.0.113.10-203.0.113.20".to_owned())?;
    let ip = |x: &str| {
        x.trim()
            .parse::<IpAddr>()
            .map_err(|_| format!("{:?} is not an IP address", x.trim()))
    };
    let ((v6a, start), (v6b, end)) = (key(ip(a)?), key(ip(b)?));
    if v6a != v6b {
        return Err("the two ends are of different families".to_owned());
    }
    if start > end {
        return Err("the first address is greater than the last".to_owned());
    }
    Ok(Block {
        v6: v6a,
        start,
        end,
    })
}

/// Sorts and merges overlapping or adjacent blocks.
fn normalize(mut blocks: Vec<Block>) -> Vec<Block> {
    blocks.sort_unstable();
    let mut out: Vec<Block> = Vec::with_capacity(blocks.len());
    for b in blocks {
        match out.last_mut() {
            Some(last) if last.v6 == b.v6 && b.start <= last.end.saturating_add(1) => {
                last.end = last.end.max(b.end);
            }
            _ => out.push(b),
        }
    }
    out
}

/// `blocks` less `holes`; both normalized.
fn subtract(blocks: &[Block], holes: &[Block]) -> Vec<Block> {
    let mut out = Vec::with_capacity(blocks.len());
    for &b in blocks {
        let mut start = Some(b.start);
        for h in holes
            .iter()
            .filter(|h| h.v6 == b.v6 && h.start <= b.end && b.start <= h.end)
        {
            let Some(s) = start else { break };
            if h.start > s {
                out.push(Block {
                    v6: b.v6,
                    start: s,
                    end: h.start - 1,
                });
            }
            start = h.end.checked_add(1).filter(|n| *n <= b.end);
        }
        if let Some(s) = start {
            out.push(Block {
                v6: b.v6,
                start: s,
                end: b.end,
            });
        }
    }
    out
}

#[cfg(test)]
#[path = "pools_tests.rs"]
mod tests;
