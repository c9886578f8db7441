//! The reconcile core against the simulator over HTTP: creation, steady state, vanished rooms, adoption, the
//! crash window, attribute convergence, invalid specs and immutable fields, each failure class's condition reason,
//! pausing, and deletion.

use crate::support::*;
use zim_operator::crd::{ZimRoom, ZimRoomStatus};
use zim_operator::reconcile::{CredentialsError, DeleteFacts, Facts, NoSink, Outcome, Reconciler, Requeue};
use zim_operator::sim::RunningSim;
use zim_operator::sim::{Fault, FaultPlan};

/// `chat/NAME`: room name Lobby, destroyDelayTime 600, attribute topic=general.
fn lobby_like(name: &str) -> RoomBuilder {
    room(name).namespace("chat").room_name("Lobby").destroy_delay(600).attribute("topic", "general")
}

/// `chat/lobby`, generation 1.
fn lobby() -> ZimRoom {
    lobby_like("lobby").build()
}

/// A new room becomes Ready: created (not adopted) with a request id, its attributes set and owned.
#[tokio::test]
async fn new_room_becomes_ready() {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    let mut r = lobby();
    let out = run(&rec, &mut r).await;
    assert_eq!(ready(&r), ("True".into(), "Available".into()));
    assert_eq!(out.requeue, Requeue::Resync);
    let status = r.status.clone().unwrap();
    assert!(status.request_id.as_deref().is_some_and(|id| !id.is_empty()));
    assert_eq!(status.adopted, Some(false));
    assert_eq!(status.room_id.as_deref(), Some("lobby"));
    assert_eq!(status.managed_attribute_keys, ["topic"]);
    assert_eq!(out.notes.iter().map(|n| n.reason.as_str()).collect::<Vec<_>>(), ["Created"]);
    // The existence probe before the first CreateRoom decides ownership.
    assert_eq!(actions_since(&sim, 0), ["QueryRoomUserList", "UserRegister", "CreateRoom"]);
    assert_eq!(
        sim.sim.room(APP, "lobby").unwrap().attributes.get("topic").map(String::as_str),
        Some("general")
    );
}

/// Reconciling a converged room again costs one probe and changes nothing, every time.
#[tokio::test]
async fn steady_state_costs_one_probe() {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    let mut r = lobby();
    run(&rec, &mut r).await;
    let status = r.status.clone().unwrap();
    for _ in 0..3 {
        let before = last_seq(&sim);
        let out = run(&rec, &mut r).await;
        assert_eq!(actions_since(&sim, before), ["QueryRoomUserList"]);
        assert_eq!(out.status, status, "the status must not change in steady state");
        assert!(out.notes.is_empty());
    }
}

/// After ZEGO destroyed the empty room (room clock past destroyDelayTime), the next reconcile recreates it with
/// its attributes.
#[tokio::test]
async fn vanished_room_is_recreated_with_attributes() {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    let mut r = lobby();
    run(&rec, &mut r).await;
    sim.sim.advance_clock(601.0);
    assert!(sim.sim.room(APP, "lobby").is_none());
    let before = last_seq(&sim);
    let out = run(&rec, &mut r).await;
    assert_eq!(actions_since(&sim, before), ["QueryRoomUserList", "CreateRoom"]);
    assert_eq!(out.notes[0].reason, "Recreated");
    assert_eq!(ready(&r).1, "Available");
    assert_eq!(r.status.as_ref().unwrap().adopted, Some(false));
    assert_eq!(
        sim.sim.room(APP, "lobby").unwrap().attributes.get("topic").map(String::as_str),
        Some("general")
    );
}

/// `lobby` reconciled once against a room that already existed with attributes `topic=old` and `client=x`.
async fn adopt_existing_lobby() -> (RunningSim, Reconciler, ZimRoom, Outcome) {
    let sim = sim(0, 100).await;
    sim.sim.seed_room(
        APP,
        "lobby",
        "Lobby",
        600,
        &[("topic".into(), "old".into()), ("client".into(), "x".into())],
    );
    let rec = reconciler(&sim);
    let mut r = lobby();
    let out = run(&rec, &mut r).await;
    (sim, rec, r, out)
}

