//! `reconcile(desired, observed) -> Plan`: the pure diff. It plans changes only to objects
//! that carry Hearth's marker, and reports a conflict instead of touching a foreign object
//! that holds a desired object's identity. No I/O.

mod links;
mod objects;

use super::model::Desired;
use super::netlink::Observed;
use super::plan::{Action, Plan};

/// Plans the minimal changes that take `observed` to `desired`.
pub fn reconcile(desired: &Desired, observed: &Observed) -> Plan {
    let mut plan = Plan::default();
    for s in &desired.sysctls {
        sysctl(&mut plan, s, observed);
    }
    links::plan(&mut plan, &desired.links, &observed.links);
    for s in &desired.interface_sysctls {
        sysctl(&mut plan, s, observed);
    }
    objects::addresses(&mut plan, &desired.addresses, &observed.addresses);
    objects::routes(&mut plan, &desired.routes, &observed.routes);
    objects::neighbours(&mut plan, &desired.neighbours, &observed.neighbours);
    objects::rules(&mut plan, &desired.rules, &observed.rules);
    links::deletions(&mut plan, &desired.links, &observed.links);
    plan
}

fn sysctl(plan: &mut Plan, s: &super::model::Sysctl, observed: &Observed) {
    let current = observed.sysctls.get(&s.path).cloned().flatten();
    if current.as_deref() != Some(s.value.as_str()) {
        plan.actions.push(Action::SetSysctl {
            sysctl: s.clone(),
            from: current,
        });
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
