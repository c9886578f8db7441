//! The simulator's state and the documented behaviour of each operation, free of HTTP.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::zim::codes;
use crate::zim::limits::{self, check_id};
use crate::zim::sign::{self, ServerSecret};
use crate::zim::types::Action;

/// Seconds of clock difference the signature check tolerates.
pub const SIGNATURE_WINDOW_SECS: i64 = 600;

/// A fault to inject into one request.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer this ZIM code without doing anything.
    Code {
        /// The code.
        code: i64,
    },
    /// Answer this HTTP status with an empty body.
    HttpStatus {
        /// The status.
        status: u16,
    },
    /// Break the connection after the headers.
    Drop,
    /// Answer 200 with a body that is not JSON.
    Malformed,
    /// Wait this long, then process the request normally.
    Delay {
        /// Milliseconds.
        ms: u64,
    },
    /// Process the request, then wait this long before answering (the effect happens; the answer is late).
    DelayReply {
        /// Milliseconds.
        ms: u64,
    },
}

impl Fault {
    /// Parses a preset name: `busy`, `internal`, `throttle`, `5xx`, `drop`, `malformed`, `timeout`, or a code.
    pub fn preset(name: &str) -> Option<Fault> {
        Some(match name {
            "busy" => Fault::Code { code: 1 },
            "internal" => Fault::Code { code: 660000001 },
            "throttle" => Fault::Code { code: codes::RATE_LIMITED_APP },
            "5xx" => Fault::HttpStatus { status: 503 },
            "drop" => Fault::Drop,
            "malformed" => Fault::Malformed,
            "timeout" => Fault::Delay { ms: 15_000 },
            other => Fault::Code { code: other.parse().ok()? },
        })
    }

    fn label(&self) -> String {
        match self {
            Fault::Code { code } => format!("code_{code}"),
            Fault::HttpStatus { status } => format!("http_{status}"),
            Fault::Drop => "drop".into(),
            Fault::Malformed => "malformed".into(),
            Fault::Delay { ms } => format!("delay_{ms}ms"),
            Fault::DelayReply { ms } => format!("delay_reply_{ms}ms"),
        }
    }
}

/// Which faults to inject.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultPlan {
    /// Probability in 0..=1 that a request gets one of `kinds`.
    pub rate: f64,
    /// The faults drawn from at `rate`.
    pub kinds: Vec<Fault>,
    /// Only these actions are affected (empty: all).
    pub actions: Vec<String>,
    /// Faults for the next matching requests, in order, before `rate` applies.
    pub next: VecDeque<Fault>,
    /// Latency added to every request, milliseconds.
    pub latency_ms: u64,
    /// Seed of the fault draw, for repeatable runs.
    pub seed: Option<u64>,
}

/// The simulator's configuration.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Applications: AppId and server secret.
    pub apps: Vec<(u32, ServerSecret)>,
    /// Calls per second per (AppId, Action); 0 disables the limit.
    pub qps: u32,
    /// Live rooms allowed per app.
    pub room_quota: usize,
    /// Faults to inject.
    pub faults: FaultPlan,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self { apps: Vec::new(), qps: 20, room_quota: 100_000, faults: FaultPlan::default() }
    }
}

/// One line of the request log (no secrets: no signature, nonce or URL).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LogEntry {
    /// 1, 2, 3, … in arrival order.
    pub seq: u64,
    /// Milliseconds since the simulator started, when the request arrived.
    pub at_ms: u64,
    /// The Action query value (empty if missing).
    pub action: String,
    /// AppId (0 if missing or malformed).
    pub app_id: u32,
    /// RoomId of the request, if any.
    pub room_id: String,
    /// The code answered, or -1 when a fault answered at the HTTP level.
    pub code: i64,
    /// The injected fault, if any.
    pub fault: Option<String>,
}

/// A room as the simulator holds it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RoomView {
    /// Room ID.
    pub room_id: String,
    /// Room name.
    pub room_name: String,
    /// DestroyDelayTime, seconds.
    pub destroy_delay_time: u32,
    /// Attributes by key: (value, auto_delete).
    pub attributes: BTreeMap<String, String>,
    /// AttributeSeq.
    pub attribute_seq: i64,
    /// Users in the room.
    pub users: BTreeSet<String>,
}

