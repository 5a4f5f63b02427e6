//! Link dump messages → [`SeenLink`]s: kind and creation parameters, MTU, state, master,
//! MAC, and the ifalias that marks Hearth's links.

use std::net::IpAddr;

use netlink_packet_route::link::{
    InfoData, InfoKind, InfoMacVlan, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
    MacVlanMode,
};

use super::decode::{name_of, Names};
use super::SeenLink;
use crate::model::{Link, LinkKind, Mac, MacvlanMode};
use crate::LINK_ALIAS;

/// Decodes all links; the master and peer indexes are resolved against the same dump.
pub fn links(msgs: &[LinkMessage]) -> Vec<SeenLink> {
    let names: Names = msgs
        .iter()
        .filter_map(|m| {
            m.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some((m.header.index, n.clone())),
                _ => None,
            })
        })
        .collect();
    msgs.iter().map(|m| link(m, &names)).collect()
}

fn link(m: &LinkMessage, names: &Names) -> SeenLink {
    let (mut name, mut mtu, mut master, mut mac, mut alias) =
        (String::new(), None, None, None, None);
    let (mut lower, mut netns, mut kind, mut data) = (None, false, None, None);
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => name = n.clone(),
            LinkAttribute::Mtu(v) => mtu = Some(*v),
            LinkAttribute::Controller(i) => master = Some(name_of(names, *i)),
            LinkAttribute::Address(b) => mac = <[u8; 6]>::try_from(b.as_slice()).ok().map(Mac),
            LinkAttribute::IfAlias(s) => alias = Some(s.clone()),
            LinkAttribute::Link(i) => lower = Some(*i),
            LinkAttribute::LinkNetNsId(_) => netns = true,
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    match i {
                        LinkInfo::Kind(k) => kind = Some(k.clone()),
                        LinkInfo::Data(d) => data = Some(d.clone()),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let lower_name = |i: Option<u32>| i.filter(|_| !netns).map(|i| name_of(names, i));
    let kind = match kind {
        Some(InfoKind::Bridge) => LinkKind::Bridge,
        Some(InfoKind::Veth) => LinkKind::Veth {
            peer: lower_name(lower).unwrap_or_default(),
        },
        Some(InfoKind::Vxlan) => vxlan(data.as_ref(), names),
        Some(InfoKind::MacVlan) => {
            let mode = match data {
                Some(InfoData::MacVlan(v)) => v.iter().find_map(|i| match i {
                    InfoMacVlan::Mode(MacVlanMode::Private) => Some(MacvlanMode::Private),
                    InfoMacVlan::Mode(MacVlanMode::Vepa) => Some(MacvlanMode::Vepa),
                    InfoMacVlan::Mode(MacVlanMode::Passthrough) => Some(MacvlanMode::Passthru),
                    InfoMacVlan::Mode(_) => Some(MacvlanMode::Bridge),
                    _ => None,
                }),
                _ => None,
            };
            LinkKind::Macvlan {
                parent: lower_name(lower).unwrap_or_default(),
                mode: mode.unwrap_or(MacvlanMode::Bridge),
            }
        }
        Some(k) => LinkKind::Other(k.to_string()),
        None => LinkKind::Other(String::new()),
    };
    SeenLink {
        index: m.header.index,
        owned: alias.as_deref() == Some(LINK_ALIAS),
        peer_elsewhere: netns && matches!(kind, LinkKind::Veth { .. }),
        link: Link {
            name,
            kind,
            mtu,
            up: m.header.flags.contains(LinkFlags::Up),
            master,
            mac,
            implied: false,
        },
    }
}

fn vxlan(data: Option<&InfoData>, names: &Names) -> LinkKind {
    let (mut vni, mut local, mut remote, mut port, mut dev, mut learning) =
        (0, None, None, 4789, None, true);
    if let Some(InfoData::Vxlan(v)) = data {
        for i in v {
            match i {
                InfoVxlan::Id(x) => vni = *x,
                InfoVxlan::Local(a) => local = Some(IpAddr::V4(*a)),
                InfoVxlan::Local6(a) => local = Some(IpAddr::V6(*a)),
                InfoVxlan::Group(a) => remote = Some(IpAddr::V4(*a)),
                InfoVxlan::Group6(a) => remote = Some(IpAddr::V6(*a)),
                InfoVxlan::Port(p) => port = *p,
                InfoVxlan::Link(l) if *l != 0 => dev = Some(name_of(names, *l)),
                InfoVxlan::Learning(l) => learning = *l,
                _ => {}
            }
        }
    }
    let unset = |a: Option<IpAddr>| a.filter(|a| !a.is_unspecified());
    LinkKind::Vxlan {
        vni,
        local: unset(local),
        remote: unset(remote),
        port,
        dev,
        learning,
    }
}
