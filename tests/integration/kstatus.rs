//! The kstatus port in tests/support/kstatus.rs against the cases cli-utils documents for custom resources in
//! `pkg/kstatus/status/status_compute_test.go` (no status → Current, a mismatched observedGeneration →
//! InProgress), the generic rules of generic.go (deletion, Reconciling, Stalled, their order) and the Ready
//! fallback of status.go. The end-to-end tier checks the port against cli-utils itself on every object it reads.

use crate::support::kstatus::{KStatus, compute};
use serde_json::json;

fn cr(status: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "zim.zego.im/v1alpha1", "kind": "ZimRoom", "metadata": {"name": "x", "generation": 2}, "status": status})
}

#[test]
fn custom_resource_without_status_is_current() {
    let obj = json!({"apiVersion": "zim.zego.im/v1alpha1", "kind": "ZimRoom", "metadata": {"name": "x", "generation": 1}});
    assert_eq!(compute(&obj).0, KStatus::Current);
}

#[test]
fn mismatched_observed_generation_is_in_progress() {
    let (s, message) = compute(&cr(json!({"observedGeneration": 1})));
    assert_eq!(s, KStatus::InProgress);
    assert_eq!(message, "ZimRoom generation is 2, but latest observed generation is 1");
}

#[test]
fn matching_generation_without_conditions_is_current() {
    assert_eq!(compute(&cr(json!({"observedGeneration": 2}))).0, KStatus::Current);
}

#[test]
fn deletion_wins_over_everything() {
    let mut obj = cr(json!({"observedGeneration": 1, "conditions": [{"type": "Stalled", "status": "True"}]}));
    obj["metadata"]["deletionTimestamp"] = json!("2026-11-29T00:00:00Z");
    assert_eq!(compute(&obj).0, KStatus::Terminating);
}

#[test]
fn reconciling_true_is_in_progress_and_stalled_true_is_failed() {
    let reconciling = cr(json!({"observedGeneration": 2, "conditions": [
        {"type": "Ready", "status": "False"}, {"type": "Reconciling", "status": "True", "message": "creating"}]}));
    assert_eq!(compute(&reconciling), (KStatus::InProgress, "creating".into()));
    let stalled = cr(json!({"observedGeneration": 2, "conditions": [
        {"type": "Reconciling", "status": "False"}, {"type": "Stalled", "status": "True", "message": "quota"}]}));
    assert_eq!(compute(&stalled), (KStatus::Failed, "quota".into()));
}

#[test]
fn the_first_true_condition_in_list_order_decides() {
    let both = cr(json!({"observedGeneration": 2, "conditions": [
        {"type": "Stalled", "status": "True"}, {"type": "Reconciling", "status": "True"}]}));
    assert_eq!(compute(&both).0, KStatus::Failed);
}

#[test]
fn ready_decides_when_neither_reconciling_nor_stalled_is_true() {
    // cli-utils' last check before "current": the first Ready condition. Ready=False (or Unknown) without
    // Reconciling or Stalled True reads InProgress with its message; Ready=True reads Current.
    let obj = cr(json!({"observedGeneration": 2, "conditions": [
        {"type": "Reconciling", "status": "False"}, {"type": "Ready", "status": "False", "message": "waiting"}]}));
    assert_eq!(compute(&obj), (KStatus::InProgress, "waiting".into()));
    let obj = cr(json!({"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "Unknown"}]}));
    assert_eq!(compute(&obj).0, KStatus::InProgress);
    let obj = cr(json!({"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True"}]}));
    assert_eq!(compute(&obj), (KStatus::Current, "Resource is Ready".into()));
    let obj = cr(json!({"observedGeneration": 2, "conditions": [{"type": "Synced", "status": "False"}]}));
    assert_eq!(compute(&obj), (KStatus::Current, "Resource is current".into()));
}

#[test]
fn fields_of_the_wrong_type_are_an_error() {
    // cli-utils' Compute returns an error (its callers read Unknown) for a null observedGeneration or conditions
    // that are not a list; a null status reads as none.
    assert_eq!(compute(&cr(json!({"observedGeneration": null}))).0, KStatus::Unknown);
    assert_eq!(compute(&cr(serde_json::Value::Null)), (KStatus::Current, "Resource is current".into()));
    assert_eq!(compute(&cr(json!({"observedGeneration": 2, "conditions": {}}))).0, KStatus::Unknown);
    assert_eq!(
        compute(&cr(json!({"observedGeneration": 2, "conditions": [{"type": 1}]}))).0,
        KStatus::Unknown
    );
}