#[derive(Clone, Debug)]
struct Attr {
    value: String,
    seq: i64,
    auto_delete: u8,
}

#[derive(Clone, Debug)]
struct Room {
    name: String,
    delay: u32,
    empty_since: f64,
    attributes: BTreeMap<String, Attr>,
    seq: i64,
    users: BTreeSet<String>,
}

impl Room {
    fn live(&self, now: f64) -> bool {
        !self.users.is_empty() || now < self.empty_since + f64::from(self.delay)
    }

    fn view(&self, room_id: &str) -> RoomView {
        RoomView {
            room_id: room_id.to_owned(),
            room_name: self.name.clone(),
            destroy_delay_time: self.delay,
            attributes: self.attributes.iter().map(|(k, a)| (k.clone(), a.value.clone())).collect(),
            attribute_seq: self.seq,
            users: self.users.clone(),
        }
    }
}

#[derive(Default)]
struct App {
    secret: Option<ServerSecret>,
    users: HashSet<String>,
    rooms: HashMap<String, Room>,
}

/// What the HTTP layer should answer.
#[derive(Debug)]
pub enum Reply {
    /// HTTP 200 with this JSON.
    Json(Value),
    /// A fault at the HTTP level.
    Fault(Fault),
}

/// The whole mutable state.
pub struct SimState {
    apps: HashMap<u32, App>,
    qps: u32,
    room_quota: usize,
    faults: FaultPlan,
    rng: StdRng,
    windows: HashMap<(u32, String), VecDeque<Instant>>,
    clock_offset: f64,
    started: Instant,
    log: Vec<LogEntry>,
    signatures: Vec<String>,
}

/// The parsed parts of one API request.
pub struct ApiRequest<'a> {
    /// Query pairs, in order.
    pub query: &'a [(String, String)],
    /// Body, for POST.
    pub body: Option<&'a [u8]>,
    /// Whether the request was a POST.
    pub is_post: bool,
    /// The Content-Type header.
    pub content_type: Option<&'a str>,
}

fn reply(code: i64, message: &str, request_id: &str, extra: Value) -> Value {
    let mut v = json!({"Code": code, "Message": message, "RequestId": request_id});
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    v
}

fn wall_seconds() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}

impl SimState {
    /// A fresh state for `config`.
    pub fn new(config: SimConfig) -> Self {
        let seed = config.faults.seed.unwrap_or_else(rand::random);
        let mut apps = HashMap::new();
        for (id, secret) in config.apps {
            apps.insert(id, App { secret: Some(secret), ..Default::default() });
        }
        Self {
            apps,
            qps: config.qps,
            room_quota: config.room_quota,
            faults: config.faults,
            rng: StdRng::seed_from_u64(seed),
            windows: HashMap::new(),
            clock_offset: 0.0,
            started: Instant::now(),
            log: Vec::new(),
            signatures: Vec::new(),
        }
    }

    /// The room clock: wall time plus everything tests advanced it by.
    pub fn room_now(&self) -> f64 {
        wall_seconds() + self.clock_offset
    }

    /// Moves the room clock forward (signatures keep using the wall clock).
    pub fn advance_clock(&mut self, seconds: f64) {
        self.clock_offset += seconds.max(0.0);
    }

    /// Replaces the fault plan.
    pub fn set_faults(&mut self, plan: FaultPlan) {
        if let Some(seed) = plan.seed {
            self.rng = StdRng::seed_from_u64(seed);
        }
        self.faults = plan;
    }

    /// Sets the per-action QPS limit (0: none) and the room quota.
    pub fn set_limits(&mut self, qps: Option<u32>, room_quota: Option<usize>) {
        if let Some(q) = qps {
            self.qps = q;
            self.windows.clear();
        }
        if let Some(q) = room_quota {
            self.room_quota = q;
        }
    }

    /// The request log from entry `since` (exclusive) on.
    pub fn log_since(&self, since: u64) -> Vec<LogEntry> {
        let start = self.log.partition_point(|e| e.seq <= since);
        self.log[start..].to_vec()
    }