/// A room that existed before we ever asked for it is adopted: Ready, `adopted: true`, an Adopted note.
#[tokio::test]
async fn existing_room_is_adopted() {
    let (_sim, _rec, r, out) = adopt_existing_lobby().await;
    assert_eq!(ready(&r), ("True".into(), "Available".into()));
    assert_eq!(r.status.as_ref().unwrap().adopted, Some(true));
    assert!(out.notes.iter().any(|n| n.reason == "Adopted"));
}

/// Adopting a room converges its declared attributes with one read and one write; keys set by clients stay.
#[tokio::test]
async fn adopted_room_attributes_converge_and_foreign_keys_stay() {
    let (sim, _rec, _r, _out) = adopt_existing_lobby().await;
    assert_eq!(
        actions_since(&sim, 0),
        ["QueryRoomUserList", "UserRegister", "CreateRoom", "QueryRoomAttribute", "ModifyRoomAttribute"]
    );
    let attrs = sim.sim.room(APP, "lobby").unwrap().attributes;
    assert_eq!(attrs.get("topic").map(String::as_str), Some("general"));
    assert_eq!(attrs.get("client").map(String::as_str), Some("x"));
}

/// Adopted rooms are orphaned on deletion by default.
#[tokio::test]
async fn adopted_room_is_orphaned_on_deletion() {
    let (sim, rec, r, _out) = adopt_existing_lobby().await;
    let cleanup = rec.cleanup(&r, &DeleteFacts::owner(Ok(creds()))).await.unwrap();
    assert!(matches!(cleanup, zim_operator::reconcile::Cleanup::Orphaned { .. }), "{cleanup:?}");
    assert!(sim.sim.room(APP, "lobby").is_some());
}

/// An intent recorded by an earlier reconcile (a crash between CreateRoom and the status write), followed by
/// 660300014, counts as our own creation: Ready and not adopted.
#[tokio::test]
async fn crash_window_is_not_adoption() {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    let mut r = lobby();
    // The first attempt recorded its intent; its CreateRoom reached ZIM, but the outcome was lost.
    let mut intent = ZimRoomStatus { room_id: Some("lobby".into()), ..Default::default() };
    zim_operator::reconcile::conditions::set(
        &mut intent.conditions,
        "Ready",
        false,
        "Creating",
        "",
        Some(1),
        &now(),
    );
    r.status = Some(intent);
    sim.sim.seed_room(APP, "lobby", "Lobby", 600, &[("topic".into(), "general".into())]);
    let before = last_seq(&sim);
    run(&rec, &mut r).await;
    assert_eq!(ready(&r), ("True".into(), "Available".into()));
    assert_eq!(r.status.as_ref().unwrap().adopted, Some(false));
    // Attributes were already right: read, no write.
    assert_eq!(actions_since(&sim, before), ["UserRegister", "CreateRoom", "QueryRoomAttribute"]);
}

/// `lobby` created, then given a user (so it never vanishes) and a generation-2 spec declaring `mode` and `lang`
/// instead of `topic`; returns the request id of the creation.
async fn edit_attributes(sim: &RunningSim, rec: &Reconciler, r: &mut ZimRoom) -> Option<String> {
    run(rec, r).await;
    sim.sim.set_room_users(APP, "lobby", ["alice".to_string()].into());
    let first_request = r.status.as_ref().unwrap().request_id.clone();
    r.spec.attributes =
        serde_saphyr::from_str("[{key: mode, value: quiet}, {key: lang, value: en}]").unwrap();
    r.metadata.generation = Some(2);
    first_request
}

/// Attributes added, changed and removed in the manifest converge with one ModifyRoomAttribute and a new request id.
#[tokio::test]
async fn attribute_edits_converge() {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    let mut r = lobby();
    let first_request = edit_attributes(&sim, &rec, &mut r).await;
    let before = last_seq(&sim);
    run(&rec, &mut r).await;
    assert_eq!(actions_since(&sim, before), ["QueryRoomAttribute", "ModifyRoomAttribute"]);
    let attrs = sim.sim.room(APP, "lobby").unwrap().attributes;
    assert_eq!(attrs.keys().cloned().collect::<Vec<_>>(), ["lang", "mode"]);
    let status = r.status.clone().unwrap();
    assert_eq!(status.managed_attribute_keys, ["lang", "mode"]);
    assert_ne!(status.request_id, first_request);
    assert_eq!(status.observed_generation, Some(2));
}

