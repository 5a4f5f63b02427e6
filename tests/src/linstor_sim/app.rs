//! The simulator's shared application object (state, faults, counters, recorded answers) and
//! its router: the LINSTOR routes from one table (which the OpenAPI check reads too), a layer
//! that counts and records every answered LINSTOR call, and the `/sim/*` admin routes.
//!
//! Owns: routing and bookkeeping. Fault *injection* happens in `server`, before routing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State as Ctx};
use axum::http::StatusCode;
use axum::middleware::{from_fn_with_state, Next};
use axum::response::Response;
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;
use serde::Serialize;
use serde_json::{json, Value};

use super::admin;
use super::faults::Fault;
use super::handlers_defs as d;
use super::handlers_rsc as r;
use super::reply::{rcs, Rc};
use super::state::State;

/// One answered LINSTOR call, kept when recording is on (for the OpenAPI check).
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The route template, e.g. `/v1/resource-definitions/{rd}`.
    pub route: String,
    /// The HTTP status.
    pub status: u16,
    /// The JSON body (`null` when empty or not JSON).
    pub body: Value,
}

/// Shared by every handler.
#[derive(Debug)]
pub struct App {
    state: Mutex<State>,
    pub(super) faults: Mutex<Vec<Fault>>,
    pub(super) faults_fired: AtomicU64,
    pub(super) requests: AtomicU64,
    routes: Mutex<BTreeMap<String, u64>>,
    recorded: Option<Mutex<Vec<Recorded>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl App {
    /// An app over `state`; `record` keeps every answer for [`App::recorded`].
    pub fn new(state: State, record: bool) -> Self {
        Self {
            state: Mutex::new(state),
            faults: Mutex::new(Vec::new()),
            faults_fired: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            routes: Mutex::new(BTreeMap::new()),
            recorded: record.then(|| Mutex::new(Vec::new())),
        }
    }

    /// The state, locked.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        let mut state = lock(&self.state);
        state.settle();
        state
    }

    /// The answers recorded so far.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.recorded
            .as_ref()
            .map(|r| lock(r).clone())
            .unwrap_or_default()
    }

    /// Calls per `METHOD /route`.
    pub fn route_counts(&self) -> BTreeMap<String, u64> {
        lock(&self.routes).clone()
    }

    /// Adds a fault.
    pub fn add_fault(&self, fault: Fault) {
        lock(&self.faults).push(fault);
    }

    /// Removes every pending fault.
    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    /// Takes one firing of the first fault matching `method` and `path`.
    pub fn take_fault(&self, method: &str, path: &str) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let i = faults.iter().position(|f| f.matches(method, path))?;
        let fault = faults[i].clone();
        faults[i].count = faults[i].count.saturating_sub(1);
        if faults[i].count == 0 {
            faults.remove(i);
        }
        self.faults_fired.fetch_add(1, Ordering::Relaxed);
        Some(fault)
    }

    /// The `/sim/state` document: counters, objects, devices and inconsistencies.
    pub fn state_json(&self) -> Value {
        let s = self.lock();
        let mut leaks = Vec::new();
        let mut known = BTreeSet::new();
        for rd in s.rds.values() {
            for vd in rd.vds.values() {
                if let Some(b) = &vd.backing {
                    known.insert(b.file.clone());
                    if rd.rscs.is_empty() {
                        leaks.push(format!(
                            "device {} of '{}' has no resource",
                            b.device.path.display(),
                            rd.name
                        ));
                    }
                }
            }
            for sn in rd.snaps.values() {
                known.extend(sn.vols.values().filter_map(|(_, i)| i.clone()));
            }
        }
        let files = s.devices.files();
        for f in files.iter().filter(|f| !known.contains(*f)) {
            leaks.push(format!(
                "file {} belongs to no volume or snapshot",
                f.display()
            ));
        }
        json!({
            "requests_total": self.requests.load(Ordering::Relaxed),
            "faults_fired": self.faults_fired.load(Ordering::Relaxed),
            "faults_pending": *lock(&self.faults),
            "routes": self.route_counts(),
            "objects": {
                "resource_groups": s.groups.keys().collect::<Vec<_>>(),
                "resource_definitions": s.rds.keys().collect::<Vec<_>>(),
                "resources": s.rds.values().flat_map(|r| r.rscs.keys().map(move |n| format!("{}@{n}", r.name))).collect::<Vec<_>>(),
                "snapshots": s.rds.values().flat_map(|r| r.snaps.keys().map(move |n| format!("{}@{n}", r.name))).collect::<Vec<_>>(),
                "remotes": s.remotes.keys().collect::<Vec<_>>(),
                "backups": s.backups.values().map(Vec::len).sum::<usize>(),
            },
            "devices": {
                "mode": format!("{:?}", s.devices.mode()).to_lowercase(),
                "loop_devices": s.held_devices().iter().map(|b| b.device.path.display().to_string()).collect::<Vec<_>>(),
                "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            },
            "leaks": leaks,
        })
    }
}

