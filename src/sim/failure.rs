//! A refused simulated action: its code, message and any extra response fields, and the two shapes used
//! everywhere (a code with a message; the parameter error).

use serde_json::{Value, json};

use crate::zim::codes;

/// A refused action: its code, message and any extra response fields.
#[derive(Debug, PartialEq)]
pub(crate) struct Failure {
    pub code: i64,
    pub message: String,
    pub extra: Value,
}

pub(crate) fn fail(code: i64, message: &str) -> Failure {
    Failure { code, message: message.to_owned(), extra: json!({}) }
}

pub(crate) fn invalid(message: &str) -> Failure {
    fail(codes::INVALID_PARAMS, message)
}
