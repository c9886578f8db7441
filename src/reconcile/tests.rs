//! The reconcile core against the simulator's in-memory backend ([`crate::sim::InMemoryZim`]): the same room
//! rules and codes as over HTTP, so each decision is checked call by call without a network.

use super::*;
use crate::crd::{AppliedState, ZimRoomStatus};
use crate::sim::{DEMO_APP_ID, DEMO_SERVER_SECRET, Fault, FaultPlan, InMemoryZim, Simulator};

fn setup() -> (Simulator, Reconciler<InMemoryZim>) {
    let sim = Simulator::demo();
    let rec = Reconciler::new(sim.in_memory(), DEFAULT_FROM_USER_ID);
    (sim, rec)
}

fn creds() -> ResolvedCredentials {
    ResolvedCredentials { credentials: Credentials::new(DEMO_APP_ID, DEMO_SERVER_SECRET), from_user_id: None }
}

fn lobby(attributes: &[(&str, &str)]) -> ZimRoom {
    let builder = crate::testing::room("lobby").namespace("chat").destroy_delay(600);
    attributes.iter().fold(builder, |b, (k, v)| b.attribute(k, v)).build()
}

/// Reconciles `room` once, keeps the new status on it, and returns the outcome and the actions called.
async fn step(sim: &Simulator, rec: &Reconciler<InMemoryZim>, room: &mut ZimRoom) -> (Outcome, Vec<String>) {
    let before = sim.log().last().map_or(0, |e| e.seq);
    let out = rec.reconcile(room, &Facts::owner(Ok(creds())), &NoSink, crate::now()).await;
    room.status = Some(out.status.clone());
    (out, sim.log_since(before).into_iter().map(|e| e.action).collect())
}

fn reason_of(out: &Outcome, type_: &str) -> String {
    out.status.conditions.iter().find(|c| c.type_ == type_).map(|c| c.reason.clone()).unwrap_or_default()
}

#[tokio::test]
async fn first_creation_probes_registers_then_creates() {
    let (sim, rec) = setup();
    let mut r = lobby(&[("topic", "general")]);
    let (out, calls) = step(&sim, &rec, &mut r).await;
    assert_eq!(calls, ["QueryRoomUserList", "UserRegister", "CreateRoom"]);
    assert_eq!(reason_of(&out, "Ready"), "Available");
    assert_eq!(out.status.adopted, Some(false));
    assert_eq!(out.status.app_id, Some(DEMO_APP_ID));
    assert!(!out.status.pending_creation);
    assert_eq!(out.requeue, Requeue::Resync);
}

#[tokio::test]
async fn converged_room_costs_one_probe_and_no_status_change() {
    let (sim, rec) = setup();
    let mut r = lobby(&[]);
    step(&sim, &rec, &mut r).await;
    let status = r.status.clone();
    let (out, calls) = step(&sim, &rec, &mut r).await;
    assert_eq!(calls, ["QueryRoomUserList"]);
    assert_eq!(Some(out.status), status);
}

#[tokio::test]
async fn vanished_room_is_recreated_without_a_second_probe() {
    let (sim, rec) = setup();
    let mut r = lobby(&[("topic", "general")]);
    step(&sim, &rec, &mut r).await;
    sim.remove_room(DEMO_APP_ID, "lobby");
    let (out, calls) = step(&sim, &rec, &mut r).await;
    assert_eq!(calls, ["QueryRoomUserList", "CreateRoom"]);
    assert_eq!(out.notes[0].reason, "Recreated");
    assert_eq!(
        sim.room(DEMO_APP_ID, "lobby").unwrap().attributes.get("topic").map(String::as_str),
        Some("general")
    );
}

#[tokio::test]
async fn changed_attributes_are_read_then_written_once() {
    let (sim, rec) = setup();
    let mut r = lobby(&[("topic", "general")]);
    step(&sim, &rec, &mut r).await;
    let mut edited = lobby(&[("topic", "news")]);
    edited.metadata.generation = Some(2);
    edited.status = r.status.clone();
    let (out, calls) = step(&sim, &rec, &mut edited).await;
    assert_eq!(calls, ["QueryRoomAttribute", "ModifyRoomAttribute"]);
    assert_eq!(reason_of(&out, "Synced"), "ReconcileSuccess");
    assert_eq!(out.status.observed_generation, Some(2));
}

