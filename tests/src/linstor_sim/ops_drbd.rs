//! What LINSTOR's DRBD layer does beyond creating and deleting replicas, as the simulator
//! models it: layer stacks, the automatic quorum tiebreaker, toggle-disk (by an admin or by
//! `DrbdOptions/auto-diskful`), and disk states other than UpToDate/Diskless.
//!
//! Each behaviour follows a LINSTOR server handler (LINBIT/linstor-server, `controller/src/
//! main/java/com/linbit/linstor/core/apicallhandler/controller/`):
//! - the layer stack: a resource's `layer_list`, else its group's `layer_stack`, else LINSTOR's
//!   default `DRBD, STORAGE` (`CtrlLayerStackHelper`);
//! - the tiebreaker: `CtrlRscAutoTieBreakerHelper.manage` runs after every resource create,
//!   autoplace, toggle-disk and delete. A DRBD resource with an even number (at least two) of
//!   diskful replicas and no other diskless replica gets a diskless `TIE_BREAKER` replica on a
//!   node without one, unless `DrbdOptions/auto-add-quorum-tiebreaker` is `false` or quorum is
//!   off; a tiebreaker no longer needed is deleted;
//! - make-available on a `TIE_BREAKER` turns it into an ordinary diskless replica
//!   (`CtrlRscMakeAvailableApiCallHandler`: "unset TIE_BREAKER flag to mark resource as a
//!   wanted diskless");
//! - delete with `keep_tiebreaker=true` of a diskless replica that a tiebreaker would replace
//!   keeps it and flags it `TIE_BREAKER` instead (`CtrlRscDeleteApiCallHandler` →
//!   `CtrlRscAutoTieBreakerHelper.takeover`);
//! - toggle-disk (`CtrlRscToggleDiskApiCallHandler`): a diskless replica gets a disk (and a
//!   diskful one loses it), in place; `AutoDiskfulTask` does the same to a diskless replica
//!   that has been Primary longer than `DrbdOptions/auto-diskful` minutes
//!   ([`State::run_auto_diskful`] runs that task now).
//!
//! Owns: these rules. Nothing here speaks HTTP.

use std::collections::BTreeMap;

use serde_json::Value;

use super::consts::*;
use super::ops_defs::rd_not_found;
use super::ops_rsc::{node_not_found, rsc_not_found};
use super::parse::{bad, str_of, strings_of};
use super::reply::{Fail, Rc};
use super::state::{Props, State};

/// LINSTOR's default layer stack.
pub const DEFAULT_LAYERS: &[&str] = &["DRBD", "STORAGE"];

/// The first value of `key` in the resource definition's, then its group's, then the
/// controller's properties (LINSTOR's `PriorityProps`).
fn prio_prop<'a>(s: &'a State, rd: &str, key: &str) -> Option<&'a String> {
    let r = s.rds.get(rd)?;
    r.props
        .get(key)
        .or_else(|| s.groups.get(&r.group).and_then(|g| g.props.get(key)))
        .or_else(|| s.ctrl_props.get(key))
}

impl State {
    /// The layer stack new resources of `rd` get: the group's `layer_stack`, else LINSTOR's
    /// default.
    pub fn default_layers(&self, rd: &str) -> Vec<String> {
        let f = Value::Object(self.filter_for(rd, None));
        match strings_of(&f, "layer_stack") {
            Ok(l) if !l.is_empty() => l.into_iter().map(|l| l.to_ascii_uppercase()).collect(),
            _ => DEFAULT_LAYERS.iter().map(|l| (*l).to_owned()).collect(),
        }
    }

    /// Sets the layer stack of resources just created on `nodes` from a request's
    /// `layer_list`, when it has one.
    pub fn apply_layer_list(&mut self, rd: &str, nodes: &[String], request: &Value) {
        let Ok(list) = strings_of(request, "layer_list") else {
            return;
        };
        if list.is_empty() {
            return;
        }
        if let Some(r) = self.rds.get_mut(rd) {
            for n in nodes {
                if let Some(x) = r.rscs.get_mut(n) {
                    x.layers = list.iter().map(|l| l.to_ascii_uppercase()).collect();
                }
            }
        }
    }

