//! Carries out a [`Plan`] through the `Netlink` and `Sysctls` traits, in phases: global
//! sysctls, links (creation rounds so masters and parents exist first), per-interface
//! sysctls, then one pipelined batch of adds, one of deletes, and link deletions last.
//! A failed step is recorded and the rest goes on; deletes of objects already gone count
//! as done. It writes only what the plan says; the plan only names Hearth's objects.

mod links;

use std::collections::HashMap;

use super::model::Desired;
use super::netlink::{Netlink, NetlinkError, Observed, Op};
use super::plan::{Action, Plan};
use super::reconcile::reconcile;
use super::sysctl::{SysctlError, Sysctls};
use super::HEARTH_PROTO;

/// Why part of an apply failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Dumping the namespace failed; nothing was planned.
    #[error("observing the network namespace: {0}")]
    Observe(#[source] NetlinkError),
    /// An object names an interface that does not exist (and is not being created).
    #[error("{what}: device {dev} not found")]
    MissingDevice {
        /// The object, as the plan prints it.
        what: String,
        /// The missing interface.
        dev: String,
    },
    /// The kernel refused a write.
    #[error(transparent)]
    Write(NetlinkError),
    /// A sysctl could not be written.
    #[error(transparent)]
    Sysctl(SysctlError),
}

/// What an apply did.
#[derive(Debug, Default)]
pub struct Report {
    /// Netlink requests and sysctl writes sent.
    pub writes: usize,
    /// The steps that failed.
    pub failures: Vec<ApplyError>,
}

impl Report {
    /// The writes sent that failed (a step not sent, like one on a missing device, is a
    /// failure but not a write).
    pub fn failed_writes(&self) -> usize {
        self.failures
            .iter()
            .filter(|f| matches!(f, ApplyError::Write(_) | ApplyError::Sysctl(_)))
            .count()
    }
}

/// The outcome of [`converge`]: the plan of the first pass and what was done.
#[derive(Debug)]
pub struct Outcome {
    /// The first pass's plan (what `hearth net apply` prints).
    pub plan: Plan,
    /// Writes and failures of all passes.
    pub report: Report,
}

/// Dumps the namespace and reads the desired sysctls.
pub async fn observe<N: Netlink + ?Sized>(
    netlink: &N,
    sysctls: &dyn Sysctls,
    desired: &Desired,
) -> Result<Observed, ApplyError> {
    let mut observed = netlink.observe().await.map_err(ApplyError::Observe)?;
    for s in desired.sysctls.iter().chain(&desired.interface_sysctls) {
        observed
            .sysctls
            .insert(s.path.clone(), sysctls.read(&s.path).ok());
    }
    Ok(observed)
}

/// One or two reconcile passes (a second one when links were recreated, because the objects
/// on them went with them). With `dry_run`, only plans.
pub async fn converge<N: Netlink + ?Sized>(
    netlink: &N,
    sysctls: &dyn Sysctls,
    desired: &Desired,
    dry_run: bool,
) -> Result<Outcome, ApplyError> {
    let start = std::time::Instant::now();
    let observed = observe(netlink, sysctls, desired).await?;
    let observed_at = start.elapsed();
    let plan = reconcile(desired, &observed);
    let planned_at = start.elapsed();
    let mut report = Report::default();
    if !dry_run && !plan.actions.is_empty() {
        execute(netlink, sysctls, &plan, &observed, &mut report).await;
    }
    tracing::debug!(?observed_at, ?planned_at, applied_at = ?start.elapsed(), writes = report.writes, "reconcile pass");
    if dry_run || plan.actions.is_empty() {
        return Ok(Outcome { plan, report });
    }
    if plan
        .actions
        .iter()
        .any(|a| matches!(a, Action::RecreateLink { .. }))
    {
        let observed = observe(netlink, sysctls, desired).await?;
        let again = reconcile(desired, &observed);
        execute(netlink, sysctls, &again, &observed, &mut report).await;
    }
    Ok(Outcome { plan, report })
}

/// Interface name → index.
pub(crate) type Indexes = HashMap<String, u32>;

/// Sends ops and records their failures; `tolerate_gone` ignores "already gone" errnos.
pub(crate) async fn send<N: Netlink + ?Sized>(
    netlink: &N,
    ops: Vec<Op>,
    tolerate_gone: bool,
    report: &mut Report,
) -> Vec<bool> {
    if ops.is_empty() {
        return Vec::new();
    }
    report.writes += ops.len();
    let results = netlink.write(ops).await;
    results
        .into_iter()
        .map(|r| match r {
            Ok(()) => true,
            Err(e) if tolerate_gone && is_gone(&e) => true,
            Err(e) => {
                report.failures.push(ApplyError::Write(e));
                false
            }
        })
        .collect()
}

