//! The simulator's admin API under `/sim/` (not part of LINSTOR's API, never faulted or
//! counted as LINSTOR calls):
//! - `GET /sim/state`: counters, objects, devices and leaks (see [`super::app::App::state_json`]);
//! - `GET /sim/faults`, `POST /sim/faults` (a [`Fault`]), `DELETE /sim/faults`;
//! - `POST /sim/in-use` `{"rd": "...", "node": "...", "in_use": true}`: marks a resource open
//!   on a node, as a mount there would.
//!
//! Owns: these handlers only.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as Ctx;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use super::app::App;
use super::faults::Fault;
use super::parse::{self, bad, bool_of, str_of};
use super::reply::{json_body, ok_json, Answer};

/// The `/sim/*` routes.
pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/sim/state", get(state))
        .route(
            "/sim/faults",
            get(faults).post(add_fault).delete(clear_faults),
        )
        .route("/sim/in-use", post(in_use))
}

async fn state(Ctx(app): Ctx<Arc<App>>) -> Answer {
    ok_json(&app.state_json())
}

async fn faults(Ctx(app): Ctx<Arc<App>>) -> Answer {
    ok_json(&app.state_json()["faults_pending"])
}

async fn add_fault(Ctx(app): Ctx<Arc<App>>, body: Bytes) -> Answer {
    let fault: Fault = serde_json::from_slice(&body).map_err(|e| bad(format!("fault: {e}")))?;
    app.add_fault(fault.clone());
    Ok(json_body(StatusCode::CREATED, &json!(fault)))
}

async fn clear_faults(Ctx(app): Ctx<Arc<App>>) -> Answer {
    app.clear_faults();
    ok_json(&json!([]))
}

async fn in_use(Ctx(app): Ctx<Arc<App>>, body: Bytes) -> Answer {
    let body = parse::body(&body)?;
    let rd = str_of(&body, "rd").ok_or_else(|| bad("rd missing"))?;
    let node = str_of(&body, "node").ok_or_else(|| bad("node missing"))?;
    app.lock()
        .set_in_use(&rd, &node, bool_of(&body, "in_use"))?;
    ok_json(&json!({"rd": rd, "node": node, "in_use": bool_of(&body, "in_use")}))
}
