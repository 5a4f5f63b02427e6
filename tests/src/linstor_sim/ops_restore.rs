//! Restoring a snapshot into a new resource definition (volume definitions first, then
//! resources seeded from the snapshot images), and clones of a definition (CLONING for
//! [`CLONE_TIME`], then COMPLETE).
//!
//! Owns: these state changes. The images themselves are `devices`' business.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::consts::*;
use super::ops_defs::rd_not_found;
use super::parse::{bad, str_of, strings_of};
use super::reply::{Fail, Rc};
use super::state::{Props, State, Vd};

/// How long a clone reports CLONING before COMPLETE.
pub const CLONE_TIME: Duration = Duration::from_secs(1);

impl State {
    /// `POST .../snapshot-restore-volume-definition/{snap}`: the snapshot's volume definitions
    /// into an existing, empty `to_resource`.
    pub fn restore_vds(&mut self, rd: &str, name: &str, body: &Value) -> Result<Vec<Rc>, Fail> {
        let to = str_of(body, "to_resource").ok_or_else(|| bad("to_resource missing"))?;
        let sizes: Vec<(u32, u64)> = self
            .snapshot(rd, name)?
            .vols
            .iter()
            .map(|(n, (s, _))| (*n, *s))
            .collect();
        let target = self.rds.get(&to).ok_or_else(|| rd_not_found(&to))?;
        if !target.vds.is_empty() {
            return Err(Fail(
                Rc::err(
                    OP_CREATE,
                    obj::VLM_DFN,
                    FAIL_EXISTS_VLM_DFN,
                    format!("Resource definition '{to}' already has volume definitions."),
                )
                .obj("RscDfn", &to),
            ));
        }
        let mut vds = Vec::new();
        for (number, size) in sizes {
            let minor = self.next_minor_excluding(&vds).ok_or_else(|| {
                Fail(Rc::err(
                    OP_CREATE,
                    obj::VLM_DFN,
                    801,
                    "No free DRBD minor number",
                ))
            })?;
            let uuid = self.uuid();
            vds.push(Vd {
                number,
                size_kib: size,
                device_kib: size,
                resize_due: None,
                minor,
                props: Props::new(),
                backing: None,
                uuid,
            });
        }
        if let Some(t) = self.rds.get_mut(&to) {
            t.vds.extend(vds.into_iter().map(|v| (v.number, v)));
        }
        Ok(vec![Rc::ok(
            OP_CREATE,
            obj::VLM_DFN,
            CREATED,
            format!("Volume definitions of snapshot '{name}' restored into '{to}'."),
        )
        .obj("RscDfn", &to)])
    }

    fn next_minor_excluding(&self, pending: &[Vd]) -> Option<u32> {
        let used: Vec<u32> = self
            .rds
            .values()
            .flat_map(|r| r.vds.values().map(|v| v.minor))
            .chain(pending.iter().map(|v| v.minor))
            .collect();
        (MINOR_FIRST..=MINOR_LAST).find(|m| !used.contains(m))
    }

