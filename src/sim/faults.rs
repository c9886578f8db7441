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
///
/// Serialized with a `kind` tag, e.g. `{"kind": "status_after", "status": 503}`. "Instead" faults answer without
/// performing the action; "after" faults perform it and then lose, spoil or delay the answer — the outcomes a
/// client cannot tell apart from a failure although the effect happened.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Instead: answer this ZIM code (HTTP 200, a well-formed ZIM answer). Presets `busy` (1), `internal`
    /// (660000001), `throttle` (660300005), or a bare number.
    Code {
        /// The code.
        code: i64,
    },
    /// Instead: answer this HTTP status with a short plain-text body and no ZIM answer, the way the simulator
    /// answers a wrong path (404). Presets `5xx` (503) and `404`.
    HttpStatus {
        /// The status.
        status: u16,
    },
    /// Instead: send the headers, then break the connection. Preset `drop`.
    Drop,
    /// Instead: answer 200 with a body that is not JSON (a ZIM answer cut off). Preset `malformed`.
    Malformed,
    /// Before: wait this long, then process the request normally. Preset `timeout` (15 s, longer than a
    /// client's timeout).
    Delay {
        /// Milliseconds.
        ms: u64,
    },
    /// After: process the request, then wait this long before answering (the effect happens; the answer is
    /// late). Preset `delay_reply` (15 s).
    DelayReply {
        /// Milliseconds.
        ms: u64,
    },
    /// After: process the request, then break the connection instead of answering (the effect happens; the
    /// answer is lost). Preset `drop_after`.
    DropAfter,
    /// After: process the request, then answer this HTTP status with no ZIM answer, e.g. a proxy's 503 after
    /// the backend did the work. Preset `5xx_after` (503).
    StatusAfter {
        /// The status.
        status: u16,
    },
    /// Instead: answer HTTP 200 with the JSON body `{}` — JSON, but not a ZIM answer (no `Code`). Preset
    /// `empty_json`.
    EmptyJson,
    /// Instead: answer HTTP 200, `application/json`, with a body of exactly `bytes` bytes (a JSON string of
    /// padding), streamed in chunks so the simulator never holds it in memory. Preset `huge_body` (64 MiB).
    HugeBody {
        /// Size of the body, bytes.
        bytes: u64,
    },
    /// Instead: answer a well-formed ZIM error, Code 660000001 ("general business error", retryable), whose
    /// `Message` is `bytes` bytes long, streamed like [`Fault::HugeBody`]. Preset `huge_message` (1 MiB).
    HugeMessage {
        /// Size of the message, bytes.
        bytes: u64,
    },
    /// Instead: answer this redirect status with this `Location` and an empty body. Preset `redirect` (307 to
    /// `http://127.0.0.1:9/`, the discard port, where nothing listens).
    Redirect {
        /// The status, e.g. 301, 302, 307, 308.
        status: u16,
        /// The `Location` header.
        location: String,
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
    /// This HTTP status with a plain-text body (see [`status_text`]), no ZIM answer.
    Status(u16),
    /// The headers, then the connection breaks.
    Broken,
    /// HTTP 200, `application/json`, with this body that is not valid JSON.
    Garbled(&'static str),
    /// HTTP 200, `application/json`: `prefix`, then `pad` bytes of padding, then `suffix`, streamed.
    Padded {
        /// The start of the body.
        prefix: String,
        /// Bytes of padding (`x`).
        pad: u64,
        /// The end of the body.
        suffix: &'static str,
    },
    /// This redirect status with this `Location`, and an empty body.
    Redirect {
        /// The status.
        status: u16,
        /// The `Location` header.
        location: String,
    },
}

/// The plain-text body of an HTTP status answer, e.g. `404 Not Found`.
pub(crate) fn status_text(status: u16) -> String {
    let reason = axum::http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason());
    format!("{status} {}\n", reason.unwrap_or("Unknown"))
}

/// The padding byte of [`Answer::Padded`].
pub(crate) const PAD_BYTE: u8 = b'x';

/// The code of [`Fault::HugeMessage`]: general business error, "retry or contact support".
pub(crate) const HUGE_MESSAGE_CODE: i64 = 660000001;

/// The body of [`Fault::Malformed`]: a ZIM answer cut off in the middle.
const GARBLED: &str = "{\"Code\": 0, \"Message\": \"succ";

