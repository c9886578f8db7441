//! Pure: the next step for an object, from its spec, its status and the facts gathered so far (the existence
//! probe, CreateRoom's answer). No I/O; the reconcile core ([`super::Reconciler`]) carries the steps out.
//!
//! The flow these functions describe:
//! 1. [`gate`]: paused, invalid or an immutable change → stop before any ZIM call.
//! 2. [`first_step`]: never created → create; converged for the declared attributes → probe existence;
//!    attributes changed since they were last applied → read them (which also probes).
//! 3. [`after_probe`] / [`after_read`]: a room that is gone is created again (Recreated).
//!
//! Ownership (an object owns a room only if it saw the room absent and then asked for it):
//! - [`app_check`]: the AppId is fixed once the object holds a room; credentials for another app stop it.
//! - [`winner`]: among objects claiming the same (AppId, roomId), who owns the room; the others are Conflict.
//! - [`first_creation`]: the existence probe before the first CreateRoom decides adoption; only a CreateRoom
//!   whose outcome is unknown leaves a pending creation that makes a later "already exists" the object's own.
//! - [`on_delete`]: what deleting the object does to the room.
//!
//! The status contract: [`progress`] derives `Reconciling` and `Stalled` (kstatus) from the outcome.
//!
//! (Over 400 lines: about half of the file is the table tests that show each rule in one place.)

use crate::crd::{ZimRoom, ZimRoomStatus, reason};

use super::policy::Policy;
use super::validate::{self, FieldError};

/// Why a reconcile stops before any ZIM call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    /// The paused annotation is set.
    Paused,
    /// The spec breaks rules the schema cannot express.
    Invalid(Vec<FieldError>),
    /// An immutable field differs from what was applied.
    Immutable(Vec<FieldError>),
}

/// Checks, in order, whether the object is paused, invalid or changes an immutable field.
pub fn gate(room: &ZimRoom) -> Option<Gate> {
    if room.is_paused() {
        return Some(Gate::Paused);
    }
    let name = room.metadata.name.as_deref().unwrap_or_default();
    let problems = validate::validate_spec(name, &room.spec);
    if !problems.is_empty() {
        return Some(Gate::Invalid(problems));
    }
    let changed = validate::immutable_changes(room);
    if !changed.is_empty() {
        return Some(Gate::Immutable(changed));
    }
    None
}

/// Whether a CreateRoom is the object's first or brings back a room that vanished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Creation {
    /// Nothing was applied yet.
    First,
    /// The room existed (applied) and is gone now.
    Recreate,
}

/// The first ZIM step for an object that passed the [`gate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Converged for the declared attributes: one existence probe (QueryRoomUserList).
    Probe,
    /// The declared attributes differ from what was last applied: read them (QueryRoomAttribute), which also
    /// tells whether the room exists.
    ReadAttributes,
    /// Create the room.
    Create(Creation),
}

/// The first ZIM step, from what the status says was applied and the fingerprint of the declared attributes.
pub fn first_step(status: &ZimRoomStatus, declared_hash: &str) -> Step {
    match &status.applied {
        None => Step::Create(Creation::First),
        Some(applied) if applied.attributes_hash.as_deref() == Some(declared_hash) => Step::Probe,
        Some(_) => Step::ReadAttributes,
    }
}

/// What follows a finding about the room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Nothing to do: the room is there as declared.
    Converged,
    /// Converge the attributes of the room that is there.
    SyncAttributes,
    /// Create the room again.
    Create(Creation),
}

/// After the existence probe of a converged room.
pub fn after_probe(exists: bool) -> Next {
    if exists { Next::Converged } else { Next::Create(Creation::Recreate) }
}

/// After reading the attributes of a room that was applied before: `found` is false when ZIM said the room does
/// not exist.
pub fn after_read(found: bool) -> Next {
    if found { Next::SyncAttributes } else { Next::Create(Creation::Recreate) }
}

/// Whether the object holds a room in its recorded app: created or adopted (applied), adopted, or a creation is
/// pending. An object that only recorded an intent whose CreateRoom ZIM refused holds nothing.
pub fn holds_room(status: &ZimRoomStatus) -> bool {
    status.app_id.is_some()
        && (status.applied.is_some() || status.pending_creation || status.adopted == Some(true))
}

