//! The ZEGO server callbacks the simulator sends, as ZEGO documents them (its callback pages: room created, room
//! destroyed, and authenticating server-to-server callbacks).
//!
//! - Events: `room_create` after a successful CreateRoom (`room_id`, `operator_account` = FromUserId,
//!   `room_name`, `attributes[{key, value, auto_delete}]`); `room_destroy` after a successful DestroyRoom
//!   (`room_id`, `operator_account` = FromUserId or "", `user_ids` = the members at destruction) and when an
//!   empty room is destroyed automatically once its DestroyDelayTime has passed on the room clock
//!   (`operator_account` "", `user_ids` []; release note of 2025-08-08); `room_enter` when a user enters
//!   (`room_id`, `operator_account` = the user); `room_exit` when users leave (`room_id`, `exit_type`,
//!   `operator_account`, `exit_user_ids`): one event per user who quits (`Quit`, `operator_account` = that user,
//!   `exit_user_ids` = [that user]) and one per KickoutRoomUser (`Kickout`, `operator_account` = its FromUserId
//!   or "", `exit_user_ids` = the users removed). The EN and ZH pages disagree on `exit_user_ids` ("the room
//!   members when the user exits" against "the users who exited") and on `operator_account` for Quit ("the same
//!   as exit_user_ids" against "invalid"); the simulator follows ZH for the list, and for Quit sends the leaver,
//!   which fits both readings of `operator_account`. Rooms seeded or removed, and users set, through the admin
//!   API send nothing: they stand for another party's actions whose callbacks were lost.
//! - Common fields: `appid` (a string), `event`, `timestamp` (Unix seconds, a JSON number: every sample shows
//!   seconds although the field tables say ms), `nonce` (a string of digits, as in the samples) and `signature`
//!   = lowercase hex sha1 of `[callbacksecret, timestamp, nonce]` sorted as strings and concatenated
//!   ([`signature`]).
//! - Delivery: HTTP POST of the JSON body with `Content-Type: application/json` (the pages say JSON and name no
//!   content type). Any 2xx is success; no answer or another status is retried 2, 4, 8, 16 and 32 s after the
//!   previous attempt, then the event is lost (the room pages' retry policy). A retry resends the same body,
//!   nonce and signature (not stated by ZEGO). Each attempt times out after [`DEFAULT_ATTEMPT_TIMEOUT`] (ZEGO
//!   states none for room callbacks); redirects are not followed. Events wait in a bounded queue; past the bound
//!   they are dropped and counted.
//! - An event is addressed when it happens: it goes to the target set at that moment, signed with its secret.
//!
//! Nothing here logs a secret or a signature. The delivery log (see [`CallbackReport`]) holds the event, the
//! room, the attempt and the HTTP status or error, and never the body or the URL.
//!
//! (Over 400 lines: the documented body, signature, retry schedule and delivery queue of one feature.)

use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use tokio::sync::Notify;

use super::Shared;
use super::rooms::Effect;

/// ZEGO's retry schedule: 2, 4, 8, 16 and 32 s after the previous attempt.
pub const DEFAULT_RETRY_AFTER: [Duration; 5] = [
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
    Duration::from_secs(32),
];

/// How long one attempt may take (undocumented for room callbacks; `before_send_msg` allows 2.5–3 s).
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);

/// Events waiting or being delivered at most; more are dropped and counted.
pub const DEFAULT_QUEUE_LIMIT: usize = 10_000;

/// How often expired rooms are looked for while a target is set.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(200);

/// Delivery attempts remembered at most.
const MAX_DELIVERIES: usize = 100_000;

/// The documented callback signature: lowercase hex sha1 of the callback secret, the timestamp and the nonce,
/// sorted as strings (byte order) and concatenated. Computed here on its own, not with the receiver's
/// `callback::signature`, so that the end-to-end tests check one implementation of ZEGO's rule against another;
/// both are pinned to ZEGO's published vector.
pub fn signature(callback_secret: &str, timestamp: &str, nonce: &str) -> String {
    let mut parts = [callback_secret, timestamp, nonce];
    parts.sort_unstable();
    hex::encode(Sha1::digest(parts.concat().as_bytes()))
}

/// A callback secret: the receiver's type (its `Debug` and `Display` never show the value).
pub use crate::callback::CallbackSecret;

/// Where callbacks go: an http(s) URL and the secret they are signed with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackTarget {
    url: String,
    secret: CallbackSecret,
}

