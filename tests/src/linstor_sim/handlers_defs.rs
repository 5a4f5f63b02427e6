//! HTTP handlers for the controller, nodes, storage pools, the views, resource groups, and
//! resource and volume definitions.
//!
//! Owns: request decoding (path, query, body) and the success statuses the OpenAPI file
//! declares per route. State changes are in `ops_*`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State as Ctx};

use super::app::App;
use super::consts::*;
use super::ops_defs::{rd_not_found, vd_not_found};
use super::ops_groups::rg_not_found;
use super::ops_rsc::node_not_found;
use super::parse;
use super::render;
use super::reply::{created, done, ok_json, Answer, Fail, Rc};

/// Repeated query parameters (`?nodes=a&nodes=b`).
pub type Params = Query<Vec<(String, String)>>;

/// The values of one query parameter.
pub fn values<'a>(q: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    q.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn keep(filter: &[&str], name: &str) -> bool {
    filter.is_empty() || filter.contains(&name)
}

pub async fn version() -> Answer {
    ok_json(&render::version())
}

pub async fn ctrl_props(Ctx(app): Ctx<Arc<App>>) -> Answer {
    ok_json(&serde_json::json!(app.lock().ctrl_props))
}

pub async fn ctrl_props_modify(Ctx(app): Ctx<Arc<App>>, body: Bytes) -> Answer {
    let body = parse::body(&body)?;
    let mut s = app.lock();
    let mut out = parse::change_props(&mut s.ctrl_props, &body, obj::CTRL_CONF)?;
    out.push(Rc::ok(
        OP_MODIFY,
        obj::CTRL_CONF,
        MODIFIED,
        "Controller properties modified.",
    ));
    created(&out)
}

pub async fn nodes(Ctx(app): Ctx<Arc<App>>, Query(q): Params) -> Answer {
    let s = app.lock();
    let f = values(&q, "nodes");
    ok_json(
        &s.nodes
            .values()
            .filter(|n| keep(&f, &n.name))
            .map(render::node)
            .collect(),
    )
}

pub async fn node(Ctx(app): Ctx<Arc<App>>, Path(node): Path<String>) -> Answer {
    let s = app.lock();
    let n = s.nodes.get(&node).ok_or_else(|| node_not_found(&node))?;
    ok_json(&render::node(n))
}

pub async fn node_pools(Ctx(app): Ctx<Arc<App>>, Path(node): Path<String>) -> Answer {
    let s = app.lock();
    if !s.nodes.contains_key(&node) {
        return Err(node_not_found(&node));
    }
    ok_json(
        &s.pools
            .values()
            .filter(|p| p.node == node)
            .map(|p| render::pool(&s, p))
            .collect(),
    )
}

pub async fn node_pool(
    Ctx(app): Ctx<Arc<App>>,
    Path((node, pool)): Path<(String, String)>,
) -> Answer {
    let s = app.lock();
    if !s.nodes.contains_key(&node) {
        return Err(node_not_found(&node));
    }
    let p = s.pools.get(&(node.clone(), pool.clone())).ok_or_else(|| {
        Fail(
            Rc::err(
                0,
                obj::STOR_POOL,
                FAIL_NOT_FOUND_STOR_POOL,
                format!("Storage pool '{pool}' not found on node '{node}'."),
            )
            .obj("StorPool", &pool),
        )
    })?;
    ok_json(&render::pool(&s, p))
}

pub async fn view_pools(Ctx(app): Ctx<Arc<App>>, Query(q): Params) -> Answer {
    let s = app.lock();
    let (nodes, pools) = (values(&q, "nodes"), values(&q, "storage_pools"));
    ok_json(
        &s.pools
            .values()
            .filter(|p| keep(&nodes, &p.node) && keep(&pools, &p.name))
            .map(|p| render::pool(&s, p))
            .collect(),
    )
}

pub async fn view_resources(Ctx(app): Ctx<Arc<App>>, Query(q): Params) -> Answer {
    let s = app.lock();
    let (nodes, rscs, pools) = (
        values(&q, "nodes"),
        values(&q, "resources"),
        values(&q, "storage_pools"),
    );
    let mut out = Vec::new();
    for r in s.rds.values().filter(|r| keep(&rscs, &r.name)) {
        for x in r.rscs.values().filter(|x| keep(&nodes, &x.node)) {
            let pool = x.pool.as_deref().unwrap_or(super::state::DISKLESS_POOL);
            if keep(&pools, pool) {
                out.push(render::resource(&s, r, x));
            }
        }
    }
    ok_json(&out.into())
}