/// Whether a creation is pending: `status.pendingCreation`, or an intent recorded by a version of the operator
/// that did not keep that flag (room ID recorded, no AppId, nothing applied, Ready=False Creating) — its
/// CreateRoom may have reached ZIM.
pub fn creation_pending(status: &ZimRoomStatus) -> bool {
    let legacy_intent = status.room_id.is_some()
        && status.app_id.is_none()
        && status.applied.is_none()
        && status
            .conditions
            .iter()
            .any(|c| c.type_ == crate::crd::condition::READY && c.reason == crate::crd::reason::CREATING);
    status.pending_creation || legacy_intent
}

/// The result of comparing the credentials' AppId with the recorded one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppCheck {
    /// Go on in this app (record it if it is not recorded yet).
    Proceed,
    /// The object holds a room in `recorded`; the credentials resolve to another app.
    Changed {
        /// The app the room lives in.
        recorded: u32,
    },
}

/// Compares the credentials' AppId with the one on the status.
pub fn app_check(status: &ZimRoomStatus, app_id: u32) -> AppCheck {
    match status.app_id {
        Some(recorded) if recorded != app_id && holds_room(status) => AppCheck::Changed { recorded },
        _ => AppCheck::Proceed,
    }
}

/// One object claiming a room, as the controller's cache (or `apply`'s list of manifests) sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimant {
    /// `namespace/name`.
    pub key: String,
    /// Its status records this room (its intent or ownership): it keeps the room against new claimants.
    pub holds: bool,
    /// Creation time, Unix seconds (`apply`: the document's position).
    pub created: i64,
}

/// Among the claimants of one (AppId, roomId), the owner: a claimant that holds the room wins over new ones;
/// among equals the oldest, then the lowest `namespace/name`. The order is total, so every reconcile of every
/// claimant decides the same, whichever it runs first.
pub fn winner(claimants: &[Claimant]) -> Option<&Claimant> {
    claimants.iter().min_by(|a, b| (!a.holds, a.created, &a.key).cmp(&(!b.holds, b.created, &b.key)))
}

/// How a CreateRoom ended, as far as ownership cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Code 0: this call created the room.
    Created,
    /// 660300014: the room exists.
    Exists,
    /// ZIM answered another code: nothing was created.
    Refused,
    /// No ZIM answer (timeout, broken connection, HTTP 5xx, an undecodable body): it may have been created.
    Unknown,
}

/// What the first creation decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ownership {
    /// The new value of `status.adopted` (`None`: leave it).
    pub adopted: Option<bool>,
    /// The new value of `status.pendingCreation`.
    pub pending: bool,
    /// The event to emit, if any.
    pub event: Option<CreationEvent>,
}

/// The event that reports how the object came to hold its room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreationEvent {
    /// This object created the room.
    Created,
    /// The room is this object's own, from an earlier CreateRoom whose answer was lost.
    CreatedEarlier,
    /// The room existed before the object asked for it.
    Adopted,
}

/// The first creation's ownership decision. `probed`: the existence probe's answer before CreateRoom (`None`
/// when it was skipped because a creation was already pending); `pending_before`: a creation was pending when
/// this reconcile began.
pub fn first_creation(probed: Option<bool>, pending_before: bool, outcome: CreateOutcome) -> Ownership {
    use CreateOutcome::*;
    let own = |event| Ownership { adopted: Some(false), pending: false, event: Some(event) };
    let adopt = Ownership { adopted: Some(true), pending: false, event: Some(CreationEvent::Adopted) };
    let none = |pending| Ownership { adopted: None, pending, event: None };
    match (probed, outcome) {
        // This call created it, whatever anyone thought before.
        (_, Created) => own(CreationEvent::Created),
        // The probe saw it before we asked: someone else's room, whatever CreateRoom then said.
        (Some(true), _) => adopt,
        // An earlier CreateRoom of ours may have created it.
        (_, Exists) if pending_before => own(CreationEvent::CreatedEarlier),
        // Absent at the probe, present now, and nothing of ours pending: someone created it in between.
        (_, Exists) => adopt,
        // A definite answer: nothing was created; the next attempt starts again from the probe.
        (_, Refused) => none(false),
        // Unknown: it may exist now, and if so it is ours.
        (_, Unknown) => none(true),
    }
}

