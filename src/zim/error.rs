//! The one error type of the ZIM client.
//!
//! It separates "ZIM answered with a non-zero Code" from transport, timeout, HTTP-status and decoding failures, and
//! every variant maps to a [`Class`]. No variant carries a URL: request URLs hold the signature.
//!
//! Whatever the other side sends is bounded here: ZIM's `Message` and `RequestId`, and the details of transport
//! and decoding failures, are cut to a few hundred bytes (at a character boundary) when the error is made and
//! again when it is displayed, so a hostile or broken endpoint cannot push megabytes into conditions, events or
//! logs; and [`ZimError::result_label`] comes from a fixed set, so it cannot grow the metrics' label space.

use std::borrow::Cow;

use super::codes::{self, Class};
use super::types::Action;

/// The most bytes of ZIM's `Message` a [`ZimError`] keeps (and displays).
pub const MAX_MESSAGE_BYTES: usize = 512;
/// The most bytes of ZIM's `RequestId` a [`ZimError`] keeps (ZEGO's are about 20 digits).
pub const MAX_REQUEST_ID_BYTES: usize = 64;
/// The most bytes of a transport or decoding failure's detail a [`ZimError`] keeps.
pub const MAX_DETAIL_BYTES: usize = 512;

/// `text` cut to at most `max` bytes at a character boundary, ending with `…[N bytes]` (N the original length)
/// when it was cut. The result is never longer than `max` (for `max` ≥ 32), so cutting twice changes nothing.
pub fn truncate(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let marker = format!("…[{} bytes]", text.len());
    let mut keep = max.saturating_sub(marker.len());
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    Cow::Owned(format!("{}{marker}", &text[..keep]))
}

/// What to check when something other than ZIM answered.
pub const ENDPOINT_HINT: &str = "check that the ZIM endpoint (--endpoint, ZIM_ENDPOINT) is ZEGO's server API and that no proxy answers in its place";

/// A failed ZIM call.
#[derive(Debug, thiserror::Error)]
pub enum ZimError {
    /// ZIM answered, with a non-zero `Code`.
    #[error(
        "{action} answered code {code} ({}), request id {}",
        truncate(.message, MAX_MESSAGE_BYTES),
        truncate(.request_id, MAX_REQUEST_ID_BYTES)
    )]
    Api {
        /// The action called.
        action: Action,
        /// ZIM's return code.
        code: i64,
        /// ZIM's message, at most [`MAX_MESSAGE_BYTES`] when made by [`ZimError::api`].
        message: String,
        /// ZIM's request id, for support tickets.
        request_id: String,
    },
    /// No answer within the client's timeout.
    #[error("{action} timed out after {timeout_ms} ms")]
    Timeout {
        /// The action called.
        action: Action,
        /// The timeout that expired.
        timeout_ms: u64,
    },
    /// The connection failed or broke.
    #[error("{action} failed in transport: {}", truncate(.detail, MAX_DETAIL_BYTES))]
    Transport {
        /// The action called.
        action: Action,
        /// What failed (never the URL).
        detail: String,
    },
    /// An HTTP status other than 2xx: not a ZIM answer. Redirects (3xx) are not followed.
    #[error("{action} answered HTTP status {status}{}, not a ZIM answer; {ENDPOINT_HINT}", redirect_note(*.status))]
    HttpStatus {
        /// The action called.
        action: Action,
        /// The status.
        status: u16,
    },
    /// The client refused the request before sending it: it breaks a documented limit (more than 50 users for
    /// KickoutRoomUser, a message over 2 KB). Nothing was sent.
    #[error("{action} not sent: {}", truncate(.reason, MAX_DETAIL_BYTES))]
    Refused {
        /// The action not called.
        action: Action,
        /// Which limit the request breaks.
        reason: String,
    },
    /// The body was not a ZIM answer (not JSON, or JSON without a `Code`).
    #[error(
        "{action} answered a body that is not a ZIM answer ({}); {ENDPOINT_HINT}",
        truncate(.detail, MAX_DETAIL_BYTES)
    )]
    Decode {
        /// The action called.
        action: Action,
        /// What was wrong.
        detail: String,
    },
}

