//! The pure render: a checked [`NetworkFile`] becomes the normalized [`Desired`] state.
//! Defaults are filled in here, once: `up: true`, table 254, metric 0 (IPv4) or 1024
//! (IPv6), weight 1, VXLAN port 4789 with learning, macvlan mode bridge, rule action lookup
//! in table 254. Undeclared veth peers become implied links. No I/O.

use crate::model::{
    Address, Desired, FloatingIp, Link, LinkKind, MacvlanMode, Neighbour, NextHop, Prefix, Route,
    RouteKey, RouteType, Rule, RuleAction, Sysctl,
};
use crate::spec::{
    self, Dst, FamilySpec, LinkKindSpec, MacvlanModeSpec, NetworkFile, RouteSpec, RouteTypeSpec,
    RuleActionSpec, RuleSpec,
};

/// Renders the desired state of a checked file.
pub fn render(file: &NetworkFile) -> Desired {
    let mut links: Vec<Link> = file.links.iter().map(link).collect();
    for l in &file.links {
        if let (LinkKindSpec::Veth, Some(peer)) = (l.kind, &l.peer) {
            if !file.links.iter().any(|o| o.name == *peer) {
                links.push(Link {
                    name: peer.0.clone(),
                    kind: LinkKind::Veth {
                        peer: l.name.0.clone(),
                    },
                    mtu: l.mtu,
                    up: l.up.unwrap_or(true),
                    master: None,
                    mac: None,
                    implied: true,
                });
            }
        }
    }
    let addresses = file
        .addresses
        .iter()
        .map(|a| Address {
            dev: a.dev.0.clone(),
            prefix: a.address,
            nodad: a.nodad.unwrap_or(false),
        })
        .collect();
    let neighbours = file
        .neighbours
        .iter()
        .map(|n| Neighbour {
            dev: n.dev.0.clone(),
            address: n.address,
            mac: n.mac,
            proxy: n.proxy.unwrap_or(false),
        })
        .collect();
    let sysctls = file
        .sysctls
        .iter()
        .filter_map(|(k, v)| {
            Some(Sysctl {
                path: spec::sysctl_path(k).ok()?,
                value: normalize(&v.0),
                dev: None,
            })
        })
        .collect();
    let interface_sysctls = file
        .interface_sysctls
        .iter()
        .flat_map(|(dev, map)| {
            map.iter().filter_map(move |(k, v)| {
                Some(Sysctl {
                    path: spec::interface_sysctl_path(&dev.0, k).ok()?,
                    value: normalize(&v.0),
                    dev: Some(dev.0.clone()),
                })
            })
        })
        .collect();
    Desired {
        links,
        addresses,
        routes: file.routes.iter().map(route).collect(),
        neighbours,
        rules: file.rules.iter().map(rule).collect(),
        sysctls,
        interface_sysctls,
        floating_ips: file
            .floating_ips
            .iter()
            .map(|f| FloatingIp {
                address: f.address,
                dev: f.dev.0.clone(),
            })
            .collect(),
    }
}