    /// `POST .../snapshot-restore-resource/{snap}`: resources of `to_resource` on the
    /// snapshot's nodes (or `nodes`), seeded with the snapshot's data.
    pub fn restore_resources(
        &mut self,
        rd: &str,
        name: &str,
        body: &Value,
    ) -> Result<Vec<Rc>, Fail> {
        let to = str_of(body, "to_resource").ok_or_else(|| bad("to_resource missing"))?;
        let snap = self.snapshot(rd, name)?.clone();
        let target = self.rds.get(&to).ok_or_else(|| rd_not_found(&to))?;
        if target.vds.is_empty() {
            return Err(Fail(
                Rc::err(
                    OP_CREATE,
                    obj::RSC,
                    FAIL_NOT_FOUND_VLM_DFN,
                    format!("Restore the volume definitions into '{to}' first."),
                )
                .obj("RscDfn", &to),
            ));
        }
        if let Some(n) = target.rscs.keys().next() {
            return Err(Fail(
                Rc::err(
                    OP_CREATE,
                    obj::RSC,
                    FAIL_EXISTS_RSC,
                    format!("Resource '{to}' already exists on node '{n}'."),
                )
                .obj("RscDfn", &to),
            ));
        }
        // CtrlSnapshotRestoreApiCallHandler.restoreOnNode: each restored volume definition
        // must have the snapshot's size exactly ("Snapshot size does not match").
        for (number, (snap_kib, _)) in &snap.vols {
            let to_kib = target.vds.get(number).map_or(0, |v| v.size_kib);
            if to_kib != *snap_kib {
                return Err(Fail(
                    Rc::err(
                        OP_CREATE,
                        obj::RSC,
                        FAIL_INVLD_VLM_SIZE,
                        format!(
                            "Snapshot size does not match for volume number {number}; snapshot size: {snap_kib}KiB, required size: {to_kib}KiB"
                        ),
                    )
                    .obj("RscDfn", &to),
                ));
            }
        }
        let mut nodes = strings_of(body, "nodes")?;
        if nodes.is_empty() {
            nodes.clone_from(&snap.nodes);
        }
        let size: u64 = target.vds.values().map(|v| v.size_kib).sum();
        let mut adds = Vec::new();
        let mut out = Vec::new();
        for node in nodes {
            let pool = match snap.pools.get(&node) {
                Some(p) if self.free_kib(&node, p) >= size => p.clone(),
                _ => {
                    return Err(super::ops_defs::no_space(
                        &node,
                        snap.pools.get(&node).map_or("?", String::as_str),
                        size,
                    ))
                }
            };
            let mut props = Props::new();
            props.insert("StorPoolName".into(), pool.clone());
            out.push(
                Rc::ok(
                    OP_CREATE,
                    obj::RSC,
                    CREATED,
                    format!("Resource '{to}' restored from snapshot '{name}' on node '{node}'."),
                )
                .obj("RscDfn", &to)
                .obj("Node", &node),
            );
            adds.push((node, Some(pool), props));
        }
        let seeds: BTreeMap<u32, PathBuf> = snap
            .vols
            .iter()
            .filter_map(|(n, (_, i))| Some((*n, i.clone()?)))
            .collect();
        self.add_resources(&to, adds, &seeds)?;
        // The same handler copies the snapshot definition's copy of the source's resource
        // definition properties onto the target (`ctrlPropsHelper.copy`): Aux/ included.
        if let Some(t) = self.rds.get_mut(&to) {
            t.props
                .extend(snap.rd_props.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        self.manage_tiebreaker(&to);
        Ok(out)
    }

    /// `POST /v1/resource-definitions/{rd}/clone`: a new definition with the same volumes and
    /// diskful replicas, a copy of the data, CLONING for [`CLONE_TIME`].
    pub fn clone_rd(&mut self, rd: &str, body: &Value) -> Result<(String, Vec<Rc>), Fail> {
        let to = str_of(body, "name").ok_or_else(|| bad("clone name missing"))?;
        let src = self.rds.get(rd).ok_or_else(|| rd_not_found(rd))?.clone();
        let group = str_of(body, "resource_group").unwrap_or_else(|| src.group.clone());
        // CtrlRscDfnApiCallHandler.cloneRscDfnInTransaction: every property of the source,
        // plus the cloned-from marker, then the request's override_props and delete_props.
        let mut props = src.props.clone();
        props.insert("cloned-from".into(), rd.to_owned());
        props.extend(super::parse::props_of(body, "override_props")?);
        for key in strings_of(body, "delete_props")? {
            props.remove(&key);
        }
        let create = serde_json::json!({"resource_definition": {"name": to, "resource_group_name": group, "props": props}});
        let mut out = self.create_rd(&create)?;
        for vd in src.vds.values() {
            let minor = self.next_minor().ok_or_else(|| {
                Fail(Rc::err(
                    OP_CREATE,
                    obj::VLM_DFN,
                    801,
                    "No free DRBD minor number",
                ))
            })?;
            let uuid = self.uuid();
            if let Some(t) = self.rds.get_mut(&to) {
                t.vds.insert(
                    vd.number,
                    Vd {
                        number: vd.number,
                        size_kib: vd.size_kib,
                        device_kib: vd.size_kib,
                        resize_due: None,
                        minor,
                        props: vd.props.clone(),
                        backing: None,
                        uuid,
                    },
                );
            }
        }
        let adds = src
            .rscs
            .values()
            .filter(|r| r.pool.is_some())
            .map(|r| (r.node.clone(), r.pool.clone(), r.props.clone()))
            .collect();
        let seeds: BTreeMap<u32, PathBuf> = src
            .vds
            .values()
            .filter_map(|v| Some((v.number, v.backing.as_ref()?.file.clone())))
            .collect();
        if let Err(e) = self.add_resources(&to, adds, &seeds) {
            let _ = self.delete_rd(&to);
            return Err(e);
        }
        self.clones
            .insert((rd.to_owned(), to.clone()), Instant::now() + CLONE_TIME);
        out.push(
            Rc::info(
                obj::RSC_DFN,
                INFO_NOOP,
                format!("Cloning '{rd}' into '{to}' started."),
            )
            .obj("RscDfn", &to),
        );
        Ok((to, out))
    }

    /// `GET /v1/resource-definitions/{rd}/clone/{clone}`: CLONING or COMPLETE.
    pub fn clone_status(&self, rd: &str, clone: &str) -> Result<&'static str, Fail> {
        if !self.rds.contains_key(clone) {
            return Err(rd_not_found(clone));
        }
        Ok(match self.clones.get(&(rd.to_owned(), clone.to_owned())) {
            Some(done) if Instant::now() < *done => "CLONING",
            _ => "COMPLETE",
        })
    }
}
