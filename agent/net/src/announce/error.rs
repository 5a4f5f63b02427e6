//! The announcer's error: one variant per step that can fail, carrying the IP, device or
//! interface index and the cause.

use std::net::IpAddr;

use crate::netlink::NetlinkError;

/// Why announcing or withdrawing failed.
#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    /// Listing links or addresses failed.
    #[error("floating IP {ip}: looking up {dev}: {source}")]
    Lookup {
        /// The floating IP.
        ip: IpAddr,
        /// The interface.
        dev: String,
        /// The netlink error.
        source: NetlinkError,
    },
    /// The interface does not exist or has no Ethernet address.
    #[error("floating IP {ip}: device {dev} not found or has no Ethernet address")]
    NoDevice {
        /// The floating IP.
        ip: IpAddr,
        /// The interface.
        dev: String,
    },
    /// The interface already has the address and it is not the announcer's.
    #[error("floating IP {ip}: {dev} already has this address and it is not Hearth's; left alone")]
    Foreign {
        /// The floating IP.
        ip: IpAddr,
        /// The interface.
        dev: String,
    },
    /// Adding the address failed.
    #[error("floating IP {ip}: adding the address: {source}")]
    AddAddress {
        /// The floating IP.
        ip: IpAddr,
        /// The netlink error.
        source: NetlinkError,
    },
    /// Removing the address failed.
    #[error("floating IP {ip}: removing the address: {source}")]
    RemoveAddress {
        /// The floating IP.
        ip: IpAddr,
        /// The netlink error.
        source: NetlinkError,
    },
    /// Opening the raw socket failed.
    #[error("opening a raw packet socket: {0}")]
    Socket(#[source] std::io::Error),
    /// Sending a frame failed.
    #[error("sending an announcement on ifindex {ifindex}: {source}")]
    Send {
        /// The interface index.
        ifindex: u32,
        /// The errno.
        source: std::io::Error,
    },
}
