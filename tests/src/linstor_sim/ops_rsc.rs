//! Operations on resources: create on explicit nodes (diskful in a pool, or diskless),
//! make-available, property changes and delete. Autoplace is in `ops_place`.
//!
//! Owns: placement and capacity checks, and the device lifecycle: a definition's devices
//! exist from its first resource to its last.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::consts::*;
use super::devices::Devices;
use super::ops_defs::{device_failed, in_use, no_space, rd_not_found};
use super::parse::{bad, bool_of, change_props, props_of, str_of, strings_of};
use super::reply::{Fail, Rc};
use super::state::{now_ms, Rsc, State};

/// `FAIL_NOT_FOUND_NODE`.
pub fn node_not_found(node: &str) -> Fail {
    Fail(
        Rc::err(
            0,
            obj::NODE,
            FAIL_NOT_FOUND_NODE,
            format!("Node '{node}' not found."),
        )
        .obj("Node", node),
    )
}

/// `FAIL_NOT_FOUND_RSC`.
pub fn rsc_not_found(rd: &str, node: &str) -> Fail {
    Fail(
        Rc::err(
            0,
            obj::RSC,
            FAIL_NOT_FOUND_RSC,
            format!("Resource '{rd}' not found on node '{node}'."),
        )
        .obj("RscDfn", rd)
        .obj("Node", node),
    )
}

/// `FAIL_INVLD_LAYER_STACK`: a diskless replica needs a DRBD or NVMe layer.
fn no_diskless_layer(rd: &str, node: &str) -> Fail {
    Fail(
        Rc::err(
            OP_CREATE,
            obj::RSC,
            FAIL_INVLD_LAYER_STACK,
            format!("Resource '{rd}' on node '{node}' cannot be diskless: its layer stack has no DRBD or NVME layer."),
        )
        .obj("RscDfn", rd)
        .obj("Node", node),
    )
}

pub(super) fn created(rd: &str, node: &str, diskless: bool) -> Rc {
    let kind = if diskless { "diskless " } else { "" };
    Rc::ok(
        OP_CREATE,
        obj::RSC,
        CREATED,
        format!("New {kind}resource '{rd}' on node '{node}' registered."),
    )
    .obj("RscDfn", rd)
    .obj("Node", node)
}

impl State {
    /// The effective select filter of a definition: its group's filter, overridden by
    /// `request` keys that are set.
    pub(super) fn filter_for(&self, rd: &str, request: Option<&Value>) -> Map<String, Value> {
        let mut f = self
            .rds
            .get(rd)
            .and_then(|r| self.groups.get(&r.group))
            .map(|g| g.filter.clone())
            .unwrap_or_default();
        if let Some(Value::Object(req)) = request {
            for (k, v) in req {
                let empty = v.is_null() || v.as_array().is_some_and(Vec::is_empty);
                if !empty {
                    f.insert(k.clone(), v.clone());
                }
            }
        }
        f
    }

    /// Pools a filter allows (empty: any disk pool).
    pub(super) fn allowed_pools(filter: &Map<String, Value>) -> Vec<String> {
        let v = Value::Object(filter.clone());
        let mut pools = strings_of(&v, "storage_pool_list").unwrap_or_default();
        if let Some(p) = str_of(&v, "storage_pool") {
            pools.insert(0, p);
        }
        pools
    }

