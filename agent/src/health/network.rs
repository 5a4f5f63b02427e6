//! The network collector: links (up/down, MTU), the addresses and routes Hearth owns and the
//! floating IPs it answers for, from one netlink dump through the net module's [`Netlink`]
//! trait and its ownership marks. Owns no netlink writes: it only dumps.

use std::sync::Arc;

use async_trait::async_trait;

use crate::net::netlink::{Netlink, Observed, Owner};

use super::snapshot::{FloatingIpHealth, LinkHealth, Network};
use super::HealthError;

/// Reads the network picture.
#[async_trait]
pub trait NetworkSource: Send + Sync {
    /// One picture.
    async fn network(&self) -> Result<Network, HealthError>;
}

/// The real source: a netlink dump of the agent's namespace.
pub struct NetlinkNetwork<N: Netlink> {
    /// The socket (the real one is `RtNetlink`).
    pub netlink: Arc<N>,
}

#[async_trait]
impl<N: Netlink + 'static> NetworkSource for NetlinkNetwork<N> {
    async fn network(&self) -> Result<Network, HealthError> {
        let observed = self
            .netlink
            .observe()
            .await
            .map_err(|e| HealthError::DumpNetwork(e.to_string()))?;
        Ok(convert(&observed))
    }
}

/// The snapshot shape of a dump: pure, so tests feed it fixtures.
pub fn convert(observed: &Observed) -> Network {
    let links = observed
        .links
        .iter()
        .map(|l| LinkHealth {
            name: l.link.name.clone(),
            up: l.link.up,
            mtu: l.link.mtu,
            owned: l.owned,
        })
        .collect();
    let owned_addresses = observed
        .addresses
        .iter()
        .filter(|a| a.owner == Owner::Hearth)
        .map(|a| a.item.to_string())
        .collect();
    let owned_routes = observed
        .routes
        .iter()
        .filter(|r| r.owner == Owner::Hearth)
        .map(|r| r.item.to_string())
        .collect();
    let floating_ips = observed
        .addresses
        .iter()
        .filter(|a| matches!(a.owner, Owner::Floating | Owner::Leased))
        .map(|a| FloatingIpHealth {
            address: a.item.prefix.addr.to_string(),
            dev: a.item.dev.clone(),
            epoch: None,
            last_announced_unix: None,
        })
        .collect();
    Network {
        links,
        owned_addresses,
        owned_routes,
        floating_ips,
    }
}
