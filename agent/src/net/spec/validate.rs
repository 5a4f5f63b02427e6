//! Checks of a parsed file that serde cannot express: fields that belong to one kind only,
//! families that must match, duplicates, sysctl names. Each error names the field.

use std::collections::{BTreeMap, HashMap};

use super::{
    Dst, LinkKindSpec, NetworkFile, RouteSpec, RouteTypeSpec, RuleActionSpec, RuleSpec, SpecError,
};

fn invalid(field: impl Into<String>, message: impl Into<String>) -> SpecError {
    SpecError::Validate {
        field: field.into(),
        message: message.into(),
    }
}

/// Runs every check; the first failure is returned.
pub(super) fn check(file: &NetworkFile) -> Result<(), SpecError> {
    check_links(file)?;
    let mut seen = HashMap::new();
    for (i, a) in file.addresses.iter().enumerate() {
        let f = format!("addresses[{i}]");
        if a.nodad.is_some() && a.address.addr.is_ipv4() {
            return Err(invalid(
                format!("{f}.nodad"),
                "applies to IPv6 addresses only",
            ));
        }
        if let Some(j) = seen.insert((a.dev.clone(), a.address), i) {
            return Err(invalid(f, format!("duplicate of addresses[{j}]")));
        }
    }
    let mut seen = HashMap::new();
    for (i, r) in file.routes.iter().enumerate() {
        let key = check_route(&format!("routes[{i}]"), r)?;
        if let Some(j) = seen.insert(key, i) {
            return Err(invalid(
                format!("routes[{i}]"),
                format!("duplicate of routes[{j}] (same table, dst and metric)"),
            ));
        }
    }
    let mut seen = HashMap::new();
    for (i, n) in file.neighbours.iter().enumerate() {
        let f = format!("neighbours[{i}]");
        let proxy = n.proxy.unwrap_or(false);
        match (proxy, n.mac) {
            (false, None) => {
                return Err(invalid(format!("{f}.mac"), "required unless proxy: true"))
            }
            (true, Some(_)) => return Err(invalid(format!("{f}.mac"), "a proxy entry has no mac")),
            _ => {}
        }
        if let Some(j) = seen.insert((n.dev.clone(), n.address, proxy), i) {
            return Err(invalid(f, format!("duplicate of neighbours[{j}]")));
        }
    }
    let mut seen: Vec<(usize, &RuleSpec)> = Vec::new();
    for (i, r) in file.rules.iter().enumerate() {
        check_rule(&format!("rules[{i}]"), r)?;
        if let Some((j, _)) = seen.iter().find(|(_, s)| same_rule(s, r)) {
            return Err(invalid(
                format!("rules[{i}]"),
                format!("duplicate of rules[{j}]"),
            ));
        }
        seen.push((i, r));
    }
    for (key, value) in &file.sysctls {
        let f = format!("sysctls.{key}");
        sysctl_path(key).map_err(|m| invalid(&f, m))?;
        check_value(&f, &value.0)?;
    }
    for (dev, map) in &file.interface_sysctls {
        for (key, value) in map {
            let f = format!("interfaceSysctls.{dev}.{key}");
            interface_sysctl_path(&dev.0, key).map_err(|m| invalid(&f, m))?;
            check_value(&f, &value.0)?;
        }
    }
    let mut seen = HashMap::new();
    for (i, fip) in file.floating_ips.iter().enumerate() {
        let f = format!("floatingIPs[{i}].address");
        if fip.address.is_unspecified() || fip.address.is_multicast() || fip.address.is_loopback() {
            return Err(invalid(f, format!("{} cannot float", fip.address)));
        }
        if let Some(j) = seen.insert(fip.address, i) {
            return Err(invalid(f, format!("duplicate of floatingIPs[{j}]")));
        }
    }
    Ok(())
}