/// Once an attribute edit has converged, the next reconcile is back to one probe.
#[tokio::test]
async fn after_an_attribute_edit_reconcile_only_probes() {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    let mut r = lobby();
    edit_attributes(&sim, &rec, &mut r).await;
    run(&rec, &mut r).await;
    let before = last_seq(&sim);
    run(&rec, &mut r).await;
    assert_eq!(actions_since(&sim, before), ["QueryRoomUserList"]);
}

/// An invalid spec (a room name over 64 bytes) costs no ZIM call, names the field and waits for a change.
#[tokio::test]
async fn invalid_spec_costs_nothing() {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    let mut bad = lobby_like("lobby").room_name(&"é".repeat(33)).build();
    let out = run(&rec, &mut bad).await;
    assert_eq!(ready(&bad).1, "InvalidSpec");
    assert!(bad.condition("Ready").unwrap().message.contains("spec.roomName"));
    assert_eq!(out.requeue, Requeue::OnChange);
    assert!(sim.sim.log().is_empty(), "no ZIM call for an invalid room");
}

/// Changing destroyDelayTime after creation is ImmutableFieldChanged, names the field, and costs no ZIM call.
#[tokio::test]
async fn destroy_delay_change_is_refused_without_a_call() {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    let mut r = lobby();
    run(&rec, &mut r).await;
    let before = last_seq(&sim);
    r.spec.destroy_delay_time = 60;
    run(&rec, &mut r).await;
    assert_eq!(ready(&r).1, "ImmutableFieldChanged");
    assert!(r.condition("Ready").unwrap().message.contains("spec.destroyDelayTime"));
    assert_eq!(last_seq(&sim), before, "no ZIM call for an immutable change");
}

/// Changing roomId after creation is refused naming the field, and costs no ZIM call.
#[tokio::test]
async fn room_id_change_is_refused_without_a_call() {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    let mut r = lobby();
    run(&rec, &mut r).await;
    let before = last_seq(&sim);
    r.spec.room_id = Some("other".into());
    run(&rec, &mut r).await;
    assert!(r.condition("Ready").unwrap().message.contains("spec.roomId"));
    assert_eq!(last_seq(&sim), before, "no ZIM call for an immutable change");
}

/// A wrong server secret is AuthFailed, retried slowly, and the message does not contain the secret.
#[tokio::test]
async fn wrong_secret_is_auth_failed() {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    let wrong = zim_operator::reconcile::ResolvedCredentials {
        credentials: zim_operator::zim::Credentials::new(APP, "ffffffffffffffffffffffffffffffff"),
        from_user_id: None,
    };
    let r = lobby();
    let out = rec.reconcile(&r, &Facts::owner(Ok(wrong)), &NoSink, now()).await;
    let c = out.status.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!((c.reason.as_str(), out.requeue), ("AuthFailed", Requeue::Slow));
    assert!(!c.message.contains("ffffffffffffffffffffffffffffffff"));
}

/// Missing credentials are CredentialsNotFound, retried with backoff.
#[tokio::test]
async fn missing_credentials_are_credentials_not_found() {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    let r = lobby();
    let out = rec
        .reconcile(
            &r,
            &Facts::owner(Err(CredentialsError::NotFound("Secret chat/zego".into()))),
            &NoSink,
            now(),
        )
        .await;
    assert_eq!(
        out.status.conditions.iter().find(|c| c.type_ == "Ready").unwrap().reason,
        "CredentialsNotFound"
    );
    assert_eq!(out.requeue, Requeue::Backoff { slow: false });
}

/// A room over the app's quota is QuotaExceeded, retried slowly.
#[tokio::test]
async fn over_quota_is_quota_exceeded() {
    let sim = sim(0, 1).await;
    let rec = reconciler(&sim);
    let mut first = lobby();
    run(&rec, &mut first).await;
    let mut second = lobby_like("second").build();
    let out = run(&rec, &mut second).await;
    assert_eq!((ready(&second).1.as_str(), out.requeue), ("QuotaExceeded", Requeue::Slow));
}

