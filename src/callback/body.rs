//! Reading a callback body into its fields (the request body, as ZEGO's callback pages describe it). ZEGO says the data is JSON that "needs
//! UrlDecode" and documents no content type, while its own signature samples read form parameters, so the
//! content type is ignored and the body itself decides:
//!
//! 1. It starts with `{` (after whitespace): a JSON object.
//! 2. Once URL-decoded (`%XX` and `+`), it starts with `{`: a percent-encoded JSON object.
//! 3. Otherwise: `application/x-www-form-urlencoded` pairs (the first of a repeated key counts).
//!
//! `appid`, `timestamp` and `nonce` may be strings or JSON integers; `timestamp` may be Unix seconds or
//! milliseconds (the samples show seconds, the field tables say ms). The timestamp and nonce are kept as spelled,
//! since the signature is computed over that text.

use std::fmt;

use serde_json::Value;

use super::Event;

/// The longest nonce, room ID and signature accepted, in bytes (ZEGO's nonces are short digit strings, room IDs
/// at most 32 bytes, signatures 40 hex characters; the margin costs nothing).
const MAX_FIELD_BYTES: usize = 128;

/// A timestamp above this is in milliseconds (10^11 s is in the year 5138; 10^11 ms was in 1973).
const MS_ABOVE: u64 = 100_000_000_000;

/// The fields of one callback that the receiver uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Callback {
    /// The AppId the callback is for.
    pub app_id: u32,
    /// The event.
    pub event: Event,
    /// The timestamp as the body spelled it (signed).
    pub timestamp: String,
    /// The timestamp in Unix milliseconds, whichever unit the body used.
    pub unix_ms: u64,
    /// The nonce as the body spelled it (signed).
    pub nonce: String,
    /// The signature sent.
    pub signature: String,
    /// The room, when the body names one.
    pub room_id: Option<String>,
}

/// Why a body is not a callback. The message names a field, never a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Malformed {
    /// The event, when the body could be read that far (for the outcome's label).
    pub event: Event,
    /// What is wrong.
    pub reason: Reason,
}

/// What is wrong with a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Not a JSON object, nor a percent-encoded one, nor a form.
    Unreadable,
    /// A required field is absent.
    Missing(&'static str),
    /// A field has the wrong type, is empty, too long or out of range.
    Invalid(&'static str),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Unreadable => f.write_str("the body is neither a JSON object nor a form"),
            Reason::Missing(field) => write!(f, "missing field `{field}`"),
            Reason::Invalid(field) => write!(f, "invalid field `{field}`"),
        }
    }
}

/// One field's value as the body gave it.
enum Raw {
    /// A string (JSON) or any form value.
    Text(String),
    /// A JSON integer, as digits.
    Integer(String),
    /// Anything else (a float, an array, null, …).
    Other,
}

/// Reads `body` into a [`Callback`].
pub(crate) fn parse(body: &[u8]) -> Result<Callback, Malformed> {
    let fields = fields(body).ok_or(Malformed { event: Event::Other, reason: Reason::Unreadable })?;
    let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let event = match get("event") {
        Some(Raw::Text(name)) => Event::from_name(name),
        _ => Event::Other,
    };
    let fail = |reason| Malformed { event, reason };
    match get("event") {
        None => return Err(fail(Reason::Missing("event"))),
        Some(Raw::Text(_)) => {}
        Some(_) => return Err(fail(Reason::Invalid("event"))),
    }
    let digits = |name: &'static str| match get(name) {
        None => Err(fail(Reason::Missing(name))),
        Some(Raw::Text(s) | Raw::Integer(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(s.clone())
        }
        Some(_) => Err(fail(Reason::Invalid(name))),
    };
    let app_id = digits("appid")?.parse::<u32>().map_err(|_| fail(Reason::Invalid("appid")))?;
    let timestamp = digits("timestamp")?;
    let value = timestamp.parse::<u64>().map_err(|_| fail(Reason::Invalid("timestamp")))?;
    let unix_ms = if value > MS_ABOVE { value } else { value.saturating_mul(1000) };
    let text = |name: &'static str, allow_integer: bool| match get(name) {
        None => Err(fail(Reason::Missing(name))),
        Some(Raw::Text(s)) if valid_text(s) => Ok(s.clone()),
        Some(Raw::Integer(s)) if allow_integer => Ok(s.clone()),
        Some(_) => Err(fail(Reason::Invalid(name))),
    };
    let nonce = text("nonce", true)?;
    // A missing or unreadable signature is one that does not match: the request is unauthenticated (401), not
    // malformed.
    let signature = text("signature", false).unwrap_or_default();
    let room_id = match text("room_id", true) {
        Ok(id) => Some(id),
        Err(Malformed { reason: Reason::Missing(_), .. }) => None,
        Err(e) => return Err(e),
    };
    Ok(Callback { app_id, event, timestamp, unix_ms, nonce, signature, room_id })
}

/// Non-empty, short, and free of control characters.
fn valid_text(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_FIELD_BYTES && !s.chars().any(char::is_control)
}

/// The body's top-level fields, by the rules in the module header; `None` when it is none of the three forms.
fn fields(body: &[u8]) -> Option<Vec<(String, Raw)>> {
    if body.trim_ascii_start().starts_with(b"{") {
        return json_fields(body);
    }
    let decoded = url_decode(body);
    if decoded.trim_ascii_start().starts_with(b"{") {
        return json_fields(&decoded);
    }
    let mut pairs: Vec<(String, Raw)> = Vec::new();
    for (key, value) in url::form_urlencoded::parse(body) {
        if !pairs.iter().any(|(k, _)| *k == key) {
            pairs.push((key.into_owned(), Raw::Text(value.into_owned())));
        }
    }
    (!pairs.is_empty()).then_some(pairs)
}

/// The top-level fields of a JSON object.
fn json_fields(body: &[u8]) -> Option<Vec<(String, Raw)>> {
    let Value::Object(map) = serde_json::from_slice::<Value>(body).ok()? else { return None };
    let raw = |v: Value| match v {
        Value::String(s) => Raw::Text(s),
        Value::Number(n) if n.is_u64() || n.is_i64() => Raw::Integer(n.to_string()),
        _ => Raw::Other,
    };
    Some(map.into_iter().map(|(k, v)| (k, raw(v))).collect())
}

/// URL-decodes as PHP's `urldecode` does: `+` is a space, `%XX` a byte, and a `%` not followed by two hex digits
/// stays as it is.
fn url_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => match (input.get(i + 1).and_then(|&b| hex(b)), input.get(i + 2).and_then(|&b| hex(b))) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}
