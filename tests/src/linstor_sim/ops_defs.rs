//! Operations on resource definitions and volume definitions, with LINSTOR's
//! answers: `FAIL_EXISTS_*` on a second create, `FAIL_NOT_FOUND_*` for a missing object,
//! `FAIL_IN_USE` when a device is open, `FAIL_EXISTS_SNAPSHOT_DFN` when a definition with
//! snapshots is deleted.
//!
//! Owns: the state changes for these objects and their devices (created with the first
//! resource, grown on resize, destroyed with the last resource or the definition).

use std::collections::BTreeMap;

use serde_json::Value;

use super::consts::*;
use super::devices::Devices;
use super::ops_groups::rg_not_found;
use super::parse::{bad, change_props, check_name, props_of, str_of, u64_of};
use super::reply::{Fail, Rc};
use super::state::{Rd, State, Vd};

/// `FAIL_NOT_FOUND_RSC_DFN`.
pub fn rd_not_found(name: &str) -> Fail {
    Fail(
        Rc::err(
            0,
            obj::RSC_DFN,
            FAIL_NOT_FOUND_RSC_DFN,
            format!("Resource definition '{name}' not found."),
        )
        .obj("RscDfn", name),
    )
}

/// `FAIL_NOT_FOUND_VLM_DFN`.
pub fn vd_not_found(rd: &str, vnr: u32) -> Fail {
    Fail(
        Rc::err(
            0,
            obj::VLM_DFN,
            FAIL_NOT_FOUND_VLM_DFN,
            format!("Volume definition {vnr} of '{rd}' not found."),
        )
        .obj("RscDfn", rd),
    )
}

impl State {
    /// `POST /v1/resource-definitions`.
    pub fn create_rd(&mut self, body: &Value) -> Result<Vec<Rc>, Fail> {
        let def = body
            .get("resource_definition")
            .ok_or_else(|| bad("resource_definition missing"))?;
        let name = str_of(def, "name").ok_or_else(|| bad("resource definition name missing"))?;
        check_name(&name, "resource definition")?;
        let group = str_of(def, "resource_group_name").unwrap_or_else(|| "DfltRscGrp".into());
        if !self.groups.contains_key(&group) {
            return Err(rg_not_found(&group));
        }
        if self.rds.contains_key(&name) {
            return Err(Fail(
                Rc::err(
                    OP_CREATE,
                    obj::RSC_DFN,
                    FAIL_EXISTS_RSC_DFN,
                    format!("A resource definition with the name '{name}' already exists."),
                )
                .obj("RscDfn", &name),
            ));
        }
        let port = match u64_of(body, "drbd_port")? {
            Some(p) => u32::try_from(p).map_err(|_| bad("drbd_port out of range"))?,
            None => self.next_port(),
        };
        let rd = Rd {
            name: name.clone(),
            group,
            props: props_of(def, "props")?,
            port,
            vds: BTreeMap::new(),
            rscs: BTreeMap::new(),
            snaps: BTreeMap::new(),
            uuid: self.uuid(),
        };
        self.rds.insert(name.clone(), rd);
        Ok(vec![Rc::ok(
            OP_CREATE,
            obj::RSC_DFN,
            CREATED,
            format!("New resource definition '{name}' created."),
        )
        .obj("RscDfn", &name)])
    }

    /// `PUT /v1/resource-definitions/{rd}`.
    pub fn modify_rd(&mut self, name: &str, body: &Value) -> Result<Vec<Rc>, Fail> {
        if let Some(g) = str_of(body, "resource_group") {
            if !self.groups.contains_key(&g) {
                return Err(rg_not_found(&g));
            }
        }
        let rd = self.rds.get_mut(name).ok_or_else(|| rd_not_found(name))?;
        let mut out = change_props(&mut rd.props, body, obj::RSC_DFN)?;
        if let Some(g) = str_of(body, "resource_group") {
            rd.group = g;
        }
        out.push(
            Rc::ok(
                OP_MODIFY,
                obj::RSC_DFN,
                MODIFIED,
                format!("Resource definition '{name}' modified."),
            )
            .obj("RscDfn", name),
        );
        Ok(out)
    }

