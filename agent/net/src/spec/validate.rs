//! Checks of a parsed file that serde cannot express: fields that belong to one kind only,
//! families that must match, duplicates, sysctl names. Each error names the field.

use std::collections::{BTreeMap, HashMap};

mod routes;
mod sysctl_names;

use routes::{check_route, check_rule, same_rule};
pub(crate) use sysctl_names::{interface_sysctl_path, sysctl_path};

use super::{LinkKindSpec, NetworkFile, RuleSpec, SpecError};

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

fn check_value(field: &str, value: &str) -> Result<(), SpecError> {
    if value.is_empty() || value.contains('\n') || value.contains('\0') {
        return Err(invalid(field, "a sysctl value is one non-empty line"));
    }
    Ok(())
}