    /// Whether `rd` should have a tiebreaker now (`shouldTieBreakerExist`).
    fn tiebreaker_wanted(&self, rd: &str) -> bool {
        let Some(r) = self.rds.get(rd) else {
            return false;
        };
        let enabled = prio_prop(self, rd, "DrbdOptions/auto-add-quorum-tiebreaker")
            .is_none_or(|v| v != "false");
        let quorum = prio_prop(self, rd, "DrbdOptions/auto-quorum").is_none_or(|v| v != "disabled")
            && prio_prop(self, rd, "DrbdOptions/Resource/quorum").is_none_or(|v| v != "off");
        let drbd: Vec<_> = r.rscs.values().filter(|x| x.has_drbd()).collect();
        let diskful = drbd.iter().filter(|x| x.pool.is_some()).count();
        let diskless = drbd
            .iter()
            .filter(|x| x.pool.is_none() && !x.tie_breaker)
            .count();
        enabled && quorum && diskful >= 2 && diskful % 2 == 0 && diskless == 0
    }

    /// `CtrlRscAutoTieBreakerHelper.manage`: adds or removes the tiebreaker of `rd`.
    pub fn manage_tiebreaker(&mut self, rd: &str) -> Vec<Rc> {
        let wanted = self.tiebreaker_wanted(rd);
        let Some(r) = self.rds.get(rd) else {
            return Vec::new();
        };
        let existing = r
            .rscs
            .values()
            .find(|x| x.tie_breaker)
            .map(|x| x.node.clone());
        match (wanted, existing) {
            (true, None) => {
                let free = self
                    .nodes
                    .keys()
                    .find(|n| !r.rscs.contains_key(*n))
                    .cloned();
                let Some(node) = free else {
                    return vec![Rc::warn(
                        obj::RSC,
                        WARN_NOT_ENOUGH_NODES_FOR_TIE_BREAKER,
                        format!("Could not find suitable node to automatically create a tie breaking resource for '{rd}'."),
                    )];
                };
                if self
                    .add_resources(
                        rd,
                        vec![(node.clone(), None, Props::new())],
                        &BTreeMap::new(),
                    )
                    .is_err()
                {
                    return Vec::new();
                }
                if let Some(x) = self.rds.get_mut(rd).and_then(|r| r.rscs.get_mut(&node)) {
                    x.tie_breaker = true;
                }
                vec![Rc::info(
                    obj::RSC,
                    INFO_TIE_BREAKER_CREATED,
                    format!("Tie breaker resource '{rd}' created on {node}"),
                )]
            }
            (false, Some(node)) => match self.remove_resource(rd, &node) {
                Ok(()) => vec![Rc::info(
                    obj::RSC,
                    INFO_TIE_BREAKER_DELETING,
                    "Tie breaker marked for deletion",
                )],
                Err(_) => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    /// With `keep_tiebreaker`: whether deleting the diskless replica of `rd` on `node` would
    /// make LINSTOR want a tiebreaker it has not got, so that it keeps this one as it.
    pub fn takes_over_as_tiebreaker(&self, rd: &str, node: &str) -> bool {
        let Some(r) = self.rds.get(rd) else {
            return false;
        };
        let Some(x) = r.rscs.get(node) else {
            return false;
        };
        if x.pool.is_some() || x.tie_breaker || r.rscs.values().any(|o| o.tie_breaker) {
            return false;
        }
        let others_diskless = r
            .rscs
            .values()
            .filter(|o| o.node != node && o.pool.is_none() && !o.tie_breaker && o.has_drbd())
            .count();
        let diskful = r
            .rscs
            .values()
            .filter(|o| o.pool.is_some() && o.has_drbd())
            .count();
        let enabled = prio_prop(self, rd, "DrbdOptions/auto-add-quorum-tiebreaker")
            .is_none_or(|v| v != "false");
        x.has_drbd() && enabled && diskful >= 2 && diskful % 2 == 0 && others_diskless == 0
    }

    /// `PUT .../resources/{node}/toggle-disk` (`ToggleDiskRequest`) and the deprecated
    /// `toggle-disk/diskful[/{pool}]` and `toggle-disk/diskless` forms.
    pub fn toggle_disk(
        &mut self,
        rd: &str,
        node: &str,
        diskful: bool,
        pool: Option<String>,
    ) -> Result<Vec<Rc>, Fail> {
        if !self.nodes.contains_key(node) {
            return Err(node_not_found(node));
        }
        let size = self.rd_size_kib(rd);
        let r = self.rds.get(rd).ok_or_else(|| rd_not_found(rd))?;
        let x = r.rscs.get(node).ok_or_else(|| rsc_not_found(rd, node))?;
        if x.pool.is_some() == diskful {
            return Ok(vec![Rc::info(
                obj::RSC,
                INFO_NOOP,
                format!("Resource '{rd}' on node '{node}' is already in the requested state."),
            )]);
        }
        if !diskful && x.in_use {
            return Err(super::ops_defs::in_use(rd, node));
        }
        let new_pool = if diskful {
            let explicit = pool.or_else(|| {
                Self::allowed_pools(&self.filter_for(rd, None))
                    .first()
                    .cloned()
            });
            let candidates: Vec<String> = match explicit {
                Some(p) => vec![p],
                None => self
                    .disk_pools(node)
                    .iter()
                    .map(|p| p.name.clone())
                    .collect(),
            };
            let best = candidates
                .into_iter()
                .filter(|p| self.pools.contains_key(&(node.to_owned(), p.clone())))
                .max_by_key(|p| self.free_kib(node, p))
                .ok_or_else(|| bad(format!("no storage pool on node '{node}'")))?;
            if self.free_kib(node, &best) < size {
                return Err(super::ops_defs::no_space(node, &best, size));
            }
            Some(best)
        } else {
            None
        };
        let x = self
            .rds
            .get_mut(rd)
            .and_then(|r| r.rscs.get_mut(node))
            .ok_or_else(|| rsc_not_found(rd, node))?;
        x.tie_breaker = false;
        match &new_pool {
            Some(p) => {
                x.props.insert("StorPoolName".into(), p.clone());
            }
            None => {
                x.props.remove("StorPoolName");
            }
        }
        x.pool = new_pool;
        let mut out = vec![Rc::ok(
            OP_MODIFY,
            obj::RSC,
            MODIFIED,
            format!(
                "Resource '{rd}' on node '{node}' toggled to {}.",
                if diskful { "diskful" } else { "diskless" }
            ),
        )
        .obj("RscDfn", rd)
        .obj("Node", node)];
        out.extend(self.manage_tiebreaker(rd));
        Ok(out)
    }

    /// The body of `PUT .../toggle-disk`: `(diskful, pool)`.
    pub fn toggle_request(body: &Value) -> Result<(bool, Option<String>), Fail> {
        match str_of(body, "operation").as_deref() {
            Some("INTO_DRBD_DISKFUL") => Ok((true, str_of(body, "storage_pool"))),
            Some("INTO_DRBD_DISKLESS" | "INTO_DRBD_CLIENT") => Ok((false, None)),
            other => Err(bad(format!("toggle-disk operation {other:?} unknown"))),
        }
    }

    /// `AutoDiskfulTask`, run now: every diskless replica that is Primary (in use) of a
    /// definition with `DrbdOptions/auto-diskful` set gets a disk. Returns the replicas
    /// toggled, as `rd/node`.
    pub fn run_auto_diskful(&mut self) -> Vec<String> {
        let candidates: Vec<(String, String)> = self
            .rds
            .values()
            .filter(|r| prio_prop(self, &r.name, "DrbdOptions/auto-diskful").is_some())
            .flat_map(|r| {
                r.rscs
                    .values()
                    .filter(|x| x.pool.is_none() && x.in_use)
                    .map(|x| (r.name.clone(), x.node.clone()))
            })
            .collect();
        let mut done = Vec::new();
        for (rd, node) in candidates {
            if self.toggle_disk(&rd, &node, true, None).is_ok() {
                done.push(format!("{rd}/{node}"));
            }
        }
        done
    }

    /// The admin API's disk state of a replica: `disk_state` (`Inconsistent`, `Outdated`,
    /// ...; `None` for the default) and the peer it syncs from with the progress.
    pub fn set_disk_state(
        &mut self,
        rd: &str,
        node: &str,
        disk_state: Option<String>,
        sync_from: Option<(String, f64)>,
    ) -> Result<(), Fail> {
        let x = self
            .rds
            .get_mut(rd)
            .and_then(|r| r.rscs.get_mut(node))
            .ok_or_else(|| rsc_not_found(rd, node))?;
        x.disk_state = disk_state;
        x.sync_from = sync_from;
        Ok(())
    }
}
