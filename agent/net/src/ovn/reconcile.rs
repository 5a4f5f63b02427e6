//! `reconcile(desired, observed) -> actions` for the Open_vSwitch database, and [`to_ops`],
//! which turns the actions into the operations of one transaction. Pure.
//!
//! Rows are found by name, so a rerun after a restart adopts what is there instead of adding
//! duplicates. Only rows marked [`MANAGED_KEY`] are ever removed; only Hearth's external_ids
//! keys are written (by key-wise `mutate`, never by replacing a whole map).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::render::{Desired, DesiredBridge, DesiredPort, KEYS_KEY, OWNED_KEYS};
use super::MANAGED_KEY;
use crate::ovsdb::datum::{insert, map, mutate, named_uuid, set, update, uuid};
use crate::ovsdb::tables::{Interface, OvsState};

/// One change to the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Set and remove Open_vSwitch external_ids keys.
    SetExternalIds {
        /// Keys to set.
        set: BTreeMap<String, String>,
        /// Owned keys to remove.
        remove: Vec<String>,
        /// The values the changed and removed keys had.
        was: BTreeMap<String, String>,
    },
    /// Create a bridge with its ports.
    CreateBridge(DesiredBridge),
    /// Change a bridge's datapath_type.
    SetDatapathType {
        /// The bridge row.
        uuid: String,
        /// The bridge name.
        bridge: String,
        /// The type it has (`system` when empty).
        from: String,
        /// The new type.
        datapath_type: String,
    },
    /// Add a port to an existing bridge.
    AddPort {
        /// The bridge row.
        bridge_uuid: String,
        /// The bridge name.
        bridge: String,
        /// The port.
        port: DesiredPort,
    },
    /// Fix an interface's type, MAC, MTU or Hearth's external_ids keys.
    UpdateInterface {
        /// The interface row.
        uuid: String,
        /// The desired port.
        port: DesiredPort,
        /// What changes, as the plan prints it (`mtu 1400 -> 1500`).
        changes: Vec<String>,
    },
    /// Remove a Hearth-managed port from a bridge.
    RemovePort {
        /// The bridge row.
        bridge_uuid: String,
        /// The port row.
        port_uuid: String,
        /// Its name.
        name: String,
    },
    /// Remove a Hearth-managed bridge.
    RemoveBridge {
        /// The bridge row.
        uuid: String,
        /// Its name.
        name: String,
    },
}

fn managed(ids: &BTreeMap<String, String>) -> bool {
    ids.get(MANAGED_KEY).map(String::as_str) == Some("true")
}

/// What differs between an interface and the port Hearth wants, as the plan prints it (empty
/// when nothing does).
fn iface_changes(have: &Interface, want: &DesiredPort) -> Vec<String> {
    let show = |v: Option<String>| v.unwrap_or_else(|| "none".into());
    let mut out = Vec::new();
    if have.kind != want.kind {
        let kind = |k: &str| {
            if k.is_empty() {
                "system".to_owned()
            } else {
                k.to_owned()
            }
        };
        out.push(format!("type {} -> {}", kind(&have.kind), kind(&want.kind)));
    }
    if want.mac.is_some() && have.mac != want.mac {
        out.push(format!(
            "mac {} -> {}",
            show(have.mac.clone()),
            show(want.mac.clone())
        ));
    }
    if want.mtu.is_some() && have.mtu_request != want.mtu {
        let mtu = |m: Option<i64>| show(m.map(|m| m.to_string()));
        out.push(format!(
            "mtu {} -> {}",
            mtu(have.mtu_request),
            mtu(want.mtu)
        ));
    }
    for (k, v) in &want.external_ids {
        if have.external_ids.get(k) != Some(v) {
            let old = show(have.external_ids.get(k).cloned());
            out.push(format!("external_ids:{k} {old} -> {v}"));
        }
    }
    if !managed(&have.external_ids) {
        out.push(format!("marked {MANAGED_KEY}"));
    }
    out
}