fn check_links(file: &NetworkFile) -> Result<(), SpecError> {
    let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, l) in file.links.iter().enumerate() {
        by_name.entry(l.name.0.as_str()).or_insert(i);
    }
    for (i, l) in file.links.iter().enumerate() {
        let f = format!("links[{i}]");
        if by_name.get(l.name.0.as_str()) != Some(&i) {
            return Err(invalid(
                format!("{f}.name"),
                format!(
                    "{} is already links[{}]",
                    l.name,
                    by_name[l.name.0.as_str()]
                ),
            ));
        }
        if let Some(m) = l.mtu {
            if !(68..=65535).contains(&m) {
                return Err(invalid(format!("{f}.mtu"), "must be 68..=65535"));
            }
        }
        if l.master.as_ref() == Some(&l.name) {
            return Err(invalid(
                format!("{f}.master"),
                "a link cannot be its own master",
            ));
        }
        let only = |set: bool, field: &str, kind: &str| -> Result<(), SpecError> {
            if set {
                return Err(invalid(
                    format!("{f}.{field}"),
                    format!("only for kind {kind}"),
                ));
            }
            Ok(())
        };
        let veth = l.kind == LinkKindSpec::Veth;
        let vxlan = l.kind == LinkKindSpec::Vxlan;
        let macvlan = l.kind == LinkKindSpec::Macvlan;
        only(!veth && l.peer.is_some(), "peer", "veth")?;
        for (set, field) in [
            (l.vni.is_some(), "vni"),
            (l.local.is_some(), "local"),
            (l.remote.is_some(), "remote"),
            (l.port.is_some(), "port"),
            (l.dev.is_some(), "dev"),
            (l.learning.is_some(), "learning"),
        ] {
            only(!vxlan && set, field, "vxlan")?;
        }
        only(!macvlan && l.parent.is_some(), "parent", "macvlan")?;
        only(!macvlan && l.mode.is_some(), "mode", "macvlan")?;
        match l.kind {
            LinkKindSpec::Veth => {
                let peer = l
                    .peer
                    .as_ref()
                    .ok_or_else(|| invalid(format!("{f}.peer"), "required for kind veth"))?;
                if *peer == l.name {
                    return Err(invalid(
                        format!("{f}.peer"),
                        "a veth cannot be its own peer",
                    ));
                }
                if let Some(&j) = by_name.get(peer.0.as_str()) {
                    let other = &file.links[j];
                    if other.kind != LinkKindSpec::Veth || other.peer.as_ref() != Some(&l.name) {
                        return Err(invalid(
                            format!("{f}.peer"),
                            format!(
                                "{peer} is links[{j}], which is not a veth with peer {}",
                                l.name
                            ),
                        ));
                    }
                }
            }
            LinkKindSpec::Vxlan => {
                match l.vni {
                    None => return Err(invalid(format!("{f}.vni"), "required for kind vxlan")),
                    Some(v) if v >= 1 << 24 => {
                        return Err(invalid(format!("{f}.vni"), "must be below 16777216"))
                    }
                    Some(_) => {}
                }
                if let (Some(a), Some(b)) = (l.local, l.remote) {
                    if a.is_ipv4() != b.is_ipv4() {
                        return Err(invalid(
                            format!("{f}.remote"),
                            "local and remote must be one family",
                        ));
                    }
                }
                if l.port == Some(0) {
                    return Err(invalid(format!("{f}.port"), "must be 1..=65535"));
                }
            }
            LinkKindSpec::Macvlan => {
                let parent = l
                    .parent
                    .as_ref()
                    .ok_or_else(|| invalid(format!("{f}.parent"), "required for kind macvlan"))?;
                if *parent == l.name {
                    return Err(invalid(
                        format!("{f}.parent"),
                        "a link cannot be its own parent",
                    ));
                }
            }
            LinkKindSpec::Bridge => {}
        }
        if let Some(j) = l.peer.as_ref().and_then(|p| {
            file.links.iter().position(|o| {
                o.name != l.name && o.kind == LinkKindSpec::Veth && o.peer == Some(p.clone())
            })
        }) {
            return Err(invalid(
                format!("{f}.peer"),
                format!("links[{j}] has the same peer"),
            ));
        }
    }
    Ok(())
}

