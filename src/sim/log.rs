//! The simulator's request log and its in-memory record of received signatures.
//!
//! The log holds what tests count and assert on — action, AppId, RoomId, the code answered and the fault, if
//! any — and never a secret, a nonce, a signature or a URL. Signatures are kept apart, in memory only, so that
//! tests can prove none of them leaks into the operator's logs, events or status.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::faults::Fault;

/// Signatures remembered at most (the memory is for tests, not for long runs).
const MAX_SIGNATURES: usize = 100_000;

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

/// The request log and the signature memory.
pub(crate) struct RequestLog {
    started: Instant,
    entries: Vec<LogEntry>,
    signatures: Vec<String>,
}

impl RequestLog {
    /// An empty log whose clock starts now.
    pub(crate) fn new() -> Self {
        Self { started: Instant::now(), entries: Vec::new(), signatures: Vec::new() }
    }

    /// Milliseconds since the simulator started.
    pub(crate) fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Records one request; `at_ms` is its arrival time.
    pub(crate) fn record(
        &mut self,
        at_ms: u64,
        action: &str,
        app_id: u32,
        room_id: &str,
        code: i64,
        fault: Option<&Fault>,
    ) {
        let seq = self.entries.len() as u64 + 1;
        let fault = fault.map(Fault::label);
        tracing::info!(target: "zim_sim", seq, action, app_id, room_id, code, fault = ?fault, "request");
        self.entries.push(LogEntry {
            seq,
            at_ms,
            action: action.to_owned(),
            app_id,
            room_id: room_id.to_owned(),
            code,
            fault,
        });
    }

    /// The entries after `since` (exclusive).
    pub(crate) fn since(&self, since: u64) -> Vec<LogEntry> {
        let start = self.entries.partition_point(|e| e.seq <= since);
        self.entries[start..].to_vec()
    }

    /// Remembers a received signature (see [`RequestLog::signatures`]).
    pub(crate) fn remember_signature(&mut self, signature: &str) {
        if !signature.is_empty() && self.signatures.len() < MAX_SIGNATURES {
            self.signatures.push(signature.to_owned());
        }
    }

    /// Every signature received, kept in memory only (never logged) so tests can prove none leaks elsewhere.
    pub(crate) fn signatures(&self) -> Vec<String> {
        self.signatures.clone()
    }
}
