//! HTTP handlers for resources (create, autoplace, make-available, get, list, modify,
//! delete), snapshots (single, multi, restore), clones, S3 remotes and backups.
//!
//! Owns: request decoding and success statuses for these routes. State changes are in
//! `ops_*`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State as Ctx};
use axum::http::StatusCode;
use serde_json::{json, Value};

use super::app::App;
use super::consts::*;
use super::handlers_defs::{values, Params};
use super::ops_defs::{rd_not_found, vd_not_found};
use super::ops_remote::remote_not_found;
use super::ops_rsc::rsc_not_found;
use super::ops_snap::snap_not_found;
use super::parse::{self, bad};
use super::render;
use super::reply::{created, done, json_body, ok_json, Answer, Fail, Rc};

pub async fn resources(Ctx(app): Ctx<Arc<App>>, Path(rd): Path<String>) -> Answer {
    let s = app.lock();
    let r = s.rds.get(&rd).ok_or_else(|| rd_not_found(&rd))?;
    ok_json(
        &r.rscs
            .values()
            .map(|x| render::resource(&s, r, x))
            .collect(),
    )
}

pub async fn resource(Ctx(app): Ctx<Arc<App>>, Path((rd, node)): Path<(String, String)>) -> Answer {
    let s = app.lock();
    let r = s.rds.get(&rd).ok_or_else(|| rd_not_found(&rd))?;
    let x = r.rscs.get(&node).ok_or_else(|| rsc_not_found(&rd, &node))?;
    ok_json(&render::resource(&s, r, x))
}

pub async fn resource_volume(
    Ctx(app): Ctx<Arc<App>>,
    Path((rd, node, vnr)): Path<(String, String, u32)>,
) -> Answer {
    let s = app.lock();
    let r = s.rds.get(&rd).ok_or_else(|| rd_not_found(&rd))?;
    let x = r.rscs.get(&node).ok_or_else(|| rsc_not_found(&rd, &node))?;
    if !r.vds.contains_key(&vnr) {
        return Err(Fail(
            Rc::err(
                0,
                obj::VLM,
                FAIL_NOT_FOUND_VLM,
                format!("Volume {vnr} of '{rd}' on '{node}' not found."),
            )
            .obj("RscDfn", &rd),
        ));
    }
    let all = render::resource(&s, r, x);
    let v = all["volumes"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["volume_number"] == vnr))
        .cloned();
    ok_json(&v.ok_or_else(|| vd_not_found(&rd, vnr))?)
}

pub async fn resources_create(
    Ctx(app): Ctx<Arc<App>>,
    Path(rd): Path<String>,
    body: Bytes,
) -> Answer {
    let items = match parse::body(&body)? {
        Value::Array(items) => items,
        _ => return Err(bad("expected a list of ResourceCreate")),
    };
    created(&app.lock().create_resources(&rd, &items)?)
}

