//! The simulator's HTTP surface: the ZIM API at `/` and an admin API under `/_sim/`.
//!
//! Admin API (JSON):
//! - `POST /_sim/clock/advance` `{"seconds": N}` — advance the room clock;
//! - `PUT /_sim/faults` (a [`FaultPlan`]) / `DELETE /_sim/faults` — set or clear fault injection;
//! - `PUT /_sim/limits` `{"qps": N, "room_quota": N}` — change limits;
//! - `GET /_sim/log?since=N` — request log entries after `N`;
//! - `GET /_sim/rooms/{app_id}` — live rooms; `PUT /_sim/rooms/{app_id}/{room_id}` `{"room_name", "destroy_delay_time",
//!   "attributes": {k: v}}` — create a room as another party would; `DELETE` — destroy it;
//!   `PUT /_sim/rooms/{app_id}/{room_id}/users` `["u1", …]` — set the room's users.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post, put};
use serde::Deserialize;

use super::Simulator;
use super::state::{ApiRequest, Fault, FaultPlan};

/// The simulator's router.
pub fn router(sim: Simulator) -> Router {
    Router::new()
        .route("/", any(api))
        .route("/_sim/clock/advance", post(advance))
        .route("/_sim/faults", put(set_faults))
        .route("/_sim/faults", delete(clear_faults))
        .route("/_sim/limits", put(set_limits))
        .route("/_sim/log", get(log))
        .route("/_sim/rooms/{app_id}", get(rooms))
        .route("/_sim/rooms/{app_id}/{room_id}", put(seed_room).delete(remove_room).get(room))
        .route("/_sim/rooms/{app_id}/{room_id}/users", put(set_users))
        .with_state(sim)
}

async fn api(
    State(sim): State<Simulator>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let action = query.iter().find(|(k, _)| k == "Action").map(|(_, v)| v.clone()).unwrap_or_default();
    let app_id = query.iter().find(|(k, _)| k == "AppId").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let (fault, latency, arrived) = {
        let mut s = sim.lock();
        if let Some((_, sig)) = query.iter().find(|(k, _)| k == "Signature") {
            s.remember_signature(sig);
        }
        (s.draw_fault(&action), s.latency_ms(), s.now_ms())
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let room_id = |body: &Bytes| -> String {
        query
            .iter()
            .find(|(k, _)| k == "RoomId")
            .map(|(_, v)| v.clone())
            .or_else(|| {
                serde_json::from_slice::<serde_json::Value>(body)
                    .ok()
                    .and_then(|v| v.get("RoomId").and_then(|r| r.as_str()).map(str::to_owned))
            })
            .unwrap_or_default()
    };
    match &fault {
        Some(Fault::Code { code }) => {
            let rid = (rand::random::<u64>() >> 4).to_string();
            sim.lock().record(arrived, &action, app_id, &room_id(&body), *code, fault.as_ref());
            return Json(serde_json::json!({"Code": code, "Message": "injected fault", "RequestId": rid}))
                .into_response();
        }
        Some(Fault::HttpStatus { status }) => {
            sim.lock().record(arrived, &action, app_id, &room_id(&body), -1, fault.as_ref());
            return StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY).into_response();
        }
        Some(Fault::Drop) => {
            sim.lock().record(arrived, &action, app_id, &room_id(&body), -1, fault.as_ref());
            // Headers go out, then the body stream fails: the connection is cut mid-response.
            let stream = futures::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::other("connection dropped by fault injection"))
            });
            return Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(stream))
                .unwrap_or_default();
        }
        Some(Fault::Malformed) => {
            sim.lock().record(arrived, &action, app_id, &room_id(&body), -1, fault.as_ref());
            return ([(header::CONTENT_TYPE, "application/json")], "{\"Code\": 0, \"Message\": \"succ")
                .into_response();
        }
        Some(Fault::Delay { ms }) => tokio::time::sleep(Duration::from_millis(*ms)).await,
        Some(Fault::DelayReply { .. }) | None => {}
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let req = ApiRequest { query: &query, body: Some(&body), is_post: method == Method::POST, content_type };
    let reply = {
        let mut s = sim.lock();
        let (reply, code) = s.handle(&req);
        s.record(arrived, &action, app_id, &room_id(&body), code, fault.as_ref());
        reply
    };
    if let Some(Fault::DelayReply { ms }) = &fault {
        tokio::time::sleep(Duration::from_millis(*ms)).await;
    }
    Json(reply).into_response()
}

#[derive(Deserialize)]
struct Advance {
    seconds: f64,
}

async fn advance(State(sim): State<Simulator>, Json(a): Json<Advance>) -> StatusCode {
    sim.advance_clock(a.seconds);
    StatusCode::NO_CONTENT
}

async fn set_faults(State(sim): State<Simulator>, Json(plan): Json<FaultPlan>) -> StatusCode {
    sim.set_faults(plan);
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(sim): State<Simulator>) -> StatusCode {
    sim.set_faults(FaultPlan::default());
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Limits {
    qps: Option<u32>,
    room_quota: Option<usize>,
}

async fn set_limits(State(sim): State<Simulator>, Json(l): Json<Limits>) -> StatusCode {
    sim.set_limits(l.qps, l.room_quota);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Since {
    #[serde(default)]
    since: u64,
}

async fn log(State(sim): State<Simulator>, Query(q): Query<Since>) -> Response {
    Json(sim.log_since(q.since)).into_response()
}

async fn rooms(State(sim): State<Simulator>, Path(app_id): Path<u32>) -> Response {
    Json(sim.rooms(app_id)).into_response()
}

async fn room(State(sim): State<Simulator>, Path((app_id, room_id)): Path<(u32, String)>) -> Response {
    match sim.room(app_id, &room_id) {
        Some(r) => Json(r).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Seed {
    room_name: String,
    destroy_delay_time: u32,
    attributes: BTreeMap<String, String>,
}

async fn seed_room(
    State(sim): State<Simulator>,
    Path((app_id, room_id)): Path<(u32, String)>,
    Json(seed): Json<Seed>,
) -> StatusCode {
    let attrs: Vec<(String, String)> = seed.attributes.into_iter().collect();
    sim.seed_room(app_id, &room_id, &seed.room_name, seed.destroy_delay_time, &attrs);
    StatusCode::NO_CONTENT
}

async fn remove_room(
    State(sim): State<Simulator>,
    Path((app_id, room_id)): Path<(u32, String)>,
) -> StatusCode {
    if sim.remove_room(app_id, &room_id) { StatusCode::NO_CONTENT } else { StatusCode::NOT_FOUND }
}

async fn set_users(
    State(sim): State<Simulator>,
    Path((app_id, room_id)): Path<(u32, String)>,
    Json(users): Json<BTreeSet<String>>,
) -> StatusCode {
    if sim.set_room_users(app_id, &room_id, users) { StatusCode::NO_CONTENT } else { StatusCode::NOT_FOUND }
}
