//! Room attributes: the limits CreateRoom applies to its `Attributes`, and ModifyRoomAttribute's per-key
//! semantics (set or delete, `StopOnError`, partial success reported in `SuccKeyList`/`ErrKeyList`).
//!
//! The server pages state no attribute sizes; the simulator applies the client guide's limits (key ≤16 bytes,
//! value ≤1024 bytes, ≤5120 bytes for all values, ≤20 attributes), see [`crate::zim::limits`].

use std::collections::HashSet;

use serde_json::{Value, json};

use super::failure::{Failure, invalid};
use super::rooms::{Attr, Room};
use crate::zim::codes;
use crate::zim::limits;

/// CreateRoom's `Attributes`: key, value and AutoDelete of each, or the parameter error.
pub(crate) fn parse_create(v: Option<&Value>) -> Result<Vec<(String, String, u8)>, Failure> {
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(invalid("Attributes must be an array")),
    };
    if items.len() > limits::MAX_ATTRIBUTES {
        return Err(invalid("more than 20 attributes"));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut out = Vec::new();
    for item in items {
        let key =
            item.get("Key").and_then(Value::as_str).ok_or_else(|| invalid("attribute Key is required"))?;
        let value = item
            .get("Value")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("attribute Value is required"))?;
        let auto_delete = match item.get("AutoDelete").map(Value::as_i64) {
            None => 0,
            Some(Some(n @ (0 | 1))) => n as u8,
            Some(_) => return Err(invalid("AutoDelete must be 0 or 1")),
        };
        if key.is_empty() || key.len() > limits::MAX_ATTRIBUTE_KEY_BYTES || !seen.insert(key) {
            return Err(invalid("attribute keys must be unique, non-empty and at most 16 bytes"));
        }
        if value.len() > limits::MAX_ATTRIBUTE_VALUE_BYTES {
            return Err(invalid("attribute values must be at most 1024 bytes"));
        }
        total += value.len();
        out.push((key.to_owned(), value.to_owned(), auto_delete));
    }
    if total > limits::MAX_ATTRIBUTE_TOTAL_BYTES {
        return Err(invalid("attribute values exceed 5120 bytes in total"));
    }
    Ok(out)
}

/// Applies ModifyRoomAttribute's items to `room` in order and returns the response fields (`AttributeSeq`,
/// `SuccKeyList`, `ErrKeyList`). An item that fails is listed with SubCode 660000002; with `StopOnError: 1` the
/// items after it are not applied, and earlier changes are kept. Deleting an absent key succeeds without
/// changing anything.
pub(crate) fn modify(room: &mut Room, items: &[Value]) -> Value {
    let (mut succ, mut errs) = (Vec::new(), Vec::new());
    for item in items {
        let key = item.get("Key").and_then(Value::as_str).unwrap_or("");
        let stop = item.get("StopOnError").and_then(Value::as_i64) == Some(1);
        let action = item.get("Action").and_then(Value::as_i64);
        let value = item.get("Value").and_then(Value::as_str).unwrap_or("");
        let auto_delete = item.get("AutoDelete").and_then(Value::as_i64).unwrap_or(0);
        let others: usize =
            room.attributes.iter().filter(|(k, _)| k.as_str() != key).map(|(_, a)| a.value.len()).sum();
        let ok = !key.is_empty()
            && key.len() <= limits::MAX_ATTRIBUTE_KEY_BYTES
            && match action {
                Some(0) => {
                    value.len() <= limits::MAX_ATTRIBUTE_VALUE_BYTES
                        && others + value.len() <= limits::MAX_ATTRIBUTE_TOTAL_BYTES
                        && matches!(auto_delete, 0 | 1)
                        && (room.attributes.contains_key(key)
                            || room.attributes.len() < limits::MAX_ATTRIBUTES)
                }
                Some(1) => true,
                _ => false,
            };
        if !ok {
            errs.push(json!({"SubCode": codes::INVALID_PARAMS, "Key": key}));
            if stop {
                break;
            }
            continue;
        }
        if action == Some(0) {
            room.seq += 1;
            room.attributes.insert(
                key.to_owned(),
                Attr { value: value.to_owned(), seq: room.seq, auto_delete: auto_delete as u8 },
            );
        } else if room.attributes.remove(key).is_some() {
            room.seq += 1;
        }
        succ.push(json!({"Key": key, "Seq": room.seq}));
    }
    json!({"AttributeSeq": room.seq, "SuccKeyList": succ, "ErrKeyList": errs})
}
