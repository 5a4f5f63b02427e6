//! The link half of the diff: create what is missing, change owned links in place, recreate
//! owned links whose kind or creation parameters differ, delete owned links no longer wanted.
//! A foreign link with a desired name is a conflict.

use std::collections::{HashMap, HashSet};

use crate::model::{Link, LinkKind};
use crate::netlink::SeenLink;
use crate::plan::{Action, LinkChange, Plan};

/// True when the kernel's link has the kind and creation parameters the file asks for.
fn same_kind(want: &Link, seen: &SeenLink) -> bool {
    match (&want.kind, &seen.link.kind) {
        (LinkKind::Veth { peer: a }, LinkKind::Veth { peer: b }) => seen.peer_elsewhere || a == b,
        (a, b) => a == b,
    }
}

pub(super) fn plan(plan: &mut Plan, desired: &[Link], seen: &[SeenLink]) {
    let by_name: HashMap<&str, &SeenLink> =
        seen.iter().map(|s| (s.link.name.as_str(), s)).collect();
    let mut made_by_pair: HashSet<&str> = HashSet::new();
    for want in desired {
        if let LinkKind::Veth { peer } = &want.kind {
            if desired.iter().any(|l| l.name == *peer && !l.implied)
                && !by_name.contains_key(peer.as_str())
            {
                plan.declared_peers.push(peer.clone());
            }
        }
        match by_name.get(want.name.as_str()) {
            None if want.implied || made_by_pair.contains(want.name.as_str()) => {}
            None => {
                if let LinkKind::Veth { peer } = &want.kind {
                    made_by_pair.insert(peer.as_str());
                    match by_name.get(peer.as_str()) {
                        Some(p) if p.owned => {
                            // The peer is here without this end: make the pair anew.
                            plan.actions.push(Action::RecreateLink {
                                old: p.link.clone(),
                                new: want.clone(),
                            });
                            continue;
                        }
                        Some(_) => {
                            plan.conflict(
                                want,
                                format!("its peer name {peer} is a link Hearth does not own"),
                            );
                            continue;
                        }
                        None => {}
                    }
                }
                plan.actions.push(Action::CreateLink(want.clone()));
            }
            // An undeclared veth peer is left alone once it exists (see apply::links).
            Some(_) if want.implied => {}
            Some(s) if !s.owned => plan.conflict(
                want,
                format!(
                    "a {} link with this name exists without the hearth:managed alias",
                    s.link.kind.name()
                ),
            ),
            Some(s) if !same_kind(want, s) && !want.implied => {
                if let LinkKind::Veth { peer } = &want.kind {
                    made_by_pair.insert(peer.as_str());
                }
                plan.actions.push(Action::RecreateLink {
                    old: s.link.clone(),
                    new: want.clone(),
                });
            }
            Some(s) => {
                let have = &s.link;
                let mut change = LinkChange::default();
                if want.mtu.is_some() && want.mtu != have.mtu && !want.implied {
                    change.mtu = want.mtu;
                }
                if !want.implied && want.up != have.up {
                    change.up = Some(want.up);
                }
                if !want.implied && want.master != have.master {
                    change.master = Some(want.master.clone());
                }
                if want.mac.is_some() && want.mac != have.mac {
                    change.mac = want.mac;
                }
                if change != LinkChange::default() {
                    plan.actions.push(Action::ChangeLink {
                        old: have.clone(),
                        change,
                    });
                }
            }
        }
    }
}

/// Owned links the file no longer names are deleted last, after the objects on them.
pub(super) fn deletions(plan: &mut Plan, desired: &[Link], seen: &[SeenLink]) {
    let wanted: HashSet<&str> = desired.iter().map(|l| l.name.as_str()).collect();
    let mut gone: HashSet<&str> = HashSet::new();
    for s in seen
        .iter()
        .filter(|s| s.owned && !wanted.contains(s.link.name.as_str()))
    {
        if let LinkKind::Veth { peer } = &s.link.kind {
            if gone.contains(peer.as_str()) {
                continue; // deleting one end of a veth deletes both
            }
        }
        gone.insert(s.link.name.as_str());
        plan.actions.push(Action::DeleteLink(s.link.clone()));
    }
}