    /// The pool a new diskful replica of `rd` on `node` goes to: `explicit`, else the
    /// group's pools, else the node's disk pool with the most free space.
    fn pick_pool(
        &self,
        rd: &str,
        node: &str,
        explicit: Option<String>,
        need_kib: u64,
    ) -> Result<String, Fail> {
        let allowed = match explicit {
            Some(p) => vec![p],
            None => Self::allowed_pools(&self.filter_for(rd, None)),
        };
        let candidates: Vec<String> = if allowed.is_empty() {
            self.disk_pools(node)
                .iter()
                .map(|p| p.name.clone())
                .collect()
        } else {
            allowed
                .into_iter()
                .filter(|p| self.pools.contains_key(&(node.to_owned(), p.clone())))
                .collect()
        };
        let Some(best) = candidates.iter().max_by_key(|p| self.free_kib(node, p)) else {
            return Err(Fail(
                Rc::err(
                    OP_CREATE,
                    obj::STOR_POOL,
                    FAIL_NOT_FOUND_STOR_POOL,
                    format!("No usable storage pool on node '{node}'."),
                )
                .obj("Node", node),
            ));
        };
        if self.free_kib(node, best) < need_kib {
            return Err(no_space(node, best, need_kib));
        }
        Ok(best.clone())
    }

    /// The layer stack a `ResourceCreate` item asks for, or the default.
    fn layers_of(&self, rd: &str, item: &Value) -> Vec<String> {
        match strings_of(item, "layer_list") {
            Ok(l) if !l.is_empty() => l.into_iter().map(|l| l.to_ascii_uppercase()).collect(),
            _ => self.default_layers(rd),
        }
    }

    pub(super) fn rd_size_kib(&self, rd: &str) -> u64 {
        self.rds
            .get(rd)
            .map_or(0, |r| r.vds.values().map(|v| v.size_kib).sum())
    }

    /// Adds resources (validated first), then creates missing devices seeded from `seeds`.
    pub fn add_resources(
        &mut self,
        rd: &str,
        adds: Vec<(String, Option<String>, crate::linstor_sim::state::Props)>,
        seeds: &BTreeMap<u32, PathBuf>,
    ) -> Result<(), Fail> {
        for (node, pool, props) in adds {
            let uuid = self.uuid();
            let layers = self.default_layers(rd);
            let r = self.rds.get_mut(rd).ok_or_else(|| rd_not_found(rd))?;
            r.rscs.insert(
                node.clone(),
                Rsc {
                    node,
                    pool,
                    props,
                    in_use: false,
                    created_ms: now_ms(),
                    uuid,
                    tie_breaker: false,
                    layers,
                    disk_state: None,
                    sync_from: None,
                },
            );
        }
        let devices = &self.devices;
        let r = self.rds.get_mut(rd).ok_or_else(|| rd_not_found(rd))?;
        for vd in r.vds.values_mut().filter(|v| v.backing.is_none()) {
            let seed = seeds.get(&vd.number).map(PathBuf::as_path);
            vd.backing = devices
                .create(&format!("{rd}_{:05}", vd.number), vd.size_kib, seed)
                .map_err(device_failed)?;
        }
        Ok(())
    }

    /// `POST /v1/resource-definitions/{rd}/resources` (a list of `ResourceCreate`).
    pub fn create_resources(&mut self, rd: &str, items: &[Value]) -> Result<Vec<Rc>, Fail> {
        let r = self.rds.get(rd).ok_or_else(|| rd_not_found(rd))?;
        let size = self.rd_size_kib(rd);
        let mut adds = Vec::new();
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for item in items {
            let res = item.get("resource").cloned().unwrap_or(Value::Null);
            let node =
                str_of(&res, "node_name").ok_or_else(|| bad("resource.node_name missing"))?;
            if !self.nodes.contains_key(&node) {
                return Err(node_not_found(&node));
            }
            if r.rscs.contains_key(&node) || !seen.insert(node.clone()) {
                return Err(Fail(
                    Rc::err(
                        OP_CREATE,
                        obj::RSC,
                        FAIL_EXISTS_RSC,
                        format!("A resource '{rd}' already exists on node '{node}'."),
                    )
                    .obj("RscDfn", rd)
                    .obj("Node", &node),
                ));
            }
            let flags = strings_of(&res, "flags")?;
            let diskless = flags
                .iter()
                .any(|f| f == "DISKLESS" || f == "DRBD_DISKLESS")
                || bool_of(item, "drbd_client");
            let mut props = props_of(&res, "props")?;
            let pool = if diskless {
                None
            } else {
                Some(self.pick_pool(rd, &node, props.get("StorPoolName").cloned(), size)?)
            };
            if let Some(p) = &pool {
                props.insert("StorPoolName".into(), p.clone());
            }
            if diskless
                && !self
                    .layers_of(rd, item)
                    .iter()
                    .any(|l| l == "DRBD" || l == "NVME")
            {
                return Err(no_diskless_layer(rd, &node));
            }
            out.push(created(rd, &node, diskless));
            adds.push((node, pool, props));
        }
        let nodes: Vec<String> = adds.iter().map(|(n, _, _)| n.clone()).collect();
        self.add_resources(rd, adds, &BTreeMap::new())?;
        for (node, item) in nodes.iter().zip(items) {
            self.apply_layer_list(rd, std::slice::from_ref(node), item);
        }
        out.extend(self.manage_tiebreaker(rd));
        Ok(out)
    }