/// Diffs the desired state against the observed one.
pub fn reconcile(desired: &Desired, observed: &OvsState) -> Vec<Action> {
    let mut out = Vec::new();
    let have_ids = observed
        .root
        .as_ref()
        .map(|r| r.external_ids.clone())
        .unwrap_or_default();
    let set: BTreeMap<String, String> = desired
        .external_ids
        .iter()
        .filter(|(k, v)| have_ids.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove: Vec<String> = OWNED_KEYS
        .iter()
        .chain([&KEYS_KEY])
        .filter(|k| have_ids.contains_key(**k) && !desired.external_ids.contains_key(**k))
        .map(|k| (*k).to_owned())
        .collect();
    if !set.is_empty() || !remove.is_empty() {
        let was = set
            .keys()
            .chain(&remove)
            .filter_map(|k| Some((k.clone(), have_ids.get(k)?.clone())))
            .collect();
        out.push(Action::SetExternalIds { set, remove, was });
    }

    let port_by_uuid = |u: &str| observed.ports.iter().find(|p| p.uuid == u);
    for want in &desired.bridges {
        let Some(br) = observed.bridges.iter().find(|b| b.name == want.name) else {
            out.push(Action::CreateBridge(want.clone()));
            continue;
        };
        let have_dp = if br.datapath_type.is_empty() {
            "system"
        } else {
            br.datapath_type.as_str()
        };
        if have_dp != want.datapath_type {
            out.push(Action::SetDatapathType {
                uuid: br.uuid.clone(),
                bridge: br.name.clone(),
                from: have_dp.to_owned(),
                datapath_type: want.datapath_type.clone(),
            });
        }
        for wp in &want.ports {
            let on_bridge = br
                .ports
                .iter()
                .filter_map(|u| port_by_uuid(u))
                .find(|p| p.name == wp.name);
            match on_bridge {
                None => out.push(Action::AddPort {
                    bridge_uuid: br.uuid.clone(),
                    bridge: br.name.clone(),
                    port: wp.clone(),
                }),
                Some(p) => {
                    let iface = p
                        .interfaces
                        .iter()
                        .filter_map(|u| observed.interfaces.iter().find(|i| &i.uuid == u))
                        .find(|i| i.name == wp.name);
                    if let Some(i) = iface {
                        let changes = iface_changes(i, wp);
                        if !changes.is_empty() {
                            out.push(Action::UpdateInterface {
                                uuid: i.uuid.clone(),
                                port: wp.clone(),
                                changes,
                            });
                        }
                    }
                }
            }
        }
        for p in br.ports.iter().filter_map(|u| port_by_uuid(u)) {
            if managed(&p.external_ids) && !want.ports.iter().any(|w| w.name == p.name) {
                out.push(Action::RemovePort {
                    bridge_uuid: br.uuid.clone(),
                    port_uuid: p.uuid.clone(),
                    name: p.name.clone(),
                });
            }
        }
    }
    // A managed port that sits on another bridge than the one it should: move it.
    for a in &out.clone() {
        let Action::AddPort {
            bridge_uuid, port, ..
        } = a
        else {
            continue;
        };
        for br in observed.bridges.iter().filter(|b| &b.uuid != bridge_uuid) {
            for p in br.ports.iter().filter_map(|u| port_by_uuid(u)) {
                if p.name == port.name && managed(&p.external_ids) {
                    out.push(Action::RemovePort {
                        bridge_uuid: br.uuid.clone(),
                        port_uuid: p.uuid.clone(),
                        name: p.name.clone(),
                    });
                }
            }
        }
    }
    for br in &observed.bridges {
        if managed(&br.external_ids) && !desired.bridges.iter().any(|b| b.name == br.name) {
            out.push(Action::RemoveBridge {
                uuid: br.uuid.clone(),
                name: br.name.clone(),
            });
        }
    }
    out
}

/// What removing the `ovn:` section takes away: the external_ids keys Hearth set (those its
/// [`KEYS_KEY`] lists, and that key), every bridge marked [`MANAGED_KEY`], and the marked
/// ports on the bridges it did not create (like `ovn0` on an integration bridge that
/// ovn-controller made). Nothing else: a key Hearth owns but never set stays.
pub fn cleanup(observed: &OvsState) -> Vec<Action> {
    let mut out = Vec::new();
    let have_ids = observed
        .root
        .as_ref()
        .map(|r| r.external_ids.clone())
        .unwrap_or_default();
    if let Some(list) = have_ids.get(KEYS_KEY) {
        let mut remove: Vec<String> = list
            .split(',')
            .filter(|k| OWNED_KEYS.contains(k) && have_ids.contains_key(*k))
            .map(str::to_owned)
            .collect();
        remove.push(KEYS_KEY.to_owned());
        let was = remove
            .iter()
            .filter_map(|k| Some((k.clone(), have_ids.get(k)?.clone())))
            .collect();
        out.push(Action::SetExternalIds {
            set: BTreeMap::new(),
            remove,
            was,
        });
    }
    for br in &observed.bridges {
        if managed(&br.external_ids) {
            out.push(Action::RemoveBridge {
                uuid: br.uuid.clone(),
                name: br.name.clone(),
            });
            continue;
        }
        for p in br
            .ports
            .iter()
            .filter_map(|u| observed.ports.iter().find(|p| &p.uuid == u))
        {
            if managed(&p.external_ids) {
                out.push(Action::RemovePort {
                    bridge_uuid: br.uuid.clone(),
                    port_uuid: p.uuid.clone(),
                    name: p.name.clone(),
                });
            }
        }
    }
    out
}

fn marker() -> BTreeMap<String, String> {
    [(MANAGED_KEY.to_owned(), "true".to_owned())].into()
}

fn iface_row(p: &DesiredPort) -> Value {
    let mut ids = marker();
    ids.extend(p.external_ids.clone());
    let mut row = json!({"name": p.name, "type": p.kind, "external_ids": map(&ids)});
    if let Some(m) = &p.mac {
        row["mac"] = json!(m);
    }
    if let Some(m) = p.mtu {
        row["mtu_request"] = json!(m);
    }
    row
}

/// Inserts a port and its interface; returns the port's named UUID.
fn insert_port(ops: &mut Vec<Value>, p: &DesiredPort, n: &mut usize) -> String {
    *n += 1;
    let (iname, pname) = (format!("iface{n}"), format!("port{n}"));
    ops.push(insert("Interface", iface_row(p), &iname));
    let row =
        json!({"name": p.name, "interfaces": named_uuid(&iname), "external_ids": map(&marker())});
    ops.push(insert("Port", row, &pname));
    pname
}

/// The operations of one transaction that carries out `actions` (empty when none).
pub fn to_ops(root_uuid: &str, actions: &[Action]) -> Vec<Value> {
    let mut ops = Vec::new();
    let mut n = 0;
    for a in actions {
        match a {
            Action::SetExternalIds { set: s, remove, .. } => {
                let keys: Vec<Value> = s.keys().chain(remove).map(|k| json!(k)).collect();
                ops.push(mutate(
                    "Open_vSwitch",
                    root_uuid,
                    vec![
                        json!(["external_ids", "delete", set(keys)]),
                        json!(["external_ids", "insert", map(s)]),
                    ],
                ));
            }
            Action::CreateBridge(b) => {
                let ports: Vec<Value> = b
                    .ports
                    .iter()
                    .map(|p| named_uuid(&insert_port(&mut ops, p, &mut n)))
                    .collect();
                n += 1;
                let bname = format!("bridge{n}");
                let row = json!({"name": b.name, "datapath_type": b.datapath_type, "ports": set(ports), "external_ids": map(&marker())});
                ops.push(insert("Bridge", row, &bname));
                ops.push(mutate(
                    "Open_vSwitch",
                    root_uuid,
                    vec![json!(["bridges", "insert", set(vec![named_uuid(&bname)])])],
                ));
            }
            Action::SetDatapathType {
                uuid: u,
                datapath_type,
                ..
            } => {
                ops.push(update("Bridge", u, json!({"datapath_type": datapath_type})));
            }
            Action::AddPort {
                bridge_uuid, port, ..
            } => {
                let p = insert_port(&mut ops, port, &mut n);
                ops.push(mutate(
                    "Bridge",
                    bridge_uuid,
                    vec![json!(["ports", "insert", set(vec![named_uuid(&p)])])],
                ));
            }
            Action::UpdateInterface { uuid: u, port, .. } => {
                let mut row = json!({"type": port.kind});
                if let Some(m) = &port.mac {
                    row["mac"] = json!(m);
                }
                if let Some(m) = port.mtu {
                    row["mtu_request"] = json!(m);
                }
                ops.push(update("Interface", u, row));
                let mut ids = marker();
                ids.extend(port.external_ids.clone());
                let keys: Vec<Value> = ids.keys().map(|k| json!(k)).collect();
                ops.push(mutate(
                    "Interface",
                    u,
                    vec![
                        json!(["external_ids", "delete", set(keys)]),
                        json!(["external_ids", "insert", map(&ids)]),
                    ],
                ));
            }
            Action::RemovePort {
                bridge_uuid,
                port_uuid,
                ..
            } => {
                ops.push(mutate(
                    "Bridge",
                    bridge_uuid,
                    vec![json!(["ports", "delete", set(vec![uuid(port_uuid)])])],
                ));
            }
            Action::RemoveBridge { uuid: u, .. } => {
                ops.push(mutate(
                    "Open_vSwitch",
                    root_uuid,
                    vec![json!(["bridges", "delete", set(vec![uuid(u)])])],
                ));
            }
        }
    }
    if !ops.is_empty() {
        ops.push(json!({"op": "comment", "comment": format!("hearth: {} OVN node configuration changes", actions.len())}));
    }
    ops
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
