//! The `Netlink` trait: the only way the reconciler and the announcer read or change the
//! kernel's links, addresses, routes, neighbours and rules. [`RtNetlink`] is the real one
//! (a NETLINK_ROUTE socket of the namespace it was opened in); tests use a recording fake.
//!
//! Writes are [`Op`]s with interface indexes already resolved; every op Hearth sends either
//! carries Hearth's marker (protocol, ifalias) or targets an object that already carries it.

mod decode;
mod decode_link;
mod encode;
mod encode_link;
pub mod events;
#[cfg(test)]
pub(crate) mod fake;
mod rt;
mod socket;

use std::fmt;

use async_trait::async_trait;

pub use rt::RtNetlink;
pub use socket::parse_ack;

use super::model::{Address, Link, Mac, Neighbour, Route, Rule};

/// Why a netlink call failed.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// Creating or configuring the NETLINK_ROUTE socket failed.
    #[error("opening a netlink socket: {0}")]
    Open(#[source] std::io::Error),
    /// A dump request failed.
    #[error("dumping {what}: {source}")]
    Dump {
        /// links, addresses, routes, neighbours or rules.
        what: &'static str,
        /// The errno.
        source: std::io::Error,
    },
    /// Sending a batch of requests failed.
    #[error("sending to netlink: {0}")]
    Send(#[source] std::io::Error),
    /// Reading acknowledgements failed.
    #[error("reading netlink acknowledgements: {0}")]
    Receive(#[source] std::io::Error),
    /// The kernel refused one request.
    #[error("{op}: {message} (errno {errno})")]
    Kernel {
        /// What was asked, as the plan prints it.
        op: String,
        /// The positive errno.
        errno: i32,
        /// The kernel's extended-ack text, or the errno's description.
        message: String,
    },
    /// The blocking worker thread was lost.
    #[error("netlink worker: {0}")]
    Worker(String),
}

impl NetlinkError {
    /// The errno of a refused request.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// Who owns an object the kernel has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Hearth's reconciler (its protocol number or ifalias).
    Hearth,
    /// Hearth's floating-IP announcer (the floating address protocol).
    Floating,
    /// A floating IP held under a coordinator lease (the leased address protocol).
    Leased,
    /// A neighbour entry the kernel learned (not permanent, no protocol): a cache entry.
    Cache,
    /// Someone else: never changed or deleted.
    Foreign,
}

/// An object the kernel has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen<T> {
    /// The object, with interface names resolved.
    pub item: T,
    /// Its owner.
    pub owner: Owner,
}

/// A link the kernel has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenLink {
    /// The interface index.
    pub index: u32,
    /// The link (kind, MTU, state, master name, MAC).
    pub link: Link,
    /// True when its ifalias is Hearth's.
    pub owned: bool,
    /// A veth whose peer lives in another namespace (the peer's name is unknown here).
    pub peer_elsewhere: bool,
}

/// One dump of the namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// All links.
    pub links: Vec<SeenLink>,
    /// All addresses.
    pub addresses: Vec<Seen<Address>>,
    /// IPv4 and IPv6 routes of all tables (cache clones excluded).
    pub routes: Vec<Seen<Route>>,
    /// Neighbour and proxy entries.
    pub neighbours: Vec<Seen<Neighbour>>,
    /// Policy rules.
    pub rules: Vec<Seen<Rule>>,
    /// Current values of the desired sysctls by path (`None`: unreadable, e.g. the
    /// interface does not exist yet). Filled by the caller from `Sysctls`, not by netlink.
    pub sysctls: std::collections::BTreeMap<String, Option<String>>,
}