fn redirect_note(status: u16) -> &'static str {
    if (300..400).contains(&status) { " (a redirect: the client never follows redirects)" } else { "" }
}

impl ZimError {
    /// ZIM answered `code`: the error with `message` and `request_id` cut to their bounds.
    pub fn api(action: Action, code: i64, message: &str, request_id: &str) -> Self {
        ZimError::Api {
            action,
            code,
            message: truncate(message, MAX_MESSAGE_BYTES).into_owned(),
            request_id: truncate(request_id, MAX_REQUEST_ID_BYTES).into_owned(),
        }
    }

    /// A transport failure, its detail cut to [`MAX_DETAIL_BYTES`].
    pub fn transport(action: Action, detail: &str) -> Self {
        ZimError::Transport { action, detail: truncate(detail, MAX_DETAIL_BYTES).into_owned() }
    }

    /// A body that is not a ZIM answer, the detail cut to [`MAX_DETAIL_BYTES`].
    pub fn decode(action: Action, detail: &str) -> Self {
        ZimError::Decode { action, detail: truncate(detail, MAX_DETAIL_BYTES).into_owned() }
    }

    /// How the operator treats this failure.
    pub fn class(&self) -> Class {
        match self {
            ZimError::Api { code, .. } => codes::classify(*code),
            ZimError::Timeout { .. } | ZimError::Transport { .. } | ZimError::Decode { .. } => {
                Class::Transient
            }
            ZimError::HttpStatus { status, .. } => codes::classify_http_status(*status),
            ZimError::Refused { .. } => Class::Terminal(super::codes::Terminal::InvalidParams),
        }
    }

    /// A request refused before it was sent, with the limit it breaks.
    pub fn refused(action: Action, reason: &str) -> Self {
        ZimError::Refused { action, reason: truncate(reason, MAX_DETAIL_BYTES).into_owned() }
    }

    /// Whether the outcome of the call is known: ZIM answered a code, a gateway refused the request (HTTP 4xx), or
    /// the client never sent it.
    /// A timeout, a broken connection, an HTTP 5xx or a body that is not a ZIM answer leave it unknown — the
    /// call may have taken effect.
    pub fn outcome_known(&self) -> bool {
        match self {
            ZimError::Api { .. } | ZimError::Refused { .. } => true,
            ZimError::HttpStatus { status, .. } => (400..500).contains(status),
            ZimError::Timeout { .. } | ZimError::Transport { .. } | ZimError::Decode { .. } => false,
        }
    }

    /// ZIM's code, when ZIM answered.
    pub fn code(&self) -> Option<i64> {
        match self {
            ZimError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// ZIM's request id, when ZIM answered.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            ZimError::Api { request_id, .. } if !request_id.is_empty() => Some(request_id),
            _ => None,
        }
    }

    /// The action that failed.
    pub fn action(&self) -> Action {
        match self {
            ZimError::Api { action, .. }
            | ZimError::Timeout { action, .. }
            | ZimError::Transport { action, .. }
            | ZimError::HttpStatus { action, .. }
            | ZimError::Refused { action, .. }
            | ZimError::Decode { action, .. } => *action,
        }
    }

