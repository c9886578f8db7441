//! The simulator's whole mutable state, and the path of one request through it.
//!
//! [`SimState`] ties the parts together: the [`Gateway`] (secrets, signature, QPS windows), the [`Rooms`], the
//! [`FaultPlan`], the [`RequestLog`] and the [`Callbacks`]. A request over HTTP and a call of the in-memory
//! backend take the same path: draw a fault ([`SimState::begin`]) and let it act ([`SimState::before_action`]),
//! pass their own front door (the signature, or the credentials), then the rate window, the action and one log
//! entry ([`SimState::perform`]); what the rooms did becomes callbacks ([`SimState::settle`]).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::SimConfig;
use super::actions::Params;
use super::callbacks::Callbacks;
use super::faults::{Before, Fault, FaultPlan};
use super::gateway::{Gateway, HttpRequest, Refusal, query_value};
use super::log::RequestLog;
use super::rooms::Rooms;
use crate::zim::sign::Credentials;
use crate::zim::types::Action;

/// What [`SimState::begin`] decided for one request.
#[derive(Debug)]
pub(crate) struct Begun {
    /// The fault drawn, if any.
    pub fault: Option<Fault>,
    /// Latency to add before anything else, milliseconds.
    pub latency_ms: u64,
    /// Arrival time, milliseconds since the simulator started (for the log).
    pub arrived_ms: u64,
}

impl Begun {
    /// The answer to send for `response`: the response itself, or what the drawn fault makes of it, after the
    /// fault's delay.
    pub(crate) async fn answer(&self, response: Value) -> super::faults::Answer {
        match &self.fault {
            Some(fault) => {
                let (wait_ms, answer) = fault.after(response);
                if wait_ms > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(wait_ms)).await;
                }
                answer
            }
            None => super::faults::Answer::Json(response),
        }
    }
}

/// The whole mutable state.
pub(crate) struct SimState {
    pub(crate) gateway: Gateway,
    pub(crate) rooms: Rooms,
    pub(crate) faults: FaultPlan,
    pub(crate) log: RequestLog,
    pub(crate) callbacks: Callbacks,
    /// Draws faults and request ids; seeded from the fault plan for repeatable runs.
    rng: StdRng,
}

/// A response: Code, Message, RequestId, and `extra`'s fields.
fn reply(code: i64, message: &str, request_id: &str, extra: Value) -> Value {
    let mut v = json!({"Code": code, "Message": message, "RequestId": request_id});
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    v
}

fn wall_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}

/// The RoomId a request names, for the log: from the query, else from a JSON body.
pub(crate) fn logged_room_id(query: &[(String, String)], body: &Value) -> String {
    query_value(query, "RoomId")
        .or_else(|| body.get("RoomId").and_then(Value::as_str))
        .unwrap_or("")
        .to_owned()
}