/// The preset names `simulate --fault-kinds` accepts (besides a bare ZIM code and `http_<status>`).
pub const PRESETS: &[&str] = &[
    "busy",
    "internal",
    "throttle",
    "5xx",
    "404",
    "drop",
    "malformed",
    "timeout",
    "delay_reply",
    "drop_after",
    "5xx_after",
    "empty_json",
    "huge_body",
    "huge_message",
    "redirect",
];

impl Fault {
    /// Parses a preset name (see [`PRESETS`]), `http_<status>` as [`Fault::HttpStatus`], or a bare number as a
    /// ZIM code.
    pub fn preset(name: &str) -> Option<Fault> {
        Some(match name {
            "busy" => Fault::Code { code: 1 },
            "internal" => Fault::Code { code: 660000001 },
            "throttle" => Fault::Code { code: codes::RATE_LIMITED_APP },
            "5xx" => Fault::HttpStatus { status: 503 },
            "404" => Fault::HttpStatus { status: 404 },
            "drop" => Fault::Drop,
            "malformed" => Fault::Malformed,
            "timeout" => Fault::Delay { ms: 15_000 },
            "delay_reply" => Fault::DelayReply { ms: 15_000 },
            "drop_after" => Fault::DropAfter,
            "5xx_after" => Fault::StatusAfter { status: 503 },
            "empty_json" => Fault::EmptyJson,
            "huge_body" => Fault::HugeBody { bytes: 64 << 20 },
            "huge_message" => Fault::HugeMessage { bytes: 1 << 20 },
            "redirect" => Fault::Redirect { status: 307, location: "http://127.0.0.1:9/".into() },
            other => match other.strip_prefix("http_") {
                Some(status) => {
                    Fault::HttpStatus { status: status.parse().ok().filter(|s| (100..=999).contains(s))? }
                }
                None => Fault::Code { code: other.parse().ok()? },
            },
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
            Fault::EmptyJson => instead(Answer::Json(json!({}))),
            Fault::HugeBody { bytes } => instead(match bytes {
                0 => Answer::Padded { prefix: String::new(), pad: 0, suffix: "" },
                1 => Answer::Padded { prefix: "\"".into(), pad: 0, suffix: "" },
                n => Answer::Padded { prefix: "\"".into(), pad: n - 2, suffix: "\"" },
            }),
            Fault::HugeMessage { bytes } => instead(Answer::Padded {
                prefix: format!(r#"{{"Code":{HUGE_MESSAGE_CODE},"RequestId":"{request_id}","Message":""#),
                pad: *bytes,
                suffix: "\"}",
            }),
            Fault::Redirect { status, location } => {
                instead(Answer::Redirect { status: *status, location: location.clone() })
            }
            Fault::Delay { ms } => Before::Wait(*ms),
            Fault::DelayReply { .. } | Fault::DropAfter | Fault::StatusAfter { .. } => Before::Proceed,
        }
    }

    /// What the fault does to the action's own response `response`: the answer, and how long to wait first.
    pub(crate) fn after(&self, response: Value) -> (u64, Answer) {
        match self {
            Fault::DelayReply { ms } => (*ms, Answer::Json(response)),
            Fault::DropAfter => (0, Answer::Broken),
            Fault::StatusAfter { status } => (0, Answer::Status(*status)),
            _ => (0, Answer::Json(response)),
        }
    }

    /// The code the request log shows for a fault that answers instead of the action: the ZIM code it answers,
    /// or -1 when it answers at the HTTP level.
    pub(crate) fn logged_code(&self) -> i64 {
        match self {
            Fault::Code { code } => *code,
            Fault::HugeMessage { .. } => HUGE_MESSAGE_CODE,
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
            Fault::DropAfter => "drop_after".into(),
            Fault::StatusAfter { status } => format!("http_{status}_after"),
            Fault::EmptyJson => "empty_json".into(),
            Fault::HugeBody { bytes } => format!("huge_body_{bytes}"),
            Fault::HugeMessage { bytes } => format!("huge_message_{bytes}"),
            Fault::Redirect { status, .. } => format!("redirect_{status}"),
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
        assert_eq!(Fault::preset("404"), Some(Fault::HttpStatus { status: 404 }));
        assert_eq!(Fault::preset("http_502"), Some(Fault::HttpStatus { status: 502 }));
        assert_eq!(Fault::preset("http_x"), None);
        assert_eq!(Fault::preset("nonsense"), None);
    }
}
