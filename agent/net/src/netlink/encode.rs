//! [`Op`] → netlink request. Every add carries Hearth's marker (protocol or, for links, the
//! ifalias set right after creation); every delete names the protocol so the kernel itself
//! refuses to delete a foreign object with the same key.

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressProtocol,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteNextHop, RouteNextHopFlags,
    RouteProtocol, RouteScope, RouteType as NlRouteType,
};
use netlink_packet_route::rule::{RuleAction as NlRuleAction, RuleAttribute, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::encode_link::create_link;
use super::Op;
use crate::model::{Route, RouteType, Rule, RuleAction};
use crate::HEARTH_PROTO;

fn family(v6: bool) -> AddressFamily {
    if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    }
}

/// The request and the extra `NLM_F_*` flags for an op.
pub fn encode(op: &Op) -> (RouteNetlinkMessage, u16) {
    match op {
        Op::CreateLink {
            link,
            master,
            lower,
        } => (
            RouteNetlinkMessage::NewLink(create_link(link, *master, *lower)),
            NLM_F_CREATE | NLM_F_EXCL,
        ),
        Op::SetLink {
            index,
            name,
            mtu,
            up,
            master,
            mac,
            alias,
        } => {
            let mut m = LinkMessage::default();
            m.header.index = *index;
            if *index == 0 {
                m.attributes.push(LinkAttribute::IfName(name.clone()));
            }
            if let Some(up) = up {
                m.header.change_mask = LinkFlags::Up;
                m.header.flags = if *up {
                    LinkFlags::Up
                } else {
                    LinkFlags::empty()
                };
            }
            if let Some(mtu) = mtu {
                m.attributes.push(LinkAttribute::Mtu(*mtu));
            }
            if let Some(master) = master {
                m.attributes.push(LinkAttribute::Controller(*master));
            }
            if let Some(mac) = mac {
                m.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
            }
            if let Some(alias) = alias {
                m.attributes.push(LinkAttribute::IfAlias(alias.clone()));
            }
            (RouteNetlinkMessage::SetLink(m), 0)
        }
        Op::DeleteLink { index, .. } => {
            let mut m = LinkMessage::default();
            m.header.index = *index;
            (RouteNetlinkMessage::DelLink(m), 0)
        }
        Op::AddAddress {
            index,
            address,
            proto,
            replace,
        } => {
            let mut m = address_message(*index, address.prefix.addr, address.prefix.len);
            if address.nodad {
                m.header.flags = AddressHeaderFlags::Nodad;
                m.attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
            m.attributes
                .push(AddressAttribute::Protocol(AddressProtocol::from(*proto)));
            let flags = if *replace {
                NLM_F_CREATE | NLM_F_REPLACE
            } else {
                NLM_F_CREATE | NLM_F_EXCL
            };
            (RouteNetlinkMessage::NewAddress(m), flags)
        }
        Op::DeleteAddress { index, address } => (
            RouteNetlinkMessage::DelAddress(address_message(
                *index,
                address.prefix.addr,
                address.prefix.len,
            )),
            0,
        ),
        Op::AddRoute {
            route,
            oifs,
            replace,
        } => {
            let flags = if *replace {
                NLM_F_CREATE | NLM_F_REPLACE
            } else {
                NLM_F_CREATE | NLM_F_EXCL
            };
            (
                RouteNetlinkMessage::NewRoute(route_message(route, oifs)),
                flags,
            )
        }
        Op::DeleteRoute { route } => {
            let mut m = route_message(route, &[]);
            m.attributes.retain(|a| {
                matches!(
                    a,
                    RouteAttribute::Destination(_)
                        | RouteAttribute::Table(_)
                        | RouteAttribute::Priority(_)
                )
            });
            m.header.scope = RouteScope::NoWhere;
            (RouteNetlinkMessage::DelRoute(m), 0)
        }
        Op::AddNeighbour {
            index,
            neighbour,
            replace,
        } => {
            let mut m = neighbour_message(*index, neighbour.address, neighbour.proxy);
            if let Some(mac) = neighbour.mac {
                m.attributes
                    .push(NeighbourAttribute::LinkLayerAddress(mac.0.to_vec()));
            }
            m.attributes
                .push(NeighbourAttribute::Protocol(RouteProtocol::from(
                    HEARTH_PROTO,
                )));
            let flags = if *replace {
                NLM_F_CREATE | NLM_F_REPLACE
            } else {
                NLM_F_CREATE | NLM_F_EXCL
            };
            (RouteNetlinkMessage::NewNeighbour(m), flags)
        }
        Op::DeleteNeighbour { index, neighbour } => (
            RouteNetlinkMessage::DelNeighbour(neighbour_message(
                *index,
                neighbour.address,
                neighbour.proxy,
            )),
            0,
        ),
        Op::AddRule { rule } => (
            RouteNetlinkMessage::NewRule(rule_message(rule)),
            NLM_F_CREATE | NLM_F_EXCL,
        ),
        Op::DeleteRule { rule } => (RouteNetlinkMessage::DelRule(rule_message(rule)), 0),
    }
}

fn address_message(index: u32, addr: IpAddr, len: u8) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = family(addr.is_ipv6());
    m.header.prefix_len = len;
    m.header.index = index;
    if addr.is_ipv4() {
        m.attributes.push(AddressAttribute::Local(addr));
    }
    m.attributes.push(AddressAttribute::Address(addr));
    m
}