/// Each CreateRoom fault (throttling, a busy code, HTTP 5xx, a dropped connection) maps to its reason with backoff,
/// and the retry converges to our own room, not an adopted one.
#[tokio::test]
async fn create_faults_map_to_reasons_and_retry_converges() {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    for (fault, reason) in [
        (Fault::Code { code: 660300005 }, "Throttled"),
        (Fault::Code { code: 1 }, "ApiUnavailable"),
        (Fault::HttpStatus { status: 502 }, "ApiUnavailable"),
        (Fault::Drop, "ApiUnavailable"),
    ] {
        sim.sim.set_faults(FaultPlan {
            next: [fault.clone()].into(),
            actions: vec!["CreateRoom".into()],
            ..Default::default()
        });
        let mut r = lobby_like("faulty").build();
        let out = run(&rec, &mut r).await;
        assert_eq!(ready(&r).1, reason, "{fault:?}");
        assert_eq!(r.condition("Synced").unwrap().reason, "ReconcileError");
        assert!(matches!(out.requeue, Requeue::Backoff { .. }), "{fault:?}");
        // The retry converges, and the intent recorded by the first attempt makes it our own room.
        run(&rec, &mut r).await;
        assert_eq!(ready(&r).1, "Available", "{fault:?}");
        assert_eq!(r.status.as_ref().unwrap().adopted, Some(false));
        sim.sim.remove_room(APP, "faulty");
    }
}

/// A Ready room stays Ready through a transient probe failure; only Synced goes False.
#[tokio::test]
async fn ready_room_stays_ready_through_a_probe_failure() {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    let mut first = lobby();
    run(&rec, &mut first).await;
    sim.sim.set_faults(FaultPlan { next: [Fault::HttpStatus { status: 503 }].into(), ..Default::default() });
    run(&rec, &mut first).await;
    assert_eq!(ready(&first), ("True".into(), "Available".into()));
    assert_eq!(first.condition("Synced").unwrap().status, "False");
}

/// A paused object costs no ZIM call, says ReconcilePaused and waits for a change.
#[tokio::test]
async fn paused_room_costs_nothing() {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    let mut paused = lobby_like("lobby").paused().build();
    let out = run(&rec, &mut paused).await;
    assert_eq!(paused.condition("Synced").unwrap().reason, "ReconcilePaused");
    assert_eq!(out.requeue, Requeue::OnChange);
    assert!(sim.sim.log().is_empty());
}

/// Deleting an object that never created a room needs no credentials and calls nothing.
#[tokio::test]
async fn cleanup_of_a_never_created_room() {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    let never = lobby();
    assert_eq!(
        rec.cleanup(&never, &DeleteFacts::owner(Err("none".into()))).await.unwrap(),
        zim_operator::reconcile::Cleanup::NeverCreated
    );
}

/// Deleting a room we created without credentials fails with a message naming the way out (Orphan).
#[tokio::test]
async fn cleanup_without_credentials_names_the_way_out() {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    let mut r = lobby();
    run(&rec, &mut r).await;
    let err =
        rec.cleanup(&r, &DeleteFacts::owner(Err("Secret chat/zego not found".into()))).await.unwrap_err();
    assert!(err.to_string().contains("deletionPolicy: Orphan"), "{err}");
}

/// A blocked deletion's status describes the generation being deleted in every condition and in
/// `observedGeneration` (setting a custom resource's deletionTimestamp bumps its generation): before, only Ready did.
#[tokio::test]
async fn a_blocked_deletion_describes_the_generation_being_deleted() {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    let mut r = lobby();
    run(&rec, &mut r).await;
    let before = r.status.clone().unwrap();
    assert_eq!(before.conditions.len(), 4, "{before:?}");
    r.metadata.generation = Some(2);
    r.metadata.deletion_timestamp = Some(zim_operator::now());
    let err =
        rec.cleanup(&r, &DeleteFacts::owner(Err("Secret chat/zego not found".into()))).await.unwrap_err();
    let status = zim_operator::reconcile::deletion_blocked(&r, &err, &zim_operator::now());
    assert_eq!(status.observed_generation, Some(2));
    let mut types: Vec<_> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
    types.sort_unstable();
    assert_eq!(types, ["Ready", "Reconciling", "Stalled", "Synced"]);
    assert!(status.conditions.iter().all(|c| c.observed_generation == Some(2)), "{status:?}");
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "Deleting"));
    assert!(ready.message.contains("deletionPolicy: Orphan"), "{}", ready.message);
    let reconciling = status.conditions.iter().find(|c| c.type_ == "Reconciling").unwrap();
    assert_eq!((reconciling.status.as_str(), reconciling.reason.as_str()), ("True", "Deleting"));
    // The ownership record is untouched.
    assert_eq!(
        (status.room_id, status.app_id, status.adopted),
        (before.room_id, before.app_id, before.adopted)
    );
}