    /// `POST /v1/resource-definitions/{rd}/resources/{node}/make-available`.
    pub fn make_available(&mut self, rd: &str, node: &str, body: &Value) -> Result<Vec<Rc>, Fail> {
        let r = self.rds.get(rd).ok_or_else(|| rd_not_found(rd))?;
        if !self.nodes.contains_key(node) {
            return Err(node_not_found(node));
        }
        let diskful = bool_of(body, "diskful");
        let size = self.rd_size_kib(rd);
        match r.rscs.get(node) {
            Some(existing) if existing.pool.is_some() || !diskful => {
                // CtrlRscMakeAvailableApiCallHandler: a TIE_BREAKER asked for becomes a
                // wanted diskless replica.
                if let Some(x) = self.rds.get_mut(rd).and_then(|r| r.rscs.get_mut(node)) {
                    x.tie_breaker = false;
                }
                Ok(vec![Rc::info(
                    obj::RSC,
                    INFO_NOOP,
                    format!("Resource '{rd}' is already available on node '{node}'."),
                )
                .obj("RscDfn", rd)
                .obj("Node", node)])
            }
            Some(_) => {
                let pool = self.pick_pool(rd, node, None, size)?;
                let rsc = self
                    .rds
                    .get_mut(rd)
                    .and_then(|r| r.rscs.get_mut(node))
                    .ok_or_else(|| rsc_not_found(rd, node))?;
                rsc.props.insert("StorPoolName".into(), pool.clone());
                rsc.pool = Some(pool);
                Ok(vec![Rc::ok(
                    OP_MODIFY,
                    obj::RSC,
                    MODIFIED,
                    format!("Resource '{rd}' on node '{node}' now has a disk."),
                )
                .obj("RscDfn", rd)
                .obj("Node", node)])
            }
            None => {
                let stack = r
                    .rscs
                    .values()
                    .next()
                    .map_or_else(|| self.default_layers(rd), |x| x.layers.clone());
                // Without DRBD (or NVMe) there is no diskless access: LINSTOR makes the
                // replica diskful instead.
                let diskful = diskful || !stack.iter().any(|l| l == "DRBD" || l == "NVME");
                let (pool, mut props) = (
                    if diskful {
                        Some(self.pick_pool(rd, node, None, size)?)
                    } else {
                        None
                    },
                    crate::linstor_sim::state::Props::new(),
                );
                if let Some(p) = &pool {
                    props.insert("StorPoolName".into(), p.clone());
                }
                self.add_resources(rd, vec![(node.to_owned(), pool, props)], &BTreeMap::new())?;
                if let Some(x) = self.rds.get_mut(rd).and_then(|r| r.rscs.get_mut(node)) {
                    x.layers = stack;
                }
                let mut out = vec![created(rd, node, !diskful)];
                out.extend(self.manage_tiebreaker(rd));
                Ok(out)
            }
        }
    }