pub async fn view_snapshots(Ctx(app): Ctx<Arc<App>>, Query(q): Params) -> Answer {
    let s = app.lock();
    let (nodes, rscs) = (values(&q, "nodes"), values(&q, "resources"));
    let out: Vec<_> = s
        .rds
        .values()
        .filter(|r| keep(&rscs, &r.name))
        .flat_map(|r| {
            r.snaps
                .values()
                .filter(|sn| {
                    nodes.is_empty() || sn.nodes.iter().any(|n| nodes.contains(&n.as_str()))
                })
                .map(move |sn| render::snapshot(r, sn))
        })
        .collect();
    ok_json(&out.into())
}

pub async fn groups(Ctx(app): Ctx<Arc<App>>, Query(q): Params) -> Answer {
    let s = app.lock();
    let f = values(&q, "resource_groups");
    ok_json(
        &s.groups
            .values()
            .filter(|g| keep(&f, &g.name))
            .map(render::group)
            .collect(),
    )
}

pub async fn group(Ctx(app): Ctx<Arc<App>>, Path(rg): Path<String>) -> Answer {
    let s = app.lock();
    ok_json(&render::group(
        s.groups.get(&rg).ok_or_else(|| rg_not_found(&rg))?,
    ))
}

pub async fn group_create(Ctx(app): Ctx<Arc<App>>, body: Bytes) -> Answer {
    let body = parse::body(&body)?;
    created(&app.lock().create_group(&body)?)
}

pub async fn group_modify(Ctx(app): Ctx<Arc<App>>, Path(rg): Path<String>, body: Bytes) -> Answer {
    let body = parse::body(&body)?;
    done(&app.lock().modify_group(&rg, &body)?)
}

pub async fn group_delete(Ctx(app): Ctx<Arc<App>>, Path(rg): Path<String>) -> Answer {
    done(&app.lock().delete_group(&rg)?)
}

pub async fn rds(Ctx(app): Ctx<Arc<App>>, Query(q): Params) -> Answer {
    let s = app.lock();
    let f = values(&q, "resource_definitions");
    let with_vds = values(&q, "with_volume_definitions").contains(&"true");
    ok_json(
        &s.rds
            .values()
            .filter(|r| keep(&f, &r.name))
            .map(|r| render::rd(r, with_vds))
            .collect(),
    )
}

pub async fn rd(Ctx(app): Ctx<Arc<App>>, Path(rd): Path<String>) -> Answer {
    let s = app.lock();
    ok_json(&render::rd(
        s.rds.get(&rd).ok_or_else(|| rd_not_found(&rd))?,
        false,
    ))
}

pub async fn rd_create(Ctx(app): Ctx<Arc<App>>, body: Bytes) -> Answer {
    let body = parse::body(&body)?;
    created(&app.lock().create_rd(&body)?)
}

pub async fn rd_modify(Ctx(app): Ctx<Arc<App>>, Path(rd): Path<String>, body: Bytes) -> Answer {
    let body = parse::body(&body)?;
    done(&app.lock().modify_rd(&rd, &body)?)
}

pub async fn rd_delete(Ctx(app): Ctx<Arc<App>>, Path(rd): Path<String>) -> Answer {
    done(&app.lock().delete_rd(&rd)?)
}

pub async fn vds(Ctx(app): Ctx<Arc<App>>, Path(rd): Path<String>) -> Answer {
    let s = app.lock();
    let r = s.rds.get(&rd).ok_or_else(|| rd_not_found(&rd))?;
    ok_json(&r.vds.values().map(render::vd).collect())
}

pub async fn vd(Ctx(app): Ctx<Arc<App>>, Path((rd, vnr)): Path<(String, u32)>) -> Answer {
    let s = app.lock();
    let r = s.rds.get(&rd).ok_or_else(|| rd_not_found(&rd))?;
    ok_json(&render::vd(
        r.vds.get(&vnr).ok_or_else(|| vd_not_found(&rd, vnr))?,
    ))
}

pub async fn vd_create(Ctx(app): Ctx<Arc<App>>, Path(rd): Path<String>, body: Bytes) -> Answer {
    let body = parse::body(&body)?;
    created(&app.lock().create_vd(&rd, &body)?)
}

pub async fn vd_modify(
    Ctx(app): Ctx<Arc<App>>,
    Path((rd, vnr)): Path<(String, u32)>,
    body: Bytes,
) -> Answer {
    let body = parse::body(&body)?;
    done(&app.lock().modify_vd(&rd, vnr, &body)?)
}

pub async fn vd_delete(Ctx(app): Ctx<Arc<App>>, Path((rd, vnr)): Path<(String, u32)>) -> Answer {
    done(&app.lock().delete_vd(&rd, vnr)?)
}