    /// Creates a room directly, as if someone else had created it.
    pub fn seed_room(
        &mut self,
        app_id: u32,
        room_id: &str,
        name: &str,
        delay: u32,
        attributes: &[(String, String)],
    ) {
        let now = self.room_now();
        let app = self.apps.entry(app_id).or_default();
        let mut room = Room {
            name: name.into(),
            delay,
            empty_since: now,
            attributes: BTreeMap::new(),
            seq: 0,
            users: BTreeSet::new(),
        };
        for (k, v) in attributes {
            room.seq += 1;
            room.attributes.insert(k.clone(), Attr { value: v.clone(), seq: room.seq, auto_delete: 0 });
        }
        app.rooms.insert(room_id.to_owned(), room);
    }

    /// Destroys a room directly; returns whether it existed.
    pub fn remove_room(&mut self, app_id: u32, room_id: &str) -> bool {
        let now = self.room_now();
        let Some(app) = self.apps.get_mut(&app_id) else { return false };
        app.rooms.remove(room_id).is_some_and(|r| r.live(now))
    }

    /// Sets the users in a room (users joining and leaving). A room that becomes empty starts its delay now.
    pub fn set_room_users(&mut self, app_id: u32, room_id: &str, users: BTreeSet<String>) -> bool {
        let now = self.room_now();
        let Some(room) = self.live_room_mut(app_id, room_id, now) else { return false };
        if users.is_empty() && !room.users.is_empty() {
            room.empty_since = now;
        }
        room.users = users;
        true
    }

    /// A live room's view.
    pub fn room(&self, app_id: u32, room_id: &str) -> Option<RoomView> {
        let now = self.room_now();
        let room = self.apps.get(&app_id)?.rooms.get(room_id)?;
        room.live(now).then(|| room.view(room_id))
    }

    /// Every live room of an app.
    pub fn rooms(&self, app_id: u32) -> Vec<RoomView> {
        let now = self.room_now();
        let mut rooms: Vec<RoomView> = self
            .apps
            .get(&app_id)
            .map(|a| a.rooms.iter().filter(|(_, r)| r.live(now)).map(|(id, r)| r.view(id)).collect())
            .unwrap_or_default();
        rooms.sort_by(|a, b| a.room_id.cmp(&b.room_id));
        rooms
    }

    /// Whether `user` is registered in `app_id`.
    pub fn is_registered(&self, app_id: u32, user: &str) -> bool {
        self.apps.get(&app_id).is_some_and(|a| a.users.contains(user))
    }

    fn live_room_mut(&mut self, app_id: u32, room_id: &str, now: f64) -> Option<&mut Room> {
        let app = self.apps.get_mut(&app_id)?;
        let live = app.rooms.get(room_id).is_some_and(|r| r.live(now));
        if !live {
            app.rooms.remove(room_id);
            return None;
        }
        app.rooms.get_mut(room_id)
    }

    fn request_id(&mut self) -> String {
        // ZEGO's request ids are long decimal strings.
        (self.rng.random::<u64>() >> 4).to_string()
    }

    /// Decides a fault for this request, if any. Called before anything else.
    pub fn draw_fault(&mut self, action: &str) -> Option<Fault> {
        let plan = &mut self.faults;
        if !plan.actions.is_empty() && !plan.actions.iter().any(|a| a == action) {
            return None;
        }
        if let Some(f) = plan.next.pop_front() {
            return Some(f);
        }
        if plan.rate > 0.0 && !plan.kinds.is_empty() && self.rng.random::<f64>() < plan.rate {
            let i = self.rng.random_range(0..plan.kinds.len());
            return Some(self.faults.kinds[i].clone());
        }
        None
    }

    /// Latency to add to every request.
    pub fn latency_ms(&self) -> u64 {
        self.faults.latency_ms
    }

    /// Milliseconds since the simulator started.
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Every signature received, kept in memory only (never logged) so tests can prove none leaks elsewhere.
    pub fn signatures(&self) -> Vec<String> {
        self.signatures.clone()
    }

    /// Remembers a received signature (see [`SimState::signatures`]).
    pub fn remember_signature(&mut self, signature: &str) {
        if !signature.is_empty() && self.signatures.len() < 100_000 {
            self.signatures.push(signature.to_owned());
        }
    }