#[tokio::test]
async fn foreign_room_is_adopted_by_the_probe() {
    let (sim, rec) = setup();
    sim.seed_room(DEMO_APP_ID, "lobby", "theirs", 600, &[]);
    let mut r = lobby(&[]);
    let (out, calls) = step(&sim, &rec, &mut r).await;
    assert_eq!(calls, ["QueryRoomUserList", "UserRegister", "CreateRoom", "QueryRoomAttribute"]);
    assert_eq!(out.status.adopted, Some(true));
    assert!(out.notes.iter().any(|n| n.reason == "Adopted"));
}

#[tokio::test]
async fn transient_probe_failure_keeps_a_ready_room_ready() {
    let (sim, rec) = setup();
    let mut r = lobby(&[]);
    step(&sim, &rec, &mut r).await;
    sim.set_faults(FaultPlan { next: [Fault::Code { code: 1 }].into(), ..Default::default() });
    let (out, _) = step(&sim, &rec, &mut r).await;
    assert_eq!(reason_of(&out, "Ready"), "Available");
    assert_eq!(reason_of(&out, "Synced"), "ReconcileError");
    assert_eq!(out.requeue, Requeue::Backoff { slow: false });
    assert_eq!(out.error_category, Some(ErrorCategory::Transient));
}

#[tokio::test]
async fn terminal_failure_is_shown_and_retried_slowly() {
    let (sim, rec) = setup();
    sim.set_limits(None, Some(0));
    let mut r = lobby(&[]);
    let (out, _) = step(&sim, &rec, &mut r).await;
    assert_eq!(reason_of(&out, "Ready"), "QuotaExceeded");
    assert_eq!(out.requeue, Requeue::Slow);
    assert_eq!(out.error_category, Some(ErrorCategory::Quota));
}

#[tokio::test]
async fn gates_make_no_call() {
    let (sim, rec) = setup();
    let mut invalid = lobby(&[]);
    invalid.spec.room_name = Some("é".repeat(40));
    let (out, calls) = step(&sim, &rec, &mut invalid).await;
    assert!(calls.is_empty());
    assert_eq!(reason_of(&out, "Ready"), "InvalidSpec");
    let mut changed = lobby(&[]);
    changed.status = Some(ZimRoomStatus {
        applied: Some(AppliedState {
            room_id: "lobby".into(),
            room_name: None,
            destroy_delay_time: 60,
            attributes_hash: None,
        }),
        ..Default::default()
    });
    let uid = changed.metadata.uid.clone().unwrap_or_default();
    rec.sealer().seal_into(&uid, changed.status.as_mut().unwrap());
    let (out, calls) = step(&sim, &rec, &mut changed).await;
    assert!(calls.is_empty());
    assert_eq!(reason_of(&out, "Ready"), "ImmutableFieldChanged");
}

