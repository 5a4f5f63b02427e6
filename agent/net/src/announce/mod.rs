//! The floating-IP announcer. [`Announcer::announce`] adds the address (/32, or /128 with
//! nodad) with the floating address protocol, sends gratuitous ARP (request and reply) or an
//! unsolicited NA at once, repeats it on the [`Schedule`] and refreshes it periodically;
//! [`Announcer::withdraw`] stops that and removes the address. It owns only addresses that
//! carry [`FLOATING_PROTO`]; it never touches any other address.

mod error;
pub mod frame;
mod packet;
mod sync;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use error::AnnounceError;
pub use packet::{Frames, PacketSocket};

use super::model::{Address, FloatingIp, Mac, Prefix};
use super::netlink::{Netlink, Op, Owner};
use super::{FLOATING_PROTO, LEASED_PROTO};

/// When announcements go out: at each `burst` offset after the address is added (the first
/// is normally zero), then every `refresh`.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Offsets from the announce call.
    pub burst: Vec<Duration>,
    /// The refresh period after the burst.
    pub refresh: Duration,
}

impl Default for Schedule {
    /// Three times within the first second (0, 200 and 600 ms), then every 30 s.
    fn default() -> Self {
        Self {
            burst: vec![
                Duration::ZERO,
                Duration::from_millis(200),
                Duration::from_millis(600),
            ],
            refresh: Duration::from_secs(30),
        }
    }
}

/// The frames of one announcement round.
pub fn frames(mac: Mac, ip: IpAddr) -> Vec<Vec<u8>> {
    match ip {
        IpAddr::V4(v4) => vec![
            frame::gratuitous_arp(mac.0, v4, false),
            frame::gratuitous_arp(mac.0, v4, true),
        ],
        IpAddr::V6(v6) => vec![frame::unsolicited_na(mac.0, v6)],
    }
}

fn host(ip: IpAddr, dev: &str) -> Address {
    Address {
        dev: dev.to_owned(),
        prefix: Prefix {
            addr: ip,
            len: Prefix::max_len(ip),
        },
        nodad: ip.is_ipv6(),
    }
}

struct Entry {
    dev: String,
    task: tokio::task::JoinHandle<()>,
}

/// Announces floating IPs in one network namespace.
pub struct Announcer<N: Netlink + 'static, F: Frames + 'static> {
    netlink: Arc<N>,
    frames: Arc<F>,
    schedule: Schedule,
    /// The address protocol it writes and the owner it recognises: floating or leased.
    owner: (u8, Owner),
    active: Mutex<HashMap<IpAddr, Entry>>,
}

impl<N: Netlink + 'static, F: Frames + 'static> std::fmt::Debug for Announcer<N, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announcer")
            .field("active", &self.active())
            .finish()
    }
}

impl<N: Netlink + 'static, F: Frames + 'static> Drop for Announcer<N, F> {
    fn drop(&mut self) {
        if let Ok(active) = self.active.get_mut() {
            for (_, e) in active.drain() {
                e.task.abort();
            }
        }
    }
}

impl<N: Netlink + 'static, F: Frames + 'static> Announcer<N, F> {
    /// An announcer of the node network file's floating IPs ([`FLOATING_PROTO`]), with
    /// nothing announced.
    pub fn new(netlink: Arc<N>, frames: Arc<F>, schedule: Schedule) -> Self {
        Self {
            netlink,
            frames,
            schedule,
            owner: (FLOATING_PROTO, Owner::Floating),
            active: Mutex::new(HashMap::new()),
        }
    }

    /// An announcer of floating IPs leased from the coordinator ([`LEASED_PROTO`]): it sees and
    /// removes only those, never the file's.
    pub fn leased(netlink: Arc<N>, frames: Arc<F>, schedule: Schedule) -> Self {
        let mut a = Self::new(netlink, frames, schedule);
        a.owner = (LEASED_PROTO, Owner::Leased);
        a
    }

