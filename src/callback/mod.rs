//! The receiver of ZEGO's server callbacks (ZEGO's callback pages; `run --callback-addr`): an HTTP endpoint
//! that verifies each callback's signature, answers at once, and hands every verified `room_destroy` to the
//! controller as a [`RoomEvent`] on a bounded queue, so the room is re-checked now instead of at its next poll.
//!
//! - **Where:** `POST /zim/callback`, and `POST /` for a callback URL configured without a path. Any other
//!   method there is answered 405, any other path 404.
//! - **What is verified:** ZEGO's documented signature, lowercase hex sha1 of `[callbacksecret, timestamp,
//!   nonce]` sorted as strings and concatenated ([`signature`]), compared in constant time with every secret
//!   [`CallbackSecrets`] gives for the callback's AppId (several during a rotation; any one passes). An AppId
//!   without a secret cannot be verified and is refused like a bad signature.
//! - **Which body:** JSON, percent-encoded JSON or a form, whatever the content type says; `appid`, `nonce` and
//!   `timestamp` as strings or integers, the timestamp in seconds or milliseconds (see `body.rs`).
//! - **Whose secrets:** [`CallbackSecrets`] gives only the callback secrets of Secrets whose server secret ZIM has
//!   accepted for that AppId, and only on the leader (`reconcile::decide::callback`): a Secret in any namespace
//!   can claim any AppId and callbackSecret, so a claim alone authenticates nothing. A standby, which makes no
//!   ZIM call and so holds no proof, verifies nothing and answers 503 (`standby`): ZEGO retries, and the Service
//!   may send the retry to the leader.
//! - **Answers:** 200 for every verified callback, whatever happens to it; 401 when the signature does not match
//!   or the AppId has no secret; 503 on a standby; 400 when the body is not a callback (a field missing or of the
//!   wrong type); 413 above [`MAX_BODY_BYTES`]. Each answer is given before any work on the room is done: the work is the
//!   controller's, after it takes the event from the queue. Every answer to a POST is reported to the
//!   [`CallbackObserver`] as an (event, [`Outcome`]) pair from closed sets (metric labels).
//! - **What is acted on:** only `room_destroy`. `room_create`, `room_enter`, `room_exit` and any other event are
//!   answered 200 and ignored: ZEGO retries whatever is not answered 2xx, and the poll confirms rooms anyway.
//! - **Coalescing:** while an event for an (AppId, room) waits in the queue, more callbacks for it are
//!   `coalesced` into that one: the queued re-check will read the room's state after all of them. Once the
//!   controller has taken the event ([`RoomEvents::recv`]), the next callback queues a new one.
//! - **Per app:** a `room_destroy` not coalesced is queued only within its app's allowance
//!   ([`CallbackSecrets::admit_recheck`]: a share of the app's probe budget); beyond it, it is `throttled`:
//!   answered 200 and not queued, and the periodic poll finds the room.
//! - **A full queue:** the event is dropped, counted as `overflow`, and still answered 200. Answering 5xx would
//!   make ZEGO resend it up to five times over about a minute while the operator is already behind; the periodic
//!   existence poll, which never depends on callbacks, finds the room gone at the latest one period later.
//!
//! - **Freshness:** a verified callback whose timestamp is more than [`MAX_AGE`] behind this machine's clock, or
//!   more than [`MAX_AHEAD`] ahead of it, is refused (401, `stale`). ZEGO documents no freshness window; its
//!   retries of one callback span about 62 s, and ZIM itself allows ±10 minutes of clock skew on requests, so the
//!   window is that skew plus two minutes of retries. (One Chinese page calls a `room_destroy`'s timestamp the
//!   room's creation time, most likely copied from `room_create`; were it so, the destruction of a room older than
//!   the window would be refused here and found by the poll instead.)
//! - **Replays:** a verified callback whose (AppId, timestamp, nonce) was seen within the window is answered 200
//!   and not acted on (`replayed`): ZEGO resends the same nonce and signature on each retry, so a second delivery
//!   is either a retry of one already handled or a captured callback sent again. The memory holds at most
//!   [`MAX_NONCES`] entries (each goes when it leaves the window); beyond that, callbacks are handled without
//!   being remembered, and coalescing still bounds them to one queued re-check per room.
//!
//! A callback is only a trigger to re-read the room from ZIM, never a fact about it. The signature covers the
//! timestamp and nonce but not the body, so a captured signature with a forged body can at most make the operator
//! probe one room once more than it would have (the same QueryRoomUserList its poll makes), within the window and
//! once per nonce.
//!
//! Nothing here logs or echoes a secret, a signature or a body; the event, AppId, room and outcome are logged at
//! debug level. The listener defends itself like the admin server's (header read timeout, connection cap,
//! bounded head and connection lifetime: `admin::listener`).

