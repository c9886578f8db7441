//! The decisions' table tests: each rule in one place.
use super::*;
use crate::crd::{AppliedState, PAUSED_ANNOTATION, ZimRoomSpec};
use crate::reconcile::DeleteFacts;

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
    let r = room("lobby", ZimRoomSpec { destroy_delay_time: 60, ..Default::default() }, Some(applied(None)));
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
            first_creation(probed, pending_before, outcome, true),
            Ownership { adopted, pending, event, refused: None },
            "probe={probed:?} pending={pending_before} {outcome:?}"
        );
        // Without adoption, every row that would adopt leaves the room alone instead; the others are unchanged.
        let strict = first_creation(probed, pending_before, outcome, false);
        if event == Some(E::Adopted) {
            let why = if probed == Some(true) { NotAdopted::Existed } else { NotAdopted::CreatedMeanwhile };
            let refused = Ownership { adopted: None, pending: false, event: None, refused: Some(why) };
            assert_eq!(strict, refused, "probe={probed:?} pending={pending_before} {outcome:?}");
        } else {
            assert_eq!(strict, first_creation(probed, pending_before, outcome, true));
        }
    }
}

/// The adoption policy before the first CreateRoom and after a recreation found the room taken.
#[test]
fn adoption_policy_table() {
    let table = [
        (Some(true), true, None),
        (Some(true), false, Some(NotAdopted::Existed)),
        (Some(false), false, None),
        (None, false, None),
    ];
    for (probed, adopt, want) in table {
        assert_eq!(before_first_create(probed, adopt), want, "{probed:?} adopt={adopt}");
    }
    assert_eq!(recreated_by_other(true), None);
    assert_eq!(recreated_by_other(false), Some(NotAdopted::RecreatedByOther));
    for n in [NotAdopted::Existed, NotAdopted::CreatedMeanwhile, NotAdopted::RecreatedByOther] {
        let m = n.message("lobby", "adoption is denied");
        assert!(m.contains("lobby") && m.contains("adoption is denied"), "{m}");
    }
}

fn converged(mut r: ZimRoom) -> ZimRoom {
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH);
    let status = r.status.get_or_insert_with(Default::default);
    status.observed_generation = r.metadata.generation;
    status.applied = Some(AppliedState {
        attributes_hash: Some(crate::reconcile::plan::attributes_hash(&r.spec.attributes)),
        ..applied(None)
    });
    for t in ["Ready", "Synced"] {
        crate::reconcile::conditions::set(&mut status.conditions, t, true, "R", "m", Some(1), &now);
    }
    r
}

fn facts(first_sight: bool, recheck: bool, known_absent: bool, policy: Policy) -> Facts {
    let creds = crate::reconcile::ResolvedCredentials {
        credentials: crate::zim::Credentials::new(1, "s"),
        from_user_id: Some("bot".into()),
    };
    Facts { first_sight, recheck, known_absent, policy, ..Facts::owner(Ok(creds)) }
}

/// first sight × re-check × known absent × converged × admitted → left to the prober (no call) or reconciled.
#[test]
fn a_start_leaves_converged_admitted_rooms_to_the_prober() {
    let open = Policy::unrestricted();
    let a = [(super::super::policy::annotation::ROOM_ID_PREFIXES.to_string(), "team-a-".to_string())].into();
    let prefixed = Policy::from_namespace("t", Some(&a), super::super::policy::DefaultCredentialsScope::All);
    let ok = converged(room("lobby", spec(), None));
    let not_converged = room("lobby", spec(), Some(applied(None)));
    let mut paused = ok.clone();
    paused.metadata.annotations = Some([(PAUSED_ANNOTATION.to_string(), "true".to_string())].into());
    let mut stale = ok.clone();
    stale.metadata.generation = Some(2);
    // Its status records app 1 (the credentials' app) or app 2 (the credentials changed while the operator was
    // down: reconciled, which reports AppIdChanged without a call).
    let mut in_app_1 = ok.clone();
    in_app_1.status.as_mut().unwrap().app_id = Some(1);
    let mut in_app_2 = ok.clone();
    in_app_2.status.as_mut().unwrap().app_id = Some(2);
    let table = [
        (&in_app_1, facts(true, false, false, open.clone()), true),
        (&in_app_2, facts(true, false, false, open.clone()), false),
        (&ok, facts(true, false, false, open.clone()), true),
        (&ok, facts(false, false, false, open.clone()), false),
        (&ok, facts(true, true, false, open.clone()), false),
        (&ok, facts(true, false, true, open.clone()), false),
        (&ok, facts(true, false, false, prefixed), false),
        (&not_converged, facts(true, false, false, open.clone()), false),
        (&paused, facts(true, false, false, open.clone()), false),
        (&stale, facts(true, false, false, open.clone()), false),
    ];
    for (i, (r, f, want)) in table.into_iter().enumerate() {
        assert_eq!(leave_to_prober(r, &f), want, "row {i}");
    }
    // A fromUserId the namespace does not allow: refused by the reconcile, not left to the prober; the Secret's
    // own user is allowed.
    let a = [(super::super::policy::annotation::FROM_USER_IDS.to_string(), "ops".to_string())].into();
    let users = Policy::from_namespace("t", Some(&a), super::super::policy::DefaultCredentialsScope::All);
    let mut other_user = ok.clone();
    other_user.spec.from_user_id = Some("intruder".into());
    assert!(!leave_to_prober(&other_user, &facts(true, false, false, users.clone())));
    other_user.spec.from_user_id = Some("bot".into());
    assert!(leave_to_prober(&other_user, &facts(true, false, false, users)));
}