    /// The floating IPs being announced.
    pub fn active(&self) -> Vec<FloatingIp> {
        let mut v: Vec<FloatingIp> = self
            .active
            .lock()
            .map(|a| {
                a.iter()
                    .map(|(ip, e)| FloatingIp {
                        address: *ip,
                        dev: e.dev.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    async fn link(&self, ip: IpAddr, dev: &str) -> Result<(u32, Mac), AnnounceError> {
        let links = self
            .netlink
            .links()
            .await
            .map_err(|source| AnnounceError::Lookup {
                ip,
                dev: dev.to_owned(),
                source,
            })?;
        links
            .into_iter()
            .find(|l| l.link.name == dev)
            .and_then(|l| Some((l.index, l.link.mac?)))
            .ok_or_else(|| AnnounceError::NoDevice {
                ip,
                dev: dev.to_owned(),
            })
    }

    /// Adds `ip` on `dev` and announces it now, then on the schedule. Idempotent: a second
    /// call restarts the burst.
    pub async fn announce(&self, ip: IpAddr, dev: &str) -> Result<(), AnnounceError> {
        self.start(ip, dev, true).await
    }

    async fn start(&self, ip: IpAddr, dev: &str, add: bool) -> Result<(), AnnounceError> {
        let (index, mac) = self.link(ip, dev).await?;
        let address = host(ip, dev);
        let op = Op::AddAddress {
            index,
            address: address.clone(),
            proto: self.owner.0,
            replace: false,
        };
        let added = if add {
            self.netlink.write(vec![op]).await.pop()
        } else {
            None
        };
        if let Some(Err(e)) = added {
            if e.errno() != Some(libc::EEXIST) {
                return Err(AnnounceError::AddAddress { ip, source: e });
            }
            let have = self
                .netlink
                .addresses()
                .await
                .map_err(|source| AnnounceError::Lookup {
                    ip,
                    dev: dev.to_owned(),
                    source,
                })?;
            if !have.iter().any(|a| {
                a.item.prefix == address.prefix && a.item.dev == dev && a.owner == self.owner.1
            }) {
                return Err(AnnounceError::Foreign {
                    ip,
                    dev: dev.to_owned(),
                });
            }
        }
        let round = frames(mac, ip);
        for f in &round {
            self.frames.send(index, f)?;
        }
        let (netlink, sender, schedule, name) = (
            Arc::clone(&self.netlink),
            Arc::clone(&self.frames),
            self.schedule.clone(),
            dev.to_owned(),
        );
        let task = tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            for offset in schedule.burst.iter().skip_while(|o| o.is_zero()) {
                tokio::time::sleep_until(start + *offset).await;
                send_round(&*sender, index, &round);
            }
            let mut next =
                start + schedule.burst.last().copied().unwrap_or_default() + schedule.refresh;
            loop {
                tokio::time::sleep_until(next).await;
                next += schedule.refresh;
                // Re-resolve: the interface may have been recreated with a new index or MAC.
                match netlink.links().await {
                    Ok(links) => match links
                        .into_iter()
                        .find(|l| l.link.name == name)
                        .and_then(|l| Some((l.index, l.link.mac?)))
                    {
                        Some((i, m)) => send_round(&*sender, i, &frames(m, ip)),
                        None => {
                            tracing::warn!(%ip, dev = %name, "floating IP refresh: device not found")
                        }
                    },
                    Err(e) => tracing::warn!(%ip, "floating IP refresh: {e}"),
                }
            }
        });
        if let Ok(mut active) = self.active.lock() {
            if let Some(old) = active.insert(
                ip,
                Entry {
                    dev: dev.to_owned(),
                    task,
                },
            ) {
                old.task.abort();
            }
        }
        tracing::info!(%ip, %dev, "floating IP announced");
        Ok(())
    }

    /// Stops announcing `ip` and removes its address (if it is still the announcer's).
    pub async fn withdraw(&self, ip: IpAddr) -> Result<(), AnnounceError> {
        let entry = self.active.lock().ok().and_then(|mut a| a.remove(&ip));
        if let Some(e) = &entry {
            e.task.abort();
        }
        let have = self
            .netlink
            .addresses()
            .await
            .map_err(|source| AnnounceError::Lookup {
                ip,
                dev: String::new(),
                source,
            })?;
        let links = self
            .netlink
            .links()
            .await
            .map_err(|source| AnnounceError::Lookup {
                ip,
                dev: String::new(),
                source,
            })?;
        let ops: Vec<Op> = have
            .into_iter()
            .filter(|a| a.owner == self.owner.1 && a.item.prefix.addr == ip)
            .filter_map(|a| {
                let index = links.iter().find(|l| l.link.name == a.item.dev)?.index;
                Some(Op::DeleteAddress {
                    index,
                    address: a.item,
                })
            })
            .collect();
        for r in self.netlink.write(ops).await {
            if let Err(e) = r {
                if !matches!(
                    e.errno(),
                    Some(libc::EADDRNOTAVAIL | libc::ENODEV | libc::ENOENT)
                ) {
                    return Err(AnnounceError::RemoveAddress { ip, source: e });
                }
            }
        }
        tracing::info!(%ip, "floating IP withdrawn");
        Ok(())
    }
}

fn send_round<F: Frames + ?Sized>(frames: &F, index: u32, round: &[Vec<u8>]) {
    for f in round {
        if let Err(e) = frames.send(index, f) {
            tracing::warn!("{e}");
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