    /// Records one request in the log; `at_ms` is its arrival time.
    pub fn record(
        &mut self,
        at_ms: u64,
        action: &str,
        app_id: u32,
        room_id: &str,
        code: i64,
        fault: Option<&Fault>,
    ) {
        let seq = self.log.len() as u64 + 1;
        tracing::info!(target: "zim_sim", seq, action, app_id, room_id, code, fault = ?fault.map(Fault::label), "request");
        self.log.push(LogEntry {
            seq,
            at_ms,
            action: action.to_owned(),
            app_id,
            room_id: room_id.to_owned(),
            code,
            fault: fault.map(Fault::label),
        });
    }

    /// Handles one API request after any fault was drawn. Returns the JSON and the code for the log.
    pub fn handle(&mut self, req: &ApiRequest<'_>) -> (Value, i64) {
        let rid = self.request_id();
        let answer = |code: i64, msg: &str| (reply(code, msg, &rid, json!({})), code);
        let get = |k: &str| req.query.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());

        // Public parameters, in the order the gateway documents its codes.
        let action_name = get("Action").unwrap_or("");
        if action_name.is_empty() {
            return answer(100000006, "Action is empty");
        }
        let Some(app_id) = get("AppId").and_then(|s| s.parse::<u32>().ok()) else {
            return answer(100000001, "AppId format error");
        };
        let Some(ts) = get("Timestamp").filter(|s| !s.is_empty()) else {
            return answer(100000002, "Timestamp is empty");
        };
        let Ok(ts) = ts.parse::<i64>() else { return answer(100000003, "Timestamp format error") };
        let nonce = get("SignatureNonce").unwrap_or("");
        if nonce.is_empty() {
            return answer(100000008, "SignatureNonce is empty");
        }
        let signature = get("Signature").unwrap_or("");
        if signature.is_empty() {
            return answer(100000009, "Signature is empty");
        }
        match get("SignatureVersion") {
            None | Some("") => return answer(100000013, "SignatureVersion is empty"),
            Some(sign::SIGNATURE_VERSION) => {}
            Some(_) => return answer(100000014, "SignatureVersion not supported"),
        }
        // The current docs define the nonce as 8 random bytes in hex; enforcement upstream is UNCONFIRMED, the
        // simulator is strict so that a client that gets it wrong finds out here.
        if nonce.len() != 16 || !nonce.chars().all(|c| c.is_ascii_hexdigit()) {
            return answer(2, "SignatureNonce must be 16 hex characters");
        }
        let Some(secret) = self.apps.get(&app_id).and_then(|a| a.secret.clone()) else {
            return answer(100000010, "failed to get ServerSecret");
        };
        if (wall_seconds() as i64 - ts).abs() > SIGNATURE_WINDOW_SECS {
            return answer(codes::SIGNATURE_EXPIRED, "signature expired");
        }
        if sign::signature(app_id, nonce, secret.expose(), ts) != signature.to_ascii_lowercase() {
            return answer(codes::SIGNATURE_WRONG, "signature error");
        }
        let Some(action) = Action::parse(action_name) else {
            return answer(100000007, "unsupported Action");
        };

        // Business parameters: the query for GET, a JSON body for POST.
        let body: Value = if action.is_post() {
            if !req.is_post {
                return answer(codes::INVALID_PARAMS, "this Action must be called with POST");
            }
            if !req
                .content_type
                .is_some_and(|c| c.trim().to_ascii_lowercase().starts_with("application/json"))
            {
                return answer(codes::INVALID_PARAMS, "Content-Type must be application/json");
            }
            match serde_json::from_slice(req.body.unwrap_or_default()) {
                Ok(v @ Value::Object(_)) => v,
                _ => return answer(codes::INVALID_PARAMS, "body is not a JSON object"),
            }
        } else {
            Value::Null
        };

