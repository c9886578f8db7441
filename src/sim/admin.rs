//! The simulator's admin API for tests, under `/_sim/` (JSON):
//!
//! - `POST /_sim/clock/advance` `{"seconds": N}` — advance the room clock;
//! - `PUT /_sim/faults` (a [`FaultPlan`]) / `DELETE /_sim/faults` — set or clear fault injection;
//! - `PUT /_sim/limits` `{"qps": N, "room_quota": N}` — change limits;
//! - `GET /_sim/log?since=N` — request log entries after `N`;
//! - `GET /_sim/rooms/{app_id}` — live rooms; `PUT /_sim/rooms/{app_id}/{room_id}` `{"room_name", "destroy_delay_time",
//!   "attributes": {k: v}}` — create a room as another party would; `DELETE` — destroy it; `GET` — one room;
//!   `PUT /_sim/rooms/{app_id}/{room_id}/users` `["u1", …]` — set the room's users (no callbacks);
//!   `POST /_sim/rooms/{app_id}/{room_id}/enter` and `/leave` `["u1", …]` — users enter or leave (`room_enter`,
//!   `room_exit` callbacks), answered with the users who did (`{"users": […]}`), 404 without such a room, 400 for
//!   an invalid user ID; `GET /_sim/rooms/{app_id}/{room_id}/messages` — the room messages sent to it;
//! - `PUT /_sim/callbacks/target` `{"url": "http://…", "secret": "…", "retry_after_ms": [2000, …]}` (the schedule
//!   optional) / `DELETE /_sim/callbacks/target` — set or clear where server callbacks go;
//! - `GET /_sim/callbacks/deliveries?since=N` — the delivery attempts after `N` (event, room, attempt, HTTP
//!   status or error), with the numbers of pending and dropped events. Never a secret or a signature.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;

use super::{CallbackSecret, CallbackTarget, FaultPlan, Simulator};

/// Adds the admin routes to `router`.
pub(crate) fn routes(router: Router<Simulator>) -> Router<Simulator> {
    router
        .route("/_sim/clock/advance", post(advance))
        .route("/_sim/faults", put(set_faults))
        .route("/_sim/faults", delete(clear_faults))
        .route("/_sim/limits", put(set_limits))
        .route("/_sim/log", get(log))
        .route("/_sim/rooms/{app_id}", get(rooms))
        .route("/_sim/rooms/{app_id}/{room_id}", put(seed_room).delete(remove_room).get(room))
        .route("/_sim/rooms/{app_id}/{room_id}/users", put(set_users))
        .route("/_sim/rooms/{app_id}/{room_id}/enter", post(enter))
        .route("/_sim/rooms/{app_id}/{room_id}/leave", post(leave))
        .route("/_sim/rooms/{app_id}/{room_id}/messages", get(messages))
        .route("/_sim/callbacks/target", put(set_callback_target).delete(clear_callback_target))
        .route("/_sim/callbacks/deliveries", get(callback_deliveries))
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

/// The user IDs of an enter or leave request, checked like ZIM's (non-empty, ≤32 bytes, the ID charset): the
/// first one refused, in words.
fn checked_users(users: &[String]) -> Result<(), String> {
    for user in users {
        crate::zim::limits::check_id(user).map_err(|e| format!("user ID {user:?} {e}"))?;
    }
    Ok(())
}

fn moved(users: Option<Vec<String>>) -> Response {
    match users {
        Some(users) => Json(serde_json::json!({ "users": users })).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn enter(
    State(sim): State<Simulator>,
    Path((app_id, room_id)): Path<(u32, String)>,
    Json(users): Json<Vec<String>>,
) -> Response {
    if let Err(refused) = checked_users(&users) {
        return (StatusCode::BAD_REQUEST, refused).into_response();
    }
    moved(sim.enter_room(app_id, &room_id, &users))
}

async fn leave(
    State(sim): State<Simulator>,
    Path((app_id, room_id)): Path<(u32, String)>,
    Json(users): Json<Vec<String>>,
) -> Response {
    if let Err(refused) = checked_users(&users) {
        return (StatusCode::BAD_REQUEST, refused).into_response();
    }
    moved(sim.leave_room(app_id, &room_id, &users))
}

async fn messages(State(sim): State<Simulator>, Path((app_id, room_id)): Path<(u32, String)>) -> Response {
    Json(sim.room_messages(app_id, &room_id)).into_response()
}

#[derive(Deserialize)]
struct Target {
    url: String,
    secret: String,
    retry_after_ms: Option<Vec<u64>>,
}

async fn set_callback_target(State(sim): State<Simulator>, Json(t): Json<Target>) -> Response {
    let target = match CallbackTarget::new(&t.url, CallbackSecret::new(t.secret)) {
        Ok(target) => target,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    if let Some(ms) = t.retry_after_ms {
        sim.set_callback_retry(ms.into_iter().map(Duration::from_millis).collect());
    }
    sim.set_callback_target(Some(target));
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_callback_target(State(sim): State<Simulator>) -> StatusCode {
    sim.set_callback_target(None);
    StatusCode::NO_CONTENT
}

async fn callback_deliveries(State(sim): State<Simulator>, Query(q): Query<Since>) -> Response {
    Json(sim.callback_report(q.since)).into_response()
}