fn is_gone(e: &NetlinkError) -> bool {
    matches!(
        e.errno(),
        Some(libc::ENOENT | libc::ENODEV | libc::ESRCH | libc::EADDRNOTAVAIL)
    )
}

fn index_of(
    idx: &Indexes,
    dev: &str,
    what: &dyn std::fmt::Display,
    report: &mut Report,
) -> Option<u32> {
    let found = idx.get(dev).copied();
    if found.is_none() {
        report.failures.push(ApplyError::MissingDevice {
            what: what.to_string(),
            dev: dev.to_owned(),
        });
    }
    found
}

/// Carries out one plan against the observation it was made from.
pub async fn execute<N: Netlink + ?Sized>(
    netlink: &N,
    sysctls: &dyn Sysctls,
    plan: &Plan,
    observed: &Observed,
    report: &mut Report,
) {
    let mut idx: Indexes = observed
        .links
        .iter()
        .map(|l| (l.link.name.clone(), l.index))
        .collect();
    write_sysctls(sysctls, plan, false, report);
    links::apply(netlink, plan, &mut idx, report).await;
    write_sysctls(sysctls, plan, true, report);
    let (mut adds, mut dels) = (Vec::new(), Vec::new());
    for a in &plan.actions {
        lower(a, &idx, report, &mut adds, &mut dels);
    }
    send(netlink, adds, false, report).await;
    send(netlink, dels, true, report).await;
    links::delete(netlink, plan, &idx, report).await;
}

fn write_sysctls(sysctls: &dyn Sysctls, plan: &Plan, per_interface: bool, report: &mut Report) {
    for a in &plan.actions {
        if let Action::SetSysctl { sysctl, .. } = a {
            if sysctl.dev.is_some() == per_interface {
                report.writes += 1;
                if let Err(e) = sysctls.write(&sysctl.path, &sysctl.value) {
                    report.failures.push(ApplyError::Sysctl(e));
                }
            }
        }
    }
}

/// Turns an object action into ops (adds before deletes; rules, neighbours and routes are
/// deleted before the addresses they may depend on).
fn lower(a: &Action, idx: &Indexes, report: &mut Report, adds: &mut Vec<Op>, dels: &mut Vec<Op>) {
    match a {
        Action::AddAddress(address) | Action::ReplaceAddress(address) => {
            if let Some(index) = index_of(idx, &address.dev, address, report) {
                let replace = matches!(a, Action::ReplaceAddress(_));
                adds.push(Op::AddAddress {
                    index,
                    address: address.clone(),
                    proto: HEARTH_PROTO,
                    replace,
                });
            }
        }
        Action::AddRoute(route) | Action::ReplaceRoute { new: route, .. } => {
            let mut oifs = Vec::with_capacity(route.nexthops.len());
            for nh in &route.nexthops {
                match &nh.dev {
                    None => oifs.push(None),
                    Some(dev) => match index_of(idx, dev, route, report) {
                        Some(i) => oifs.push(Some(i)),
                        None => return,
                    },
                }
            }
            let replace = matches!(a, Action::ReplaceRoute { .. });
            adds.push(Op::AddRoute {
                route: route.clone(),
                oifs,
                replace,
            });
        }
        Action::AddNeighbour { neighbour, .. } | Action::ReplaceNeighbour(neighbour) => {
            if let Some(index) = index_of(idx, &neighbour.dev, neighbour, report) {
                let replace = !matches!(
                    a,
                    Action::AddNeighbour {
                        over_cache: false,
                        ..
                    }
                );
                adds.push(Op::AddNeighbour {
                    index,
                    neighbour: neighbour.clone(),
                    replace,
                });
            }
        }
        Action::AddRule(rule) => adds.push(Op::AddRule { rule: rule.clone() }),
        Action::DeleteRule(rule) => dels.push(Op::DeleteRule { rule: rule.clone() }),
        Action::DeleteNeighbour(n) => {
            if let Some(&index) = idx.get(&n.dev) {
                dels.push(Op::DeleteNeighbour {
                    index,
                    neighbour: n.clone(),
                });
            }
        }
        Action::DeleteRoute(route) => dels.push(Op::DeleteRoute {
            route: route.clone(),
        }),
        Action::DeleteAddress(address) => {
            if let Some(&index) = idx.get(&address.dev) {
                dels.push(Op::DeleteAddress {
                    index,
                    address: address.clone(),
                });
            }
        }
        _ => {}
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