pub async fn resource_modify(
    Ctx(app): Ctx<Arc<App>>,
    Path((rd, node)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let body = parse::body(&body)?;
    done(&app.lock().modify_resource(&rd, &node, &body)?)
}

pub async fn resource_delete(
    Ctx(app): Ctx<Arc<App>>,
    Path((rd, node)): Path<(String, String)>,
    Query(q): Params,
) -> Answer {
    let keep = q
        .iter()
        .any(|(k, v)| k == "keep_tiebreaker" && v.eq_ignore_ascii_case("true"));
    done(&app.lock().delete_resource(&rd, &node, keep)?)
}

pub async fn toggle_disk(
    Ctx(app): Ctx<Arc<App>>,
    Path((rd, node)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let body = parse::body(&body)?;
    let (diskful, pool) = super::state::State::toggle_request(&body)?;
    done(&app.lock().toggle_disk(&rd, &node, diskful, pool)?)
}

pub async fn toggle_diskful(
    Ctx(app): Ctx<Arc<App>>,
    Path((rd, node)): Path<(String, String)>,
) -> Answer {
    done(&app.lock().toggle_disk(&rd, &node, true, None)?)
}

pub async fn toggle_diskful_pool(
    Ctx(app): Ctx<Arc<App>>,
    Path((rd, node, pool)): Path<(String, String, String)>,
) -> Answer {
    done(&app.lock().toggle_disk(&rd, &node, true, Some(pool))?)
}

pub async fn toggle_diskless(
    Ctx(app): Ctx<Arc<App>>,
    Path((rd, node)): Path<(String, String)>,
) -> Answer {
    done(&app.lock().toggle_disk(&rd, &node, false, None)?)
}

pub async fn autoplace(Ctx(app): Ctx<Arc<App>>, Path(rd): Path<String>, body: Bytes) -> Answer {
    let body = parse::body(&body)?;
    created(&app.lock().autoplace(&rd, &body)?)
}

pub async fn make_available(
    Ctx(app): Ctx<Arc<App>>,
    Path((rd, node)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let body = parse::body(&body)?;
    done(&app.lock().make_available(&rd, &node, &body)?)
}

pub async fn snapshots(Ctx(app): Ctx<Arc<App>>, Path(rd): Path<String>) -> Answer {
    let s = app.lock();
    let r = s.rds.get(&rd).ok_or_else(|| rd_not_found(&rd))?;
    ok_json(&r.snaps.values().map(|sn| render::snapshot(r, sn)).collect())
}

pub async fn snapshot(Ctx(app): Ctx<Arc<App>>, Path((rd, snap)): Path<(String, String)>) -> Answer {
    let s = app.lock();
    let r = s.rds.get(&rd).ok_or_else(|| rd_not_found(&rd))?;
    ok_json(&render::snapshot(
        r,
        r.snaps
            .get(&snap)
            .ok_or_else(|| snap_not_found(&rd, &snap))?,
    ))
}

pub async fn snapshot_create(
    Ctx(app): Ctx<Arc<App>>,
    Path(rd): Path<String>,
    body: Bytes,
) -> Answer {
    let body = parse::body(&body)?;
    created(&app.lock().create_snapshot(&rd, &body)?)
}

pub async fn snapshot_multi(Ctx(app): Ctx<Arc<App>>, body: Bytes) -> Answer {
    let body = parse::body(&body)?;
    created(&app.lock().create_multi_snapshot(&body)?)
}

pub async fn snapshot_delete(
    Ctx(app): Ctx<Arc<App>>,
    Path((rd, snap)): Path<(String, String)>,
) -> Answer {
    done(&app.lock().delete_snapshot(&rd, &snap)?)
}

pub async fn restore_vds(
    Ctx(app): Ctx<Arc<App>>,
    Path((rd, snap)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let body = parse::body(&body)?;
    done(&app.lock().restore_vds(&rd, &snap, &body)?)
}

pub async fn restore_resources(
    Ctx(app): Ctx<Arc<App>>,
    Path((rd, snap)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let body = parse::body(&body)?;
    done(&app.lock().restore_resources(&rd, &snap, &body)?)
}

pub async fn clone(Ctx(app): Ctx<Arc<App>>, Path(rd): Path<String>, body: Bytes) -> Answer {
    let body = parse::body(&body)?;
    let (to, messages) = app.lock().clone_rd(&rd, &body)?;
    Ok(json_body(
        StatusCode::CREATED,
        &json!({
            "location": format!("/v1/resource-definitions/{rd}/clone/{to}"),
            "source_name": rd,
            "clone_name": to,
            "messages": messages.iter().map(Rc::to_json).collect::<Vec<_>>(),
        }),
    ))
}

pub async fn clone_status(
    Ctx(app): Ctx<Arc<App>>,
    Path((rd, clone)): Path<(String, String)>,
) -> Answer {
    let status = app.lock().clone_status(&rd, &clone)?;
    ok_json(&json!({"status": status}))
}

pub async fn remotes(Ctx(app): Ctx<Arc<App>>) -> Answer {
    let s = app.lock();
    let s3: Vec<Value> = s.remotes.values().map(render::s3_remote).collect();
    ok_json(&json!([{"s3_remotes": s3, "linstor_remotes": [], "ebs_remotes": []}]))
}

pub async fn remote_delete(Ctx(app): Ctx<Arc<App>>, Query(q): Params) -> Answer {
    let name = values(&q, "remote_name")
        .first()
        .map(|s| (*s).to_owned())
        .ok_or_else(|| bad("remote_name missing"))?;
    done(&app.lock().delete_remote(&name)?)
}

pub async fn s3_remotes(Ctx(app): Ctx<Arc<App>>) -> Answer {
    let s = app.lock();
    ok_json(&s.remotes.values().map(render::s3_remote).collect())
}

pub async fn s3_remote_create(Ctx(app): Ctx<Arc<App>>, body: Bytes) -> Answer {
    let body = parse::body(&body)?;
    done(&app.lock().create_s3_remote(&body)?)
}

pub async fn backups(
    Ctx(app): Ctx<Arc<App>>,
    Path(remote): Path<String>,
    Query(q): Params,
) -> Answer {
    let s = app.lock();
    if !s.remotes.contains_key(&remote) {
        return Err(remote_not_found(&remote));
    }
    let rsc = values(&q, "rsc_name").first().copied();
    ok_json(&render::backups(&s, &remote, rsc))
}

pub async fn backup_create(
    Ctx(app): Ctx<Arc<App>>,
    Path(remote): Path<String>,
    body: Bytes,
) -> Answer {
    let body = parse::body(&body)?;
    done(&app.lock().create_backup(&remote, &body)?)
}

pub async fn backups_delete(
    Ctx(app): Ctx<Arc<App>>,
    Path(remote): Path<String>,
    Query(q): Params,
) -> Answer {
    let id = values(&q, "id").first().copied();
    let rsc = values(&q, "resource_name").first().copied();
    done(&app.lock().delete_backups(&remote, id, rsc)?)
}