/// A status record the operator did not seal is not acted on: each forgery of a Ready room's record (adopted
/// flipped, a pending creation, a foreign attribute key) makes no call, says UnverifiedStatus, and its deletion
/// destroys nothing; the operator's own record (sealed) works as before, and a paused object stays paused.
#[tokio::test]
async fn an_unsealed_record_is_not_acted_on() {
    let (sim, rec) = setup();
    let mut r = lobby(&[("topic", "general")]);
    step(&sim, &rec, &mut r).await;
    let sealed = r.status.clone().unwrap();
    assert!(sealed.seal.is_some(), "the operator seals what it writes");
    let forgeries: [fn(&mut ZimRoomStatus); 3] = [
        |s| s.adopted = Some(!s.adopted.unwrap_or(false)),
        |s| s.pending_creation = true,
        |s| s.managed_attribute_keys.push("owner".into()),
    ];
    for forge in forgeries {
        let mut forged = r.clone();
        forge(forged.status.as_mut().unwrap());
        let (out, calls) = step(&sim, &rec, &mut forged).await;
        assert!(calls.is_empty(), "{calls:?}");
        assert_eq!(reason_of(&out, "Ready"), "UnverifiedStatus");
        assert_eq!(out.status.seal, sealed.seal, "an unverified record is never sealed");
        assert!(out.notes.iter().any(|n| n.warning && n.reason == "UnverifiedStatus"));
        let cleanup = rec.cleanup(&forged, &DeleteFacts::owner(Ok(creds()))).await.unwrap();
        assert!(matches!(cleanup, Cleanup::Orphaned { .. }), "{cleanup:?}");
        assert!(sim.room(DEMO_APP_ID, "lobby").is_some());

        forged.metadata.annotations =
            Some([(crate::crd::PAUSED_ANNOTATION.to_owned(), "true".to_owned())].into());
        let (out, calls) = step(&sim, &rec, &mut forged).await;
        assert!(calls.is_empty());
        assert_eq!(reason_of(&out, "Synced"), "ReconcilePaused");
    }
    // A record sealed for another object does not verify here.
    let mut other = r.clone();
    other.metadata.uid = Some("another-uid".into());
    let (out, _) = step(&sim, &rec, &mut other).await;
    assert_eq!(reason_of(&out, "Ready"), "UnverifiedStatus");
    // The operator's own record: destroyed on deletion, as a room it created.
    let cleanup = rec.cleanup(&r, &DeleteFacts::owner(Ok(creds()))).await.unwrap();
    assert!(matches!(cleanup, Cleanup::Destroyed { .. }), "{cleanup:?}");
}

/// A vanished room that somebody else creates before the operator's CreateRoom (660300014) is theirs: adopted,
/// and so never destroyed by default.
#[tokio::test]
async fn room_recreated_by_someone_else_is_adopted() {
    let (sim, rec) = setup();
    let mut r = lobby(&[]);
    step(&sim, &rec, &mut r).await;
    assert_eq!(r.status.as_ref().unwrap().adopted, Some(false));
    sim.remove_room(DEMO_APP_ID, "lobby");
    // Stands for their CreateRoom landing between our probe and ours.
    sim.set_faults(FaultPlan {
        next: [Fault::Code { code: 660300014 }].into(),
        actions: vec!["CreateRoom".into()],
        ..Default::default()
    });
    let (out, calls) = step(&sim, &rec, &mut r).await;
    assert_eq!(&calls[..2], ["QueryRoomUserList", "CreateRoom"]);
    assert_eq!(out.status.adopted, Some(true));
    assert!(out.notes.iter().any(|n| n.reason == "Adopted"));
    assert!(matches!(
        rec.cleanup(&r, &DeleteFacts::owner(Ok(creds()))).await.unwrap(),
        Cleanup::Orphaned { .. }
    ));
}

/// Registrations of apps that come and go are forgotten once unused for REGISTRATION_MEMORY (paused time), and a
/// finished registration leaves no flight behind.
#[tokio::test(start_paused = true)]
async fn registrations_are_bounded() {
    let mut known = Registrations::default();
    for app in 0..1_000 {
        known.insert((app, DEFAULT_FROM_USER_ID.into()), Instant::now());
    }
    assert!(known.contains(&(7, DEFAULT_FROM_USER_ID.into()), Instant::now()));
    assert_eq!(known.known.len(), 1_000);
    tokio::time::advance(REGISTRATION_MEMORY / 2).await;
    // Used again: remembered for another period.
    assert!(known.contains(&(7, DEFAULT_FROM_USER_ID.into()), Instant::now()));
    tokio::time::advance(REGISTRATION_MEMORY / 2).await;
    known.sweep(Instant::now());
    assert_eq!(known.known.len(), 1, "only the one used within the period");

    let (sim, rec) = setup();
    let mut room = lobby(&[]);
    let (_, actions) = step(&sim, &rec, &mut room).await;
    assert!(actions.contains(&"UserRegister".to_string()), "{actions:?}");
    assert_eq!(rec.registrations(), (1, 0));
    tokio::time::advance(REGISTRATION_MEMORY).await;
    rec.sweep_registrations(Duration::ZERO);
    assert_eq!(rec.registrations(), (0, 0));
}