/// What deleting the object does to its room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnDelete {
    /// Nothing was ever created or adopted: nothing to do.
    Nothing,
    /// Leave the room; `why` says why (for the event).
    Orphan {
        /// Why the room stays.
        why: String,
    },
    /// DestroyRoom `room_id` in the recorded app.
    Destroy {
        /// The room.
        room_id: String,
    },
}

/// Decides deletion from the spec, the status and whether another object still claims the room (`other`).
/// Only the room the spec names, and the status agrees with, is ever destroyed.
pub fn on_delete(room: &ZimRoom, other: Option<&str>, policy: &Policy) -> OnDelete {
    let status = room.status.clone().unwrap_or_default();
    let spec_room = room.room_id();
    let Some(room_id) = status.room_id.clone() else { return OnDelete::Nothing };
    if !holds_room(&status) && status.applied.is_none() {
        return OnDelete::Nothing;
    }
    if room_id != spec_room {
        return OnDelete::Orphan {
            why: format!(
                "the status names room {room_id} but the spec names {spec_room}; neither is destroyed"
            ),
        };
    }
    if let Err(why) = policy.check_room_id(&room_id) {
        return OnDelete::Orphan { why: format!("the namespace may not manage it: {why}") };
    }
    if let Some(other) = other {
        return OnDelete::Orphan { why: format!("{other} still declares it and takes it over") };
    }
    let adopted = status.adopted == Some(true);
    match (room.spec.deletion_policy, adopted) {
        (Some(crate::crd::DeletionPolicy::Orphan), _) => {
            OnDelete::Orphan { why: "deletionPolicy Orphan".into() }
        }
        (None, true) => {
            OnDelete::Orphan { why: "deletionPolicy Orphan, the default for an adopted room".into() }
        }
        (Some(crate::crd::DeletionPolicy::Delete), true) => match &policy.destroy_adopted {
            Ok(()) => OnDelete::Destroy { room_id },
            Err(why) => OnDelete::Orphan {
                why: format!("the room was adopted, not created by this object, and {why}"),
            },
        },
        _ => OnDelete::Destroy { room_id },
    }
}

/// Where a reconcile leaves the object, for the kstatus conditions `Reconciling` and `Stalled`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The current generation is fully applied and the room is there (or reconciliation is paused): both False.
    Done,
    /// Still working toward the current generation and expecting to get there: Reconciling=True.
    Working {
        /// The reason (a Ready reason, or `AttributesPending`).
        reason: String,
    },
    /// Progress needs a person: Stalled=True.
    Stuck {
        /// The reason (a Ready reason, or `AttributesRefused`).
        reason: String,
    },
}

