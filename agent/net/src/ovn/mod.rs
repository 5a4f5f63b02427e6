//! The node's OVN chassis configuration and its Cilium prerequisites, from the `ovn:` section
//! of the node network file.
//!
//! Owns, in the local Open_vSwitch database: the external_ids keys of [`render::OWNED_KEYS`],
//! the datapath_type of the bridges the section names, and the rows (bridges, ports,
//! interfaces) marked `external_ids:hearth-managed=true`. It must not change or delete any
//! other key, bridge, port or interface. The join interface's address, routes and sysctls are
//! handed to the netlink reconciler ([`netfile`]), never written here.
//!
//! Flow: [`crate::spec`] parses the section with the rest of the file ([`OvnSpec`]), [`render`]
//! builds [`render::Desired`] (pure), [`reconcile`] diffs it
//! with what [`crate::ovsdb::tables::read`] observed and turns the difference into one OVSDB
//! transaction. [`cilium`] checks the MTU and sysctls, [`health`] reports the chassis state,
//! [`watch`] follows the database so that drift is repaired when it happens.

pub mod apply;
pub mod cilium;
pub mod health;
pub mod nb;
pub mod netfile;
pub mod reconcile;
pub mod render;
pub mod watch;

pub use crate::spec::{JoinSpec, OvnSpec, TlsSpec};

/// The external_ids key that marks a row as Hearth's.
pub const MANAGED_KEY: &str = "hearth-managed";

/// Why configuring OVN failed.
#[derive(Debug, thiserror::Error)]
pub enum OvnError {
    /// The `ovn:` section's certificate files could not be read (the field names the key).
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    /// Connecting to the local OVSDB failed.
    #[error("connecting to {endpoint}: {source}")]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// The cause.
        source: crate::ovsdb::OvsdbError,
    },
    /// Reading the Open_vSwitch tables failed.
    #[error("reading {endpoint}: {source}")]
    Observe {
        /// The endpoint.
        endpoint: String,
        /// The cause.
        source: crate::ovsdb::OvsdbError,
    },
    /// The transaction with the changes failed.
    #[error("applying {actions} OVSDB changes on {endpoint}: {source}")]
    Transact {
        /// The endpoint.
        endpoint: String,
        /// How many actions the transaction carried.
        actions: usize,
        /// The cause.
        source: crate::ovsdb::OvsdbError,
    },
    /// The Open_vSwitch table has no root row (the database was not initialised).
    #[error("{endpoint}: the Open_vSwitch table has no row")]
    NoRoot {
        /// The endpoint.
        endpoint: String,
    },
    /// Setting the join interface up failed (or it did not appear in time).
    #[error("setting {dev} up: {source}")]
    JoinUp {
        /// The interface.
        dev: String,
        /// The cause.
        source: crate::netlink::NetlinkError,
    },
}