        // Rate limit per (AppId, Action): never more than `qps` accepted calls in any one-second window.
        if self.qps > 0 {
            let now = Instant::now();
            let window = self.windows.entry((app_id, action_name.to_owned())).or_default();
            while window.front().is_some_and(|t| now.duration_since(*t).as_secs_f64() >= 1.0) {
                window.pop_front();
            }
            if window.len() >= self.qps as usize {
                let code = match action {
                    Action::QueryRoomUserList => codes::RATE_LIMITED_ROOM,
                    Action::UserRegister => codes::REGISTER_RATE_LIMITED,
                    _ => codes::RATE_LIMITED_APP,
                };
                return answer(code, "call frequency limit exceeded");
            }
            window.push_back(now);
        }

        let result = match action {
            Action::UserRegister => self.user_register(app_id, &body),
            Action::CreateRoom => self.create_room(app_id, &body),
            Action::DestroyRoom => self.destroy_room(app_id, get("RoomId"), get("FromUserId")),
            Action::ModifyRoomAttribute => self.modify_room_attribute(app_id, &body),
            Action::QueryRoomAttribute => self.query_room_attribute(app_id, &body),
            Action::QueryRoomUserList => {
                self.query_room_user_list(app_id, get("RoomId"), get("NextFlag"), get("Limit"))
            }
        };
        match result {
            Ok(extra) => (reply(0, "success", &rid, extra), 0),
            Err((code, msg, extra)) => (reply(code, &msg, &rid, extra), code),
        }
    }

    fn check_operator(&self, app_id: u32, from: Option<&str>) -> Result<(), Failure> {
        let from = from.ok_or_else(|| invalid("FromUserId is required"))?;
        check_id(from).map_err(|e| invalid(&format!("FromUserId {e}")))?;
        if !self.is_registered(app_id, from) {
            return Err(invalid("FromUserId is not registered"));
        }
        Ok(())
    }

    fn user_register(&mut self, app_id: u32, body: &Value) -> Result<Value, Failure> {
        let users =
            body.get("UserInfo").and_then(Value::as_array).ok_or_else(|| invalid("UserInfo is required"))?;
        if users.is_empty() || users.len() > 100 {
            return Err(invalid("UserInfo must hold 1 to 100 users"));
        }
        let app = self.apps.entry(app_id).or_default();
        let mut errors = Vec::new();
        let mut ok = 0;
        for u in users {
            let id = u.get("UserId").and_then(Value::as_str).unwrap_or("");
            let name_len = u.get("UserName").and_then(Value::as_str).map_or(0, str::len);
            let avatar_len = u.get("UserAvatar").and_then(Value::as_str).map_or(0, str::len);
            let sub = if id.len() > limits::MAX_ID_BYTES {
                Some((660000012, "UserId too long"))
            } else if check_id(id).is_err() || name_len > 256 || avatar_len > 500 {
                Some((codes::INVALID_PARAMS, "invalid user"))
            } else if !app.users.insert(id.to_owned()) {
                Some((codes::USER_EXISTS, "user already exists"))
            } else {
                None
            };
            match sub {
                Some((code, msg)) => errors.push(json!({"UserId": id, "SubCode": code, "SubMessage": msg})),
                None => ok += 1,
            }
        }
        if ok == 0 {
            let code = errors[0]["SubCode"].as_i64().unwrap_or(codes::INVALID_PARAMS);
            return Err((code, "register failed".into(), json!({ "ErrorList": errors })));
        }
        Ok(json!({ "ErrorList": errors }))
    }

    fn create_room(&mut self, app_id: u32, body: &Value) -> Result<Value, Failure> {
        self.check_operator(app_id, body.get("FromUserId").and_then(Value::as_str))?;
        let room_id =
            body.get("RoomId").and_then(Value::as_str).ok_or_else(|| invalid("RoomId is required"))?;
        check_id(room_id).map_err(|e| invalid(&format!("RoomId {e}")))?;
        let name = match body.get("RoomName") {
            None | Some(Value::Null) => "",
            Some(Value::String(s)) if s.len() <= limits::MAX_ROOM_NAME_BYTES => s.as_str(),
            Some(_) => return Err(invalid("RoomName must be a string of at most 64 bytes")),
        };
        let delay = match body.get("DestroyDelayTime") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_f64()
                .filter(|f| f.fract() == 0.0 && (0.0..=f64::from(limits::MAX_DESTROY_DELAY_SECS)).contains(f))
                .map(|f| f as u32)
                .ok_or_else(|| invalid("DestroyDelayTime must be a whole number from 0 to 10800"))?,
        };
        let attrs = parse_create_attributes(body.get("Attributes"))?;
        let now = self.room_now();
        let quota = self.room_quota;
        let app = self.apps.entry(app_id).or_default();
        app.rooms.retain(|_, r| r.live(now));
        if app.rooms.contains_key(room_id) {
            return Err((codes::ROOM_EXISTS, "room already exists".into(), json!({})));
        }
        if app.rooms.len() >= quota {
            return Err((codes::ROOM_QUOTA, "room count exceeds the limit".into(), json!({})));
        }
        let mut room = Room {
            name: name.to_owned(),
            delay,
            empty_since: now,
            attributes: BTreeMap::new(),
            seq: 0,
            users: BTreeSet::new(),
        };
        for (key, value, auto_delete) in attrs {
            room.seq += 1;
            room.attributes.insert(key, Attr { value, seq: room.seq, auto_delete });
        }
        let seq = room.seq;
        app.rooms.insert(room_id.to_owned(), room);
        Ok(json!({ "AttributeSeq": seq }))
    }

    fn destroy_room(
        &mut self,
        app_id: u32,
        room_id: Option<&str>,
        from: Option<&str>,
    ) -> Result<Value, Failure> {
        let room_id = room_id.ok_or_else(|| invalid("RoomId is required"))?;
        check_id(room_id).map_err(|e| invalid(&format!("RoomId {e}")))?;
        if from.is_some() {
            self.check_operator(app_id, from)?;
        }
        if self.remove_room(app_id, room_id) { Ok(json!({})) } else { Err(not_found()) }
    }

    fn modify_room_attribute(&mut self, app_id: u32, body: &Value) -> Result<Value, Failure> {
        self.check_operator(app_id, body.get("FromUserId").and_then(Value::as_str))?;
        let room_id =
            body.get("RoomId").and_then(Value::as_str).ok_or_else(|| invalid("RoomId is required"))?;
        check_id(room_id).map_err(|e| invalid(&format!("RoomId {e}")))?;
        let items = body
            .get("Attributes")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| invalid("Attributes is required"))?;
        let now = self.room_now();
        let room = self.live_room_mut(app_id, room_id, now).ok_or_else(not_found)?;
        let (mut succ, mut errs) = (Vec::new(), Vec::new());
        for item in items {
            let key = item.get("Key").and_then(Value::as_str).unwrap_or("");
            let stop = item.get("StopOnError").and_then(Value::as_i64) == Some(1);
            let action = item.get("Action").and_then(Value::as_i64);
            let value = item.get("Value").and_then(Value::as_str).unwrap_or("");
            let auto_delete = item.get("AutoDelete").and_then(Value::as_i64).unwrap_or(0);
            let others: usize =
                room.attributes.iter().filter(|(k, _)| k.as_str() != key).map(|(_, a)| a.value.len()).sum();
            let ok = !key.is_empty()
                && key.len() <= limits::MAX_ATTRIBUTE_KEY_BYTES
                && match action {
                    Some(0) => {
                        value.len() <= limits::MAX_ATTRIBUTE_VALUE_BYTES
                            && others + value.len() <= limits::MAX_ATTRIBUTE_TOTAL_BYTES
                            && matches!(auto_delete, 0 | 1)
                            && (room.attributes.contains_key(key)
                                || room.attributes.len() < limits::MAX_ATTRIBUTES)
                    }
                    Some(1) => true,
                    _ => false,
                };
            if !ok {
                errs.push(json!({"SubCode": codes::INVALID_PARAMS, "Key": key}));
                if stop {
                    break;
                }
                continue;
            }
            if action == Some(0) {
                room.seq += 1;
                room.attributes.insert(
                    key.to_owned(),
                    Attr { value: value.to_owned(), seq: room.seq, auto_delete: auto_delete as u8 },
                );
            } else if room.attributes.remove(key).is_some() {
                room.seq += 1;
            }
            succ.push(json!({"Key": key, "Seq": room.seq}));
        }
        let extra = json!({"AttributeSeq": room.seq, "SuccKeyList": succ, "ErrKeyList": errs});
        if succ.is_empty() {
            return Err((codes::INVALID_PARAMS, "no attribute could be changed".into(), extra));
        }
        Ok(extra)
    }

    fn query_room_attribute(&mut self, app_id: u32, body: &Value) -> Result<Value, Failure> {
        self.check_operator(app_id, body.get("FromUserId").and_then(Value::as_str))?;
        let room_id =
            body.get("RoomId").and_then(Value::as_str).ok_or_else(|| invalid("RoomId is required"))?;
        check_id(room_id).map_err(|e| invalid(&format!("RoomId {e}")))?;
        let now = self.room_now();
        let room = self.live_room_mut(app_id, room_id, now).ok_or_else(not_found)?;
        let attrs: Vec<Value> = room
            .attributes
            .iter()
            .map(|(k, a)| json!({"Key": k, "Value": a.value, "Seq": a.seq, "AutoDelete": a.auto_delete}))
            .collect();
        Ok(json!({"AttributeSeq": room.seq, "Attributes": attrs}))
    }

    fn query_room_user_list(
        &mut self,
        app_id: u32,
        room_id: Option<&str>,
        next: Option<&str>,
        limit: Option<&str>,
    ) -> Result<Value, Failure> {
        let room_id = room_id.ok_or_else(|| invalid("RoomId is required"))?;
        check_id(room_id).map_err(|e| invalid(&format!("RoomId {e}")))?;
        let limit = match limit.filter(|s| !s.is_empty()).map(str::parse::<u64>) {
            None => 500,
            Some(Ok(n)) if n == 0 || n > 500 => 500,
            Some(Ok(n)) => n as usize,
            Some(Err(_)) => return Err(invalid("Limit must be a number")),
        };
        let offset = match next.filter(|s| !s.is_empty() && *s != "0").map(str::parse::<usize>) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(_)) => return Err(invalid("NextFlag is not valid")),
        };
        let now = self.room_now();
        let room = self.live_room_mut(app_id, room_id, now).ok_or_else(not_found)?;
        if room.users.is_empty() {
            return Err((codes::ROOM_EMPTY, "room user list is empty".into(), json!({})));
        }
        let users: Vec<Value> =
            room.users.iter().skip(offset).take(limit).map(|u| json!({"UserId": u, "UserName": u})).collect();
        let next_flag = if offset + users.len() < room.users.len() {
            (offset + users.len()).to_string()
        } else {
            String::new()
        };
        Ok(json!({"Count": room.users.len(), "NextFlag": next_flag, "UserList": users}))
    }
}

