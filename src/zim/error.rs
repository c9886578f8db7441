//! The one error type of the ZIM client.
//!
//! It separates "ZIM answered with a non-zero Code" from transport, timeout, HTTP-status and decoding failures, and
//! every variant maps to a [`Class`]. No variant carries a URL: request URLs hold the signature.

use super::codes::{self, Class};
use super::types::Action;

/// What to check when something other than ZIM answered.
pub const ENDPOINT_HINT: &str = "check that the ZIM endpoint (--endpoint, ZIM_ENDPOINT) is ZEGO's server API and that no proxy answers in its place";

/// A failed ZIM call.
#[derive(Debug, thiserror::Error)]
pub enum ZimError {
    /// ZIM answered, with a non-zero `Code`.
    #[error("{action} answered code {code} ({message}), request id {request_id}")]
    Api {
        /// The action called.
        action: Action,
        /// ZIM's return code.
        code: i64,
        /// ZIM's message.
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
    #[error("{action} failed in transport: {detail}")]
    Transport {
        /// The action called.
        action: Action,
        /// What failed (never the URL).
        detail: String,
    },
    /// An HTTP status other than 2xx: not a ZIM answer.
    #[error("{action} answered HTTP status {status}, not a ZIM answer; {ENDPOINT_HINT}")]
    HttpStatus {
        /// The action called.
        action: Action,
        /// The status.
        status: u16,
    },
    /// The body was not a ZIM answer (not JSON, or JSON without a `Code`).
    #[error("{action} answered a body that is not a ZIM answer ({detail}); {ENDPOINT_HINT}")]
    Decode {
        /// The action called.
        action: Action,
        /// What was wrong.
        detail: String,
    },
}

impl ZimError {
    /// How the operator treats this failure.
    pub fn class(&self) -> Class {
        match self {
            ZimError::Api { code, .. } => codes::classify(*code),
            ZimError::Timeout { .. } | ZimError::Transport { .. } | ZimError::Decode { .. } => {
                Class::Transient
            }
            ZimError::HttpStatus { status, .. } => codes::classify_http_status(*status),
        }
    }

    /// Whether the outcome of the call is known: ZIM answered a code, or a gateway refused the request (HTTP 4xx).
    /// A timeout, a broken connection, an HTTP 5xx or a body that is not a ZIM answer leave it unknown — the
    /// call may have taken effect.
    pub fn outcome_known(&self) -> bool {
        match self {
            ZimError::Api { .. } => true,
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
            | ZimError::Decode { action, .. } => *action,
        }
    }

    /// A fixed label for the outcome, for metrics: the code, or the failure kind.
    pub fn result_label(&self) -> String {
        match self {
            ZimError::Api { code, .. } => code.to_string(),
            ZimError::Timeout { .. } => "timeout".into(),
            ZimError::Transport { .. } => "transport".into(),
            ZimError::HttpStatus { status, .. } => format!("http_{status}"),
            ZimError::Decode { .. } => "decode".into(),
        }
    }
}
