//! The object model both sides of a diff use: what the file asks for ([`Desired`], rendered)
//! and what the kernel has (decoded from netlink dumps), in one normalized shape with
//! interface names, not indexes. Pure data; it never talks to the kernel.

mod objects;
mod types;

pub use objects::{
    Address, Neighbour, NextHop, Route, RouteKey, RouteType, Rule, RuleAction, Sysctl,
};
pub(crate) use types::FromStrVisitor;
pub use types::{IfName, Mac, Prefix};

use std::fmt;
use std::net::IpAddr;

/// The kind of a link and the parameters that fix it at creation. Changing any of them
/// means deleting and recreating the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkKind {
    /// A Linux bridge.
    Bridge,
    /// One end of a veth pair.
    Veth {
        /// The other end's name.
        peer: String,
    },
    /// A VXLAN tunnel device.
    Vxlan {
        /// The VNI (24 bits).
        vni: u32,
        /// The local tunnel address.
        local: Option<IpAddr>,
        /// The remote endpoint (unicast) or multicast group.
        remote: Option<IpAddr>,
        /// The UDP destination port.
        port: u16,
        /// The underlay device.
        dev: Option<String>,
        /// Whether the device learns remote MACs.
        learning: bool,
    },
    /// A macvlan device on a parent.
    Macvlan {
        /// The parent device.
        parent: String,
        /// bridge | private | vepa | passthru.
        mode: MacvlanMode,
    },
    /// Any other kind (observed only).
    Other(String),
}

impl LinkKind {
    /// The kernel's kind name.
    pub fn name(&self) -> &str {
        match self {
            Self::Bridge => "bridge",
            Self::Veth { .. } => "veth",
            Self::Vxlan { .. } => "vxlan",
            Self::Macvlan { .. } => "macvlan",
            Self::Other(k) => k,
        }
    }
}

/// Macvlan modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacvlanMode {
    /// Ports talk to each other through the device.
    Bridge,
    /// No traffic between ports.
    Private,
    /// Traffic between ports hairpins through the switch.
    Vepa,
    /// One port owns the parent.
    Passthru,
}

impl MacvlanMode {
    /// The iproute2 spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bridge => "bridge",
            Self::Private => "private",
            Self::Vepa => "vepa",
            Self::Passthru => "passthru",
        }
    }
}

/// A link. In a desired link, `None` fields are left as the kernel has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface name.
    pub name: String,
    /// Kind and creation parameters.
    pub kind: LinkKind,
    /// MTU.
    pub mtu: Option<u32>,
    /// Administratively up.
    pub up: bool,
    /// The master (bridge) device; `None` means no master.
    pub master: Option<String>,
    /// The MAC address.
    pub mac: Option<Mac>,
    /// A veth peer the file does not declare: created with its pair and kept, but its
    /// attributes are not enforced and its absence (moved to another namespace) is fine.
    pub implied: bool,
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link {} ({}", self.name, self.kind.name())?;
        match &self.kind {
            LinkKind::Veth { peer } => write!(f, ", peer {peer}")?,
            LinkKind::Vxlan {
                vni,
                local,
                remote,
                port,
                dev,
                learning,
            } => {
                write!(f, ", vni {vni}, port {port}")?;
                if let Some(l) = local {
                    write!(f, ", local {l}")?;
                }
                if let Some(r) = remote {
                    write!(f, ", remote {r}")?;
                }
                if let Some(d) = dev {
                    write!(f, ", dev {d}")?;
                }
                if !learning {
                    f.write_str(", nolearning")?;
                }
            }
            LinkKind::Macvlan { parent, mode } => write!(f, ", parent {parent}, {}", mode.name())?,
            LinkKind::Bridge | LinkKind::Other(_) => {}
        }
        if let Some(m) = self.mtu {
            write!(f, ", mtu {m}")?;
        }
        if let Some(m) = &self.master {
            write!(f, ", master {m}")?;
        }
        if let Some(m) = self.mac {
            write!(f, ", mac {m}")?;
        }
        f.write_str(if self.up { ", up)" } else { ", down)" })
    }
}

/// A floating IP from the file: announced on `dev` by the announcer, not by the reconciler.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FloatingIp {
    /// The address (a /32 or /128 is added).
    pub address: IpAddr,
    /// The interface to answer and announce on.
    pub dev: String,
}

/// Everything the node network file asks for, normalized: defaults filled in, veth peers
/// expanded, per-interface sysctls turned into paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// Links, in file order (implied veth peers after their pair).
    pub links: Vec<Link>,
    /// Addresses (not floating IPs).
    pub addresses: Vec<Address>,
    /// Routes.
    pub routes: Vec<Route>,
    /// Neighbour and proxy-neighbour entries.
    pub neighbours: Vec<Neighbour>,
    /// Policy rules.
    pub rules: Vec<Rule>,
    /// Global sysctls (written before links are created, so `default` settings apply).
    pub sysctls: Vec<Sysctl>,
    /// Per-interface sysctls (written once the interfaces exist).
    pub interface_sysctls: Vec<Sysctl>,
    /// Floating IPs, for the announcer.
    pub floating_ips: Vec<FloatingIp>,
}
