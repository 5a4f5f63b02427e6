//! The network collector: links (up/down, MTU), the addresses and routes Hearth owns and the
//! floating IPs it answers for, from one netlink dump through the net module's [`Netlink`]
//! trait and its ownership marks, and the reconciler's last pass from its [`NetProgress`].
//! Owns no netlink writes: it only dumps.

use std::sync::Arc;

use async_trait::async_trait;

use hearth_net::netlink::{Netlink, Observed, Owner};
use hearth_net::progress::{NetProgress, NetState};

use super::snapshot::{FloatingIpHealth, LinkHealth, Network, Reconciler};
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
    /// The reconciler's progress, when this process runs one.
    pub progress: Option<NetProgress>,
}

#[async_trait]
impl<N: Netlink + 'static> NetworkSource for NetlinkNetwork<N> {
    async fn network(&self) -> Result<Network, HealthError> {
        let observed = self
            .netlink
            .observe()
            .await
            .map_err(|e| HealthError::DumpNetwork(e.to_string()))?;
        let mut net = convert(&observed);
        net.reconciler = self
            .progress
            .as_ref()
            .map(|p| reconciler(p.latest().as_ref()));
        Ok(net)
    }
}

/// The snapshot shape of the reconciler's last pass (`None`: no pass yet).
pub fn reconciler(state: Option<&NetState>) -> Reconciler {
    match state {
        Some(s) => Reconciler {
            last_pass_unix: (s.last_pass_unix > 0.0).then_some(s.last_pass_unix),
            converged: s.converged,
            failures: s.failures,
            conflicts: s.conflicts,
            problems: s.problems.clone(),
            resync_seconds: s.resync.as_secs_f64(),
            stopped: s.stopped.clone(),
        },
        None => Reconciler::default(),
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
        reconciler: None,
    }
}
