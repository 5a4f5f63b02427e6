//! The link phase of an apply: delete links that must be recreated, create links in rounds
//! (a link whose master, underlay or parent is being created waits for the next round), mark
//! each new link with Hearth's ifalias (an undeclared veth peer is set up, not marked), change owned links in place, and at
//! the very end delete owned links the file no longer has.

use super::{index_of, send, ApplyError, Indexes, Report};
use crate::model::{Link, LinkKind};
use crate::netlink::{Netlink, Op};
use crate::plan::Action;
use crate::plan::Plan;
use crate::LINK_ALIAS;

fn deps(link: &Link) -> Vec<&str> {
    let mut d: Vec<&str> = link.master.iter().map(String::as_str).collect();
    match &link.kind {
        LinkKind::Vxlan { dev: Some(dev), .. } => d.push(dev),
        LinkKind::Macvlan { parent, .. } => d.push(parent),
        _ => {}
    }
    d
}

async fn refresh<N: Netlink + ?Sized>(netlink: &N, idx: &mut Indexes, report: &mut Report) {
    match netlink.links().await {
        Ok(links) => *idx = links.into_iter().map(|l| (l.link.name, l.index)).collect(),
        Err(e) => report.failures.push(ApplyError::Observe(e)),
    }
}

pub(super) async fn apply<N: Netlink + ?Sized>(
    netlink: &N,
    plan: &Plan,
    idx: &mut Indexes,
    report: &mut Report,
) {
    let mut stale = Vec::new();
    let mut pending: Vec<&Link> = Vec::new();
    for a in &plan.actions {
        match a {
            Action::RecreateLink { old, new } => {
                if let Some(index) = idx.remove(&old.name) {
                    stale.push(Op::DeleteLink {
                        index,
                        name: old.name.clone(),
                    });
                }
                pending.push(new);
            }
            Action::CreateLink(new) => pending.push(new),
            _ => {}
        }
    }
    if !stale.is_empty() {
        send(netlink, stale, true, report).await;
        refresh(netlink, idx, report).await;
    }
    while !pending.is_empty() {
        let waiting: Vec<String> = pending.iter().map(|l| l.name.clone()).collect();
        let (ready, later): (Vec<&Link>, Vec<&Link>) = pending
            .iter()
            .partition(|l| deps(l).iter().all(|d| !waiting.iter().any(|w| w == d)));
        if ready.is_empty() {
            for l in later {
                report.failures.push(ApplyError::MissingDevice {
                    what: l.to_string(),
                    dev: deps(l).join(", ") + " (a dependency cycle)",
                });
            }
            break;
        }
        let mut ops = Vec::new();
        let mut made = Vec::new();
        for l in ready {
            let resolve = |dev: Option<&String>, report: &mut Report| -> Result<Option<u32>, ()> {
                match dev {
                    None => Ok(None),
                    Some(d) => index_of(idx, d, l, report).map(Some).ok_or(()),
                }
            };
            let lower = match &l.kind {
                LinkKind::Vxlan { dev, .. } => resolve(dev.as_ref(), report),
                LinkKind::Macvlan { parent, .. } => resolve(Some(parent), report),
                _ => Ok(None),
            };
            let master = resolve(l.master.as_ref(), report);
            if let (Ok(lower), Ok(master)) = (lower, master) {
                ops.push(Op::CreateLink {
                    link: l.clone(),
                    master,
                    lower,
                });
                made.push(l);
            }
        }
        let ok = send(netlink, ops, false, report).await;
        let mut marks = Vec::new();
        for (l, ok) in made.iter().zip(ok) {
            if !ok {
                continue;
            }
            let mut names = vec![(l.name.clone(), true)];
            let mut up = None;
            if let LinkKind::Veth { peer } = &l.kind {
                // An undeclared peer comes up with the pair and is then left alone: not
                // marked, so never Hearth's to change or delete (it goes with its other end).
                names.push((peer.clone(), plan.declared_peers.contains(peer)));
                up = l.up.then_some(true);
            }
            for (name, mark) in names.into_iter().filter(|(_, m)| *m || up.is_some()) {
                marks.push(Op::SetLink {
                    index: 0,
                    name,
                    mtu: None,
                    up,
                    master: None,
                    mac: None,
                    alias: mark.then(|| LINK_ALIAS.to_owned()),
                });
            }
        }
        send(netlink, marks, false, report).await;
        refresh(netlink, idx, report).await;
        pending = later;
    }
    let mut changes = Vec::new();
    for a in &plan.actions {
        if let Action::ChangeLink { old, change } = a {
            let Some(index) = index_of(idx, &old.name, &old.name, report) else {
                continue;
            };
            let master = match &change.master {
                None => None,
                Some(None) => Some(0),
                Some(Some(m)) => match index_of(idx, m, &format!("link {}", old.name), report) {
                    Some(i) => Some(i),
                    None => continue,
                },
            };
            changes.push(Op::SetLink {
                index,
                name: old.name.clone(),
                mtu: change.mtu,
                up: change.up,
                master,
                mac: change.mac,
                alias: None,
            });
        }
    }
    send(netlink, changes, false, report).await;
}

pub(super) async fn delete<N: Netlink + ?Sized>(
    netlink: &N,
    plan: &Plan,
    idx: &Indexes,
    report: &mut Report,
) {
    let ops: Vec<Op> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::DeleteLink(l) => idx.get(&l.name).map(|&index| Op::DeleteLink {
                index,
                name: l.name.clone(),
            }),
            _ => None,
        })
        .collect();
    send(netlink, ops, true, report).await;
}
