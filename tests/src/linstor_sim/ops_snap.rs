//! Snapshots, single and multi: checked (name free, diskful replicas to take them on), then
//! taken as copies of the volumes' files; deleted with their images.
//!
//! Owns: these state changes and the snapshot images' lifecycle. Restores and clones are in
//! `ops_restore`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::consts::*;
use super::ops_defs::{device_failed, rd_not_found};
use super::parse::{bad, check_name, str_of, strings_of};
use super::reply::{Fail, Rc};
use super::state::{now_ms, Snap, State};

/// `FAIL_NOT_FOUND_SNAPSHOT_DFN`.
pub fn snap_not_found(rd: &str, snap: &str) -> Fail {
    Fail(
        Rc::err(
            0,
            obj::SNAPSHOT,
            FAIL_NOT_FOUND_SNAPSHOT_DFN,
            format!("Snapshot '{snap}' of resource '{rd}' not found."),
        )
        .obj("RscDfn", rd)
        .obj("SnapshotName", snap),
    )
}

impl State {
    /// Checks that snapshot `name` of `rd` can be taken; returns the nodes to take it on.
    pub(super) fn snapshot_nodes(
        &self,
        rd: &str,
        name: &str,
        nodes: &[String],
    ) -> Result<Vec<String>, Fail> {
        check_name(name, "snapshot")?;
        let r = self.rds.get(rd).ok_or_else(|| rd_not_found(rd))?;
        if r.snaps.contains_key(name) {
            return Err(Fail(
                Rc::err(
                    OP_CREATE,
                    obj::SNAPSHOT,
                    FAIL_EXISTS_SNAPSHOT_DFN,
                    format!("A snapshot with the name '{name}' of resource '{rd}' already exists."),
                )
                .obj("RscDfn", rd)
                .obj("SnapshotName", name),
            ));
        }
        let diskful: Vec<String> = r
            .rscs
            .values()
            .filter(|x| x.pool.is_some())
            .map(|x| x.node.clone())
            .collect();
        if diskful.is_empty() {
            return Err(Fail(
                Rc::err(
                    OP_CREATE,
                    obj::SNAPSHOT,
                    FAIL_NOT_FOUND_RSC,
                    format!("Resource '{rd}' has no diskful replica to snapshot."),
                )
                .obj("RscDfn", rd),
            ));
        }
        if let Some(bad_node) = nodes.iter().find(|n| !diskful.contains(n)) {
            return Err(Fail(
                Rc::err(
                    OP_CREATE,
                    obj::SNAPSHOT,
                    FAIL_NOT_FOUND_RSC,
                    format!("Resource '{rd}' has no diskful replica on node '{bad_node}'."),
                )
                .obj("RscDfn", rd)
                .obj("Node", bad_node),
            ));
        }
        Ok(if nodes.is_empty() {
            diskful
        } else {
            nodes.to_vec()
        })
    }

    /// Takes a checked snapshot: copies each volume's file.
    pub(super) fn take_snapshot(
        &mut self,
        rd: &str,
        name: &str,
        nodes: Vec<String>,
    ) -> Result<Rc, Fail> {
        let uuid = self.uuid();
        let r = self.rds.get(rd).ok_or_else(|| rd_not_found(rd))?;
        let mut vols = BTreeMap::new();
        for vd in r.vds.values() {
            let image = self
                .devices
                .snapshot(
                    vd.backing.as_ref(),
                    &format!("{rd}_{:05}@{name}", vd.number),
                )
                .map_err(device_failed)?;
            vols.insert(vd.number, (vd.size_kib, image));
        }
        let pools = r
            .rscs
            .values()
            .filter_map(|x| Some((x.node.clone(), x.pool.clone()?)))
            .collect();
        let rd_props = r.props.clone();
        let snap = Snap {
            name: name.to_owned(),
            rd_props,
            nodes,
            vols,
            pools,
            created_ms: now_ms(),
            uuid,
        };
        if let Some(r) = self.rds.get_mut(rd) {
            r.snaps.insert(name.to_owned(), snap);
        }
        Ok(Rc::ok(
            OP_CREATE,
            obj::SNAPSHOT,
            CREATED,
            format!("New snapshot '{name}' of resource '{rd}' registered."),
        )
        .obj("RscDfn", rd)
        .obj("SnapshotName", name))
    }

    /// `POST /v1/resource-definitions/{rd}/snapshots`.
    pub fn create_snapshot(&mut self, rd: &str, body: &Value) -> Result<Vec<Rc>, Fail> {
        let name = str_of(body, "name").ok_or_else(|| bad("snapshot name missing"))?;
        let nodes = self.snapshot_nodes(rd, &name, &strings_of(body, "nodes")?)?;
        Ok(vec![self.take_snapshot(rd, &name, nodes)?])
    }

    /// `POST /v1/actions/snapshot/multi`: all checked before any is taken.
    pub fn create_multi_snapshot(&mut self, body: &Value) -> Result<Vec<Rc>, Fail> {
        let items = body
            .get("snapshots")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if items.is_empty() {
            return Err(bad("snapshots must list at least one snapshot"));
        }
        let mut plan = Vec::new();
        for item in &items {
            let name = str_of(item, "name").ok_or_else(|| bad("snapshot name missing"))?;
            let rd = str_of(item, "resource_name")
                .ok_or_else(|| bad("snapshot resource_name missing"))?;
            if plan
                .iter()
                .any(|(r, _, _): &(String, String, Vec<String>)| *r == rd)
            {
                return Err(bad(format!("resource '{rd}' listed twice")));
            }
            let nodes = self.snapshot_nodes(&rd, &name, &strings_of(item, "nodes")?)?;
            plan.push((rd, name, nodes));
        }
        plan.into_iter()
            .map(|(rd, name, nodes)| self.take_snapshot(&rd, &name, nodes))
            .collect()
    }

    /// `DELETE /v1/resource-definitions/{rd}/snapshots/{snap}`.
    pub fn delete_snapshot(&mut self, rd: &str, name: &str) -> Result<Vec<Rc>, Fail> {
        let r = self.rds.get_mut(rd).ok_or_else(|| rd_not_found(rd))?;
        let snap = r
            .snaps
            .remove(name)
            .ok_or_else(|| snap_not_found(rd, name))?;
        for image in snap.vols.values().filter_map(|(_, i)| i.as_ref()) {
            self.devices.remove_image(image).map_err(device_failed)?;
        }
        Ok(vec![Rc::ok(
            OP_DELETE,
            obj::SNAPSHOT,
            DELETED,
            format!("Snapshot '{name}' of resource '{rd}' deleted."),
        )
        .obj("RscDfn", rd)
        .obj("SnapshotName", name)])
    }

    pub(super) fn snapshot(&self, rd: &str, name: &str) -> Result<&Snap, Fail> {
        self.rds
            .get(rd)
            .ok_or_else(|| rd_not_found(rd))?
            .snaps
            .get(name)
            .ok_or_else(|| snap_not_found(rd, name))
    }
}