/// The LINSTOR routes: method, path template, handler.
fn table() -> Vec<(&'static str, &'static str, MethodRouter<Arc<App>>)> {
    vec![
        ("GET", "/v1/controller/version", get(d::version)),
        ("GET", "/v1/controller/properties", get(d::ctrl_props)),
        (
            "POST",
            "/v1/controller/properties",
            post(d::ctrl_props_modify),
        ),
        ("GET", "/v1/nodes", get(d::nodes)),
        ("GET", "/v1/nodes/{node}", get(d::node)),
        ("GET", "/v1/nodes/{node}/storage-pools", get(d::node_pools)),
        (
            "GET",
            "/v1/nodes/{node}/storage-pools/{pool}",
            get(d::node_pool),
        ),
        ("GET", "/v1/view/storage-pools", get(d::view_pools)),
        ("GET", "/v1/view/resources", get(d::view_resources)),
        ("GET", "/v1/view/snapshots", get(d::view_snapshots)),
        ("GET", "/v1/resource-groups", get(d::groups)),
        ("POST", "/v1/resource-groups", post(d::group_create)),
        ("GET", "/v1/resource-groups/{rg}", get(d::group)),
        ("PUT", "/v1/resource-groups/{rg}", put(d::group_modify)),
        (
            "DELETE",
            "/v1/resource-groups/{rg}",
            delete(d::group_delete),
        ),
        ("GET", "/v1/resource-definitions", get(d::rds)),
        ("POST", "/v1/resource-definitions", post(d::rd_create)),
        ("GET", "/v1/resource-definitions/{rd}", get(d::rd)),
        ("PUT", "/v1/resource-definitions/{rd}", put(d::rd_modify)),
        (
            "DELETE",
            "/v1/resource-definitions/{rd}",
            delete(d::rd_delete),
        ),
        (
            "GET",
            "/v1/resource-definitions/{rd}/volume-definitions",
            get(d::vds),
        ),
        (
            "POST",
            "/v1/resource-definitions/{rd}/volume-definitions",
            post(d::vd_create),
        ),
        (
            "GET",
            "/v1/resource-definitions/{rd}/volume-definitions/{vnr}",
            get(d::vd),
        ),
        (
            "PUT",
            "/v1/resource-definitions/{rd}/volume-definitions/{vnr}",
            put(d::vd_modify),
        ),
        (
            "DELETE",
            "/v1/resource-definitions/{rd}/volume-definitions/{vnr}",
            delete(d::vd_delete),
        ),
        (
            "GET",
            "/v1/resource-definitions/{rd}/resources",
            get(r::resources),
        ),
        (
            "POST",
            "/v1/resource-definitions/{rd}/resources",
            post(r::resources_create),
        ),
        (
            "GET",
            "/v1/resource-definitions/{rd}/resources/{node}",
            get(r::resource),
        ),
        (
            "PUT",
            "/v1/resource-definitions/{rd}/resources/{node}",
            put(r::resource_modify),
        ),
        (
            "DELETE",
            "/v1/resource-definitions/{rd}/resources/{node}",
            delete(r::resource_delete),
        ),
        (
            "GET",
            "/v1/resource-definitions/{rd}/resources/{node}/volumes/{vnr}",
            get(r::resource_volume),
        ),
        (
            "POST",
            "/v1/resource-definitions/{rd}/resources/{node}/make-available",
            post(r::make_available),
        ),
        (
            "PUT",
            "/v1/resource-definitions/{rd}/resources/{node}/toggle-disk",
            put(r::toggle_disk),
        ),
        (
            "PUT",
            "/v1/resource-definitions/{rd}/resources/{node}/toggle-disk/diskful",
            put(r::toggle_diskful),
        ),
        (
            "PUT",
            "/v1/resource-definitions/{rd}/resources/{node}/toggle-disk/diskful/{pool}",
            put(r::toggle_diskful_pool),
        ),
        (
            "PUT",
            "/v1/resource-definitions/{rd}/resources/{node}/toggle-disk/diskless",
            put(r::toggle_diskless),
        ),
        (
            "POST",
            "/v1/resource-definitions/{rd}/autoplace",
            post(r::autoplace),
        ),
        (
            "GET",
            "/v1/resource-definitions/{rd}/snapshots",
            get(r::snapshots),
        ),
        (
            "POST",
            "/v1/resource-definitions/{rd}/snapshots",
            post(r::snapshot_create),
        ),
        (
            "GET",
            "/v1/resource-definitions/{rd}/snapshots/{snap}",
            get(r::snapshot),
        ),
        (
            "DELETE",
            "/v1/resource-definitions/{rd}/snapshots/{snap}",
            delete(r::snapshot_delete),
        ),
        (
            "POST",
            "/v1/resource-definitions/{rd}/snapshot-restore-volume-definition/{snap}",
            post(r::restore_vds),
        ),
        (
            "POST",
            "/v1/resource-definitions/{rd}/snapshot-restore-resource/{snap}",
            post(r::restore_resources),
        ),
        (
            "POST",
            "/v1/actions/snapshot/multi",
            post(r::snapshot_multi),
        ),
        (
            "POST",
            "/v1/resource-definitions/{rd}/clone",
            post(r::clone),
        ),
        (
            "GET",
            "/v1/resource-definitions/{rd}/clone/{clone}",
            get(r::clone_status),
        ),
        ("GET", "/v1/remotes", get(r::remotes)),
        ("DELETE", "/v1/remotes", delete(r::remote_delete)),
        ("GET", "/v1/remotes/s3", get(r::s3_remotes)),
        ("POST", "/v1/remotes/s3", post(r::s3_remote_create)),
        ("GET", "/v1/remotes/{remote}/backups", get(r::backups)),
        (
            "POST",
            "/v1/remotes/{remote}/backups",
            post(r::backup_create),
        ),
        (
            "DELETE",
            "/v1/remotes/{remote}/backups",
            delete(r::backups_delete),
        ),
    ]
}