    /// A label for the outcome, for metrics, from a bounded set: a code of the table in [`codes`] verbatim
    /// (any other code is `other`), `timeout`, `transport`, `decode`, or `http_NNN` for a registered HTTP status
    /// (any other status is `http_other`), or `refused` (not sent). Whatever the endpoint answers, the label space
    /// stays fixed.
    pub fn result_label(&self) -> String {
        match self {
            ZimError::Api { code, .. } => codes::code_label(*code).into_owned(),
            ZimError::Timeout { .. } => "timeout".into(),
            ZimError::Transport { .. } => "transport".into(),
            ZimError::HttpStatus { status, .. } => codes::http_status_label(*status).into_owned(),
            ZimError::Decode { .. } => "decode".into(),
            ZimError::Refused { .. } => "refused".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cutting keeps a character boundary, stays within the bound (marker included), says how long the text
    /// was, and cutting again changes nothing.
    #[test]
    fn truncate_is_bounded_and_idempotent() {
        let long = "é".repeat(10_000);
        let cut = truncate(&long, MAX_MESSAGE_BYTES);
        assert!(cut.len() <= MAX_MESSAGE_BYTES, "{}", cut.len());
        assert!(cut.ends_with("…[20000 bytes]"), "{cut}");
        assert_eq!(truncate(&cut, MAX_MESSAGE_BYTES), cut);
        assert_eq!(truncate("short", MAX_MESSAGE_BYTES), "short");
    }

    /// An error made by hand with a huge message (as any code path could) still displays a bounded text.
    #[test]
    fn display_is_bounded_whatever_the_fields() {
        let e = ZimError::Api {
            action: Action::CreateRoom,
            code: 660000001,
            message: "x".repeat(8 << 20),
            request_id: "9".repeat(1 << 20),
        };
        assert!(e.to_string().len() < 1024, "{}", e.to_string().len());
        let e = ZimError::Decode { action: Action::CreateRoom, detail: "y".repeat(1 << 20) };
        assert!(e.to_string().len() < 1024);
        let e = ZimError::Transport { action: Action::CreateRoom, detail: "z".repeat(1 << 20) };
        assert!(e.to_string().len() < 1024);
    }

    /// The constructors cut what they keep.
    #[test]
    fn constructors_bound_their_fields() {
        match ZimError::api(Action::CreateRoom, 1, &"m".repeat(1 << 20), &"r".repeat(1000)) {
            ZimError::Api { message, request_id, .. } => {
                assert!(message.len() <= MAX_MESSAGE_BYTES && request_id.len() <= MAX_REQUEST_ID_BYTES)
            }
            other => panic!("{other:?}"),
        }
    }

    /// Labels come from a fixed set: unknown codes and unregistered statuses are bucketed.
    #[test]
    fn result_labels_are_bounded() {
        let api = |code| ZimError::api(Action::CreateRoom, code, "", "").result_label();
        assert_eq!(api(660300015), "660300015");
        assert_eq!(api(1), "1");
        assert_eq!(api(123456789), "other");
        assert_eq!(api(-5), "other");
        let http = |status| ZimError::HttpStatus { action: Action::CreateRoom, status }.result_label();
        assert_eq!(http(503), "http_503");
        assert_eq!(http(307), "http_307");
        assert_eq!(http(599), "http_other");
        assert_eq!(http(999), "http_other");
        let labels: std::collections::BTreeSet<String> =
            (-1000..1_000_000i64).map(api).chain((0..=u16::MAX).map(http)).collect();
        assert!(labels.len() < 200, "{} labels", labels.len());
    }

    /// A request refused before sending is a known outcome of class invalid_params, and says what it breaks.
    #[test]
    fn refused_requests_are_known_and_terminal() {
        let e = ZimError::refused(Action::KickoutRoomUser, "51 users; at most 50 per call");
        assert!(e.outcome_known());
        assert_eq!(e.class(), Class::Terminal(super::super::codes::Terminal::InvalidParams));
        assert_eq!(e.result_label(), "refused");
        assert_eq!(e.code(), None);
        assert!(e.to_string().contains("KickoutRoomUser not sent: 51 users"), "{e}");
    }

    /// A redirect's message says it was not followed.
    #[test]
    fn redirect_message_says_it_was_not_followed() {
        let e = ZimError::HttpStatus { action: Action::CreateRoom, status: 307 };
        assert!(e.to_string().contains("never follows redirects"), "{e}");
        let e = ZimError::HttpStatus { action: Action::CreateRoom, status: 503 };
        assert!(!e.to_string().contains("redirect"), "{e}");
    }
}
