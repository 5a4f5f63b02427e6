//! Checks of routes and rules: families that must agree, next hops, tables, host bits.

use super::super::{
    Dst, FamilySpec, RouteSpec, RouteTypeSpec, RuleActionSpec, RuleSpec, SpecError,
};
use super::invalid;

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
pub(super) fn check_route(f: &str, r: &RouteSpec) -> Result<(bool, u32, String, u32), SpecError> {
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

pub(super) fn check_rule(f: &str, r: &RuleSpec) -> Result<(), SpecError> {
    let fams: Vec<(bool, &str)> = [
        r.from.map(|p| (p.is_v6(), "from")),
        r.to.map(|p| (p.is_v6(), "to")),
        r.family.map(|fam| (fam == FamilySpec::Ipv6, "family")),
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

pub(super) fn same_rule(a: &RuleSpec, b: &RuleSpec) -> bool {
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
                FamilySpec::Ipv6
            } else {
                FamilySpec::Ipv4
            }
        })) == b.family.or(b.from.or(b.to).map(|p| {
            if p.is_v6() {
                FamilySpec::Ipv6
            } else {
                FamilySpec::Ipv4
            }
        }))
}