/// The family a route's fields imply, checked for agreement.
fn route_family(f: &str, r: &RouteSpec) -> Result<Option<bool>, SpecError> {
    let mut fam: Option<(bool, String)> = None;
    let mut note = |v6: bool, field: String| -> Result<(), SpecError> {
        match &fam {
            Some((w, first)) if *w != v6 => Err(invalid(
                field,
                format!(
                    "is IPv{} but {first} is IPv{}",
                    if v6 { 6 } else { 4 },
                    if *w { 6 } else { 4 }
                ),
            )),
            Some(_) => Ok(()),
            None => {
                fam = Some((v6, field));
                Ok(())
            }
        }
    };
    if let Dst::Prefix(p) = r.dst {
        note(p.is_v6(), format!("{f}.dst"))?;
    }
    if let Some(v) = r.via {
        note(v.is_ipv6(), format!("{f}.via"))?;
    }
    if let Some(s) = r.src {
        note(s.is_ipv6(), format!("{f}.src"))?;
    }
    for (k, nh) in r.multipath.iter().flatten().enumerate() {
        if let Some(v) = nh.via {
            note(v.is_ipv6(), format!("{f}.multipath[{k}].via"))?;
        }
    }
    Ok(fam.map(|(v6, _)| v6))
}

/// Checks one route and returns its identity (v6, table, dst, metric).
fn check_route(f: &str, r: &RouteSpec) -> Result<(bool, u32, String, u32), SpecError> {
    let v6 = route_family(f, r)?.unwrap_or(false);
    if let Dst::Prefix(p) = r.dst {
        if p.network() != p {
            return Err(invalid(
                format!("{f}.dst"),
                format!("{p} has host bits set (did you mean {}?)", p.network()),
            ));
        }
    }
    let table = r.table.unwrap_or(254);
    if table == 0 {
        return Err(invalid(format!("{f}.table"), "table 0 is not a table"));
    }
    let kind = r.kind.unwrap_or(RouteTypeSpec::Unicast);
    if kind == RouteTypeSpec::Unicast {
        match &r.multipath {
            Some(hops) => {
                if r.via.is_some() || r.dev.is_some() || r.onlink.is_some() {
                    return Err(invalid(
                        format!("{f}.multipath"),
                        "use either multipath or via/dev/onlink",
                    ));
                }
                if hops.is_empty() {
                    return Err(invalid(
                        format!("{f}.multipath"),
                        "needs at least one next hop",
                    ));
                }
                for (k, nh) in hops.iter().enumerate() {
                    let g = format!("{f}.multipath[{k}]");
                    if nh.via.is_none() && nh.dev.is_none() {
                        return Err(invalid(g, "needs via or dev"));
                    }
                    if let Some(w) = nh.weight {
                        if !(1..=256).contains(&w) {
                            return Err(invalid(format!("{g}.weight"), "must be 1..=256"));
                        }
                    }
                    if nh.onlink == Some(true) && (nh.via.is_none() || nh.dev.is_none()) {
                        return Err(invalid(format!("{g}.onlink"), "needs both via and dev"));
                    }
                }
            }
            None => {
                if r.via.is_none() && r.dev.is_none() {
                    return Err(invalid(f, "a unicast route needs via, dev or multipath"));
                }
                if r.onlink == Some(true) && (r.via.is_none() || r.dev.is_none()) {
                    return Err(invalid(format!("{f}.onlink"), "needs both via and dev"));
                }
            }
        }
    } else if r.via.is_some() || r.dev.is_some() || r.multipath.is_some() || r.onlink.is_some() {
        return Err(invalid(f, "a blackhole, unreachable, prohibit or throw route has no via, dev, onlink or multipath"));
    }
    let metric = r.metric.unwrap_or(if v6 { 1024 } else { 0 });
    let dst = match r.dst {
        Dst::Default => {
            if v6 {
                "::/0".to_owned()
            } else {
                "0.0.0.0/0".to_owned()
            }
        }
        Dst::Prefix(p) => p.to_string(),
    };
    Ok((v6, table, dst, metric))
}