impl SimState {
    /// A fresh state for `config`.
    pub(crate) fn new(config: SimConfig) -> Self {
        let seed = config.faults.seed.unwrap_or_else(rand::random);
        Self {
            gateway: Gateway::new(config.apps, config.qps),
            rooms: Rooms::new(config.room_quota),
            faults: config.faults,
            log: RequestLog::new(),
            callbacks: Callbacks::new(config.callbacks),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Replaces the fault plan (and reseeds the draw when the plan has a seed).
    pub(crate) fn set_faults(&mut self, plan: FaultPlan) {
        if let Some(seed) = plan.seed {
            self.rng = StdRng::seed_from_u64(seed);
        }
        self.faults = plan;
    }

    /// Sets the per-action QPS limit (0: none) and the room quota.
    pub(crate) fn set_limits(&mut self, qps: Option<u32>, room_quota: Option<usize>) {
        if let Some(q) = qps {
            self.gateway.set_qps(q);
        }
        if let Some(q) = room_quota {
            self.rooms.room_quota = q;
        }
    }

    /// The first step of every request: note its arrival and draw its fault.
    pub(crate) fn begin(&mut self, action: &str) -> Begun {
        let fault = self.faults.draw(&mut self.rng, action);
        Begun { fault, latency_ms: self.faults.latency_ms, arrived_ms: self.log.now_ms() }
    }

    /// What the drawn fault (if any) does before the action. A fault that answers instead of the action is
    /// logged here, with the code it answers (or -1 at the HTTP level).
    pub(crate) fn before_action(
        &mut self,
        begun: &Begun,
        action: &str,
        app_id: u32,
        room_id: &str,
    ) -> Before {
        let Some(fault) = &begun.fault else { return Before::Proceed };
        let step = fault.before(&(rand::random::<u64>() >> 4).to_string());
        if matches!(step, Before::Answer(_)) {
            self.log.record(begun.arrived_ms, action, app_id, room_id, fault.logged_code(), Some(fault));
        }
        step
    }

    /// A fresh RequestId (ZEGO's are long decimal strings).
    pub(crate) fn request_id(&mut self) -> String {
        (self.rng.random::<u64>() >> 4).to_string()
    }

    /// Handles an HTTP request after its fault (if any) was dealt with: the gateway, then [`Self::perform`].
    /// Returns the response and its code.
    pub(crate) fn handle_http(&mut self, req: &HttpRequest<'_>, begun: &Begun) -> (Value, i64) {
        let rid = self.request_id();
        let action_name = query_value(req.query, "Action").unwrap_or("");
        let app_id = query_value(req.query, "AppId").and_then(|v| v.parse().ok()).unwrap_or(0);
        match self.gateway.admit_http(req, wall_unix()) {
            Ok(admitted) => {
                let params = Params { query: req.query, body: &admitted.body };
                self.perform(&rid, admitted.app_id, admitted.action, &params, begun)
            }
            Err(refusal) => {
                let body = serde_json::from_slice(req.body).unwrap_or(Value::Null);
                let room_id = logged_room_id(req.query, &body);
                self.refused(&rid, action_name, app_id, &room_id, refusal, begun)
            }
        }
    }

    /// Handles an in-memory call: the credentials stand in for the signature, then [`Self::perform`].
    pub(crate) fn handle_in_memory(
        &mut self,
        credentials: &Credentials,
        action: Action,
        params: &Params<'_>,
        begun: &Begun,
    ) -> (Value, i64) {
        let rid = self.request_id();
        match self.gateway.admit_credentials(credentials) {
            Ok(()) => self.perform(&rid, credentials.app_id, action, params, begun),
            Err(refusal) => {
                let room_id = logged_room_id(params.query, params.body);
                self.refused(&rid, action.as_str(), credentials.app_id, &room_id, refusal, begun)
            }
        }
    }

    /// An admitted request: the rate window, then the action; logged either way.
    fn perform(
        &mut self,
        rid: &str,
        app_id: u32,
        action: Action,
        params: &Params<'_>,
        begun: &Begun,
    ) -> (Value, i64) {
        let room_id = logged_room_id(params.query, params.body);
        if let Err(refusal) = self.gateway.admit_rate(app_id, action, Instant::now()) {
            return self.refused(rid, action.as_str(), app_id, &room_id, refusal, begun);
        }
        let (response, code) = match self.rooms.perform(app_id, action, params) {
            Ok(extra) => (reply(0, "success", rid, extra), 0),
            Err(f) => (reply(f.code, &f.message, rid, f.extra), f.code),
        };
        self.log.record(begun.arrived_ms, action.as_str(), app_id, &room_id, code, begun.fault.as_ref());
        (response, code)
    }

    /// Deals with what the rooms did since the last call: each created or destroyed room becomes a callback
    /// when a target is set.
    pub(crate) fn settle(&mut self) {
        let effects = self.rooms.take_effects();
        if effects.is_empty() || self.callbacks.target().is_none() {
            return;
        }
        let now = wall_unix();
        for effect in &effects {
            self.callbacks.enqueue(effect, now);
        }
    }

    fn refused(
        &mut self,
        rid: &str,
        action: &str,
        app_id: u32,
        room_id: &str,
        refusal: Refusal,
        begun: &Begun,
    ) -> (Value, i64) {
        self.log.record(begun.arrived_ms, action, app_id, room_id, refusal.code, begun.fault.as_ref());
        (reply(refusal.code, refusal.message, rid, json!({})), refusal.code)
    }
}
