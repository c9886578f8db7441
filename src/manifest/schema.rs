//! The structural-schema walk: checks a JSON value against an OpenAPI v3 schema the way the Kubernetes API server
//! checks a custom resource (types, lengths, patterns, enums, ranges, `maxItems`, list-map keys, unknown fields,
//! nulls pruned), naming each problem's field path. It knows no particular resource.
//!
//! It is ours because no JSON-Schema crate implements Kubernetes' structural-schema semantics (nullable pruning,
//! `x-kubernetes-list-map-keys`, unknown-field rejection as `kubectl` reports it).

use serde_json::Value;

use crate::reconcile::validate::FieldError;

fn join_path(base: &str, key: &str) -> String {
    if base.is_empty() { key.to_owned() } else { format!("{base}.{key}") }
}

/// Checks `value` against a structural schema, appending problems with their paths.
pub fn check_schema(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let mut fail = |message: String| errors.push(FieldError { path: path.to_owned(), message });
    if value.is_null() {
        // Kubernetes prunes nulls of non-nullable fields; they count as absent.
        return;
    }
    if schema.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true) {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            fail("must be an integer or a string".into());
        }
        return;
    }
    let ty = schema.get("type").and_then(Value::as_str);
    match ty {
        Some("object") => {
            let Some(obj) = value.as_object() else {
                return fail(format!("must be an object, got {}", kind(value)));
            };
            let props = schema.get("properties").and_then(Value::as_object);
            let preserve =
                schema.get("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool) == Some(true);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, v) in obj {
                let child = join_path(path, k);
                if let Some(s) = props.and_then(|p| p.get(k)) {
                    check_schema(s, v, &child, errors);
                } else if let Some(s) = additional {
                    check_schema(s, v, &child, errors);
                } else if !preserve && props.is_some() {
                    errors.push(FieldError { path: child, message: "unknown field".into() });
                }
            }
            for r in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
                if let Some(r) = r.as_str()
                    && obj.get(r).is_none_or(Value::is_null)
                {
                    errors.push(FieldError { path: join_path(path, r), message: "is required".into() });
                }
            }
        }
        Some("array") => {
            let Some(items) = value.as_array() else {
                return fail(format!("must be a list, got {}", kind(value)));
            };
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && items.len() as u64 > max
            {
                fail(format!("has {} items, at most {max} are allowed", items.len()));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check_schema(item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
            if schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
                let keys: Vec<&str> = schema
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let mut seen = std::collections::HashSet::new();
                for (i, item) in items.iter().enumerate() {
                    let id: Vec<Value> =
                        keys.iter().map(|k| item.get(*k).cloned().unwrap_or(Value::Null)).collect();
                    if !seen.insert(serde_json::to_string(&id).unwrap_or_default()) {
                        errors.push(FieldError {
                            path: format!("{path}[{i}]"),
                            message: format!(
                                "duplicate entry with {} {}",
                                keys.join(","),
                                serde_json::to_string(&id).unwrap_or_default()
                            ),
                        });
                    }
                }
            }
        }
        Some("string") => {
            let Some(s) = value.as_str() else {
                return fail(format!("must be a string, got {}", kind(value)));
            };
            let chars = s.chars().count() as u64;
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && chars > max
            {
                fail(format!("is {chars} characters, at most {max} are allowed"));
            }
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && chars < min
            {
                fail(format!("is {chars} characters, at least {min} are required"));
            }
            if let Some(p) = schema.get("pattern").and_then(Value::as_str)
                && let Ok(re) = regex::Regex::new(p)
                && !re.is_match(s)
            {
                fail(format!("{s:?} does not match the pattern {p}"));
            }
            if let Some(options) = schema.get("enum").and_then(Value::as_array)
                && !options.contains(value)
            {
                let list: Vec<String> = options.iter().filter_map(Value::as_str).map(str::to_owned).collect();
                fail(format!("{s:?} is not one of {}", list.join(", ")));
            }
        }
        Some("integer") | Some("number") => {
            let Some(n) = value.as_f64() else {
                return fail(format!("must be a number, got {}", kind(value)));
            };
            if ty == Some("integer") && !(value.is_i64() || value.is_u64()) {
                return fail(format!("must be a whole number, got {value}"));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && n > max
            {
                fail(format!("is {value}, at most {max} is allowed"));
            }
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && n < min
            {
                fail(format!("is {value}, at least {min} is required"));
            }
            let (lo, hi) = match schema.get("format").and_then(Value::as_str) {
                Some("int32") => (i32::MIN as f64, i32::MAX as f64),
                Some("uint32") => (0.0, u32::MAX as f64),
                _ => (f64::MIN, f64::MAX),
            };
            if n < lo || n > hi {
                fail(format!("{value} is out of range"));
            }
        }
        Some("boolean") if !value.is_boolean() => fail(format!("must be true or false, got {}", kind(value))),
        _ => {}
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
