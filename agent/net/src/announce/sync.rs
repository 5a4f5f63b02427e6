//! Making the announced set equal a wanted list: announce what is missing (or whose
//! address vanished, or whose interface changed index or MAC), withdraw the rest, including
//! addresses of the announcer's protocol a previous run left. One pass costs one links dump
//! and one addresses dump, whatever the number of addresses.

use std::net::IpAddr;

use super::{resolve, AnnounceError, Announcer, Frames};
use crate::model::AnnouncedIp;
use crate::netlink::{Netlink, Op};

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