impl CallbackTarget {
    /// A target; `url` must be an absolute http:// or https:// URL.
    pub fn new(url: &str, secret: CallbackSecret) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("invalid callback URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err("the callback URL must be an http:// or https:// URL with a host".into());
        }
        Ok(Self { url: url.to_owned(), secret })
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// How the simulator sends callbacks.
#[derive(Clone, Debug)]
pub struct CallbackConfig {
    /// Where to send them; `None` sends nothing.
    pub target: Option<CallbackTarget>,
    /// Waits before each retry, counted from the end of the previous attempt; ZEGO's by default.
    pub retry_after: Vec<Duration>,
    /// Timeout of one attempt.
    pub attempt_timeout: Duration,
    /// Events waiting or in delivery at most.
    pub queue_limit: usize,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        Self {
            target: None,
            retry_after: DEFAULT_RETRY_AFTER.to_vec(),
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            queue_limit: DEFAULT_QUEUE_LIMIT,
        }
    }
}

/// One delivery attempt, as the delivery log shows it (no URL, body, secret or signature).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CallbackDelivery {
    /// 1, 2, 3, … in the order attempts finished.
    pub seq: u64,
    /// When the attempt finished, milliseconds since the simulator started.
    pub at_ms: u64,
    /// `room_create`, `room_destroy`, `room_enter` or `room_exit`.
    pub event: String,
    /// The room.
    pub room_id: String,
    /// 1 for the first delivery, 2 for the first retry, …
    pub attempt: u32,
    /// The HTTP status answered, if any.
    pub status: Option<u16>,
    /// Why there was no answer (connection refused, timeout), if so.
    pub error: Option<String>,
}

/// The delivery log and the queue's state.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CallbackReport {
    /// Attempts after the `since` asked for, in order.
    pub deliveries: Vec<CallbackDelivery>,
    /// Events waiting or being delivered (including waits between retries).
    pub pending: usize,
    /// Events dropped because the queue was full.
    pub dropped: u64,
}

/// One event on its way.
pub(crate) struct Outgoing {
    event: &'static str,
    room_id: String,
    url: String,
    body: Vec<u8>,
    retry_after: Vec<Duration>,
}

/// The callback state: target, queue, counters and the delivery log.
pub(crate) struct Callbacks {
    config: CallbackConfig,
    queue: VecDeque<Outgoing>,
    in_flight: usize,
    dropped: u64,
    deliveries: Vec<CallbackDelivery>,
    http: Option<reqwest::Client>,
}

impl Callbacks {
    pub(crate) fn new(config: CallbackConfig) -> Self {
        Self { config, queue: VecDeque::new(), in_flight: 0, dropped: 0, deliveries: Vec::new(), http: None }
    }

    /// The current target.
    pub(crate) fn target(&self) -> Option<&CallbackTarget> {
        self.config.target.as_ref()
    }

    pub(crate) fn set_target(&mut self, target: Option<CallbackTarget>) {
        self.config.target = target;
    }

    pub(crate) fn set_retry_after(&mut self, retry_after: Vec<Duration>) {
        self.config.retry_after = retry_after;
    }

    /// Whether events wait for the worker.
    pub(crate) fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Queues the callback of `effect` for the current target (if any), signed now.
    pub(crate) fn enqueue(&mut self, effect: &Effect, now_unix: i64) {
        let Some(target) = &self.config.target else { return };
        let (event, room_id, body) = event_body(effect, now_unix, &nonce(), &target.secret);
        if self.queue.len() + self.in_flight >= self.config.queue_limit {
            self.dropped += 1;
            tracing::warn!(
                target: "zim_sim",
                event,
                room_id,
                dropped = self.dropped,
                "callback queue full; event dropped"
            );
            return;
        }
        self.queue.push_back(Outgoing {
            event,
            room_id: room_id.to_owned(),
            url: target.url.clone(),
            body: serde_json::to_vec(&body).unwrap_or_default(),
            retry_after: self.config.retry_after.clone(),
        });
    }

