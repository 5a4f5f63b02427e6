//! Netlink dump messages → the object model, with interface indexes turned into names and
//! each object's owner read from its marker. Objects Hearth never manages (multicast and
//! cache routes, other families) are dropped here.

use std::collections::HashMap;
use std::net::IpAddr;

use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteNextHopFlags,
    RouteType as NlRouteType,
};
use netlink_packet_route::rule::{RuleAction as NlRuleAction, RuleAttribute, RuleMessage};
use netlink_packet_route::AddressFamily;

use super::{Owner, Seen};
use crate::model::{
    Address, Mac, Neighbour, NextHop, Prefix, Route, RouteKey, RouteType, Rule, RuleAction,
};
use crate::{FLOATING_PROTO, HEARTH_PROTO, LEASED_PROTO};

/// Interface index → name.
pub type Names = HashMap<u32, String>;

pub(super) fn name_of(names: &Names, index: u32) -> String {
    names
        .get(&index)
        .cloned()
        .unwrap_or_else(|| format!("if{index}"))
}

fn owner_of(proto: u8) -> Owner {
    match proto {
        HEARTH_PROTO => Owner::Hearth,
        FLOATING_PROTO => Owner::Floating,
        LEASED_PROTO => Owner::Leased,
        _ => Owner::Foreign,
    }
}

/// Decodes one address.
pub fn address(m: &AddressMessage, names: &Names) -> Option<Seen<Address>> {
    let v6 = match m.header.family {
        AddressFamily::Inet => false,
        AddressFamily::Inet6 => true,
        _ => return None,
    };
    let (mut local, mut addr, mut proto, mut nodad) = (
        None,
        None,
        0u8,
        m.header.flags.contains(AddressHeaderFlags::Nodad),
    );
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => addr = Some(*ip),
            AddressAttribute::Protocol(p) => proto = u8::from(*p),
            AddressAttribute::Flags(f) => nodad = f.contains(AddressFlags::Nodad),
            _ => {}
        }
    }
    let ip = if v6 { addr.or(local) } else { local.or(addr) }?;
    Some(Seen {
        item: Address {
            dev: name_of(names, m.header.index),
            prefix: Prefix {
                addr: ip,
                len: m.header.prefix_len,
            },
            nodad: v6 && nodad,
        },
        owner: owner_of(proto),
    })
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

/// Decodes one route; multicast, local-table and cloned routes are skipped.
pub fn route(m: &RouteMessage, names: &Names) -> Option<Seen<Route>> {
    let v6 = match m.header.address_family {
        AddressFamily::Inet => false,
        AddressFamily::Inet6 => true,
        _ => return None,
    };
    if m.header.flags.contains(RouteFlags::Cloned) {
        return None;
    }
    let kind = match m.header.kind {
        NlRouteType::Unicast => RouteType::Unicast,
        NlRouteType::BlackHole => RouteType::Blackhole,
        NlRouteType::Unreachable => RouteType::Unreachable,
        NlRouteType::Prohibit => RouteType::Prohibit,
        NlRouteType::Throw => RouteType::Throw,
        NlRouteType::Local
        | NlRouteType::Broadcast
        | NlRouteType::Multicast
        | NlRouteType::Anycast => return None,
        other => RouteType::Other(u8::from(other)),
    };
    let zero = if v6 {
        IpAddr::V6(0u128.into())
    } else {
        IpAddr::V4(0u32.into())
    };
    let (mut dst, mut table, mut metric, mut src) = (zero, u32::from(m.header.table), 0u32, None);
    let (mut via, mut oif, mut hops) = (None, None, Vec::new());
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(d) => dst = ip_of(d).unwrap_or(zero),
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Priority(p) => metric = *p,
            RouteAttribute::PrefSource(s) => src = ip_of(s),
            RouteAttribute::Gateway(g) => via = ip_of(g),
            RouteAttribute::Oif(i) => oif = Some(name_of(names, *i)),
            RouteAttribute::MultiPath(list) => {
                for h in list {
                    let gw = h.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Gateway(g) => ip_of(g),
                        _ => None,
                    });
                    hops.push(NextHop {
                        via: gw,
                        dev: (h.interface_index != 0).then(|| name_of(names, h.interface_index)),
                        weight: u16::from(h.hops) + 1,
                        onlink: h.flags.contains(RouteNextHopFlags::Onlink),
                    });
                }
            }
            _ => {}
        }
    }
    if kind == RouteType::Unicast && hops.is_empty() {
        hops.push(NextHop {
            via,
            dev: oif,
            weight: 1,
            onlink: m.header.flags.contains(RouteFlags::Onlink),
        });
    }
    hops.sort();
    Some(Seen {
        item: Route {
            key: RouteKey {
                table,
                dst: Prefix {
                    addr: dst,
                    len: m.header.destination_prefix_length,
                },
                tos: m.header.tos,
                metric,
            },
            kind,
            nexthops: hops,
            src,
        },
        owner: owner_of(u8::from(m.header.protocol)),
    })
}