mod body;
mod labels;
mod queue;
pub mod signature;

pub use body::{ExitType, Membership};
pub use labels::{Event, Outcome};
use queue::Queued;
pub use queue::{RoomEvent, RoomEvents};

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::admin::listener::{self, Limits};

/// The callback path (`/` is served too).
pub const CALLBACK_PATH: &str = "/zim/callback";

/// The largest body read; a larger one is answered 413 (ZEGO's room callbacks are well under 1 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Room events waiting for the controller at most, by default. Coalescing keeps at most one per room.
pub const DEFAULT_QUEUE_CAPACITY: usize = 4096;

/// How far behind this machine's clock a callback's timestamp may be: ZIM's ±10 minutes of clock skew plus two
/// minutes for ZEGO's retries (about 62 s).
pub const MAX_AGE: std::time::Duration = std::time::Duration::from_secs(12 * 60);

/// How far ahead of this machine's clock a callback's timestamp may be: ZIM's clock skew.
pub const MAX_AHEAD: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// The most (AppId, timestamp, nonce) triples remembered for replay detection.
pub const MAX_NONCES: usize = 65_536;

/// A callback secret (the console's CallbackSecret, which may equal the ServerSecret). Its `Debug` and
/// `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct CallbackSecret(String);

impl CallbackSecret {
    /// Wraps a secret; surrounding whitespace (a trailing newline from a file or Secret) is removed.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into().trim().to_owned())
    }

    /// The secret itself, for computing signatures only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CallbackSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallbackSecret(<redacted>)")
    }
}

impl fmt::Display for CallbackSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where the receiver finds the callback secrets of an AppId, and whether it may queue a re-check. Asked once per
/// callback, so it should answer from memory (e.g. the controller's credentials cache and proof record).
pub trait CallbackSecrets: Send + Sync {
    /// The secrets a callback for `app_id` may be signed with; empty when the AppId is unknown.
    fn secrets(&self, app_id: u32) -> Vec<CallbackSecret>;

    /// Whether this replica verifies callbacks at all. A standby does not: it answers 503 (`standby`), so ZEGO
    /// retries and the Service may send the retry to the leader.
    fn verifying(&self) -> bool {
        true
    }

    /// Whether one more re-check of a room of `app_id` may be queued now (the app's callback allowance); an
    /// admitted one is counted against the allowance. Asked only for a verified `room_destroy` that is not
    /// coalesced into a queued one.
    fn admit_recheck(&self, app_id: u32) -> bool {
        let _ = app_id;
        true
    }

    /// Whether a deletion waits for room `room_id` of `app_id` to empty: only then does a verified `room_exit`
    /// re-check it (any other `room_exit` is ignored, and costs nothing).
    fn awaits_exit(&self, app_id: u32, room_id: &str) -> bool {
        let _ = (app_id, room_id);
        false
    }
}

impl<F: Fn(u32) -> Vec<CallbackSecret> + Send + Sync> CallbackSecrets for F {
    fn secrets(&self, app_id: u32) -> Vec<CallbackSecret> {
        self(app_id)
    }
}

impl CallbackSecrets for HashMap<u32, Vec<CallbackSecret>> {
    fn secrets(&self, app_id: u32) -> Vec<CallbackSecret> {
        self.get(&app_id).cloned().unwrap_or_default()
    }
}

/// Told the outcome of every callback (e.g. to count `zim_operator_callbacks_total{event,outcome}`).
pub trait CallbackObserver: Send + Sync {
    /// One callback of `event` ended as `outcome`.
    fn observed(&self, event: Event, outcome: Outcome);
}

impl<F: Fn(Event, Outcome) + Send + Sync> CallbackObserver for F {
    fn observed(&self, event: Event, outcome: Outcome) {
        self(event, outcome)
    }
}

/// How one callback was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handled {
    /// The callback's event.
    pub event: Event,
    /// What became of it.
    pub outcome: Outcome,
    /// The HTTP status answered.
    pub status: StatusCode,
    /// What was wrong with a malformed body (named in the answer).
    reason: Option<body::Reason>,
}

/// The callback receiver: verifies, answers and queues. Cheap to clone (all clones share one queue).
#[derive(Clone)]
pub struct CallbackServer {
    inner: Arc<Inner>,
}