    /// `DELETE /v1/resource-definitions/{rd}`: with its resources and volume definitions.
    pub fn delete_rd(&mut self, name: &str) -> Result<Vec<Rc>, Fail> {
        let rd = self.rds.get(name).ok_or_else(|| rd_not_found(name))?;
        if !rd.snaps.is_empty() {
            return Err(Fail(
                Rc::err(
                    OP_DELETE,
                    obj::RSC_DFN,
                    FAIL_EXISTS_SNAPSHOT_DFN,
                    format!("Cannot delete resource definition '{name}' because it has snapshots."),
                )
                .obj("RscDfn", name)
                .correction("Delete the snapshots first."),
            ));
        }
        if let Some(r) = rd.rscs.values().find(|r| r.in_use) {
            return Err(in_use(name, &r.node));
        }
        if rd
            .vds
            .values()
            .filter_map(|v| v.backing.as_ref())
            .any(Devices::is_busy)
        {
            return Err(in_use(name, "(the device is open)"));
        }
        let mut rd = self.rds.remove(name).ok_or_else(|| rd_not_found(name))?;
        self.clones
            .retain(|(src, dst), _| src != name && dst != name);
        for vd in rd.vds.values_mut() {
            self.release_device(name, vd)?;
        }
        Ok(vec![Rc::ok(
            OP_DELETE,
            obj::RSC_DFN,
            DELETED,
            format!("Resource definition '{name}' deleted."),
        )
        .obj("RscDfn", name)])
    }

    /// `POST /v1/resource-definitions/{rd}/volume-definitions`.
    pub fn create_vd(&mut self, rd_name: &str, body: &Value) -> Result<Vec<Rc>, Fail> {
        let def = body
            .get("volume_definition")
            .ok_or_else(|| bad("volume_definition missing"))?;
        let size = u64_of(def, "size_kib")?.filter(|s| *s > 0).ok_or_else(|| {
            Fail(Rc::err(
                OP_CREATE,
                obj::VLM_DFN,
                FAIL_INVLD_VLM_SIZE,
                "size_kib must be a positive number of KiB",
            ))
        })?;
        let minor_req = u64_of(body, "drbd_minor_number")?;
        let props = props_of(def, "props")?;
        let next_minor = self.next_minor();
        let rd = self.rds.get(rd_name).ok_or_else(|| rd_not_found(rd_name))?;
        let number = match u64_of(def, "volume_number")? {
            Some(n) => u32::try_from(n).map_err(|_| bad("volume_number out of range"))?,
            None => (0..).find(|n| !rd.vds.contains_key(n)).unwrap_or(0),
        };
        if rd.vds.contains_key(&number) {
            return Err(Fail(
                Rc::err(
                    OP_CREATE,
                    obj::VLM_DFN,
                    FAIL_EXISTS_VLM_DFN,
                    format!("Volume definition {number} of '{rd_name}' already exists."),
                )
                .obj("RscDfn", rd_name),
            ));
        }
        let minor = match minor_req {
            Some(m) => u32::try_from(m)
                .ok()
                .filter(|m| {
                    (MINOR_FIRST..=MINOR_LAST).contains(m)
                        && self
                            .rds
                            .values()
                            .all(|r| r.vds.values().all(|v| v.minor != *m))
                })
                .ok_or_else(|| {
                    Fail(Rc::err(
                        OP_CREATE,
                        obj::VLM_DFN,
                        207,
                        format!("Minor number {m} is not available"),
                    ))
                })?,
            None => next_minor.ok_or_else(|| {
                Fail(Rc::err(
                    OP_CREATE,
                    obj::VLM_DFN,
                    801,
                    "No free DRBD minor number",
                ))
            })?,
        };
        for r in rd.rscs.values() {
            if let Some(pool) = &r.pool {
                if self.free_kib(&r.node, pool) < size {
                    return Err(no_space(&r.node, pool, size));
                }
            }
        }
        let has_resources = !rd.rscs.is_empty();
        let uuid = self.uuid();
        let mut vd = Vd {
            number,
            size_kib: size,
            device_kib: size,
            resize_due: None,
            minor,
            props,
            backing: None,
            uuid,
        };
        if has_resources {
            vd.backing = self
                .devices
                .create(&format!("{rd_name}_{number:05}"), size, None)
                .map_err(device_failed)?;
        }
        if let Some(rd) = self.rds.get_mut(rd_name) {
            rd.vds.insert(number, vd);
        }
        Ok(vec![Rc::ok(OP_CREATE, obj::VLM_DFN, CREATED, format!("New volume definition with number '{number}' of resource definition '{rd_name}' created.")).obj("RscDfn", rd_name).obj("VlmNr", &number.to_string())])
    }

