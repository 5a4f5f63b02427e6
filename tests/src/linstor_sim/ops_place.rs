//! Autoplace: picks nodes for the missing diskful replicas of a resource definition from its
//! group's select filter overridden by the request (place count or additional place count,
//! storage pools, node list, not-place-with, replicas on same/different node properties), the
//! nodes with the most free space first; optionally diskless replicas everywhere else.
//!
//! Owns: the placement choice. Creating the replicas is `ops_rsc`'s `add_resources`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::consts::*;
use super::ops_defs::rd_not_found;
use super::ops_rsc::created;
use super::parse::{bool_of, strings_of};
use super::reply::{Fail, Rc};
use super::state::{Props, Rsc, State};

impl State {
    /// `POST /v1/resource-definitions/{rd}/autoplace`.
    pub fn autoplace(&mut self, rd: &str, body: &Value) -> Result<Vec<Rc>, Fail> {
        let r = self.rds.get(rd).ok_or_else(|| rd_not_found(rd))?;
        let f = Value::Object(self.filter_for(rd, body.get("select_filter")));
        let place_count = f.get("place_count").and_then(Value::as_u64).unwrap_or(2);
        let additional = f.get("additional_place_count").and_then(Value::as_u64);
        let existing: Vec<&Rsc> = r.rscs.values().filter(|x| x.pool.is_some()).collect();
        let need = additional.unwrap_or_else(|| place_count.saturating_sub(existing.len() as u64));
        if place_count == 0 && additional.is_none() {
            return Err(Fail(Rc::err(
                OP_CREATE,
                obj::RSC,
                FAIL_INVLD_PLACE_COUNT,
                "place_count must be at least 1",
            )));
        }
        let allowed = Self::allowed_pools(f.as_object().unwrap_or(&Map::new()));
        let node_list = strings_of(&f, "node_name_list")?;
        let avoid = strings_of(&f, "not_place_with_rsc")?;
        let same = strings_of(&f, "replicas_on_same")?;
        let different = strings_of(&f, "replicas_on_different")?;
        let size = self.rd_size_kib(rd);
        // Candidates: (free, node, pool), best first.
        let mut cands: Vec<(u64, String, String)> = Vec::new();
        for node in self.nodes.keys() {
            if r.rscs.contains_key(node) || (!node_list.is_empty() && !node_list.contains(node)) {
                continue;
            }
            if avoid
                .iter()
                .any(|a| self.rds.get(a).is_some_and(|o| o.rscs.contains_key(node)))
            {
                continue;
            }
            let best = self
                .disk_pools(node)
                .into_iter()
                .filter(|p| allowed.is_empty() || allowed.contains(&p.name))
                .map(|p| (self.free_kib(node, &p.name), p.name.clone()))
                .filter(|(free, _)| *free >= size)
                .max();
            if let Some((free, pool)) = best {
                cands.push((free, node.clone(), pool));
            }
        }
        cands.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let prop =
            |node: &str, key: &str| self.nodes.get(node).and_then(|n| n.props.get(key).cloned());
        let mut chosen: Vec<(String, String)> = Vec::new();
        let mut taken: Vec<String> = existing.iter().map(|x| x.node.clone()).collect();
        for (_, node, pool) in &cands {
            if chosen.len() as u64 >= need {
                break;
            }
            let same_ok = same.iter().all(|k| {
                let v = prop(node, k);
                v.is_some() && taken.first().is_none_or(|t| prop(t, k) == v)
            });
            let diff_ok = different.iter().all(|k| {
                taken
                    .iter()
                    .all(|t| prop(t, k) != prop(node, k) || prop(node, k).is_none())
            });
            if same_ok && diff_ok {
                chosen.push((node.clone(), pool.clone()));
                taken.push(node.clone());
            }
        }
        if (chosen.len() as u64) < need {
            return Err(Fail(Rc::err(OP_CREATE, obj::RSC, FAIL_NOT_ENOUGH_NODES, format!("Not enough available nodes: resource '{rd}' needs {need} more replica(s), {} node(s) qualify.", chosen.len())).obj("RscDfn", rd).cause("Too few nodes with enough free space in the allowed storage pools").correction("Add nodes or storage, or lower the place count.")));
        }
        let mut out = Vec::new();
        let mut adds = Vec::new();
        for (node, pool) in chosen {
            out.push(created(rd, &node, false));
            let mut props = Props::new();
            props.insert("StorPoolName".into(), pool.clone());
            adds.push((node, Some(pool), props));
        }
        if bool_of(body, "diskless_on_remaining")
            || f.get("diskless_on_remaining").and_then(Value::as_bool) == Some(true)
        {
            let placed: BTreeSet<&String> =
                r.rscs.keys().chain(adds.iter().map(|a| &a.0)).collect();
            let rest: Vec<String> = self
                .nodes
                .keys()
                .filter(|n| !placed.contains(n))
                .cloned()
                .collect();
            for node in rest {
                out.push(created(rd, &node, true));
                adds.push((node, None, Default::default()));
            }
        }
        if out.is_empty() {
            out.push(
                Rc::info(
                    obj::RSC,
                    INFO_NOOP,
                    format!(
                        "Resource '{rd}' is already placed on {} node(s).",
                        existing.len()
                    ),
                )
                .obj("RscDfn", rd),
            );
        }
        let nodes: Vec<String> = adds.iter().map(|a| a.0.clone()).collect();
        self.add_resources(rd, adds, &BTreeMap::new())?;
        // The request's layer_list, else the select filter's layer_stack.
        let stack = if strings_of(body, "layer_list")?.is_empty() {
            serde_json::json!({"layer_list": strings_of(&f, "layer_stack")?})
        } else {
            body.clone()
        };
        self.apply_layer_list(rd, &nodes, &stack);
        out.extend(self.manage_tiebreaker(rd));
        Ok(out)
    }
}