/// Decodes one neighbour or proxy entry. Learned entries (not permanent, no protocol) are
/// the kernel's cache.
pub fn neighbour(m: &NeighbourMessage, names: &Names) -> Option<Seen<Neighbour>> {
    let (mut ip, mut mac, mut proto) = (None, None, 0u8);
    for a in &m.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => ip = Some(IpAddr::V4(*a)),
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                ip = Some(IpAddr::V6(*a))
            }
            NeighbourAttribute::LinkLayerAddress(b) => {
                mac = <[u8; 6]>::try_from(b.as_slice()).ok().map(Mac)
            }
            NeighbourAttribute::Protocol(p) => proto = u8::from(*p),
            _ => {}
        }
    }
    let proxy = m.header.flags.contains(NeighbourFlags::Proxy);
    let mut owner = owner_of(proto);
    if owner == Owner::Foreign
        && !proxy
        && !matches!(
            m.header.state,
            NeighbourState::Permanent | NeighbourState::Noarp
        )
    {
        owner = Owner::Cache;
    }
    Some(Seen {
        item: Neighbour {
            dev: name_of(names, m.header.ifindex),
            address: ip?,
            mac: if proxy { None } else { mac },
            proxy,
        },
        owner,
    })
}

/// Decodes one policy rule.
pub fn rule(m: &RuleMessage) -> Option<Seen<Rule>> {
    let v6 = match m.header.family {
        AddressFamily::Inet => false,
        AddressFamily::Inet6 => true,
        _ => return None,
    };
    let (mut priority, mut from, mut to, mut iif, mut oif) = (0, None, None, None, None);
    let (mut mark, mut mask, mut table, mut proto) = (0u32, 0u32, u32::from(m.header.table), 0u8);
    for a in &m.attributes {
        match a {
            RuleAttribute::Priority(p) => priority = *p,
            RuleAttribute::Source(ip) => {
                from = Some(Prefix {
                    addr: *ip,
                    len: m.header.src_len,
                })
            }
            RuleAttribute::Destination(ip) => {
                to = Some(Prefix {
                    addr: *ip,
                    len: m.header.dst_len,
                })
            }
            RuleAttribute::Iifname(n) => iif = Some(n.clone()),
            RuleAttribute::Oifname(n) => oif = Some(n.clone()),
            RuleAttribute::FwMark(v) => mark = *v,
            RuleAttribute::FwMask(v) => mask = *v,
            RuleAttribute::Table(t) => table = *t,
            RuleAttribute::Protocol(p) => proto = u8::from(*p),
            _ => {}
        }
    }
    let action = match m.header.action {
        NlRuleAction::ToTable => RuleAction::Lookup,
        NlRuleAction::Blackhole => RuleAction::Blackhole,
        NlRuleAction::Unreachable => RuleAction::Unreachable,
        NlRuleAction::Prohibit => RuleAction::Prohibit,
        other => RuleAction::Other(u8::from(other)),
    };
    Some(Seen {
        item: Rule {
            v6,
            priority,
            from,
            to,
            iif,
            oif,
            fwmark: (mark != 0 || mask != 0).then_some((mark, mask)),
            table: if action == RuleAction::Lookup {
                table
            } else {
                0
            },
            action,
        },
        owner: owner_of(proto),
    })
}
