//! kstatus, as Flux's health checks and Helm 4's `--wait` compute it: a port of the generic rules of
//! `Compute` in sigs.k8s.io/cli-utils `pkg/kstatus/status` (status.go and generic.go), for tests.
//!
//! The rules, in order (only the generic ones: ZimRoom has no kind-specific rules there):
//! 1. `metadata.deletionTimestamp` set → Terminating.
//! 2. `metadata.generation` present and `status.observedGeneration` present but different → InProgress
//!    (reason `LatestGenerationNotObserved`). An absent `observedGeneration` skips this check.
//! 3. The first of `status.conditions` that is `Reconciling=True` → InProgress, or `Stalled=True` → Failed, in
//!    the order the conditions are listed.
//! 4. Otherwise Current — also for an object with no status at all, which is why a ZimRoom's schema defaults
//!    `status.observedGeneration` to 0 (an object the operator has not handled reads InProgress).
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
}

/// The status and message kstatus computes for `obj` (a Kubernetes object as JSON).
pub fn compute(obj: &Value) -> (KStatus, String) {
    if obj.pointer("/metadata/deletionTimestamp").and_then(Value::as_str).is_some_and(|s| !s.is_empty()) {
        return (KStatus::Terminating, "Resource scheduled for deletion".into());
    }
    if let Some(generation) = obj.pointer("/metadata/generation").and_then(Value::as_i64)
        && let Some(observed) = obj.pointer("/status/observedGeneration").and_then(Value::as_i64)
        && observed != generation
    {
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        return (
            KStatus::InProgress,
            format!("{kind} generation is {generation}, but latest observed generation is {observed}"),
        );
    }
    let conditions = obj.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    for c in &conditions {
        let (t, s) = (c.get("type").and_then(Value::as_str), c.get("status").and_then(Value::as_str));
        let message = c.get("message").and_then(Value::as_str).unwrap_or_default().to_owned();
        match (t, s) {
            (Some("Reconciling"), Some("True")) => return (KStatus::InProgress, message),
            (Some("Stalled"), Some("True")) => return (KStatus::Failed, message),
            _ => {}
        }
    }
    (KStatus::Current, "Resource is current".into())
}