struct Inner {
    secrets: Arc<dyn CallbackSecrets>,
    observer: Arc<dyn CallbackObserver>,
    tx: mpsc::Sender<RoomEvent>,
    queued: Queued,
    /// Set by the first overflow after the queue had room, so a full queue is warned about once per episode.
    overflowing: AtomicBool,
    /// This machine's clock, Unix milliseconds.
    clock: fn() -> u64,
    /// The (AppId, timestamp, nonce) of the verified callbacks within the freshness window, with their Unix time.
    nonces: std::sync::Mutex<HashMap<(u32, String, String), u64>>,
}

impl CallbackServer {
    /// A receiver checking signatures with `secrets` and reporting to `observer`, and the end of its queue of at
    /// most `capacity` (at least 1) room events.
    pub fn new(
        secrets: Arc<dyn CallbackSecrets>,
        observer: Arc<dyn CallbackObserver>,
        capacity: usize,
    ) -> (Self, RoomEvents) {
        Self::with_clock(secrets, observer, capacity, now_ms)
    }

    /// As [`CallbackServer::new`], with `clock` (Unix milliseconds) as this machine's clock for the freshness
    /// window (tests replay ZEGO's published samples at their own time).
    pub fn with_clock(
        secrets: Arc<dyn CallbackSecrets>,
        observer: Arc<dyn CallbackObserver>,
        capacity: usize,
        clock: fn() -> u64,
    ) -> (Self, RoomEvents) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let queued = Queued::default();
        let inner = Inner {
            secrets,
            observer,
            tx,
            queued: queued.clone(),
            overflowing: AtomicBool::new(false),
            clock,
            nonces: Default::default(),
        };
        (Self { inner: Arc::new(inner) }, RoomEvents { rx, queued })
    }

    /// The HTTP routes: `POST /zim/callback` and `POST /`.
    pub fn router(&self) -> Router {
        Router::new().route(CALLBACK_PATH, post(receive)).route("/", post(receive)).with_state(self.clone())
    }

    /// Verifies and acts on one callback body (already read and within [`MAX_BODY_BYTES`]); reports the
    /// outcome to the observer.
    pub fn handle(&self, body: &[u8]) -> Handled {
        let handled = self.decide(body);
        self.inner.observer.observed(handled.event, handled.outcome);
        handled
    }

    fn decide(&self, body: &[u8]) -> Handled {
        let answer = |event, outcome, status| Handled { event, outcome, status, reason: None };
        let malformed = |event, reason| Handled {
            event,
            outcome: Outcome::Malformed,
            status: StatusCode::BAD_REQUEST,
            reason: Some(reason),
        };
        let callback = match body::parse(body) {
            Ok(c) => c,
            Err(m) => {
                debug!(event = m.event.as_str(), reason = %m.reason, "zim callback: malformed");
                return malformed(m.event, m.reason);
            }
        };
        let event = callback.event;
        let app_id = callback.app_id;
        let room_id = callback.room_id.as_deref().unwrap_or("");
        if !self.inner.secrets.verifying() {
            debug!(
                event = event.as_str(),
                app_id, room_id, "zim callback: this replica stands by; not verified"
            );
            return answer(event, Outcome::Standby, StatusCode::SERVICE_UNAVAILABLE);
        }
        let secrets = self.inner.secrets.secrets(app_id);
        if secrets.is_empty() {
            debug!(
                event = event.as_str(),
                app_id, room_id, "zim callback: no callback secret for this AppId"
            );
            return answer(event, Outcome::BadSignature, StatusCode::UNAUTHORIZED);
        }
        if !signature::matches(&secrets, &callback.timestamp, &callback.nonce, &callback.signature) {
            debug!(event = event.as_str(), app_id, room_id, "zim callback: signature does not match");
            return answer(event, Outcome::BadSignature, StatusCode::UNAUTHORIZED);
        }
        let now = (self.inner.clock)();
        let age_ms = now as i64 - callback.unix_ms as i64;
        if age_ms > MAX_AGE.as_millis() as i64 || -age_ms > MAX_AHEAD.as_millis() as i64 {
            debug!(
                event = event.as_str(),
                app_id, room_id, age_ms, "zim callback: outside the freshness window"
            );
            return answer(event, Outcome::Stale, StatusCode::UNAUTHORIZED);
        }
        if event == Event::RoomDestroy && callback.room_id.is_none() {
            debug!(event = event.as_str(), app_id, "zim callback: room_destroy without room_id");
            return malformed(event, body::Reason::Missing("room_id"));
        }
        if !self.first_delivery(app_id, &callback.timestamp, &callback.nonce, now) {
            debug!(
                event = event.as_str(),
                app_id, room_id, age_ms, "zim callback: nonce seen before; not acted on"
            );
            return answer(event, Outcome::Replayed, StatusCode::OK);
        }
        let outcome = match (event, &callback.room_id) {
            (Event::RoomDestroy, Some(room_id)) => self.enqueue(app_id, room_id, event),
            (Event::RoomExit, Some(room_id)) if self.inner.secrets.awaits_exit(app_id, room_id) => {
                self.enqueue(app_id, room_id, event)
            }
            _ => Outcome::Ignored,
        };
        debug!(event = event.as_str(), app_id, room_id, age_ms, outcome = outcome.as_str(), "zim callback");
        answer(event, outcome, StatusCode::OK)
    }

    /// Whether this is the first delivery of (`app_id`, `timestamp`, `nonce`) within the window (remembers it).
    fn first_delivery(&self, app_id: u32, timestamp: &str, nonce: &str, now: u64) -> bool {
        let mut nonces = crate::lock(&self.inner.nonces);
        let key = (app_id, timestamp.to_owned(), nonce.to_owned());
        if nonces.contains_key(&key) {
            return false;
        }
        if nonces.len() >= MAX_NONCES {
            let window = (MAX_AGE + MAX_AHEAD).as_millis() as u64;
            nonces.retain(|_, at| now.saturating_sub(*at) < window);
        }
        if nonces.len() < MAX_NONCES {
            nonces.insert(key, now);
        }
        true
    }

    /// Queues a re-check of (app_id, room_id) unless one is queued already.
    fn enqueue(&self, app_id: u32, room_id: &str, event: Event) -> Outcome {
        let mut queued = crate::lock(&self.inner.queued);
        let key = (app_id, room_id.to_owned());
        if queued.contains(&key) {
            return Outcome::Coalesced;
        }
        if !self.inner.secrets.admit_recheck(app_id) {
            return Outcome::Throttled;
        }
        let event = RoomEvent { app_id, room_id: key.1.clone(), event };
        match self.inner.tx.try_send(event) {
            Ok(()) => {
                queued.insert(key);
                self.inner.overflowing.store(false, Ordering::Relaxed);
                Outcome::Accepted
            }
            Err(e) => {
                if !self.inner.overflowing.swap(true, Ordering::Relaxed) {
                    let why = match e {
                        mpsc::error::TrySendError::Full(_) => "the room event queue is full",
                        mpsc::error::TrySendError::Closed(_) => "nothing takes room events",
                    };
                    warn!(
                        app_id,
                        "zim callback: {why}; room_destroy events are dropped (counted as overflow) until it has \
                         room, and the poll finds those rooms"
                    );
                }
                Outcome::Overflow
            }
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

/// The POST handler: reads at most [`MAX_BODY_BYTES`], then [`CallbackServer::handle`]. The answer's text names
/// what was wrong, never a value from the request.
async fn receive(State(server): State<CallbackServer>, headers: HeaderMap, body: Body) -> Response {
    let too_large = |server: &CallbackServer| {
        server.inner.observer.observed(Event::Other, Outcome::Malformed);
        debug!("zim callback: body over {MAX_BODY_BYTES} bytes");
        let text = format!("the body is larger than {MAX_BODY_BYTES} bytes\n");
        (StatusCode::PAYLOAD_TOO_LARGE, [(header::CONNECTION, "close")], text).into_response()
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return too_large(&server);
    }
    let mut bytes = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            server.inner.observer.observed(Event::Other, Outcome::Malformed);
            return (StatusCode::BAD_REQUEST, "the body could not be read\n").into_response();
        };
        if bytes.len() + chunk.len() > MAX_BODY_BYTES {
            return too_large(&server);
        }
        bytes.extend_from_slice(&chunk);
    }
    let handled = server.handle(&bytes);
    let text = match (handled.outcome, handled.reason) {
        (Outcome::BadSignature, _) => "signature not verified\n".to_owned(),
        (Outcome::Standby, _) => "this replica stands by; retry\n".to_owned(),
        (_, Some(reason)) => format!("not a callback: {reason}\n"),
        _ => "ok\n".to_owned(),
    };
    (handled.status, text).into_response()
}

/// Serves the callback routes on `listener` until `shutdown` is cancelled, with the admin server's defences.
pub async fn serve(listener: TcpListener, server: CallbackServer, shutdown: CancellationToken) {
    listener::serve(listener, server.router(), Limits::default(), shutdown).await
}

#[cfg(test)]
mod tests;
