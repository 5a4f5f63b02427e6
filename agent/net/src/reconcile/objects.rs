//! The diff of addresses, routes, neighbours and rules. Each desired object is looked up by
//! its kernel identity: absent → add; Hearth's but different → replace; someone else's →
//! conflict. Hearth's objects the file no longer has → delete.

use std::collections::{HashMap, HashSet};

use crate::model::{Address, Neighbour, NextHop, Prefix, Route, RouteKey, Rule};
use crate::netlink::{Owner, Seen};
use crate::plan::{Action, Plan};

fn foreign(owner: Owner) -> &'static str {
    match owner {
        Owner::Floating => "the floating-IP announcer holds it",
        Owner::Leased => "a floating IP leased from the coordinator holds it",
        _ => "an object Hearth does not own holds its identity",
    }
}

pub(super) fn addresses(plan: &mut Plan, desired: &[Address], seen: &[Seen<Address>]) {
    let index: HashMap<(&str, Prefix), &Seen<Address>> = seen
        .iter()
        .map(|s| ((s.item.dev.as_str(), s.item.prefix), s))
        .collect();
    let mut wanted = HashSet::new();
    for want in desired {
        wanted.insert((want.dev.as_str(), want.prefix));
        match index.get(&(want.dev.as_str(), want.prefix)) {
            None => plan.actions.push(Action::AddAddress(want.clone())),
            Some(s) if s.owner == Owner::Hearth => {
                if s.item.nodad != want.nodad {
                    plan.actions.push(Action::ReplaceAddress(want.clone()));
                }
            }
            Some(s) => plan.conflict(want, foreign(s.owner)),
        }
    }
    for s in seen.iter().filter(|s| s.owner == Owner::Hearth) {
        if !wanted.contains(&(s.item.dev.as_str(), s.item.prefix)) {
            plan.actions.push(Action::DeleteAddress(s.item.clone()));
        }
    }
}

/// True when the kernel's route is what the file asks for. A desired next hop without a
/// device matches whatever device the kernel resolved for its gateway.
pub(crate) fn satisfies(want: &Route, have: &Route) -> bool {
    if want.kind != have.kind || want.src != have.src || want.nexthops.len() != have.nexthops.len()
    {
        return false;
    }
    let mut free: Vec<&NextHop> = have.nexthops.iter().collect();
    want.nexthops.iter().all(|w| {
        let hit = free.iter().position(|h| {
            w.via == h.via
                && w.weight == h.weight
                && w.onlink == h.onlink
                && (w.dev.is_none() || w.dev == h.dev)
        });
        hit.map(|i| free.swap_remove(i)).is_some()
    })
}

pub(super) fn routes(plan: &mut Plan, desired: &[Route], seen: &[Seen<Route>]) {
    let index: HashMap<RouteKey, &Seen<Route>> = seen.iter().map(|s| (s.item.key, s)).collect();
    let wanted: HashSet<RouteKey> = desired.iter().map(|r| r.key).collect();
    for want in desired {
        match index.get(&want.key) {
            None => plan.actions.push(Action::AddRoute(want.clone())),
            Some(s) if s.owner == Owner::Hearth => {
                if !satisfies(want, &s.item) {
                    plan.actions.push(Action::ReplaceRoute {
                        old: s.item.clone(),
                        new: want.clone(),
                    });
                }
            }
            Some(s) => plan.conflict(want, format!("{} ({})", foreign(s.owner), s.item)),
        }
    }
    for s in seen
        .iter()
        .filter(|s| s.owner == Owner::Hearth && !wanted.contains(&s.item.key))
    {
        plan.actions.push(Action::DeleteRoute(s.item.clone()));
    }
}

pub(super) fn neighbours(plan: &mut Plan, desired: &[Neighbour], seen: &[Seen<Neighbour>]) {
    type Key<'a> = (&'a str, std::net::IpAddr, bool);
    let key =
        |n: &Neighbour| -> (String, std::net::IpAddr, bool) { (n.dev.clone(), n.address, n.proxy) };
    let index: HashMap<Key<'_>, &Seen<Neighbour>> = seen
        .iter()
        .map(|s| ((s.item.dev.as_str(), s.item.address, s.item.proxy), s))
        .collect();
    let wanted: HashSet<_> = desired.iter().map(key).collect();
    for want in desired {
        match index.get(&(want.dev.as_str(), want.address, want.proxy)) {
            None => plan.actions.push(Action::AddNeighbour {
                neighbour: want.clone(),
                over_cache: false,
            }),
            Some(s) if s.owner == Owner::Cache => {
                plan.actions.push(Action::AddNeighbour {
                    neighbour: want.clone(),
                    over_cache: true,
                });
            }
            Some(s) if s.owner == Owner::Hearth => {
                if s.item.mac != want.mac {
                    plan.actions.push(Action::ReplaceNeighbour(want.clone()));
                }
            }
            Some(s) => plan.conflict(want, foreign(s.owner)),
        }
    }
    for s in seen
        .iter()
        .filter(|s| s.owner == Owner::Hearth && !wanted.contains(&key(&s.item)))
    {
        plan.actions.push(Action::DeleteNeighbour(s.item.clone()));
    }
}

pub(super) fn rules(plan: &mut Plan, desired: &[Rule], seen: &[Seen<Rule>]) {
    let have: HashMap<&Rule, Owner> = seen.iter().map(|s| (&s.item, s.owner)).collect();
    let wanted: HashSet<&Rule> = desired.iter().collect();
    for want in desired {
        match have.get(want) {
            None => plan.actions.push(Action::AddRule(want.clone())),
            Some(Owner::Hearth) => {}
            Some(o) => plan.conflict(want, foreign(*o)),
        }
    }
    for s in seen
        .iter()
        .filter(|s| s.owner == Owner::Hearth && !wanted.contains(&s.item))
    {
        plan.actions.push(Action::DeleteRule(s.item.clone()));
    }
}
