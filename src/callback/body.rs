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
//!
//! `room_enter` and `room_exit` bodies are also read into a typed [`Membership`] (`Callback::membership`): the
//! room, and who entered, or how (`exit_type` `Quit` or `Kickout`), by whom (`operator_account`) and which users
//! (`exit_user_ids`) left. On `exit_user_ids` the EN page ("the room members when the user exits") and the ZH page
//! ("the users who exited") disagree; it is read as the ZH page says, the users who left. On `operator_account`
//! for `Quit` the EN page says it equals `exit_user_ids` and the ZH page that it is invalid, so for `Quit` it is
//! kept only as a hint. A membership body whose own fields are wrong does not make the callback malformed: its
//! `membership` holds the reason, and the receiver decides.

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
    /// For `room_enter` and `room_exit`: the change of membership, or what is wrong with its fields. `None` for
    /// every other event.
    pub membership: Option<Result<Membership, Reason>>,
}

/// How users left a room (`exit_type` of `room_exit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitType {
    /// `Quit`: the users left of their own accord.
    Quit,
    /// `Kickout`: the users were removed (KickoutRoomUser, or a client's kick).
    Kickout,
}

/// A change of a room's members, from a `room_enter` or `room_exit` callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Membership {
    /// `room_enter`: a user entered.
    Entered {
        /// The room.
        room_id: String,
        /// The user who entered (`operator_account`).
        user_id: String,
    },
    /// `room_exit`: users left.
    Left {
        /// The room.
        room_id: String,
        /// Quit or Kickout.
        exit_type: ExitType,
        /// `operator_account`: for Kickout, who removed them; for Quit, the leaver (EN) or meaningless (ZH).
        /// `None` when absent or empty.
        operator: Option<String>,
        /// `exit_user_ids`: the users who left.
        exit_user_ids: Vec<String>,
    },
}

impl Membership {
    /// The room.
    pub fn room_id(&self) -> &str {
        match self {
            Membership::Entered { room_id, .. } | Membership::Left { room_id, .. } => room_id,
        }
    }
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
    /// A JSON array.
    Array(Vec<Value>),
    /// Anything else (a float, an object, null, …).
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
    let event_name = match get("event") {
        Some(Raw::Text(name)) => name.as_str(),
        _ => "",
    };
    let membership = match event_name {
        "room_enter" | "room_exit" => Some(membership(event_name, &get)),
        _ => None,
    };
    Ok(Callback { app_id, event, timestamp, unix_ms, nonce, signature, room_id, membership })
}

/// The most user IDs read from one `exit_user_ids` (a KickoutRoomUser names at most 50; the body is at most
/// 64 KiB anyway).
const MAX_EXIT_USERS: usize = 1000;

