//! Connection slots of one status listener: at most `total` connections at once, and at most
//! `per_source` of them from one source (an IPv4 address, or an IPv6 /64, which one host
//! usually holds whole). One client that opens connections without end fills its own share
//! and no more, so the others (kubelet, the scraper, `hearth status`) still find free slots.
//! Pure bookkeeping; the server asks it on every accept and the [`Slot`] gives back on drop.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// The limits of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once.
    pub total: usize,
    /// Connections served at once from one source.
    pub per_source: usize,
}

/// Why a connection gets no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoSlot {
    /// Every slot is taken.
    #[error("all {0} connections are in use")]
    Full(usize),
    /// This source holds its share already.
    #[error("this source holds {0} connections already")]
    Source(usize),
}

/// The source a connection is counted against: the IPv4 address, or the IPv6 /64
/// (IPv4-mapped IPv6 addresses count as their IPv4 address).
pub fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_source: HashMap<IpAddr, usize>,
}

/// The slots of one listener.
#[derive(Debug)]
pub struct Slots {
    limits: Limits,
    open: Mutex<Open>,
}

/// A taken slot; dropping it frees it.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    source: IpAddr,
}

impl Slots {
    /// Slots within `limits`.
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            open: Mutex::new(Open::default()),
        })
    }

    /// Takes a slot for a connection from `ip`.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, NoSlot> {
        let source = source_of(ip);
        let mut open = self
            .open
            .lock()
            .map_err(|_| NoSlot::Full(self.limits.total))?;
        if open.total >= self.limits.total {
            return Err(NoSlot::Full(self.limits.total));
        }
        let mine = open.by_source.entry(source).or_default();
        if *mine >= self.limits.per_source {
            return Err(NoSlot::Source(*mine));
        }
        *mine += 1;
        open.total += 1;
        Ok(Slot {
            slots: Arc::clone(self),
            source,
        })
    }

    /// Connections open now (total, from the source of `ip`).
    pub fn open(&self, ip: IpAddr) -> (usize, usize) {
        self.open.lock().map_or((0, 0), |o| {
            (
                o.total,
                o.by_source.get(&source_of(ip)).copied().unwrap_or(0),
            )
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.slots.open.lock() {
            open.total = open.total.saturating_sub(1);
            if let Some(n) = open.by_source.get_mut(&self.source) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.by_source.remove(&self.source);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_source_gets_its_share_and_the_others_still_get_slots() {
        let slots = Slots::new(Limits {
            total: 4,
            per_source: 2,
        });
        let a1 = slots.take(ip("10.0.0.1")).unwrap();
        let _a2 = slots.take(ip("10.0.0.1")).unwrap();
        assert_eq!(slots.take(ip("10.0.0.1")).unwrap_err(), NoSlot::Source(2));
        let _b1 = slots.take(ip("10.0.0.2")).unwrap();
        let _b2 = slots.take(ip("10.0.0.2")).unwrap();
        assert_eq!(slots.take(ip("10.0.0.3")).unwrap_err(), NoSlot::Full(4));
        drop(a1);
        assert_eq!(slots.open(ip("10.0.0.1")), (3, 1));
        let _c = slots.take(ip("10.0.0.3")).unwrap();
    }

    #[test]
    fn an_ipv6_64_is_one_source_and_mapped_ipv4_is_its_address() {
        assert_eq!(source_of(ip("2001:db8:1:2::5")), ip("2001:db8:1:2::"));
        assert_eq!(
            source_of(ip("2001:db8:1:2:ffff:1:2:3")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(source_of(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        let slots = Slots::new(Limits {
            total: 8,
            per_source: 1,
        });
        let _a = slots.take(ip("2001:db8:1:2::5")).unwrap();
        assert!(slots.take(ip("2001:db8:1:2::6")).is_err());
        assert!(slots.take(ip("2001:db8:1:3::6")).is_ok());
    }

    #[test]
    fn freed_slots_leave_no_entry_behind() {
        let slots = Slots::new(Limits {
            total: 2,
            per_source: 2,
        });
        for i in 0..100u8 {
            drop(slots.take(IpAddr::from([10, 0, 0, i])).unwrap());
        }
        assert_eq!(slots.open.lock().unwrap().by_source.len(), 0);
        assert_eq!(slots.open(ip("10.0.0.1")), (0, 0));
    }
}
