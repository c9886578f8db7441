//! kstatus, as Flux's health checks and Helm 4's `--wait` compute it: a port of `Compute` in sigs.k8s.io/cli-utils
//! v0.37.2 `pkg/kstatus/status` (status.go, generic.go, util.go), for tests. The end-to-end tier runs every object
//! it reads through cli-utils itself as well (testbed/kstatus) and fails when the two disagree, status or message.
//!
//! The rules, in order (ZimRoom has no kind-specific rules there):
//! 1. `metadata.deletionTimestamp` set → Terminating ("Resource scheduled for deletion").
//! 2. `metadata.generation` present and `status.observedGeneration` present but different → InProgress
//!    ("<Kind> generation is G, but latest observed generation is O"). An absent `observedGeneration` skips this
//!    check, which is why a ZimRoom's schema defaults `status.observedGeneration` to 0 (an object the operator has
//!    not handled reads InProgress).
//! 3. The first of `status.conditions` that is `Reconciling=True` → InProgress, or `Stalled=True` → Failed, in
//!    the order the conditions are listed; the condition's message.
//! 4. Else the first `Ready` condition: `True` → Current ("Resource is Ready"), `False` or `Unknown` → InProgress
//!    with its message; another value → the next `Ready` condition.
//! 5. Otherwise Current ("Resource is current"), also for an object with no status at all.
//!
//! A field of the wrong type on those paths (a `null` `observedGeneration`, a generation that is not an integer,
//! conditions that are not a list of objects with string fields) is an error in cli-utils, which its callers read
//! as an unknown status: [`KStatus::Unknown`] here. A `null` `status` reads as no status.
#![allow(dead_code)] // each test binary uses part of it

use serde_json::Value;

/// A kstatus status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KStatus {
    /// Still being worked on.
    InProgress,
    /// Progress needs a person.
    Failed,
    /// The desired state is reached.
    Current,
    /// Being deleted.
    Terminating,
    /// `Compute` returned an error (a field of the wrong type).
    Unknown,
}

/// The value at `path` (`None`: absent, or a `null` on the way), or an error when a step on the way is present but
/// neither an object nor `null` (unstructured.NestedFieldNoCopy).
fn nested<'a>(obj: &'a Value, path: &[&str]) -> Result<Option<&'a Value>, String> {
    let mut v = obj;
    for (i, field) in path.iter().enumerate() {
        if v.is_null() {
            return Ok(None); // a null on the way reads as absent; only a null leaf is a value
        }
        let Some(map) = v.as_object() else {
            return Err(format!(".{} accessor error: {v} is not a map", path[..i].join(".")));
        };
        match map.get(*field) {
            Some(next) => v = next,
            None => return Ok(None),
        }
    }
    Ok(Some(v))
}

/// An int64 at `path` (unstructured.NestedInt64: a present value of another type, `null` included, is an error).
fn nested_i64(obj: &Value, path: &[&str]) -> Result<Option<i64>, String> {
    match nested(obj, path)? {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!(".{} accessor error: {v} is not an int64", path.join("."))),
    }
}

/// `(type, status, message)` of each condition, or an error where cli-utils' conversion to its condition type
/// fails (conditions not a list, a condition not an object, a field not a string; `null` reads as empty).
fn conditions(obj: &Value) -> Result<Vec<(String, String, String)>, String> {
    let Some(status) = obj.get("status") else { return Ok(vec![]) };
    let status = match status {
        Value::Null => return Ok(vec![]),
        Value::Object(m) => m,
        other => return Err(format!("status is {other}, not an object")),
    };
    let list = match status.get("conditions") {
        None | Some(Value::Null) => return Ok(vec![]),
        Some(Value::Array(a)) => a,
        Some(other) => return Err(format!("status.conditions is {other}, not a list")),
    };
    list.iter()
        .map(|c| {
            let Value::Object(c) = c else { return Err(format!("a condition is {c}, not an object")) };
            let field = |name: &str| match c.get(name) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(format!("condition field {name} is {other}, not a string")),
            };
            Ok((field("type")?, field("status")?, field("message")?))
        })
        .collect()
}

/// The status and message kstatus computes for `obj` (a Kubernetes object as JSON).
pub fn compute(obj: &Value) -> (KStatus, String) {
    match try_compute(obj) {
        Ok(r) => r,
        Err(e) => (KStatus::Unknown, e),
    }
}

fn try_compute(obj: &Value) -> Result<(KStatus, String), String> {
    match nested(obj, &["metadata", "deletionTimestamp"])? {
        Some(Value::String(s)) if !s.is_empty() => {
            return Ok((KStatus::Terminating, "Resource scheduled for deletion".into()));
        }
        Some(Value::String(_)) | None => {}
        Some(other) => {
            return Err(format!(".metadata.deletionTimestamp accessor error: {other} is not a string"));
        }
    }
    if let Some(generation) = nested_i64(obj, &["metadata", "generation"])?
        && let Some(observed) = nested_i64(obj, &["status", "observedGeneration"])?
        && observed != generation
    {
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        return Ok((
            KStatus::InProgress,
            format!("{kind} generation is {generation}, but latest observed generation is {observed}"),
        ));
    }
    let conditions = conditions(obj)?;
    for (t, s, message) in &conditions {
        match (t.as_str(), s.as_str()) {
            ("Reconciling", "True") => return Ok((KStatus::InProgress, message.clone())),
            ("Stalled", "True") => return Ok((KStatus::Failed, message.clone())),
            _ => {}
        }
    }
    for (t, s, message) in &conditions {
        match (t.as_str(), s.as_str()) {
            ("Ready", "True") => return Ok((KStatus::Current, "Resource is Ready".into())),
            ("Ready", "False" | "Unknown") => return Ok((KStatus::InProgress, message.clone())),
            _ => {}
        }
    }
    Ok((KStatus::Current, "Resource is current".into()))
}