/// The operator's default Secret only where the namespace may use it; an object's own Secret always.
#[test]
fn default_credentials_only_where_the_policy_allows() {
    let denied = Policy { default_credentials: Err("not here".into()), ..Policy::unrestricted() };
    let creds = facts(false, false, false, Policy::unrestricted()).credentials;
    let mut r = room("lobby", spec(), None);
    assert!(usable_credentials(&r, &creds, &Policy::unrestricted()).is_ok());
    assert_eq!(
        usable_credentials(&r, &creds, &denied).unwrap_err(),
        crate::reconcile::CredentialsError::Forbidden("not here".into())
    );
    r.spec.credentials_secret_ref = Some(crate::crd::SecretRef { name: "own".into() });
    assert!(usable_credentials(&r, &creds, &denied).is_ok());
    // The app an object acts in: the recorded one first.
    let c = creds.as_ref().ok();
    assert_eq!(app_of(None, c), Some(1));
    assert_eq!(app_of(Some(&ZimRoomStatus { app_id: Some(7), ..Default::default() }), c), Some(7));
    assert_eq!(app_of(Some(&ZimRoomStatus::default()), None), None);
}

/// An uninstall leaves every room, and the default credentials are never used where they are denied.
#[test]
fn deletion_facts_that_leave_the_room() {
    let ours = held(Some(1), true, false, Some(false));
    let r = deleting(ours, Some(crate::crd::DeletionPolicy::Delete), None);
    let base = DeleteFacts::owner(Err("none".into()));
    assert_eq!(delete::on_delete(&r, &base), OnDelete::Destroy { room_id: "lobby".into() });
    let uninstall = DeleteFacts { crd_deleting: true, policy: None, ..base.clone() };
    assert_eq!(delete::on_delete(&r, &uninstall), OnDelete::Orphan { why: delete::CRD_DELETING.into() });
    // Even for an object that never created anything (every object is released the same way).
    let never = deleting(ZimRoomStatus::default(), None, None);
    assert!(matches!(delete::on_delete(&never, &uninstall), OnDelete::Orphan { .. }));
    let denied = Policy { default_credentials: Err("not here".into()), ..Policy::unrestricted() };
    let facts = DeleteFacts { policy: Some(denied.clone()), ..base.clone() };
    assert!(matches!(delete::on_delete(&r, &facts), OnDelete::Orphan { why } if why.contains("not here")));
    let mut own = r.clone();
    own.spec.credentials_secret_ref = Some(crate::crd::SecretRef { name: "own".into() });
    assert_eq!(delete::on_delete(&own, &facts), OnDelete::Destroy { room_id: "lobby".into() });
    // Nothing to destroy stays nothing, whatever the credentials policy.
    assert_eq!(delete::on_delete(&never, &facts), OnDelete::Nothing);
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

/// The deletion decision with only a policy and another claimant as facts.
fn on_delete(room: &ZimRoom, other: Option<&str>, policy: &Policy) -> OnDelete {
    let facts = DeleteFacts {
        credentials: Err("unused".into()),
        policy: Some(policy.clone()),
        crd_deleting: false,
        successor: other.map(Into::into),
    };
    delete::on_delete(room, &facts)
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
    assert!(matches!(on_delete(&deleting(ours, None, Some("other")), None, &open), OnDelete::Orphan { .. }));
    // A refused first CreateRoom left an intent only: nothing to destroy.
    assert_eq!(
        on_delete(&deleting(held(Some(1), false, false, None), Some(Delete), None), None, &open),
        OnDelete::Nothing
    );
    assert_eq!(on_delete(&deleting(ZimRoomStatus::default(), None, None), None, &open), OnDelete::Nothing);
}

#[test]
fn a_namespace_policy_keeps_adopted_and_foreign_rooms() {
    use crate::crd::DeletionPolicy::*;
    let ours = held(Some(1), true, false, Some(false));
    let adopted = held(Some(1), true, false, Some(true));
    // No annotations: an adopted room is not destroyed even with deletionPolicy Delete; an own room is.
    let default = Policy::from_namespace("t", None, super::super::policy::DefaultCredentialsScope::All);
    let kept = on_delete(&deleting(adopted.clone(), Some(Delete), None), None, &default);
    assert!(matches!(&kept, OnDelete::Orphan { why } if why.contains("destroy-adopted-rooms")), "{kept:?}");
    let destroy = OnDelete::Destroy { room_id: "lobby".into() };
    assert_eq!(on_delete(&deleting(ours.clone(), Some(Delete), None), None, &default), destroy);
    // Allowed by the namespace: destroyed.
    let a = [(super::super::policy::annotation::DESTROY_ADOPTED.to_string(), "allow".to_string())].into();
    let allows = Policy::from_namespace("t", Some(&a), super::super::policy::DefaultCredentialsScope::All);
    assert_eq!(on_delete(&deleting(adopted, Some(Delete), None), None, &allows), destroy);
    // A room outside the namespace's prefixes is never destroyed.
    let a = [(super::super::policy::annotation::ROOM_ID_PREFIXES.to_string(), "team-a-".to_string())].into();
    let prefixed = Policy::from_namespace("t", Some(&a), super::super::policy::DefaultCredentialsScope::All);
    let kept = on_delete(&deleting(ours, Some(Delete), None), None, &prefixed);
    assert!(matches!(&kept, OnDelete::Orphan { why } if why.contains("outside")), "{kept:?}");
}

fn with_ready(ok: bool, ready_reason: &str, hash: Option<&str>) -> ZimRoomStatus {
    let mut status = ZimRoomStatus { applied: hash.map(|h| applied_state(Some(h))), ..Default::default() };
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH);
    crate::reconcile::conditions::set(&mut status.conditions, "Ready", ok, ready_reason, "m", Some(1), &now);
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
    for r in [reason::CREATING, reason::THROTTLED, reason::API_UNAVAILABLE, reason::CREDENTIALS_NOT_FOUND] {
        assert_eq!(progress(&with_ready(false, r, None), "h", false, false), working(r), "{r}");
    }
    let available = |hash| with_ready(true, reason::AVAILABLE, hash);
    assert_eq!(progress(&available(Some("h")), "h", false, false), Progress::Done);
    assert_eq!(progress(&available(Some("old")), "h", false, false), working(reason::ATTRIBUTES_PENDING));
    assert_eq!(progress(&available(None), "h", false, false), working(reason::ATTRIBUTES_PENDING));
    assert_eq!(progress(&available(Some("old")), "h", true, false), stuck(reason::ATTRIBUTES_REFUSED));
    assert_eq!(progress(&ZimRoomStatus::default(), "h", false, false), working(reason::CREATING));
    assert_eq!(progress(&with_ready(false, reason::QUOTA_EXCEEDED, None), "h", false, true), Progress::Done);
}

/// admitted × holds × proven: only an admitted object that holds the room or has proven credentials claims it.
#[test]
fn only_admitted_holders_or_proven_objects_claim_a_room() {
    for admitted in [false, true] {
        for holds in [false, true] {
            for proven in [false, true] {
                let counts = super::counts_as_claimant(admitted, holds, proven);
                assert_eq!(
                    counts,
                    admitted && (holds || proven),
                    "admitted {admitted}, holds {holds}, proven {proven}"
                );
            }
        }
    }
    // The two refusals the issue names: a ForbiddenByPolicy object (even one whose status says it holds the
    // room), and a Secret that names the app without ZIM having accepted its secret.
    assert!(!super::counts_as_claimant(false, true, true));
    assert!(!super::counts_as_claimant(true, false, false));
}
