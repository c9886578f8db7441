//! Fault injection: the faults one request can get ([`Fault`]), the plan that says which requests get them
//! ([`FaultPlan`]), and the draw.
//!
//! A fault either answers instead of the action (the action does not happen), delays the request before the
//! action, or alters the answer after the action happened ([`Fault::before`], [`Fault::after`]). Both say what
//! goes back as an [`Answer`], which the HTTP server writes on the wire and the in-memory backend turns into what
//! the HTTP client would make of it, so a fault means the same thing on both paths.

use std::collections::VecDeque;

use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::zim::codes;

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

/// What a fault does before the action.
#[derive(Debug)]
pub(crate) enum Before {
    /// Answer this, instead of performing the action.
    Answer(Answer),
    /// Wait this many milliseconds, then go on.
    Wait(u64),
    /// Go on (the fault, if any, acts on the answer: see [`Fault::after`]).
    Proceed,
}

/// What goes back to the caller, at the level of HTTP; the server writes it on the wire and the in-memory backend
/// turns it into what the HTTP client would make of it.
#[derive(Debug)]
pub(crate) enum Answer {
    /// HTTP 200 with this JSON body.
    Json(Value),
    /// This HTTP status without a ZIM body.
    Status(u16),
    /// The headers, then the connection breaks.
    Broken,
    /// HTTP 200, `application/json`, with this body that is not valid JSON.
    Garbled(&'static str),
}

/// The body of [`Fault::Malformed`]: a ZIM answer cut off in the middle.
const GARBLED: &str = "{\"Code\": 0, \"Message\": \"succ";

/// The preset names `simulate --fault-kinds` accepts (besides a bare ZIM code).
pub const PRESETS: &[&str] = &["busy", "internal", "throttle", "5xx", "drop", "malformed", "timeout"];

impl Fault {
    /// Parses a preset name (see [`PRESETS`]), or a bare number as a ZIM code.
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

    /// What the fault does to a request before the action; `request_id` goes into a ZIM answer.
    pub(crate) fn before(&self, request_id: &str) -> Before {
        let instead = |answer| Before::Answer(answer);
        match self {
            Fault::Code { code } => instead(Answer::Json(
                json!({"Code": code, "Message": "injected fault", "RequestId": request_id}),
            )),
            Fault::HttpStatus { status } => instead(Answer::Status(*status)),
            Fault::Drop => instead(Answer::Broken),
            Fault::Malformed => instead(Answer::Garbled(GARBLED)),
            Fault::Delay { ms } => Before::Wait(*ms),
            Fault::DelayReply { .. } => Before::Proceed,
        }
    }

    /// What the fault does to the action's own response `response`: the answer, and how long to wait first.
    pub(crate) fn after(&self, response: Value) -> (u64, Answer) {
        match self {
            Fault::DelayReply { ms } => (*ms, Answer::Json(response)),
            _ => (0, Answer::Json(response)),
        }
    }

    /// The code the request log shows for a fault that answers instead of the action: the ZIM code it answers,
    /// or -1 when it answers at the HTTP level.
    pub(crate) fn logged_code(&self) -> i64 {
        match self {
            Fault::Code { code } => *code,
            _ => -1,
        }
    }

    /// A short fixed label for the request log.
    pub(crate) fn label(&self) -> String {
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

impl FaultPlan {
    /// Decides the fault for one request of `action`, if any: the queued `next` faults first, then `rate`.
    pub(crate) fn draw(&mut self, rng: &mut StdRng, action: &str) -> Option<Fault> {
        if !self.actions.is_empty() && !self.actions.iter().any(|a| a == action) {
            return None;
        }
        if let Some(f) = self.next.pop_front() {
            return Some(f);
        }
        if self.rate > 0.0 && !self.kinds.is_empty() && rng.random::<f64>() < self.rate {
            let i = rng.random_range(0..self.kinds.len());
            return Some(self.kinds[i].clone());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    /// Queued faults come first and only for the listed actions; the rate draw is repeatable with a seed.
    #[test]
    fn draw_takes_next_then_rate() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut plan = FaultPlan {
            next: [Fault::Drop].into(),
            actions: vec!["CreateRoom".into()],
            ..Default::default()
        };
        assert_eq!(plan.draw(&mut rng, "DestroyRoom"), None);
        assert_eq!(plan.draw(&mut rng, "CreateRoom"), Some(Fault::Drop));
        assert_eq!(plan.draw(&mut rng, "CreateRoom"), None);
        plan.rate = 1.0;
        plan.kinds = vec![Fault::Malformed];
        assert_eq!(plan.draw(&mut rng, "CreateRoom"), Some(Fault::Malformed));
    }

    #[test]
    fn presets_parse() {
        for name in PRESETS {
            assert!(Fault::preset(name).is_some(), "{name}");
        }
        assert_eq!(Fault::preset("660300015"), Some(Fault::Code { code: 660300015 }));
        assert_eq!(Fault::preset("nonsense"), None);
    }
}