fn route_type(t: RouteType) -> NlRouteType {
    match t {
        RouteType::Unicast => NlRouteType::Unicast,
        RouteType::Blackhole => NlRouteType::BlackHole,
        RouteType::Unreachable => NlRouteType::Unreachable,
        RouteType::Prohibit => NlRouteType::Prohibit,
        RouteType::Throw => NlRouteType::Throw,
        RouteType::Other(n) => NlRouteType::Other(n),
    }
}

fn route_message(route: &Route, oifs: &[Option<u32>]) -> RouteMessage {
    let mut m = RouteMessage::default();
    let key = &route.key;
    let dst = key.dst;
    m.header.address_family = family(dst.is_v6());
    m.header.destination_prefix_length = dst.len;
    m.header.tos = key.tos;
    m.header.table = u8::try_from(key.table).unwrap_or(0);
    m.header.protocol = RouteProtocol::from(HEARTH_PROTO);
    m.header.kind = route_type(route.kind);
    let direct = route.nexthops.len() == 1 && route.nexthops[0].via.is_none();
    m.header.scope = if route.kind == RouteType::Unicast && direct {
        RouteScope::Link
    } else {
        RouteScope::Universe
    };
    if dst.len > 0 {
        m.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(dst.addr)));
    }
    m.attributes.push(RouteAttribute::Table(key.table));
    m.attributes.push(RouteAttribute::Priority(key.metric));
    if let Some(src) = route.src {
        m.attributes
            .push(RouteAttribute::PrefSource(RouteAddress::from(src)));
    }
    match route.nexthops.as_slice() {
        [] => {}
        [nh] if nh.weight <= 1 => {
            if let Some(via) = nh.via {
                m.attributes
                    .push(RouteAttribute::Gateway(RouteAddress::from(via)));
            }
            if let Some(Some(oif)) = oifs.first() {
                m.attributes.push(RouteAttribute::Oif(*oif));
            }
            if nh.onlink {
                m.header.flags = RouteFlags::Onlink;
            }
        }
        hops => {
            let mut list = Vec::with_capacity(hops.len());
            for (i, nh) in hops.iter().enumerate() {
                let mut h = RouteNextHop::default();
                h.hops = u8::try_from(nh.weight.saturating_sub(1)).unwrap_or(255);
                h.interface_index = oifs.get(i).copied().flatten().unwrap_or(0);
                if nh.onlink {
                    h.flags = RouteNextHopFlags::Onlink;
                }
                if let Some(via) = nh.via {
                    h.attributes
                        .push(RouteAttribute::Gateway(RouteAddress::from(via)));
                }
                list.push(h);
            }
            m.attributes.push(RouteAttribute::MultiPath(list));
        }
    }
    m
}

fn neighbour_message(index: u32, addr: IpAddr, proxy: bool) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = family(addr.is_ipv6());
    m.header.ifindex = index;
    if proxy {
        m.header.flags = NeighbourFlags::Proxy;
    } else {
        m.header.state = NeighbourState::Permanent;
    }
    let a = match addr {
        IpAddr::V4(a) => NeighbourAddress::Inet(a),
        IpAddr::V6(a) => NeighbourAddress::Inet6(a),
    };
    m.attributes.push(NeighbourAttribute::Destination(a));
    m
}

fn rule_message(rule: &Rule) -> RuleMessage {
    let mut m = RuleMessage::default();
    m.header.family = family(rule.v6);
    m.header.action = match rule.action {
        RuleAction::Lookup => NlRuleAction::ToTable,
        RuleAction::Blackhole => NlRuleAction::Blackhole,
        RuleAction::Unreachable => NlRuleAction::Unreachable,
        RuleAction::Prohibit => NlRuleAction::Prohibit,
        RuleAction::Other(n) => NlRuleAction::Other(n),
    };
    m.header.table = u8::try_from(rule.table).unwrap_or(0);
    m.attributes.push(RuleAttribute::Priority(rule.priority));
    if let Some(p) = rule.from {
        m.header.src_len = p.len;
        m.attributes.push(RuleAttribute::Source(p.addr));
    }
    if let Some(p) = rule.to {
        m.header.dst_len = p.len;
        m.attributes.push(RuleAttribute::Destination(p.addr));
    }
    if let Some(i) = &rule.iif {
        m.attributes.push(RuleAttribute::Iifname(i.clone()));
    }
    if let Some(o) = &rule.oif {
        m.attributes.push(RuleAttribute::Oifname(o.clone()));
    }
    if let Some((mark, mask)) = rule.fwmark {
        m.attributes.push(RuleAttribute::FwMark(mark));
        m.attributes.push(RuleAttribute::FwMask(mask));
    }
    if rule.action == RuleAction::Lookup {
        m.attributes.push(RuleAttribute::Table(rule.table));
    }
    m.attributes
        .push(RuleAttribute::Protocol(RouteProtocol::from(HEARTH_PROTO)));
    m
}