type Failure = (i64, String, Value);

fn invalid(msg: &str) -> Failure {
    (codes::INVALID_PARAMS, msg.to_owned(), json!({}))
}

fn not_found() -> Failure {
    (codes::ROOM_NOT_FOUND, "room does not exist".into(), json!({}))
}

fn parse_create_attributes(v: Option<&Value>) -> Result<Vec<(String, String, u8)>, Failure> {
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(invalid("Attributes must be an array")),
    };
    if items.len() > limits::MAX_ATTRIBUTES {
        return Err(invalid("more than 20 attributes"));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut out = Vec::new();
    for item in items {
        let key =
            item.get("Key").and_then(Value::as_str).ok_or_else(|| invalid("attribute Key is required"))?;
        let value = item
            .get("Value")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("attribute Value is required"))?;
        let auto_delete = match item.get("AutoDelete").map(Value::as_i64) {
            None => 0,
            Some(Some(n @ (0 | 1))) => n as u8,
            Some(_) => return Err(invalid("AutoDelete must be 0 or 1")),
        };
        if key.is_empty() || key.len() > limits::MAX_ATTRIBUTE_KEY_BYTES || !seen.insert(key) {
            return Err(invalid("attribute keys must be unique, non-empty and at most 16 bytes"));
        }
        if value.len() > limits::MAX_ATTRIBUTE_VALUE_BYTES {
            return Err(invalid("attribute values must be at most 1024 bytes"));
        }
        total += value.len();
        out.push((key.to_owned(), value.to_owned(), auto_delete));
    }
    if total > limits::MAX_ATTRIBUTE_TOTAL_BYTES {
        return Err(invalid("attribute values exceed 5120 bytes in total"));
    }
    Ok(out)
}