/// Reads the business fields of a `room_enter` or `room_exit` body.
fn membership<'a>(event: &str, get: &impl Fn(&str) -> Option<&'a Raw>) -> Result<Membership, Reason> {
    let text = |name: &'static str| match get(name) {
        None => Err(Reason::Missing(name)),
        Some(Raw::Text(s)) if valid_text(s) => Ok(s.clone()),
        Some(Raw::Integer(s)) => Ok(s.clone()),
        Some(_) => Err(Reason::Invalid(name)),
    };
    let room_id = text("room_id")?;
    if event == "room_enter" {
        return Ok(Membership::Entered { room_id, user_id: text("operator_account")? });
    }
    let exit_type = match get("exit_type") {
        None => return Err(Reason::Missing("exit_type")),
        Some(Raw::Text(t)) if t.eq_ignore_ascii_case("quit") => ExitType::Quit,
        Some(Raw::Text(t)) if t.eq_ignore_ascii_case("kickout") => ExitType::Kickout,
        Some(_) => return Err(Reason::Invalid("exit_type")),
    };
    let operator = match get("operator_account") {
        Some(Raw::Text(s)) if valid_text(s) => Some(s.clone()),
        Some(Raw::Integer(s)) => Some(s.clone()),
        _ => None,
    };
    // An array (JSON), or a text holding a JSON array (a form body).
    let listed: Vec<Value> = match get("exit_user_ids") {
        None => return Err(Reason::Missing("exit_user_ids")),
        Some(Raw::Array(items)) => items.clone(),
        Some(Raw::Text(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(items)) => items,
            _ => return Err(Reason::Invalid("exit_user_ids")),
        },
        Some(_) => return Err(Reason::Invalid("exit_user_ids")),
    };
    if listed.len() > MAX_EXIT_USERS {
        return Err(Reason::Invalid("exit_user_ids"));
    }
    let mut exit_user_ids = Vec::with_capacity(listed.len());
    for item in listed {
        match item {
            Value::String(id) if valid_text(&id) => exit_user_ids.push(id),
            Value::Number(n) if n.is_u64() || n.is_i64() => exit_user_ids.push(n.to_string()),
            _ => return Err(Reason::Invalid("exit_user_ids")),
        }
    }
    Ok(Membership::Left { room_id, exit_type, operator, exit_user_ids })
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
        Value::Array(items) => Raw::Array(items),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(body: &Value) -> Callback {
        parse(&serde_json::to_vec(body).unwrap()).unwrap()
    }

    /// ZEGO's room_enter sample (room-entered.mdx, EN and ZH alike) reads as the user who entered.
    #[test]
    fn room_enter_sample_reads_as_an_entry() {
        let sample = json!({
            "appid": "1", "event": "room_enter", "room_id": "1", "nonce": "350176", "signature": "signature",
            "operator_account": "userA", "timestamp": 1499676978
        });
        let callback = parsed(&sample);
        assert_eq!(callback.event, Event::Other);
        assert_eq!(callback.room_id.as_deref(), Some("1"));
        let entered = Membership::Entered { room_id: "1".into(), user_id: "userA".into() };
        assert_eq!(callback.membership, Some(Ok(entered)));
    }

    /// ZEGO's room_exit sample (room-left.mdx, EN and ZH alike): a Kickout by userA of Tony and Jenny.
    #[test]
    fn room_exit_sample_reads_as_a_kickout() {
        let sample = json!({
            "appid": "1", "event": "room_exit", "room_id": "1", "nonce": "350176", "signature": "signature",
            "exit_type": "Kickout", "operator_account": "userA", "exit_user_ids": ["Tony", "Jenny"],
            "timestamp": 1499676978
        });
        let left = Membership::Left {
            room_id: "1".into(),
            exit_type: ExitType::Kickout,
            operator: Some("userA".into()),
            exit_user_ids: vec!["Tony".into(), "Jenny".into()],
        };
        assert_eq!(parsed(&sample).membership, Some(Ok(left.clone())));
        assert_eq!(left.room_id(), "1");
    }

    /// A Quit without `operator_account` (the ZH page calls it invalid on Quit) or with an empty one reads with
    /// no operator; the body may also be percent-encoded.
    #[test]
    fn quit_reads_without_an_operator() {
        for operator in [None, Some("")] {
            let mut body = json!({
                "appid": 7, "event": "room_exit", "room_id": "lobby", "nonce": 1, "signature": "s",
                "exit_type": "Quit", "exit_user_ids": ["u1"], "timestamp": 1_499_676_978_000u64
            });
            if let Some(op) = operator {
                body["operator_account"] = json!(op);
            }
            let expected = Membership::Left {
                room_id: "lobby".into(),
                exit_type: ExitType::Quit,
                operator: None,
                exit_user_ids: vec!["u1".into()],
            };
            assert_eq!(parsed(&body).membership, Some(Ok(expected.clone())));
            let encoded: String = url::form_urlencoded::byte_serialize(body.to_string().as_bytes()).collect();
            assert_eq!(parse(encoded.as_bytes()).unwrap().membership, Some(Ok(expected)));
        }
    }

    /// A form body carries `exit_user_ids` as the text of a JSON array.
    #[test]
    fn form_bodies_carry_the_list_as_json_text() {
        let form = "appid=1&event=room_exit&timestamp=1499676978&nonce=5&signature=s&room_id=r&exit_type=Quit\
                    &operator_account=u&exit_user_ids=%5B%22u%22%5D";
        let Some(Ok(Membership::Left { exit_user_ids, .. })) = parse(form.as_bytes()).unwrap().membership
        else {
            panic!("not a room_exit");
        };
        assert_eq!(exit_user_ids, vec!["u".to_string()]);
    }

    /// Wrong membership fields leave the callback readable (its signature can still be checked) and say which
    /// field is wrong; other events have no membership.
    #[test]
    fn wrong_membership_fields_are_reported_not_fatal() {
        let base = json!({
            "appid": "1", "event": "room_exit", "room_id": "r", "nonce": "1", "signature": "s",
            "exit_type": "Kickout", "operator_account": "op", "exit_user_ids": ["a"], "timestamp": 1499676978
        });
        let with = |key: &str, value: Value| {
            let mut body = base.clone();
            if value.is_null() {
                body.as_object_mut().unwrap().remove(key);
            } else {
                body[key] = value;
            }
            parsed(&body).membership
        };
        assert_eq!(with("exit_type", json!("Banned")), Some(Err(Reason::Invalid("exit_type"))));
        assert_eq!(with("exit_type", Value::Null), Some(Err(Reason::Missing("exit_type"))));
        assert_eq!(with("exit_user_ids", Value::Null), Some(Err(Reason::Missing("exit_user_ids"))));
        assert_eq!(with("exit_user_ids", json!("Tony")), Some(Err(Reason::Invalid("exit_user_ids"))));
        assert_eq!(with("exit_user_ids", json!([{"id": 1}])), Some(Err(Reason::Invalid("exit_user_ids"))));
        assert_eq!(with("exit_user_ids", json!([""])), Some(Err(Reason::Invalid("exit_user_ids"))));
        assert_eq!(with("room_id", Value::Null), Some(Err(Reason::Missing("room_id"))));
        let too_many: Vec<String> = (0..=MAX_EXIT_USERS).map(|i| i.to_string()).collect();
        assert_eq!(with("exit_user_ids", json!(too_many)), Some(Err(Reason::Invalid("exit_user_ids"))));
        let mut enter = base.clone();
        enter["event"] = json!("room_enter");
        enter.as_object_mut().unwrap().remove("operator_account");
        assert_eq!(parsed(&enter).membership, Some(Err(Reason::Missing("operator_account"))));
        let mut destroy = base;
        destroy["event"] = json!("room_destroy");
        assert_eq!(parsed(&destroy).membership, None);
    }
}