/// Derives the progress from the status a reconcile produced. `declared_hash`: the fingerprint of the declared
/// attributes; `attributes_refused`: ZIM refused some declared attributes for good in this reconcile.
pub fn progress(
    status: &ZimRoomStatus,
    declared_hash: &str,
    attributes_refused: bool,
    paused: bool,
) -> Progress {
    let find = |t: &str| status.conditions.iter().find(|c| c.type_ == t);
    if paused {
        return Progress::Done;
    }
    let Some(ready) = find(crate::crd::condition::READY) else {
        return Progress::Working { reason: reason::CREATING.into() };
    };
    if ready.status != "True" {
        let stuck = super::reasons::is_stalled(&ready.reason);
        return if stuck {
            Progress::Stuck { reason: ready.reason.clone() }
        } else {
            Progress::Working { reason: ready.reason.clone() }
        };
    }
    if attributes_refused {
        return Progress::Stuck { reason: reason::ATTRIBUTES_REFUSED.into() };
    }
    // The room exists. The generation is applied when the declared attributes were applied in full; a failed
    // re-check of a converged room does not undo that.
    let applied = status.applied.as_ref().and_then(|a| a.attributes_hash.as_deref()) == Some(declared_hash);
    if applied { Progress::Done } else { Progress::Working { reason: reason::ATTRIBUTES_PENDING.into() } }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{AppliedState, PAUSED_ANNOTATION, ZimRoomSpec};

    fn room(name: &str, spec: ZimRoomSpec, applied: Option<AppliedState>) -> ZimRoom {
        let mut r = ZimRoom::new(name, spec);
        r.metadata.generation = Some(1);
        r.status = Some(ZimRoomStatus { applied, ..Default::default() });
        r
    }

    fn spec() -> ZimRoomSpec {
        ZimRoomSpec { destroy_delay_time: 600, ..Default::default() }
    }

    fn applied(hash: Option<&str>) -> AppliedState {
        AppliedState {
            room_id: "lobby".into(),
            room_name: None,
            destroy_delay_time: 600,
            attributes_hash: hash.map(Into::into),
        }
    }

    #[test]
    fn gate_stops_paused_before_invalid() {
        let mut r = room("bad/name", spec(), None);
        r.metadata.annotations = Some([(PAUSED_ANNOTATION.to_string(), "true".to_string())].into());
        assert_eq!(gate(&r), Some(Gate::Paused));
        r.metadata.annotations = None;
        assert!(matches!(gate(&r), Some(Gate::Invalid(p)) if p[0].path == "metadata.name"));
    }

    #[test]
    fn gate_reports_immutable_changes_of_a_valid_spec() {
        let r =
            room("lobby", ZimRoomSpec { destroy_delay_time: 60, ..Default::default() }, Some(applied(None)));
        assert!(matches!(gate(&r), Some(Gate::Immutable(p)) if p[0].path == "spec.destroyDelayTime"));
        assert_eq!(gate(&room("lobby", spec(), Some(applied(None)))), None);
    }

    #[test]
    fn first_step_by_applied_state() {
        let status = |a| ZimRoomStatus { applied: a, ..Default::default() };
        assert_eq!(first_step(&status(None), "h"), Step::Create(Creation::First));
        assert_eq!(first_step(&status(Some(applied(Some("h")))), "h"), Step::Probe);
        assert_eq!(first_step(&status(Some(applied(Some("old")))), "h"), Step::ReadAttributes);
        assert_eq!(first_step(&status(Some(applied(None))), "h"), Step::ReadAttributes);
    }

    #[test]
    fn findings_lead_to_recreation_when_the_room_is_gone() {
        assert_eq!(after_probe(true), Next::Converged);
        assert_eq!(after_probe(false), Next::Create(Creation::Recreate));
        assert_eq!(after_read(true), Next::SyncAttributes);
        assert_eq!(after_read(false), Next::Create(Creation::Recreate));
    }

    /// probe × pending before × CreateRoom outcome → adopted, pending after, event.
    #[test]
    fn ownership_table() {
        use CreateOutcome::*;
        use CreationEvent as E;
        let table = [
            // A pending creation skips the probe.
            (None, true, Created, Some(false), false, Some(E::Created)),
            (None, true, Exists, Some(false), false, Some(E::CreatedEarlier)),
            (None, true, Refused, None, false, None),
            (None, true, Unknown, None, true, None),
            // The probe saw a foreign room.
            (Some(true), false, Exists, Some(true), false, Some(E::Adopted)),
            (Some(true), false, Refused, Some(true), false, Some(E::Adopted)),
            (Some(true), false, Unknown, Some(true), false, Some(E::Adopted)),
            (Some(true), false, Created, Some(false), false, Some(E::Created)),
            // The probe saw nothing.
            (Some(false), false, Created, Some(false), false, Some(E::Created)),
            (Some(false), false, Exists, Some(true), false, Some(E::Adopted)),
            (Some(false), false, Refused, None, false, None),
            (Some(false), false, Unknown, None, true, None),
        ];
        for (probed, pending_before, outcome, adopted, pending, event) in table {
            assert_eq!(
                first_creation(probed, pending_before, outcome),
                Ownership { adopted, pending, event },
                "probe={probed:?} pending={pending_before} {outcome:?}"
            );
        }
    }

    fn claimant(key: &str, holds: bool, created: i64) -> Claimant {
        Claimant { key: key.into(), holds, created }
    }

    #[test]
    fn holder_beats_older_then_age_then_name() {
        let a = claimant("a/x", false, 10);
        let b = claimant("b/x", true, 20);
        let c = claimant("c/x", false, 5);
        assert_eq!(winner(&[a.clone(), b.clone(), c.clone()]).unwrap().key, "b/x");
        assert_eq!(winner(&[a.clone(), c.clone()]).unwrap().key, "c/x");
        let same_second = [claimant("ns2/r", false, 7), claimant("ns1/r", false, 7)];
        assert_eq!(winner(&same_second).unwrap().key, "ns1/r");
        assert_eq!(winner(&[]), None);
    }

    fn held(app: Option<u32>, applied: bool, pending: bool, adopted: Option<bool>) -> ZimRoomStatus {
        ZimRoomStatus {
            room_id: Some("lobby".into()),
            app_id: app,
            applied: applied.then(|| applied_state(None)),
            pending_creation: pending,
            adopted,
            ..Default::default()
        }
    }

    fn applied_state(hash: Option<&str>) -> AppliedState {
        AppliedState {
            room_id: "lobby".into(),
            room_name: None,
            destroy_delay_time: 600,
            attributes_hash: hash.map(Into::into),
        }
    }

    #[test]
    fn app_id_is_fixed_only_while_a_room_is_held() {
        assert_eq!(app_check(&ZimRoomStatus::default(), 2), AppCheck::Proceed);
        assert_eq!(app_check(&held(Some(1), true, false, Some(false)), 1), AppCheck::Proceed);
        assert_eq!(app_check(&held(Some(1), true, false, Some(false)), 2), AppCheck::Changed { recorded: 1 });
        assert_eq!(app_check(&held(Some(1), false, true, None), 2), AppCheck::Changed { recorded: 1 });
        assert_eq!(app_check(&held(Some(1), false, false, Some(true)), 2), AppCheck::Changed { recorded: 1 });
        // An intent whose CreateRoom ZIM refused holds nothing: the app may still be corrected.
        assert_eq!(app_check(&held(Some(1), false, false, None), 2), AppCheck::Proceed);
    }

    fn deleting(
        status: ZimRoomStatus,
        policy: Option<crate::crd::DeletionPolicy>,
        room_id: Option<&str>,
    ) -> ZimRoom {
        let spec = ZimRoomSpec {
            room_id: room_id.map(Into::into),
            deletion_policy: policy,
            destroy_delay_time: 600,
            ..Default::default()
        };
        let mut r = ZimRoom::new("lobby", spec);
        r.status = Some(status);
        r
    }

    #[test]
    fn deletion_destroys_only_an_owned_room_the_spec_names() {
        use crate::crd::DeletionPolicy::*;
        let ours = held(Some(1), true, false, Some(false));
        let adopted = held(Some(1), true, false, Some(true));
        let destroy = OnDelete::Destroy { room_id: "lobby".into() };
        let open = Policy::unrestricted();
        assert_eq!(on_delete(&deleting(ours.clone(), None, None), None, &open), destroy);
        assert_eq!(on_delete(&deleting(held(Some(1), false, true, None), None, None), None, &open), destroy);
        assert!(matches!(
            on_delete(&deleting(adopted.clone(), None, None), None, &open),
            OnDelete::Orphan { .. }
        ));
        assert_eq!(on_delete(&deleting(adopted, Some(Delete), None), None, &open), destroy);
        assert!(matches!(
            on_delete(&deleting(ours.clone(), Some(Orphan), None), None, &open),
            OnDelete::Orphan { .. }
        ));
        // Another object still declares the room: it stays, whatever the policy.
        assert!(
            matches!(on_delete(&deleting(ours.clone(), Some(Delete), None), Some("b/x"), &open), OnDelete::Orphan { why } if why.contains("b/x"))
        );
        // A status naming another room than the spec (a patched status) destroys nothing.
        assert!(matches!(
            on_delete(&deleting(ours, None, Some("other")), None, &open),
            OnDelete::Orphan { .. }
        ));
        // A refused first CreateRoom left an intent only: nothing to destroy.
        assert_eq!(
            on_delete(&deleting(held(Some(1), false, false, None), Some(Delete), None), None, &open),
            OnDelete::Nothing
        );
        assert_eq!(
            on_delete(&deleting(ZimRoomStatus::default(), None, None), None, &open),
            OnDelete::Nothing
        );
    }

    #[test]
    fn a_namespace_policy_keeps_adopted_and_foreign_rooms() {
        use crate::crd::DeletionPolicy::*;
        let ours = held(Some(1), true, false, Some(false));
        let adopted = held(Some(1), true, false, Some(true));
        // No annotations: an adopted room is not destroyed even with deletionPolicy Delete; an own room is.
        let default = Policy::from_namespace("t", None, super::super::policy::DefaultCredentialsScope::All);
        let kept = on_delete(&deleting(adopted.clone(), Some(Delete), None), None, &default);
        assert!(
            matches!(&kept, OnDelete::Orphan { why } if why.contains("destroy-adopted-rooms")),
            "{kept:?}"
        );
        let destroy = OnDelete::Destroy { room_id: "lobby".into() };
        assert_eq!(on_delete(&deleting(ours.clone(), Some(Delete), None), None, &default), destroy);
        // Allowed by the namespace: destroyed.
        let a = [(super::super::policy::annotation::DESTROY_ADOPTED.to_string(), "allow".to_string())].into();
        let allows =
            Policy::from_namespace("t", Some(&a), super::super::policy::DefaultCredentialsScope::All);
        assert_eq!(on_delete(&deleting(adopted, Some(Delete), None), None, &allows), destroy);
        // A room outside the namespace's prefixes is never destroyed.
        let a =
            [(super::super::policy::annotation::ROOM_ID_PREFIXES.to_string(), "team-a-".to_string())].into();
        let prefixed =
            Policy::from_namespace("t", Some(&a), super::super::policy::DefaultCredentialsScope::All);
        let kept = on_delete(&deleting(ours, Some(Delete), None), None, &prefixed);
        assert!(matches!(&kept, OnDelete::Orphan { why } if why.contains("outside")), "{kept:?}");
    }

    fn with_ready(ok: bool, ready_reason: &str, hash: Option<&str>) -> ZimRoomStatus {
        let mut status =
            ZimRoomStatus { applied: hash.map(|h| applied_state(Some(h))), ..Default::default() };
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH);
        crate::reconcile::conditions::set(
            &mut status.conditions,
            "Ready",
            ok,
            ready_reason,
            "m",
            Some(1),
            &now,
        );
        status
    }

    /// Every Ready reason and attribute state → Reconciling / Stalled / neither.
    #[test]
    fn progress_table() {
        let working = |r: &str| Progress::Working { reason: r.into() };
        let stuck = |r: &str| Progress::Stuck { reason: r.into() };
        for r in super::super::reasons::READY_REASONS.iter().filter(|r| r.stalled).map(|r| r.name) {
            assert_eq!(progress(&with_ready(false, r, None), "h", false, false), stuck(r), "{r}");
        }
        for r in [reason::CREATING, reason::THROTTLED, reason::API_UNAVAILABLE, reason::CREDENTIALS_NOT_FOUND]
        {
            assert_eq!(progress(&with_ready(false, r, None), "h", false, false), working(r), "{r}");
        }
        let available = |hash| with_ready(true, reason::AVAILABLE, hash);
        assert_eq!(progress(&available(Some("h")), "h", false, false), Progress::Done);
        assert_eq!(progress(&available(Some("old")), "h", false, false), working(reason::ATTRIBUTES_PENDING));
        assert_eq!(progress(&available(None), "h", false, false), working(reason::ATTRIBUTES_PENDING));
        assert_eq!(progress(&available(Some("old")), "h", true, false), stuck(reason::ATTRIBUTES_REFUSED));
        assert_eq!(progress(&ZimRoomStatus::default(), "h", false, false), working(reason::CREATING));
        assert_eq!(
            progress(&with_ready(false, reason::QUOTA_EXCEEDED, None), "h", false, true),
            Progress::Done
        );
    }
}