    /// `PUT /v1/resource-definitions/{rd}/volume-definitions/{vnr}`: properties and growth.
    pub fn modify_vd(&mut self, rd_name: &str, vnr: u32, body: &Value) -> Result<Vec<Rc>, Fail> {
        let new_size = u64_of(body, "size_kib")?;
        let rd = self.rds.get(rd_name).ok_or_else(|| rd_not_found(rd_name))?;
        let vd = rd.vds.get(&vnr).ok_or_else(|| vd_not_found(rd_name, vnr))?;
        if let Some(size) = new_size {
            if size < vd.size_kib {
                return Err(Fail(Rc::err(
                    OP_MODIFY,
                    obj::VLM_DFN,
                    FAIL_INVLD_VLM_SIZE,
                    format!(
                        "Volume size cannot shrink from {} KiB to {size} KiB",
                        vd.size_kib
                    ),
                )));
            }
            // CtrlVlmDfnModifyApiCallHandler: no resize while a DRBD replica is not UpToDate.
            if size > vd.size_kib {
                if let Some(r) = rd.rscs.values().find(|r| {
                    r.pool.is_some()
                        && r.has_drbd()
                        && r.disk_state.as_deref().is_some_and(|d| d != "UpToDate")
                }) {
                    return Err(Fail(
                        Rc::err(
                            OP_MODIFY,
                            obj::VLM_DFN,
                            FAIL_NOT_ALL_UPTODATE,
                            "Cannot resize volume, because we have a non-UpToDate DRBD device.",
                        )
                        .obj("Node", &r.node),
                    ));
                }
            }
            let grow = size - vd.size_kib;
            for r in rd.rscs.values() {
                if let Some(pool) = &r.pool {
                    if self.free_kib(&r.node, pool) < grow {
                        return Err(no_space(&r.node, pool, grow));
                    }
                }
            }
        }
        let rd = self
            .rds
            .get_mut(rd_name)
            .ok_or_else(|| rd_not_found(rd_name))?;
        let vd = rd
            .vds
            .get_mut(&vnr)
            .ok_or_else(|| vd_not_found(rd_name, vnr))?;
        let mut out = change_props(&mut vd.props, body, obj::VLM_DFN)?;
        // The size is recorded now and reaches the devices later (`State::settle`); a resize
        // to the recorded size is a warning only (WARN_VLMDFN_RESIZE_SAME_SIZE).
        if let Some(size) = new_size {
            if size > vd.size_kib {
                vd.size_kib = size;
                vd.resize_due = Some(std::time::Instant::now() + super::state::RESIZE_TIME);
            } else if size == vd.size_kib {
                out.push(Rc::warn(
                    obj::VLM_DFN,
                    WARN_VLMDFN_RESIZE_SAME_SIZE,
                    "VolumeDefinition already has the expected size, no satellite update will be triggered.",
                ));
            }
        }
        out.push(
            Rc::ok(
                OP_MODIFY,
                obj::VLM_DFN,
                MODIFIED,
                format!("Volume definition {vnr} of '{rd_name}' modified."),
            )
            .obj("RscDfn", rd_name),
        );
        Ok(out)
    }

    /// `DELETE /v1/resource-definitions/{rd}/volume-definitions/{vnr}`.
    pub fn delete_vd(&mut self, rd_name: &str, vnr: u32) -> Result<Vec<Rc>, Fail> {
        let rd = self
            .rds
            .get_mut(rd_name)
            .ok_or_else(|| rd_not_found(rd_name))?;
        let mut vd = rd
            .vds
            .remove(&vnr)
            .ok_or_else(|| vd_not_found(rd_name, vnr))?;
        self.release_device(rd_name, &mut vd)?;
        Ok(vec![Rc::ok(
            OP_DELETE,
            obj::VLM_DFN,
            DELETED,
            format!("Volume definition {vnr} of '{rd_name}' deleted."),
        )
        .obj("RscDfn", rd_name)])
    }

    /// Destroys a volume's device, if it has one.
    pub fn release_device(&self, rd: &str, vd: &mut Vd) -> Result<(), Fail> {
        if let Some(b) = vd.backing.take() {
            self.devices.destroy(&b).map_err(|e| {
                Fail(Rc::err(
                    OP_DELETE,
                    obj::VLM,
                    FAIL_UNKNOWN_ERROR,
                    format!("Removing the device of '{rd}' failed: {e}"),
                ))
            })?;
        }
        Ok(())
    }
}

/// `FAIL_IN_USE` for a resource.
pub fn in_use(rd: &str, node: &str) -> Fail {
    Fail(
        Rc::err(
            OP_DELETE,
            obj::RSC,
            FAIL_IN_USE,
            format!("Resource '{rd}' is in use on node '{node}'."),
        )
        .obj("RscDfn", rd)
        .obj("Node", node)
        .cause("The DRBD device is open (Primary)")
        .correction("Unmount or close the device first."),
    )
}

/// `FAIL_NOT_ENOUGH_FREE_SPACE`.
pub fn no_space(node: &str, pool: &str, kib: u64) -> Fail {
    Fail(
        Rc::err(
            OP_CREATE,
            obj::STOR_POOL,
            FAIL_NOT_ENOUGH_FREE_SPACE,
            format!(
                "Not enough free space in storage pool '{pool}' on node '{node}' for {kib} KiB."
            ),
        )
        .obj("Node", node)
        .obj("StorPool", pool),
    )
}

/// A device failure, as LINSTOR's unknown error.
pub fn device_failed(e: super::devices::DeviceError) -> Fail {
    Fail(Rc::err(
        0,
        obj::VLM,
        FAIL_UNKNOWN_ERROR,
        format!("Simulated DRBD device failed: {e}"),
    ))
}
