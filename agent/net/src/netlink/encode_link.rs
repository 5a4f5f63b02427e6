//! Link creation requests: the kind, its creation parameters (veth peer, VXLAN, macvlan),
//! MTU, MAC, master and state.

use std::net::IpAddr;

use netlink_packet_route::link::{
    InfoData, InfoKind, InfoMacVlan, InfoVeth, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo,
    LinkMessage, MacVlanMode,
};

use crate::model::{Link, LinkKind, MacvlanMode as Mode};

pub(super) fn create_link(link: &Link, master: Option<u32>, lower: Option<u32>) -> LinkMessage {
    let mut m = LinkMessage::default();
    // A veth cannot come up before its peer is wired (ENOTCONN): the apply brings both ends
    // up together with the ifalias right after creation.
    if !matches!(link.kind, LinkKind::Veth { .. }) {
        m.header.change_mask = LinkFlags::Up;
        if link.up {
            m.header.flags = LinkFlags::Up;
        }
    }
    m.attributes.push(LinkAttribute::IfName(link.name.clone()));
    if let Some(mtu) = link.mtu {
        m.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(mac) = link.mac {
        m.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
    }
    if let Some(master) = master {
        m.attributes.push(LinkAttribute::Controller(master));
    }
    let (kind, data) = match &link.kind {
        LinkKind::Bridge => (InfoKind::Bridge, None),
        LinkKind::Veth { peer } => {
            let mut p = LinkMessage::default();
            p.attributes.push(LinkAttribute::IfName(peer.clone()));
            if let Some(mtu) = link.mtu {
                p.attributes.push(LinkAttribute::Mtu(mtu));
            }
            (InfoKind::Veth, Some(InfoData::Veth(InfoVeth::Peer(p))))
        }
        LinkKind::Vxlan {
            vni,
            local,
            remote,
            port,
            learning,
            ..
        } => {
            let mut d = vec![
                InfoVxlan::Id(*vni),
                InfoVxlan::Port(*port),
                InfoVxlan::Learning(*learning),
            ];
            match local {
                Some(IpAddr::V4(a)) => d.push(InfoVxlan::Local(*a)),
                Some(IpAddr::V6(a)) => d.push(InfoVxlan::Local6(*a)),
                None => {}
            }
            match remote {
                Some(IpAddr::V4(a)) => d.push(InfoVxlan::Group(*a)),
                Some(IpAddr::V6(a)) => d.push(InfoVxlan::Group6(*a)),
                None => {}
            }
            if let Some(lower) = lower {
                d.push(InfoVxlan::Link(lower));
            }
            (InfoKind::Vxlan, Some(InfoData::Vxlan(d)))
        }
        LinkKind::Macvlan { mode, .. } => {
            if let Some(lower) = lower {
                m.attributes.push(LinkAttribute::Link(lower));
            }
            let mode = match mode {
                Mode::Bridge => MacVlanMode::Bridge,
                Mode::Private => MacVlanMode::Private,
                Mode::Vepa => MacVlanMode::Vepa,
                Mode::Passthru => MacVlanMode::Passthrough,
            };
            (
                InfoKind::MacVlan,
                Some(InfoData::MacVlan(vec![InfoMacVlan::Mode(mode)])),
            )
        }
        LinkKind::Other(k) => (InfoKind::Other(k.clone()), None),
    };
    let mut info = vec![LinkInfo::Kind(kind)];
    if let Some(d) = data {
        info.push(LinkInfo::Data(d));
    }
    m.attributes.push(LinkAttribute::LinkInfo(info));
    m
}