/// Sysctl values compare with runs of whitespace folded to one space (`/proc/sys` prints
/// tabs between the numbers of a vector value).
pub fn normalize(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn link(l: &spec::LinkSpec) -> Link {
    let kind = match l.kind {
        LinkKindSpec::Bridge => LinkKind::Bridge,
        LinkKindSpec::Veth => LinkKind::Veth {
            peer: l.peer.as_ref().map(|p| p.0.clone()).unwrap_or_default(),
        },
        LinkKindSpec::Vxlan => LinkKind::Vxlan {
            vni: l.vni.unwrap_or(0),
            local: l.local,
            remote: l.remote,
            port: l.port.unwrap_or(4789),
            dev: l.dev.as_ref().map(|d| d.0.clone()),
            learning: l.learning.unwrap_or(true),
        },
        LinkKindSpec::Macvlan => LinkKind::Macvlan {
            parent: l.parent.as_ref().map(|p| p.0.clone()).unwrap_or_default(),
            mode: match l.mode.unwrap_or(MacvlanModeSpec::Bridge) {
                MacvlanModeSpec::Bridge => MacvlanMode::Bridge,
                MacvlanModeSpec::Private => MacvlanMode::Private,
                MacvlanModeSpec::Vepa => MacvlanMode::Vepa,
                MacvlanModeSpec::Passthru => MacvlanMode::Passthru,
            },
        },
    };
    Link {
        name: l.name.0.clone(),
        kind,
        mtu: l.mtu,
        up: l.up.unwrap_or(true),
        master: l.master.as_ref().map(|m| m.0.clone()),
        mac: l.mac,
        implied: false,
    }
}

fn route(r: &RouteSpec) -> Route {
    let v6 = match r.dst {
        Dst::Prefix(p) => p.is_v6(),
        Dst::Default => r
            .via
            .or(r.src)
            .or_else(|| r.multipath.iter().flatten().find_map(|n| n.via))
            .is_some_and(|a| a.is_ipv6()),
    };
    let dst = match r.dst {
        Dst::Prefix(p) => p,
        Dst::Default if v6 => Prefix {
            addr: std::net::Ipv6Addr::UNSPECIFIED.into(),
            len: 0,
        },
        Dst::Default => Prefix {
            addr: std::net::Ipv4Addr::UNSPECIFIED.into(),
            len: 0,
        },
    };
    let kind = match r.kind.unwrap_or(RouteTypeSpec::Unicast) {
        RouteTypeSpec::Unicast => RouteType::Unicast,
        RouteTypeSpec::Blackhole => RouteType::Blackhole,
        RouteTypeSpec::Unreachable => RouteType::Unreachable,
        RouteTypeSpec::Prohibit => RouteType::Prohibit,
        RouteTypeSpec::Throw => RouteType::Throw,
    };
    let nexthops = match (&r.multipath, kind) {
        (_, k) if k != RouteType::Unicast => Vec::new(),
        (Some(hops), _) => {
            let mut v: Vec<NextHop> = hops
                .iter()
                .map(|n| NextHop {
                    via: n.via,
                    dev: n.dev.as_ref().map(|d| d.0.clone()),
                    weight: n.weight.unwrap_or(1),
                    onlink: n.onlink.unwrap_or(false),
                })
                .collect();
            v.sort();
            v
        }
        (None, _) => vec![NextHop {
            via: r.via,
            dev: r.dev.as_ref().map(|d| d.0.clone()),
            weight: 1,
            onlink: r.onlink.unwrap_or(false),
        }],
    };
    Route {
        key: RouteKey {
            table: r.table.unwrap_or(254),
            dst,
            tos: 0,
            metric: r.metric.unwrap_or(if v6 { 1024 } else { 0 }),
        },
        kind,
        nexthops,
        src: r.src,
    }
}

fn rule(r: &RuleSpec) -> Rule {
    let v6 = match (r.from.or(r.to), r.family) {
        (Some(p), _) => p.is_v6(),
        (None, fam) => fam == Some(FamilySpec::Ipv6),
    };
    let action = match r.action.unwrap_or(RuleActionSpec::Lookup) {
        RuleActionSpec::Lookup => RuleAction::Lookup,
        RuleActionSpec::Blackhole => RuleAction::Blackhole,
        RuleActionSpec::Unreachable => RuleAction::Unreachable,
        RuleActionSpec::Prohibit => RuleAction::Prohibit,
    };
    Rule {
        v6,
        priority: r.priority,
        from: r.from,
        to: r.to,
        iif: r.iif.as_ref().map(|i| i.0.clone()),
        oif: r.oif.as_ref().map(|i| i.0.clone()),
        fwmark: r.fwmark.map(|m| (m.mark, m.mask)),
        table: if action == RuleAction::Lookup {
            r.table.unwrap_or(254)
        } else {
            0
        },
        action,
    }
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