/// A policy switch that is neither `allow` nor `deny` counts as deny and says so in a warning event: `true` on
/// adopt-existing-rooms refuses the adoption of an existing room (before, `true` allowed it).
#[tokio::test]
async fn a_policy_value_other_than_allow_or_deny_denies_and_warns() {
    use zim_operator::reconcile::policy::{DefaultCredentialsScope, Policy, annotation};
    let sim = sim(0, 100).await;
    sim.sim.seed_room(APP, "lobby", "Lobby", 600, &[]);
    let rec = reconciler(&sim);
    let mut r = lobby();
    let annotations = [(annotation::ADOPT_EXISTING.to_owned(), "true".to_owned())].into();
    let facts = Facts {
        policy: Policy::from_namespace("chat", Some(&annotations), DefaultCredentialsScope::All),
        ..Facts::owner(Ok(creds()))
    };
    let out = rec.reconcile(&r, &facts, &NoSink, now()).await;
    r.status = Some(out.status.clone());
    assert_eq!(ready(&r), ("False".to_owned(), "ForbiddenByPolicy".to_owned()), "{:?}", out.status);
    let warned: Vec<_> = out.notes.iter().filter(|n| n.warning && n.reason == "InvalidPolicy").collect();
    assert_eq!(warned.len(), 1, "{:?}", out.notes);
    assert!(
        warned[0]
            .message
            .contains("zim.zego.im/adopt-existing-rooms: \"true\", which is neither allow nor deny")
    );
}

/// Deleting a room we created destroys it.
#[tokio::test]
async fn cleanup_destroys_a_room_we_created() {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    let mut r = lobby();
    run(&rec, &mut r).await;
    assert!(matches!(
        rec.cleanup(&r, &DeleteFacts::owner(Ok(creds()))).await.unwrap(),
        zim_operator::reconcile::Cleanup::Destroyed { .. }
    ));
    assert!(sim.sim.room(APP, "lobby").is_none());
}

/// Deleting again once the room is gone ("no such room") is done, not an error.
#[tokio::test]
async fn cleanup_of_a_room_already_gone_is_done() {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    let mut r = lobby();
    run(&rec, &mut r).await;
    rec.cleanup(&r, &DeleteFacts::owner(Ok(creds()))).await.unwrap();
    assert_eq!(
        rec.cleanup(&r, &DeleteFacts::owner(Ok(creds()))).await.unwrap(),
        zim_operator::reconcile::Cleanup::AlreadyGone
    );
}

/// UserRegister is single-flight per (AppId, user): 80 new rooms reconciled at once (64 at a time, the limiter
/// off so they really overlap) register the operator user once.
#[tokio::test]
async fn concurrent_new_rooms_register_the_operator_once() {
    use futures::StreamExt;
    let sim = sim(0, 1000).await;
    let rec = reconciler(&sim);
    let rooms: Vec<ZimRoom> = (0..80).map(|i| lobby_like(&format!("r{i}")).build()).collect();
    let facts = Facts::owner(Ok(creds()));
    let outcomes: Vec<Outcome> = futures::stream::iter(rooms.iter())
        .map(|r| rec.reconcile(r, &facts, &NoSink, now()))
        .buffer_unordered(64)
        .collect()
        .await;
    assert!(outcomes.iter().all(|o| o.error_category.is_none()), "every room created");
    let registers = actions_since(&sim, 0).iter().filter(|a| *a == "UserRegister").count();
    assert_eq!(registers, 1, "one UserRegister for one (AppId, user)");
}
