//! Making the announced set equal a wanted list: announce what is missing (or whose
//! address vanished, or whose interface changed index or MAC), withdraw the rest, including
//! addresses of the announcer's protocol a previous run left. One pass costs one links dump
//! and one addresses dump, whatever the number of addresses.

use std::net::IpAddr;

use super::{resolve, AnnounceError, Announcer, Frames};
use crate::model::{Address, AnnouncedIp};
use crate::netlink::{Netlink, Op, Owner, Seen};

impl<N: Netlink + 'static, F: Frames + 'static> Announcer<N, F> {
    /// Makes the announced set exactly `wanted`: announces what is missing (or whose address
    /// vanished), withdraws the rest, including addresses a previous run left.
    pub async fn sync(&self, wanted: &[AnnouncedIp]) -> Vec<AnnounceError> {
        let mut errors = Vec::new();
        let any = IpAddr::from([0, 0, 0, 0]);
        let (links, have) = match (self.netlink.links().await, self.netlink.addresses().await) {
            (Ok(l), Ok(h)) => (l, h),
            (Err(source), _) | (_, Err(source)) => {
                errors.push(Self::lookup(any, "")(source));
                return errors;
            }
        };
        let started: Vec<(IpAddr, String, (u32, crate::model::Mac))> = self
            .active
            .lock()
            .map(|a| a.iter().map(|(ip, e)| (*ip, e.dev.clone(), e.at)).collect())
            .unwrap_or_default();
        for w in wanted {
            let host_dev = self.host_dev(&w.dev);
            let present = have.iter().any(|a| {
                a.owner == self.owner.1 && a.item.dev == host_dev && a.item.prefix.addr == w.address
            });
            let current = started.iter().any(|(ip, dev, at)| {
                *ip == w.address && *dev == w.dev && resolve(&links, dev) == Some(*at)
            });
            if !present || !current {
                if let Err(e) = self.start(w.address, &w.dev, !present, &links, &have).await {
                    errors.push(e);
                }
            }
        }
        let mut stale: Vec<IpAddr> = started
            .iter()
            .filter(|(ip, dev, _)| !wanted.iter().any(|w| w.address == *ip && w.dev == *dev))
            .map(|(ip, ..)| *ip)
            .collect();
        stale.extend(
            have.iter()
                .filter(|a| {
                    a.owner == self.owner.1
                        && !wanted.iter().any(|w| {
                            w.address == a.item.prefix.addr && self.host_dev(&w.dev) == a.item.dev
                        })
                })
                .map(|a| a.item.prefix.addr),
        );
        stale.sort();
        stale.dedup();
        for ip in stale {
            if wanted.iter().any(|w| w.address == ip) {
                // Moved to another device: start() above added the new one; drop the old.
                let ops: Vec<Op> = have
                    .iter()
                    .filter(|a| a.owner == self.owner.1 && a.item.prefix.addr == ip)
                    .filter(|a| {
                        !wanted
                            .iter()
                            .any(|w| w.address == ip && self.host_dev(&w.dev) == a.item.dev)
                    })
                    .filter_map(|a| {
                        Some(Op::DeleteAddress {
                            index: links.iter().find(|l| l.link.name == a.item.dev)?.index,
                            address: a.item.clone(),
                        })
                    })
                    .collect();
                let _ = self.netlink.write(ops).await;
                continue;
            }
            if let Err(e) = self.stop(ip, &links, &have).await {
                errors.push(e);
            }
        }
        errors
    }
}

/// One change [`Announcer::sync`] makes to the file's floating IPs, as `hearth net apply`
/// prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FipChange {
    /// Add and announce the address.
    Announce(AnnouncedIp),
    /// Withdraw an address of the announcer's that is no longer wanted.
    Withdraw(AnnouncedIp),
}

impl std::fmt::Display for FipChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Announce(a) => write!(f, "+ floating IP {} dev {}", a.address, a.dev),
            Self::Withdraw(a) => write!(f, "- floating IP {} dev {}", a.address, a.dev),
        }
    }
}

/// The address changes that take the addresses of `owner` in `have` to `wanted` (the plan of
/// [`Announcer::sync`] without a responder, from one observation). Pure.
pub fn plan(wanted: &[AnnouncedIp], have: &[Seen<Address>], owner: Owner) -> Vec<FipChange> {
    let mine: Vec<AnnouncedIp> = have
        .iter()
        .filter(|a| a.owner == owner)
        .map(|a| AnnouncedIp {
            address: a.item.prefix.addr,
            dev: a.item.dev.clone(),
        })
        .collect();
    let mut out: Vec<FipChange> = wanted
        .iter()
        .filter(|w| !mine.contains(w))
        .cloned()
        .map(FipChange::Announce)
        .collect();
    out.extend(
        mine.into_iter()
            .filter(|m| !wanted.contains(m))
            .map(FipChange::Withdraw),
    );
    out
}

#[cfg(test)]
mod plan_tests {
    use super::{plan, FipChange};
    use crate::model::{Address, AnnouncedIp, Prefix};
    use crate::netlink::{Owner, Seen};

    fn ip(a: &str, dev: &str) -> AnnouncedIp {
        AnnouncedIp {
            address: a.parse().unwrap(),
            dev: dev.into(),
        }
    }

    fn seen(a: &str, dev: &str, owner: Owner) -> Seen<Address> {
        let addr = a.parse().unwrap();
        Seen {
            item: Address {
                dev: dev.into(),
                prefix: Prefix {
                    addr,
                    len: Prefix::max_len(addr),
                },
                nodad: false,
            },
            owner,
        }
    }

    #[test]
    fn adds_the_missing_withdraws_the_unwanted_and_ignores_other_owners() {
        let have = [
            seen("10.0.0.1", "eth0", Owner::Floating),
            seen("10.0.0.2", "eth0", Owner::Floating),
            seen("10.0.0.3", "eth0", Owner::Foreign),
        ];
        let wanted = [ip("10.0.0.1", "eth0"), ip("10.0.0.4", "eth0")];
        assert_eq!(
            plan(&wanted, &have, Owner::Floating),
            vec![
                FipChange::Announce(ip("10.0.0.4", "eth0")),
                FipChange::Withdraw(ip("10.0.0.2", "eth0")),
            ]
        );
    }
}