    /// The queued events, now counted as in delivery, and the HTTP client to deliver them with.
    fn take_ready(&mut self) -> (Vec<Outgoing>, reqwest::Client) {
        let ready: Vec<Outgoing> = self.queue.drain(..).collect();
        self.in_flight += ready.len();
        let timeout = self.config.attempt_timeout;
        let http = self.http.get_or_insert_with(|| {
            reqwest::Client::builder()
                .timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("zim-operator-simulator/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default()
        });
        (ready, http.clone())
    }

    fn record(
        &mut self,
        at_ms: u64,
        out: &Outgoing,
        attempt: u32,
        status: Option<u16>,
        error: Option<String>,
    ) {
        tracing::info!(
            target: "zim_sim",
            event = out.event,
            room_id = %out.room_id,
            attempt,
            ?status,
            ?error,
            "callback"
        );
        if self.deliveries.len() < MAX_DELIVERIES {
            let seq = self.deliveries.len() as u64 + 1;
            let (event, room_id) = (out.event.to_owned(), out.room_id.clone());
            self.deliveries.push(CallbackDelivery { seq, at_ms, event, room_id, attempt, status, error });
        }
    }

    /// The delivery log after `since`, and the queue's state.
    pub(crate) fn report(&self, since: u64) -> CallbackReport {
        let start = self.deliveries.partition_point(|d| d.seq <= since);
        CallbackReport {
            deliveries: self.deliveries[start..].to_vec(),
            pending: self.queue.len() + self.in_flight,
            dropped: self.dropped,
        }
    }
}

/// A nonce as in ZEGO's samples: a string of decimal digits.
fn nonce() -> String {
    rand::random_range(100_000u64..10_000_000_000).to_string()
}

/// The event name, room and signed JSON body of `effect`'s callback.
fn event_body<'a>(
    effect: &'a Effect,
    timestamp: i64,
    nonce: &str,
    secret: &CallbackSecret,
) -> (&'static str, &'a str, Value) {
    let common = |app_id: u32, event: &str| {
        let signature = signature(secret.expose(), &timestamp.to_string(), nonce);
        json!({
            "appid": app_id.to_string(),
            "event": event,
            "timestamp": timestamp,
            "nonce": nonce,
            "signature": signature,
        })
    };
    let (event, room_id, mut body, fields) = match effect {
        Effect::Created { app_id, room_id, operator, name, attributes } => {
            let attributes: Vec<Value> = attributes
                .iter()
                .map(|(key, value, auto_delete)| json!({"key": key, "value": value, "auto_delete": auto_delete}))
                .collect();
            let fields = json!({
                "room_id": room_id,
                "operator_account": operator,
                "room_name": name,
                "attributes": attributes,
            });
            ("room_create", room_id, common(*app_id, "room_create"), fields)
        }
        Effect::Destroyed { app_id, room_id, operator, user_ids } => {
            let fields = json!({"room_id": room_id, "operator_account": operator, "user_ids": user_ids});
            ("room_destroy", room_id, common(*app_id, "room_destroy"), fields)
        }
        Effect::Entered { app_id, room_id, user_id } => {
            let fields = json!({"room_id": room_id, "operator_account": user_id});
            ("room_enter", room_id, common(*app_id, "room_enter"), fields)
        }
        Effect::Left { app_id, room_id, exit_type, operator, user_ids } => {
            let fields = json!({
                "room_id": room_id,
                "exit_type": exit_type.as_str(),
                "operator_account": operator,
                "exit_user_ids": user_ids,
            });
            ("room_exit", room_id, common(*app_id, "room_exit"), fields)
        }
    };
    if let (Some(obj), Value::Object(more)) = (body.as_object_mut(), fields) {
        obj.extend(more);
    }
    (event, room_id.as_str(), body)
}

/// The callback worker of one simulator: while a target is set, looks for expired rooms every
/// [`SWEEP_INTERVAL`] (and whenever woken), and starts the delivery of every queued event. Ends when the
/// simulator is gone.
pub(crate) async fn worker(shared: Weak<Shared>, wake: Arc<Notify>) {
    loop {
        let sweeping = {
            let Some(strong) = shared.upgrade() else { return };
            let mut s = strong.lock();
            let sweeping = s.callbacks.target().is_some();
            if sweeping {
                s.rooms.sweep();
                s.settle();
            }
            let (ready, http) = s.callbacks.take_ready();
            for out in ready {
                tokio::spawn(deliver(shared.clone(), http.clone(), out));
            }
            sweeping
        };
        if sweeping {
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
            }
        } else {
            wake.notified().await;
        }
    }
}

/// Delivers one event: the first attempt, then a retry after each wait of its schedule until one answers 2xx.
async fn deliver(shared: Weak<Shared>, http: reqwest::Client, out: Outgoing) {
    let attempts = out.retry_after.len() as u32 + 1;
    for attempt in 1..=attempts {
        let sent = http
            .post(&out.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(out.body.clone())
            .send()
            .await;
        let (status, error) = match sent {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(e) => (None, Some(describe(e))),
        };
        let delivered = status.is_some_and(|s| (200..300).contains(&s));
        {
            let Some(strong) = shared.upgrade() else { return };
            let mut s = strong.lock();
            let at_ms = s.log.now_ms();
            s.callbacks.record(at_ms, &out, attempt, status, error);
            if delivered || attempt == attempts {
                s.callbacks.in_flight -= 1;
                return;
            }
        }
        tokio::time::sleep(out.retry_after[attempt as usize - 1]).await;
    }
}

/// A failed attempt in words, without the URL.
fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    crate::zim::client::error_chain(e)
}

#[cfg(test)]
mod tests;