fn check_rule(f: &str, r: &RuleSpec) -> Result<(), SpecError> {
    let fams: Vec<(bool, &str)> = [
        r.from.map(|p| (p.is_v6(), "from")),
        r.to.map(|p| (p.is_v6(), "to")),
        r.family
            .map(|fam| (fam == super::FamilySpec::Ipv6, "family")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Some((v6, first)) = fams.first() {
        if let Some((_, other)) = fams.iter().find(|(w, _)| w != v6) {
            return Err(invalid(
                format!("{f}.{other}"),
                format!("does not match the family of {first}"),
            ));
        }
    }
    for (p, field) in [(r.from, "from"), (r.to, "to")] {
        if let Some(p) = p {
            if p.network() != p {
                return Err(invalid(
                    format!("{f}.{field}"),
                    format!("{p} has host bits set"),
                ));
            }
        }
    }
    let action = r.action.unwrap_or(RuleActionSpec::Lookup);
    if action != RuleActionSpec::Lookup && r.table.is_some() {
        return Err(invalid(format!("{f}.table"), "only for action lookup"));
    }
    if r.table == Some(0) {
        return Err(invalid(format!("{f}.table"), "table 0 is not a table"));
    }
    Ok(())
}

fn same_rule(a: &RuleSpec, b: &RuleSpec) -> bool {
    a.priority == b.priority
        && a.from == b.from
        && a.to == b.to
        && a.iif == b.iif
        && a.oif == b.oif
        && a.fwmark == b.fwmark
        && a.table.unwrap_or(254) == b.table.unwrap_or(254)
        && a.action == b.action
        && a.family.or(a.from.or(a.to).map(|p| {
            if p.is_v6() {
                super::FamilySpec::Ipv6
            } else {
                super::FamilySpec::Ipv4
            }
        })) == b.family.or(b.from.or(b.to).map(|p| {
            if p.is_v6() {
                super::FamilySpec::Ipv6
            } else {
                super::FamilySpec::Ipv4
            }
        }))
}

fn check_value(field: &str, value: &str) -> Result<(), SpecError> {
    if value.is_empty() || value.contains('\n') || value.contains('\0') {
        return Err(invalid(field, "a sysctl value is one non-empty line"));
    }
    Ok(())
}

fn check_component(c: &str) -> Result<(), String> {
    if c.is_empty()
        || c == "."
        || c == ".."
        || c.contains('\0')
        || c.chars().any(char::is_whitespace)
    {
        return Err(format!("{c:?} is not a sysctl name component"));
    }
    Ok(())
}

/// The path below /proc/sys of a global sysctl key: `net.ipv4.ip_forward` or
/// `net/ipv4/conf/eth0.100/rp_filter`. Only `net.*` is Hearth's.
pub(crate) fn sysctl_path(key: &str) -> Result<String, String> {
    let parts: Vec<&str> = if key.contains('/') {
        key.split('/').collect()
    } else {
        key.split('.').collect()
    };
    if parts.first() != Some(&"net") || parts.len() < 3 {
        return Err("only net.* sysctls (like net.ipv4.ip_forward) are Hearth's to set".into());
    }
    for c in &parts {
        check_component(c)?;
    }
    Ok(parts.join("/"))
}

/// The path of a per-interface sysctl: `ipv4.rp_filter` on `br-ext` is
/// `net/ipv4/conf/br-ext/rp_filter`; `ipv6.neigh.retrans_time_ms` is under `net/ipv6/neigh/`.
pub(crate) fn interface_sysctl_path(dev: &str, key: &str) -> Result<String, String> {
    let parts: Vec<&str> = key.split('.').collect();
    let fam = match parts.first() {
        Some(&"ipv4") => "ipv4",
        Some(&"ipv6") => "ipv6",
        _ => return Err("a per-interface sysctl starts with ipv4. or ipv6.".into()),
    };
    let path = match parts.as_slice() {
        [_, "neigh", name] => format!("net/{fam}/neigh/{dev}/{name}"),
        [_, name] => format!("net/{fam}/conf/{dev}/{name}"),
        _ => return Err("expected ipv4.NAME, ipv6.NAME or ipv4.neigh.NAME".into()),
    };
    for c in &parts[1..] {
        check_component(c)?;
    }
    Ok(path)
}
