//! Making the announced set equal a wanted list: announce what is missing (or whose
//! address vanished), withdraw the rest, including floating addresses a previous run left.

use std::net::IpAddr;

use super::{AnnounceError, Announcer, Frames};
use crate::model::{Address, FloatingIp};
use crate::netlink::{Netlink, Op, Seen};

impl<N: Netlink + 'static, F: Frames + 'static> Announcer<N, F> {
    /// Makes the announced set exactly `wanted`: announces what is missing (or whose address
    /// vanished), withdraws the rest, including floating addresses a previous run left.
    pub async fn sync(&self, wanted: &[FloatingIp]) -> Vec<AnnounceError> {
        let mut errors = Vec::new();
        let have = match self.netlink.addresses().await {
            Ok(h) => h,
            Err(source) => {
                errors.push(AnnounceError::Lookup {
                    ip: IpAddr::from([0, 0, 0, 0]),
                    dev: String::new(),
                    source,
                });
                return errors;
            }
        };
        let active = self.active();
        for w in wanted {
            let present = have.iter().any(|a| {
                a.owner == self.owner.1 && a.item.dev == w.dev && a.item.prefix.addr == w.address
            });
            if !present || !active.contains(w) {
                if let Err(e) = self.start(w.address, &w.dev, !present).await {
                    errors.push(e);
                }
            }
        }
        let mut stale: Vec<IpAddr> = active
            .iter()
            .filter(|a| !wanted.contains(a))
            .map(|a| a.address)
            .collect();
        stale.extend(
            have.iter()
                .filter(|a| {
                    a.owner == self.owner.1
                        && !wanted
                            .iter()
                            .any(|w| w.address == a.item.prefix.addr && w.dev == a.item.dev)
                })
                .map(|a| a.item.prefix.addr),
        );
        stale.sort();
        stale.dedup();
        for ip in stale {
            if wanted.iter().any(|w| w.address == ip) {
                // Moved to another device: announce() above added the new one; drop the old.
                self.remove_address_not_on(ip, wanted, &have).await;
                continue;
            }
            if let Err(e) = self.withdraw(ip).await {
                errors.push(e);
            }
        }
        errors
    }

    async fn remove_address_not_on(
        &self,
        ip: IpAddr,
        wanted: &[FloatingIp],
        have: &[Seen<Address>],
    ) {
        let Ok(links) = self.netlink.links().await else {
            return;
        };
        let ops: Vec<Op> = have
            .iter()
            .filter(|a| a.owner == self.owner.1 && a.item.prefix.addr == ip)
            .filter(|a| {
                !wanted
                    .iter()
                    .any(|w| w.address == ip && w.dev == a.item.dev)
            })
            .filter_map(|a| {
                Some(Op::DeleteAddress {
                    index: links.iter().find(|l| l.link.name == a.item.dev)?.index,
                    address: a.item.clone(),
                })
            })
            .collect();
        let _ = self.netlink.write(ops).await;
    }
}
