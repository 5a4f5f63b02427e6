//! Node networking over netlink: the declarative reconciler and the floating-IP announcer.
//!
//! Owns, in the current network namespace, exactly the objects that carry Hearth's marker:
//! - links whose ifalias is [`LINK_ALIAS`];
//! - addresses, routes, neighbours and policy rules whose protocol is [`HEARTH_PROTO`];
//! - floating-IP addresses, whose address protocol is [`FLOATING_PROTO`] (the announcer's),
//!   or [`LEASED_PROTO`] for those the coordinator leases to this node;
//! - the sysctls the node network file names (written, never restored).
//!
//! It must not change or delete anything else: a netlink mistake can cut a node off the network.
//! The flow is kube-runtime's: [`spec`] parses the file, [`render`] turns it into a
//! [`model::Desired`] (pure), [`netlink::Netlink::observe`] dumps the namespace,
//! [`reconcile::reconcile`] diffs the two into a [`plan::Plan`], and [`apply`] carries it out.
//! [`controller`] repeats that on netlink events and on a timer; `hearth net` (in the agent) sits on top.

pub mod announce;
pub mod apply;
pub mod controller;
pub mod model;
pub mod netlink;
pub mod ovn;
pub mod ovsdb;
pub mod plan;
pub mod progress;
pub mod reconcile;
pub mod render;
pub mod spec;
pub mod sysctl;

/// The route, rule, neighbour and address protocol number that marks Hearth's objects
/// (`0x48`, 'H'; not in iproute2's `rt_protos`). `ip route show proto 72` lists them.
pub const HEARTH_PROTO: u8 = 0x48;

/// The address protocol of floating-IP addresses (`0x49`), owned by the announcer alone.
pub const FLOATING_PROTO: u8 = 0x49;

/// The address protocol of floating IPs held under a coordinator lease (`0x4a`): owned by the
/// node's lease holder and its fence guard, never by the file-driven reconciler.
pub const LEASED_PROTO: u8 = 0x4a;

/// The ifalias that marks a link as Hearth's. Set right after the link is created.
pub const LINK_ALIAS: &str = "hearth:managed";