/// One netlink write, with interface indexes resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create a link (with its veth peer); `master` and `lower` (vxlan dev, macvlan parent)
    /// are indexes.
    CreateLink {
        /// The link.
        link: Link,
        /// The master's index.
        master: Option<u32>,
        /// The underlay or parent index.
        lower: Option<u32>,
    },
    /// Change a link, found by `index` or, when that is 0, by `name`.
    SetLink {
        /// Index, or 0.
        index: u32,
        /// Name (used when the index is 0).
        name: String,
        /// New MTU.
        mtu: Option<u32>,
        /// Up or down.
        up: Option<bool>,
        /// New master index; `Some(0)` removes the master.
        master: Option<u32>,
        /// New MAC.
        mac: Option<Mac>,
        /// New ifalias (Hearth's marker).
        alias: Option<String>,
    },
    /// Delete a link.
    DeleteLink {
        /// Index.
        index: u32,
        /// Name, for messages.
        name: String,
    },
    /// Add (or, with `replace`, replace) an address with the given protocol marker.
    AddAddress {
        /// Interface index.
        index: u32,
        /// The address.
        address: Address,
        /// [`super::HEARTH_PROTO`] or [`super::FLOATING_PROTO`].
        proto: u8,
        /// Replace an existing one.
        replace: bool,
    },
    /// Delete an address.
    DeleteAddress {
        /// Interface index.
        index: u32,
        /// The address.
        address: Address,
    },
    /// Add or replace a route; `oifs` has one entry per next hop.
    AddRoute {
        /// The route.
        route: Route,
        /// Output interface index of each next hop.
        oifs: Vec<Option<u32>>,
        /// Replace the route with the same key.
        replace: bool,
    },
    /// Delete a route of Hearth's (the kernel matches its key and protocol).
    DeleteRoute {
        /// The route.
        route: Route,
    },
    /// Add or replace a neighbour entry.
    AddNeighbour {
        /// Interface index.
        index: u32,
        /// The entry.
        neighbour: Neighbour,
        /// Replace an existing entry (a kernel cache entry, or Hearth's own).
        replace: bool,
    },
    /// Delete a neighbour entry.
    DeleteNeighbour {
        /// Interface index.
        index: u32,
        /// The entry.
        neighbour: Neighbour,
    },
    /// Add a rule.
    AddRule {
        /// The rule.
        rule: Rule,
    },
    /// Delete a rule of Hearth's.
    DeleteRule {
        /// The rule.
        rule: Rule,
    },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CreateLink { link, .. } => write!(f, "creating {link}"),
            Self::SetLink { name, .. } => write!(f, "changing link {name}"),
            Self::DeleteLink { name, .. } => write!(f, "deleting link {name}"),
            Self::AddAddress { address, .. } => write!(f, "adding {address}"),
            Self::DeleteAddress { address, .. } => write!(f, "deleting {address}"),
            Self::AddRoute { route, replace, .. } => {
                write!(
                    f,
                    "{} {route}",
                    if *replace { "replacing" } else { "adding" }
                )
            }
            Self::DeleteRoute { route } => write!(f, "deleting {route}"),
            Self::AddNeighbour { neighbour, .. } => write!(f, "adding {neighbour}"),
            Self::DeleteNeighbour { neighbour, .. } => write!(f, "deleting {neighbour}"),
            Self::AddRule { rule } => write!(f, "adding {rule}"),
            Self::DeleteRule { rule } => write!(f, "deleting {rule}"),
        }
    }
}

/// Reads and changes the kernel's networking objects in one network namespace.
#[async_trait]
pub trait Netlink: Send + Sync {
    /// Dumps links, addresses, routes, neighbours and rules.
    async fn observe(&self) -> Result<Observed, NetlinkError>;
    /// Dumps links only.
    async fn links(&self) -> Result<Vec<SeenLink>, NetlinkError>;
    /// Dumps addresses only (with link names resolved).
    async fn addresses(&self) -> Result<Vec<Seen<Address>>, NetlinkError>;
    /// Sends the ops, pipelined, and returns one result per op in order. Ops do not depend
    /// on each other's success within one call.
    async fn write(&self, ops: Vec<Op>) -> Vec<Result<(), NetlinkError>>;
}
