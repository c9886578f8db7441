//! Lenient decoding of ZIM's answers: a number where a string is documented (or the reverse), and null, are
//! accepted, so a field typed differently than documented never turns an answer into a decode failure.

use serde::{Deserialize, Deserializer};

/// Accepts an integer, an integral float, a numeric string, or null (as 0).
pub fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    use serde::de::Error;
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(0),
        serde_json::Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18).map(|f| f as i64))
            .ok_or_else(|| D::Error::custom(format!("expected an integer, got {n}"))),
        serde_json::Value::String(s) => {
            s.trim().parse().map_err(|_| D::Error::custom("expected an integer, got a non-numeric string"))
        }
        other => Err(D::Error::custom(format!("expected an integer, got {}", json_kind(&other)))),
    }
}

/// Accepts a string, a number (as its decimal text), or null (as "").
pub fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use serde::de::Error;
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(String::new()),
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        other => Err(D::Error::custom(format!("expected a string, got {}", json_kind(&other)))),
    }
}

/// Accepts an array or null (as empty).
pub fn lenient_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