/// Every LINSTOR route the simulator serves, as (method, path template).
pub fn api_routes() -> Vec<(&'static str, &'static str)> {
    table().into_iter().map(|(m, p, _)| (m, p)).collect()
}

/// The whole router: LINSTOR routes (counted, recorded), `/sim/*`, and a LINSTOR-style 404.
pub fn router(app: Arc<App>) -> Router {
    let mut by_path: BTreeMap<&'static str, MethodRouter<Arc<App>>> = BTreeMap::new();
    for (_, path, handler) in table() {
        let merged = match by_path.remove(path) {
            Some(prev) => prev.merge(handler),
            None => handler,
        };
        by_path.insert(path, merged);
    }
    let mut api = Router::new();
    for (path, handler) in by_path {
        api = api.route(path, handler);
    }
    api.route_layer(from_fn_with_state(app.clone(), observe))
        .merge(admin::router())
        .fallback(unknown)
        .with_state(app)
}

/// Counts the call under its route template, and records the answer when asked.
async fn observe(
    Ctx(app): Ctx<Arc<App>>,
    matched: MatchedPath,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().to_string();
    let route = matched.as_str().to_owned();
    *lock(&app.routes)
        .entry(format!("{method} {route}"))
        .or_default() += 1;
    let resp = next.run(req).await;
    let Some(recorded) = &app.recorded else {
        return resp;
    };
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 16 << 20)
        .await
        .unwrap_or_default();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    lock(recorded).push(Recorded {
        method,
        route,
        status: parts.status.as_u16(),
        body: json,
    });
    Response::from_parts(parts, Body::from(bytes))
}

/// LINSTOR's answer to an unknown path.
async fn unknown(req: Request) -> Response {
    let rc = Rc::err(
        0,
        0,
        0x0FFF_FFFF_FFFF_FFFF,
        format!("Unknown API call: {} {}", req.method(), req.uri().path()),
    );
    rcs(StatusCode::NOT_FOUND, &[rc])
}
