//! Netlink event subscription: a socket in the link, address, route, neighbour and rule
//! multicast groups (through rtnetlink), and [`relevant`], the pure filter that decides which
//! events should wake the reconciler. It only listens; it never writes.

use futures_util::StreamExt;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::neighbour::NeighbourAttribute;
use netlink_packet_route::rule::RuleAttribute;
use netlink_packet_route::RouteNetlinkMessage as Msg;
use netlink_sys::{AsyncSocket, SocketAddr};

use super::NetlinkError;
use crate::{FLOATING_PROTO, HEARTH_PROTO};

const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_NEIGH: u32 = 0x4;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV4_ROUTE: u32 = 0x40;
const RTMGRP_IPV4_RULE: u32 = 0x80;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;
const RTMGRP_IPV6_ROUTE: u32 = 0x400;
const RTMGRP_IPV6_RULE: u32 = 1 << (19 - 1);

/// A stream of netlink notifications of the namespace the subscription was made in.
pub struct Events {
    rx: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = (NetlinkMessage<Msg>, SocketAddr)> + Send>,
    >,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Events")
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Subscribes in the current thread's network namespace. Needs a tokio runtime.
pub fn subscribe() -> Result<Events, NetlinkError> {
    let (mut conn, _handle, rx) = rtnetlink::new_connection().map_err(NetlinkError::Open)?;
    let groups = RTMGRP_LINK
        | RTMGRP_NEIGH
        | RTMGRP_IPV4_IFADDR
        | RTMGRP_IPV4_ROUTE
        | RTMGRP_IPV4_RULE
        | RTMGRP_IPV6_IFADDR
        | RTMGRP_IPV6_ROUTE
        | RTMGRP_IPV6_RULE;
    let sock = conn.socket_mut().socket_mut();
    super::socket::set_rcvbuf(sock, super::socket::RCVBUF);
    sock.bind(&SocketAddr::new(0, groups))
        .map_err(NetlinkError::Open)?;
    let task = tokio::spawn(conn);
    Ok(Events {
        rx: Box::pin(rx),
        task,
    })
}

impl Events {
    /// Waits for the next event that [`relevant`] accepts; `None` when the socket closed.
    pub async fn next_relevant(&mut self) -> Option<()> {
        while let Some((msg, _)) = self.rx.next().await {
            if let NetlinkPayload::InnerMessage(m) = msg.payload {
                if relevant(&m) {
                    return Some(());
                }
            }
        }
        None
    }
}

/// True for events that may mean drift of Hearth's objects: any link change (a link going
/// down flushes IPv4 routes without a route event), and address, route, neighbour and rule
/// changes that carry one of Hearth's protocol numbers. Neighbour-cache churn is ignored.
pub fn relevant(m: &Msg) -> bool {
    let ours = |p: u8| p == HEARTH_PROTO || p == FLOATING_PROTO;
    match m {
        Msg::NewLink(_) | Msg::DelLink(_) => true,
        Msg::NewAddress(a) | Msg::DelAddress(a) => a.attributes.iter().any(|x| match x {
            AddressAttribute::Protocol(p) => ours(u8::from(*p)),
            _ => false,
        }),
        Msg::NewRoute(r) | Msg::DelRoute(r) => u8::from(r.header.protocol) == HEARTH_PROTO,
        Msg::NewNeighbour(n) | Msg::DelNeighbour(n) => n.attributes.iter().any(|x| match x {
            NeighbourAttribute::Protocol(p) => u8::from(*p) == HEARTH_PROTO,
            _ => false,
        }),
        Msg::NewRule(r) | Msg::DelRule(r) => r.attributes.iter().any(|x| match x {
            RuleAttribute::Protocol(p) => u8::from(*p) == HEARTH_PROTO,
            _ => false,
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use netlink_packet_route::address::{AddressMessage, AddressProtocol};
    use netlink_packet_route::link::LinkMessage;
    use netlink_packet_route::route::{RouteMessage, RouteProtocol};

    use super::*;

    #[test]
    fn only_our_objects_and_links_wake_the_reconciler() {
        let mut ours = RouteMessage::default();
        ours.header.protocol = RouteProtocol::from(HEARTH_PROTO);
        let mut kernel = RouteMessage::default();
        kernel.header.protocol = RouteProtocol::Kernel;
        assert!(relevant(&Msg::DelRoute(ours)));
        assert!(!relevant(&Msg::DelRoute(kernel)));
        assert!(relevant(&Msg::NewLink(LinkMessage::default())));
        let mut a = AddressMessage::default();
        assert!(!relevant(&Msg::DelAddress(a.clone())));
        a.attributes
            .push(AddressAttribute::Protocol(AddressProtocol::from(
                FLOATING_PROTO,
            )));
        assert!(relevant(&Msg::DelAddress(a)));
    }
}
