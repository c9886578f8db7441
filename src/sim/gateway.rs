//! The simulated ZIM gateway: what happens to a request before any room rule applies.
//!
//! - the public parameters and the signature, checked in the order of the gateway codes on ZEGO's "Return codes"
//!   page: Action, AppId, Timestamp, SignatureNonce, Signature, SignatureVersion, then the
//!   secret, the ±10-minute window and the md5 signature itself, then whether the Action exists;
//! - parameter placement: a GET carries everything in the query; a POST carries `Action` and the public parameters
//!   in the query and its business parameters in a JSON body sent as `application/json` (ZEGO's "Accessing server APIs" page);
//! - the QPS window per (AppId, Action): never more than the limit of accepted calls in any one-second window,
//!   the strictest reading of ZEGO's "20 times/second" (ZEGO's stated frequency limit; "10 times/s" for
//!   SendRoomMessage, which gets half the configured limit).
//!
//! Everything here is a pure function of the request, the known secrets and the clock passed in.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::zim::codes;
use crate::zim::limits;
use crate::zim::sign::{self, Credentials, ServerSecret};
use crate::zim::types::Action;

/// Seconds of clock difference the signature check tolerates.
pub const SIGNATURE_WINDOW_SECS: i64 = 600;

/// A request as it arrived over HTTP.
pub(crate) struct HttpRequest<'a> {
    /// Query pairs, in order, decoded.
    pub query: &'a [(String, String)],
    /// The body (empty for a GET).
    pub body: &'a [u8],
    /// Whether the request was a POST.
    pub is_post: bool,
    /// The Content-Type header.
    pub content_type: Option<&'a str>,
}

/// A request the gateway let through.
#[derive(Debug)]
pub(crate) struct Admitted {
    /// Its AppId.
    pub app_id: u32,
    /// Its action.
    pub action: Action,
    /// The JSON body of a POST; `Value::Null` for a GET.
    pub body: Value,
}

/// The gateway's answer to a request it refuses.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The code.
    pub code: i64,
    /// The message.
    pub message: &'static str,
}

fn refuse<T>(code: i64, message: &'static str) -> Result<T, Refusal> {
    Err(Refusal { code, message })
}

/// The value of `key` in decoded query pairs (the first one).
pub(crate) fn query_value<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The gateway's state: the apps' secrets and the QPS windows.
pub(crate) struct Gateway {
    secrets: HashMap<u32, ServerSecret>,
    qps: u32,
    windows: HashMap<(u32, Action), VecDeque<Instant>>,
}

impl Gateway {
    /// A gateway that knows `apps` and allows `qps` calls per (AppId, Action) per second (0: no limit).
    pub(crate) fn new(apps: Vec<(u32, ServerSecret)>, qps: u32) -> Self {
        Self { secrets: apps.into_iter().collect(), qps, windows: HashMap::new() }
    }

    /// Replaces `app_id`'s server secret, as a new one generated in ZEGO's console does: requests signed with the
    /// old one are refused from now on.
    pub(crate) fn set_secret(&mut self, app_id: u32, secret: ServerSecret) {
        self.secrets.insert(app_id, secret);
    }

    /// Changes the QPS limit (0: none) and forgets the windows counted so far.
    pub(crate) fn set_qps(&mut self, qps: u32) {
        self.qps = qps;
        self.windows.clear();
    }

