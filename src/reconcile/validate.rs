//! Checks the schema cannot express: UTF-8 byte lengths, key uniqueness and totals, and immutable fields on
//! clusters without CEL (compared against what was applied, kept on the status). Each problem names its field.

use std::collections::HashSet;
use std::fmt;

use crate::crd::{ZimRoom, ZimRoomSpec};
use crate::zim::limits;

/// The longest drain message, in bytes of UTF-8.
pub const MAX_DRAIN_MESSAGE_BYTES: usize = 1024;
/// The longest drain grace period, in seconds (a day).
pub const MAX_DRAIN_GRACE_SECS: u32 = 86_400;

/// One problem with a field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the field, e.g. `spec.attributes[2].value`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

fn err(path: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError { path: path.into(), message: message.into() }
}

/// Validates a spec; `name` is metadata.name (the default room ID). Returns every problem found.
pub fn validate_spec(name: &str, spec: &ZimRoomSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match &spec.room_id {
        Some(id) => {
            if let Err(e) = limits::check_id(id) {
                errors.push(err("spec.roomId", e));
            }
        }
        None => {
            if let Err(e) = limits::check_id(name) {
                errors.push(err(
                    "metadata.name",
                    format!("is used as the room ID (spec.roomId is unset) and {e}"),
                ));
            }
        }
    }
    if let Some(from) = &spec.from_user_id
        && let Err(e) = limits::check_id(from)
    {
        errors.push(err("spec.fromUserId", e));
    }
    if let Some(room_name) = &spec.room_name
        && room_name.len() > limits::MAX_ROOM_NAME_BYTES
    {
        errors.push(err(
            "spec.roomName",
            format!(
                "is {} bytes of UTF-8, at most {} are allowed",
                room_name.len(),
                limits::MAX_ROOM_NAME_BYTES
            ),
        ));
    }
    if spec.destroy_delay_time > limits::MAX_DESTROY_DELAY_SECS {
        errors.push(err(
            "spec.destroyDelayTime",
            format!(
                "is {}, it must be from 0 to {}",
                spec.destroy_delay_time,
                limits::MAX_DESTROY_DELAY_SECS
            ),
        ));
    }
    if spec.attributes.len() > limits::MAX_ATTRIBUTES {
        errors.push(err(
            "spec.attributes",
            format!("has {} entries, at most {} are allowed", spec.attributes.len(), limits::MAX_ATTRIBUTES),
        ));
    }
    if let Some(w) = &spec.when_occupied {
        if w.timeout_seconds.is_some() != w.after_timeout.is_some() {
            errors.push(err(
                "spec.whenOccupied",
                "timeoutSeconds and afterTimeout go together: after the timeout, the deletion does afterTimeout (Drain or Destroy)",
            ));
        }
        if w.timeout_seconds == Some(0) {
            errors.push(err("spec.whenOccupied.timeoutSeconds", "must be at least 1"));
        }
        if let Some(m) = &w.drain_message
            && (m.is_empty() || m.len() > MAX_DRAIN_MESSAGE_BYTES)
        {
            errors.push(err(
                "spec.whenOccupied.drainMessage",
                format!("is {} bytes of UTF-8, it must be 1 to {MAX_DRAIN_MESSAGE_BYTES}", m.len()),
            ));
        }
        if let Some(g) = w.drain_grace_seconds
            && g > MAX_DRAIN_GRACE_SECS
        {
            errors.push(err(
                "spec.whenOccupied.drainGraceSeconds",
                format!("is {g}, it must be from 0 to {MAX_DRAIN_GRACE_SECS}"),
            ));
        }
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for (i, a) in spec.attributes.iter().enumerate() {
        let path = format!("spec.attributes[{i}]");
        if a.key.is_empty() {
            errors.push(err(format!("{path}.key"), "must not be empty"));
        } else if a.key.len() > limits::MAX_ATTRIBUTE_KEY_BYTES {
            errors.push(err(
                format!("{path}.key"),
                format!("is {} bytes, at most {} are allowed", a.key.len(), limits::MAX_ATTRIBUTE_KEY_BYTES),
            ));
        }
        if !seen.insert(a.key.as_str()) {
            errors.push(err(format!("{path}.key"), format!("duplicates the key {:?}", a.key)));
        }
        if a.value.len() > limits::MAX_ATTRIBUTE_VALUE_BYTES {
            errors.push(err(
                format!("{path}.value"),
                format!(
                    "is {} bytes, at most {} are allowed",
                    a.value.len(),
                    limits::MAX_ATTRIBUTE_VALUE_BYTES
                ),
            ));
        }
        total += a.value.len();
    }
    if total > limits::MAX_ATTRIBUTE_TOTAL_BYTES {
        errors.push(err(
            "spec.attributes",
            format!(
                "values add up to {total} bytes, at most {} are allowed",
                limits::MAX_ATTRIBUTE_TOTAL_BYTES
            ),
        ));
    }
    if let Some(secret) = &spec.credentials_secret_ref
        && secret.name.is_empty()
    {
        errors.push(err("spec.credentialsSecretRef.name", "must not be empty"));
    }
    errors
}

/// Compares the immutable fields with what was applied to ZIM (from the status). Returns the changed fields.
pub fn immutable_changes(room: &ZimRoom) -> Vec<FieldError> {
    let status = room.status.as_ref();
    let Some(applied) = status.and_then(|s| s.applied.as_ref()) else {
        // A creation that may have happened: its room ID is fixed too (the room would otherwise be left behind).
        if let Some(s) = status.filter(|s| s.pending_creation)
            && let Some(pending) = s.room_id.as_deref()
            && pending != room.room_id()
        {
            return vec![err(
                "spec.roomId",
                format!(
                    "cannot change while a CreateRoom for {pending:?} may have created that room; set it back, or delete and recreate the ZimRoom"
                ),
            )];
        }
        return Vec::new();
    };
    let mut errors = Vec::new();
    let room_id = room.room_id();
    if room_id != applied.room_id {
        errors.push(err(
            "spec.roomId",
            format!(
                "is immutable: the room was created as {:?}, now {:?}; delete and recreate the ZimRoom to use another room",
                applied.room_id, room_id
            ),
        ));
    }
    if room.spec.room_name.is_some() && room.spec.room_name != applied.room_name {
        errors.push(err("spec.roomName", "is immutable once set: ZIM cannot rename a room"));
    }
    if room.spec.destroy_delay_time != applied.destroy_delay_time {
        errors.push(err(
            "spec.destroyDelayTime",
            format!(
                "is immutable: the room was created with {}, now {}; ZIM cannot change it after creation",
                applied.destroy_delay_time, room.spec.destroy_delay_time
            ),
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::RoomAttribute;

    fn attr(k: &str, v: &str) -> RoomAttribute {
        RoomAttribute { key: k.into(), value: v.into(), auto_delete: false, enforce: None }
    }

    #[test]
    fn byte_lengths_are_checked_in_bytes() {
        let spec =
            ZimRoomSpec { room_name: Some("é".repeat(33)), destroy_delay_time: 10800, ..Default::default() };
        let errors = validate_spec("lobby", &spec);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "spec.roomName");
        assert!(errors[0].message.contains("66 bytes"), "{}", errors[0]);
        let ok =
            ZimRoomSpec { room_name: Some("é".repeat(32)), destroy_delay_time: 0, ..Default::default() };
        assert!(validate_spec("lobby", &ok).is_empty());
    }

    #[test]
    fn attributes_are_checked_with_their_index() {
        let mut attributes: Vec<RoomAttribute> = (0..21).map(|i| attr(&format!("k{i}"), "v")).collect();
        attributes[3] = attr("k1", &"x".repeat(1025));
        attributes[4] = attr(&"k".repeat(17), "v");
        let spec = ZimRoomSpec { attributes, destroy_delay_time: 10, ..Default::default() };
        let paths: Vec<String> = validate_spec("lobby", &spec).into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "spec.attributes",
                "spec.attributes[3].key",
                "spec.attributes[3].value",
                "spec.attributes[4].key"
            ]
        );
    }

    #[test]
    fn room_id_defaults_to_name_and_is_checked() {
        let spec = ZimRoomSpec { destroy_delay_time: 1, ..Default::default() };
        assert_eq!(validate_spec(&"n".repeat(33), &spec)[0].path, "metadata.name");
        let spec = ZimRoomSpec { room_id: Some("a/b".into()), destroy_delay_time: 1, ..Default::default() };
        assert_eq!(validate_spec("ok", &spec)[0].path, "spec.roomId");
        let spec = ZimRoomSpec { destroy_delay_time: 10801, ..Default::default() };
        assert_eq!(validate_spec("ok", &spec)[0].path, "spec.destroyDelayTime");
    }
}
