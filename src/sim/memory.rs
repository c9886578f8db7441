//! [`InMemoryZim`]: the ZIM operations ([`ZimApi`]) answered by a [`Simulator`]'s state, without HTTP.
//!
//! It exists for unit tests of the operator's reconcile decisions: each call goes through the same steps as a
//! request over HTTP, minus the wire and the signature —
//! - the request is what [`crate::zim::HttpClient`] would send: the query pairs it would build for a GET, and
//!   the JSON it would serialize from the same request types for a POST;
//! - the credentials stand in for the signature: an unknown AppId answers 100000010 and a wrong secret
//!   100000005, as over HTTP;
//! - the fault plan is drawn, the (AppId, Action) QPS window applies, the same room rules and codes answer,
//!   and the call is one entry in the simulator's request log, so tests count calls exactly as with HTTP;
//! - the answer is decoded by the HTTP client's own `decode_answer` (a body without `Code` is not a ZIM answer;
//!   a non-zero `Code` is [`ZimError::Api`]); UserRegister's "already registered" counts as success as in
//!   `HttpClient::user_register`.
//!
//! Faults become what the HTTP client would make of them: an HTTP status → [`ZimError::HttpStatus`], a broken
//! connection → [`ZimError::Transport`], a body that is not JSON → [`ZimError::Decode`], a well-formed answer
//! (`Code`, `HugeMessage`, and `EmptyJson`, which has no `Code` and so is not a ZIM answer) → what decoding it gives. "After"
//! faults (`DropAfter`, `StatusAfter`, `DelayReply`) perform the action first. A redirect is answered as
//! [`ZimError::HttpStatus`] with the redirect status: there is nothing to follow in memory (the HTTP client
//! follows redirects, so over HTTP the outcome depends on the `Location`). Delays are real (tokio) sleeps, and
//! [`InMemoryZim::with_timeout`] turns one that runs past the client's timeout into [`ZimError::Timeout`], with
//! the action done or not depending on where the delay was.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Simulator;
use super::actions::Params;
use super::faults::{Answer, Before, PAD_BYTE, status_text};
use super::state::logged_room_id;
use crate::zim::api::Transport;
use crate::zim::error::ZimError;
use crate::zim::sign::Credentials;
use crate::zim::types::*;

/// The [`ZimApi`] of a [`Simulator`], in memory. Cheap to clone; clones share the simulator.
#[derive(Clone)]
pub struct InMemoryZim {
    sim: Simulator,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for InMemoryZim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryZim").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl InMemoryZim {
    /// Answers from `sim`'s state (the same rooms, log and fault plan its HTTP server uses).
    pub fn new(sim: Simulator) -> Self {
        Self { sim, timeout: None }
    }

    /// Gives up on a call after `timeout`, like the HTTP client's whole-request timeout: the call answers
    /// [`ZimError::Timeout`]. Without it a delayed call simply takes longer.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The simulator behind it.
    pub fn simulator(&self) -> &Simulator {
        &self.sim
    }

    /// One request through the simulator: fault, gateway, rate window, action, log. Returns what would go back
    /// on the wire.
    async fn exchange(
        &self,
        credentials: &Credentials,
        action: Action,
        query: &[(String, String)],
        body: &Value,
    ) -> Answer {
        let begun = self.sim.lock().begin(action.as_str());
        if begun.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(begun.latency_ms)).await;
        }
        let room_id = logged_room_id(query, body);
        let before = self.sim.lock().before_action(&begun, action.as_str(), credentials.app_id, &room_id);
        match before {
            Before::Answer(answer) => return answer,
            Before::Wait(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Before::Proceed => {}
        }
        let params = Params { query, body };
        let (response, _code) = self.sim.with(|s| s.handle_in_memory(credentials, action, &params, &begun));
        begun.answer(response).await
    }
}

/// What the HTTP client makes of an answer: the same checks, in the same order, as its `send`.
fn receive<R>(action: Action, answer: Answer) -> Result<R, ZimError>
where
    R: DeserializeOwned + HasEnvelope,
{
    let bytes = match answer {
        Answer::Json(v) => {
            serde_json::to_vec(&v).map_err(|e| ZimError::Decode { action, detail: e.to_string() })?
        }
        Answer::Garbled(text) => text.as_bytes().to_vec(),
        Answer::Status(status) if !(200..300).contains(&status) => {
            return Err(ZimError::HttpStatus { action, status });
        }
        Answer::Status(status) => status_text(status).into_bytes(),
        // The whole body, as the HTTP client reads it (only the simulator's server streams it).
        Answer::Padded { prefix, pad, suffix } => {
            let mut body = prefix.into_bytes();
            body.resize(body.len() + pad as usize, PAD_BYTE);
            body.extend_from_slice(suffix.as_bytes());
            body
        }
        // Nothing to follow in memory: the redirect status is the answer, as for a client that does not follow
        // redirects.
        Answer::Redirect { status, .. } => return Err(ZimError::HttpStatus { action, status }),
        Answer::Broken => {
            return Err(ZimError::Transport {
                action,
                detail: "the connection broke before the answer was complete".into(),
            });
        }
    };
    crate::zim::client::decode_answer(action, &bytes)
}

/// The same requests as the HTTP client's (one place builds them: `impl ZimApi for T: Transport`).
impl Transport for InMemoryZim {
    async fn call<B, R>(
        &self,
        credentials: &Credentials,
        action: Action,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<R, ZimError>
    where
        B: Serialize + Sync + ?Sized,
        R: DeserializeOwned + HasEnvelope + Send,
    {
        // The body exactly as the HTTP client serializes it.
        let body = match body {
            Some(b) => {
                serde_json::to_value(b).map_err(|e| ZimError::Decode { action, detail: e.to_string() })?
            }
            None => Value::Null,
        };
        let mut pairs = vec![("Action".to_owned(), action.as_str().to_owned())];
        pairs.extend(query.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        let answer = self.exchange(credentials, action, &pairs, &body);
        let answer = match self.timeout {
            Some(t) => tokio::time::timeout(t, answer)
                .await
                .map_err(|_| ZimError::Timeout { action, timeout_ms: t.as_millis() as u64 })?,
            None => answer.await,
        };
        receive(action, answer)
    }
}
