//! The pure diff of [`Desired`] and [`Observed`]: the OVSDB operations of one transaction that
//! make Hearth's NAT rows and HA group what is desired. Rows without Hearth's mark are never
//! named in an operation.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{is_ours, Desired, NbError, Observed, FIP_KEY};
use crate::ovsdb::datum::{insert, map, mutate, named_uuid, set, update, uuid};

const NAT_TYPE: &str = "dnat_and_snat";

fn marks(extra: Option<(&str, &str)>) -> Value {
    let mut m = BTreeMap::from([(super::super::MANAGED_KEY.to_owned(), "true".to_owned())]);
    if let Some((k, v)) = extra {
        m.insert(k.to_owned(), v.to_owned());
    }
    map(&m)
}

/// The operations that turn `observed` into `desired`; empty when they agree.
pub fn plan(desired: &Desired, observed: &Observed) -> Result<Vec<Value>, NbError> {
    let router = observed
        .router
        .as_deref()
        .ok_or_else(|| NbError::NoRouter(desired.router.clone()))?;
    let mut ops = Vec::new();
    // NAT rows: ours, by floating-IP name; the first of duplicates is kept.
    let mut ours: BTreeMap<&str, &super::NatRow> = BTreeMap::new();
    let mut drop = Vec::new();
    for row in observed.nats.iter().filter(|r| is_ours(&r.external_ids)) {
        let name = row.external_ids.get(FIP_KEY).map(String::as_str);
        let wanted = name.is_some_and(|n| desired.nats.iter().any(|w| w.name == n));
        match name {
            Some(n) if wanted && !ours.contains_key(n) => {
                ours.insert(n, row);
            }
            _ => drop.push(uuid(&row.uuid)),
        }
    }
    let mut added = Vec::new();
    for (i, want) in desired.nats.iter().enumerate() {
        let (ext, log) = (want.external_ip.to_string(), want.logical_ip.to_string());
        match ours.get(want.name.as_str()) {
            Some(row)
                if row.kind == NAT_TYPE && row.external_ip == ext && row.logical_ip == log => {}
            Some(row) => ops.push(update(
                "NAT",
                &row.uuid,
                json!({"type": NAT_TYPE, "external_ip": ext, "logical_ip": log}),
            )),
            None => {
                let name = format!("nat{i}");
                ops.push(insert(
                    "NAT",
                    json!({"type": NAT_TYPE, "external_ip": ext, "logical_ip": log,
                           "external_ids": marks(Some((FIP_KEY, &want.name)))}),
                    &name,
                ));
                added.push(named_uuid(&name));
            }
        }
    }
    if !drop.is_empty() {
        ops.push(mutate(
            "Logical_Router",
            router,
            vec![json!(["nat", "delete", set(drop)])],
        ));
    }
    if !added.is_empty() {
        ops.push(mutate(
            "Logical_Router",
            router,
            vec![json!(["nat", "insert", set(added)])],
        ));
    }
    if let Some(ha) = &desired.ha {
        let (port, port_group) = observed
            .port
            .as_ref()
            .ok_or_else(|| NbError::NoGatewayPort {
                router: desired.router.clone(),
                port: desired.gateway_port.clone(),
            })?;
        let member = |(i, (chassis, priority)): (usize, (&String, &i64))| {
            let name = format!("hc{i}");
            (
                insert(
                    "HA_Chassis",
                    json!({"chassis_name": chassis, "priority": priority,
                           "external_ids": marks(None)}),
                    &name,
                ),
                named_uuid(&name),
            )
        };
        let group = match &observed.group {
            Some(g) if !is_ours(&g.external_ids) => {
                return Err(NbError::ForeignGroup(ha.group.clone()))
            }
            Some(g) => {
                let mut stale = Vec::new();
                for m in &g.members {
                    match ha.members.get(&m.chassis) {
                        Some(p) if *p == m.priority => {}
                        Some(p) => ops.push(update("HA_Chassis", &m.uuid, json!({"priority": p}))),
                        None => stale.push(uuid(&m.uuid)),
                    }
                }
                let new: Vec<_> = ha
                    .members
                    .iter()
                    .filter(|(c, _)| !g.members.iter().any(|m| &m.chassis == *c))
                    .enumerate()
                    .map(member)
                    .collect();
                if !stale.is_empty() {
                    ops.push(mutate(
                        "HA_Chassis_Group",
                        &g.uuid,
                        vec![json!(["ha_chassis", "delete", set(stale)])],
                    ));
                }
                if !new.is_empty() {
                    let refs = new.iter().map(|(_, r)| r.clone()).collect();
                    ops.extend(new.into_iter().map(|(op, _)| op));
                    ops.push(mutate(
                        "HA_Chassis_Group",
                        &g.uuid,
                        vec![json!(["ha_chassis", "insert", set(refs)])],
                    ));
                }
                (port_group.as_deref() != Some(g.uuid.as_str())).then(|| uuid(&g.uuid))
            }
            None => {
                let new: Vec<_> = ha.members.iter().enumerate().map(member).collect();
                let refs: Vec<Value> = new.iter().map(|(_, r)| r.clone()).collect();
                ops.extend(new.into_iter().map(|(op, _)| op));
                ops.push(insert(
                    "HA_Chassis_Group",
                    json!({"name": ha.group, "ha_chassis": set(refs),
                           "external_ids": marks(None)}),
                    "group",
                ));
                Some(named_uuid("group"))
            }
        };
        if let Some(g) = group {
            ops.push(update(
                "Logical_Router_Port",
                port,
                json!({"ha_chassis_group": g}),
            ));
        }
    }
    Ok(ops)
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