    /// `PUT /v1/resource-definitions/{rd}/resources/{node}`.
    pub fn modify_resource(&mut self, rd: &str, node: &str, body: &Value) -> Result<Vec<Rc>, Fail> {
        let r = self.rds.get_mut(rd).ok_or_else(|| rd_not_found(rd))?;
        let rsc = r
            .rscs
            .get_mut(node)
            .ok_or_else(|| rsc_not_found(rd, node))?;
        let mut out = change_props(&mut rsc.props, body, obj::RSC)?;
        out.push(
            Rc::ok(
                OP_MODIFY,
                obj::RSC,
                MODIFIED,
                format!("Resource '{rd}' on node '{node}' modified."),
            )
            .obj("RscDfn", rd)
            .obj("Node", node),
        );
        Ok(out)
    }

    /// `DELETE /v1/resource-definitions/{rd}/resources/{node}[?keep_tiebreaker=true]`
    /// (`CtrlRscDeleteApiCallHandler`): refused while open; with `keep_tiebreaker`, a
    /// diskless replica the tiebreaker rule would replace stays, as the `TIE_BREAKER`.
    pub fn delete_resource(
        &mut self,
        rd: &str,
        node: &str,
        keep_tiebreaker: bool,
    ) -> Result<Vec<Rc>, Fail> {
        let r = self.rds.get(rd).ok_or_else(|| rd_not_found(rd))?;
        let rsc = r.rscs.get(node).ok_or_else(|| rsc_not_found(rd, node))?;
        if rsc.in_use {
            return Err(in_use(rd, node));
        }
        let last = r.rscs.len() == 1;
        if last
            && r.vds
                .values()
                .filter_map(|v| v.backing.as_ref())
                .any(Devices::is_busy)
        {
            return Err(in_use(rd, node));
        }
        if keep_tiebreaker && self.takes_over_as_tiebreaker(rd, node) {
            if let Some(x) = self.rds.get_mut(rd).and_then(|r| r.rscs.get_mut(node)) {
                x.tie_breaker = true;
            }
            return Ok(vec![Rc::info(
                obj::RSC,
                INFO_TIE_BREAKER_TAKEOVER,
                format!("Resource '{rd}' on node '{node}' kept as the tie breaker."),
            )
            .obj("RscDfn", rd)
            .obj("Node", node)]);
        }
        self.remove_resource(rd, node)?;
        let mut out = vec![Rc::ok(
            OP_DELETE,
            obj::RSC,
            DELETED,
            format!("Resource '{rd}' on node '{node}' deleted."),
        )
        .obj("RscDfn", rd)
        .obj("Node", node)];
        out.extend(self.manage_tiebreaker(rd));
        Ok(out)
    }

    /// Removes a resource (no checks), and the devices with the last one.
    pub(super) fn remove_resource(&mut self, rd: &str, node: &str) -> Result<(), Fail> {
        let r = self.rds.get_mut(rd).ok_or_else(|| rd_not_found(rd))?;
        r.rscs.remove(node);
        if r.rscs.is_empty() {
            let mut vds: Vec<_> = r
                .vds
                .values_mut()
                .map(|v| (v.number, v.backing.take()))
                .collect();
            for (_, backing) in &mut vds {
                if let Some(b) = backing.take() {
                    self.devices.destroy(&b).map_err(device_failed)?;
                }
            }
        }
        Ok(())
    }

    /// Marks a resource open (a DRBD Primary) or closed: the admin API's stand-in for a
    /// mount on that node.
    pub fn set_in_use(&mut self, rd: &str, node: &str, in_use: bool) -> Result<(), Fail> {
        let r = self.rds.get_mut(rd).ok_or_else(|| rd_not_found(rd))?;
        let rsc = r
            .rscs
            .get_mut(node)
            .ok_or_else(|| rsc_not_found(rd, node))?;
        rsc.in_use = in_use;
        Ok(())
    }
}