    /// Checks an HTTP request's public parameters, signature and parameter placement at wall time `now_unix`.
    pub(crate) fn admit_http(&self, req: &HttpRequest<'_>, now_unix: i64) -> Result<Admitted, Refusal> {
        let get = |k: &str| query_value(req.query, k);
        let action_name = get("Action").unwrap_or("");
        if action_name.is_empty() {
            return refuse(100000006, "Action is empty");
        }
        let Some(app_id) = get("AppId").and_then(|s| s.parse::<u32>().ok()) else {
            return refuse(100000001, "AppId format error");
        };
        let Some(ts) = get("Timestamp").filter(|s| !s.is_empty()) else {
            return refuse(100000002, "Timestamp is empty");
        };
        let Ok(ts) = ts.parse::<i64>() else { return refuse(100000003, "Timestamp format error") };
        let nonce = get("SignatureNonce").unwrap_or("");
        if nonce.is_empty() {
            return refuse(100000008, "SignatureNonce is empty");
        }
        let signature = get("Signature").unwrap_or("");
        if signature.is_empty() {
            return refuse(100000009, "Signature is empty");
        }
        match get("SignatureVersion") {
            None | Some("") => return refuse(100000013, "SignatureVersion is empty"),
            Some(sign::SIGNATURE_VERSION) => {}
            Some(_) => return refuse(100000014, "SignatureVersion not supported"),
        }
        // The current docs define the nonce as 8 random bytes in hex; enforcement upstream is UNCONFIRMED, the
        // simulator is strict so that a client that gets it wrong finds out here.
        if nonce.len() != 16 || !nonce.chars().all(|c| c.is_ascii_hexdigit()) {
            return refuse(2, "SignatureNonce must be 16 hex characters");
        }
        let Some(secret) = self.secrets.get(&app_id) else {
            return refuse(100000010, "failed to get ServerSecret");
        };
        if (now_unix - ts).abs() > SIGNATURE_WINDOW_SECS {
            return refuse(codes::SIGNATURE_EXPIRED, "signature expired");
        }
        if sign::signature(app_id, nonce, secret.expose(), ts) != signature.to_ascii_lowercase() {
            return refuse(codes::SIGNATURE_WRONG, "signature error");
        }
        let Some(action) = Action::parse(action_name) else {
            return refuse(100000007, "unsupported Action");
        };
        let body = business_body(action, req)?;
        Ok(Admitted { app_id, action, body })
    }

    /// The in-memory backend's gateway: no signature is made, but the app must be known (100000010, as over
    /// HTTP) and the secret must be the app's (100000005, what a wrong secret produces over HTTP).
    pub(crate) fn admit_credentials(&self, credentials: &Credentials) -> Result<(), Refusal> {
        match self.secrets.get(&credentials.app_id) {
            None => refuse(100000010, "failed to get ServerSecret"),
            Some(secret) if *secret != credentials.secret => {
                refuse(codes::SIGNATURE_WRONG, "signature error")
            }
            Some(_) => Ok(()),
        }
    }

    /// Counts one call of `action` for `app_id` at `now`, or refuses it with the action's documented rate-limit
    /// code when the action's limit of calls were already accepted in the last second: `qps`, scaled for the
    /// actions ZEGO documents at less than 20/s (SendRoomMessage: half, 10 with the default 20; see
    /// [`limits::calls_per_second`]). Refused calls are not counted.
    pub(crate) fn admit_rate(&mut self, app_id: u32, action: Action, now: Instant) -> Result<(), Refusal> {
        let limit = limits::calls_per_second(action, self.qps);
        if limit == 0 {
            return Ok(());
        }
        let window = self.windows.entry((app_id, action)).or_default();
        while window.front().is_some_and(|t| now.saturating_duration_since(*t) >= Duration::from_secs(1)) {
            window.pop_front();
        }
        if window.len() >= limit as usize {
            return refuse(rate_limit_code(action), "call frequency limit exceeded");
        }
        window.push_back(now);
        Ok(())
    }
}

/// The code each action documents for exceeding its rate: QueryRoomUserList lists 660300006 (room level),
/// UserRegister 660700001, and the other room pages 660300005 (AppId level). DestroyRoom, KickoutRoomUser and
/// SendRoomMessage list none; they get the AppId-level code like their siblings (SendRoomMessage's limit is per
/// app, as its page says).
pub(crate) fn rate_limit_code(action: Action) -> i64 {
    match action {
        Action::QueryRoomUserList => codes::RATE_LIMITED_ROOM,
        Action::UserRegister => codes::REGISTER_RATE_LIMITED,
        _ => codes::RATE_LIMITED_APP,
    }
}

/// The business parameters of an admitted action: a JSON object body for a POST action, nothing for a GET one.
fn business_body(action: Action, req: &HttpRequest<'_>) -> Result<Value, Refusal> {
    if !action.is_post() {
        return Ok(Value::Null);
    }
    if !req.is_post {
        return refuse(codes::INVALID_PARAMS, "this Action must be called with POST");
    }
    if !req.content_type.is_some_and(|c| c.trim().to_ascii_lowercase().starts_with("application/json")) {
        return refuse(codes::INVALID_PARAMS, "Content-Type must be application/json");
    }
    match serde_json::from_slice(req.body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => refuse(codes::INVALID_PARAMS, "body is not a JSON object"),
    }
}

#[cfg(test)]
mod tests;
