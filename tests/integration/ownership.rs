//! Ownership over the simulator's HTTP: an object owns a room only if it saw the room absent and then asked for
//! it. Foreign rooms are adopted whatever the first CreateRoom answers; a lost CreateRoom answer leaves a pending
//! creation that makes the room the object's own; claims, AppId changes, refused attributes and re-registration.

use crate::support::*;
use zim_operator::crd::ZimRoom;
use zim_operator::reconcile::{Claim, Cleanup, DeleteFacts, Facts, NoSink, Outcome, Reconciler, Requeue};
use zim_operator::sim::{Fault, FaultPlan, RunningSim};

fn lobby() -> ZimRoom {
    room("lobby").namespace("chat").destroy_delay(600).attribute("topic", "general").build()
}

fn seed_foreign(sim: &RunningSim) {
    sim.sim.seed_room(APP, "lobby", "theirs", 600, &[("owner".into(), "team-b".into())]);
}

fn fail_next_create(sim: &RunningSim, fault: Fault) {
    sim.sim.set_faults(FaultPlan {
        next: [fault].into(),
        actions: vec!["CreateRoom".into()],
        ..Default::default()
    });
}

async fn run_until_ready(rec: &Reconciler, r: &mut ZimRoom) -> Vec<Outcome> {
    let mut outs = Vec::new();
    for _ in 0..3 {
        let out = run(rec, r).await;
        let done = ready(r).0 == "True";
        outs.push(out);
        if done {
            break;
        }
    }
    assert_eq!(ready(r), ("True".into(), "Available".into()), "the room never became Ready");
    outs
}

async fn assert_foreign_room_adopted_despite(fault: Fault) {
    let sim = sim(0, 100).await;
    seed_foreign(&sim);
    let rec = reconciler(&sim);
    fail_next_create(&sim, fault.clone());
    let mut r = lobby();
    let outs = run_until_ready(&rec, &mut r).await;
    let status = r.status.clone().unwrap();
    assert_eq!(status.adopted, Some(true), "{fault:?}");
    assert!(!status.pending_creation, "{fault:?}");
    assert!(outs.iter().flat_map(|o| &o.notes).any(|n| n.reason == "Adopted"), "{fault:?}");
    let before = last_seq(&sim);
    let cleanup = rec.cleanup(&r, &DeleteFacts::owner(Ok(creds()))).await.unwrap();
    assert!(matches!(cleanup, Cleanup::Orphaned { .. }), "{fault:?}: {cleanup:?}");
    assert!(actions_since(&sim, before).is_empty(), "deleting must not call ZIM");
    assert_eq!(sim.sim.room(APP, "lobby").unwrap().room_name, "theirs", "the foreign room stays");
}

/// A foreign room whose first CreateRoom is throttled ends adopted, and deletion leaves it.
#[tokio::test]
async fn foreign_room_adopted_after_throttled_create() {
    assert_foreign_room_adopted_despite(Fault::Code { code: 660300005 }).await;
}

/// A foreign room whose first CreateRoom is answered "busy" ends adopted, and deletion leaves it.
#[tokio::test]
async fn foreign_room_adopted_after_busy_create() {
    assert_foreign_room_adopted_despite(Fault::Code { code: 1 }).await;
}

/// A foreign room whose first CreateRoom is refused (parameters) ends adopted, and deletion leaves it.
#[tokio::test]
async fn foreign_room_adopted_after_refused_create() {
    assert_foreign_room_adopted_despite(Fault::Code { code: 660000002 }).await;
}

async fn assert_lost_reply_is_own_room(fault: Fault) {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    fail_next_create(&sim, fault.clone());
    let mut r = lobby();
    let first = run(&rec, &mut r).await;
    assert!(matches!(first.requeue, Requeue::Backoff { .. }), "{fault:?}");
    assert!(
        r.status.as_ref().unwrap().pending_creation,
        "{fault:?}: a lost answer leaves a pending creation"
    );
    assert!(sim.sim.room(APP, "lobby").is_some(), "{fault:?}: the simulator performed the call");
    run_until_ready(&rec, &mut r).await;
    let status = r.status.clone().unwrap();
    assert_eq!(status.adopted, Some(false), "{fault:?}");
    assert!(!status.pending_creation);
    assert_eq!(sim.sim.rooms(APP).len(), 1, "exactly one room");
    assert!(
        matches!(rec.cleanup(&r, &DeleteFacts::owner(Ok(creds()))).await.unwrap(), Cleanup::Destroyed { .. }),
        "{fault:?}"
    );
    assert!(sim.sim.room(APP, "lobby").is_none());
}

/// CreateRoom performed but its reply lost to a timeout: the room is the object's own; deletion destroys it.
#[tokio::test]
async fn lost_reply_timeout_is_own_room() {
    assert_lost_reply_is_own_room(Fault::DelayReply { ms: 3000 }).await;
}

/// CreateRoom performed, then the connection dropped: the room is the object's own; deletion destroys it.
#[tokio::test]
async fn lost_reply_dropped_connection_is_own_room() {
    assert_lost_reply_is_own_room(Fault::DropAfter).await;
}

/// CreateRoom performed, then HTTP 503 without a ZIM answer: the room is the object's own; deletion destroys it.
#[tokio::test]
async fn lost_reply_5xx_is_own_room() {
    assert_lost_reply_is_own_room(Fault::StatusAfter { status: 503 }).await;
}

/// A CreateRoom that ZIM refused leaves no pending creation: a room someone creates before the retry is adopted.
#[tokio::test]
async fn refused_create_then_foreign_room_is_adopted() {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    fail_next_create(&sim, Fault::Code { code: 660300005 });
    let mut r = lobby();
    run(&rec, &mut r).await;
    assert!(!r.status.as_ref().unwrap().pending_creation);
    seed_foreign(&sim);
    run_until_ready(&rec, &mut r).await;
    assert_eq!(r.status.as_ref().unwrap().adopted, Some(true));
}

/// A second object declaring the same room is Conflict naming the owner, and makes no ZIM call at all.
#[tokio::test]
async fn conflicting_claimant_makes_no_call() {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    let r = room("lobby").namespace("team-b").build();
    let claim = Claim::Conflict { owner: "team-a/lobby".into() };
    let out = rec
        .reconcile(&r, &Facts { claims: claim.clone(), ..Facts::owner(Ok(creds())) }, &NoSink, now())
        .await;
    let c = out.status.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(c.reason, "Conflict");
    assert!(c.message.contains("team-a/lobby"), "{}", c.message);
    assert_eq!(out.requeue, Requeue::OnChange);
    assert!(sim.sim.log().is_empty(), "no ZIM call for a non-owner");
    assert_eq!(out.status.room_id, None, "a non-owner records no claim on the room");
}

/// Deleting an owner while another object declares the room leaves the room (even with deletionPolicy Delete).
#[tokio::test]
async fn deleting_owner_with_a_claimant_leaves_the_room() {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    let mut r = lobby();
    run(&rec, &mut r).await;
    let before = last_seq(&sim);
    let cleanup = rec
        .cleanup(
            &r,
            &DeleteFacts { successor: Some("team-b/lobby".into()), ..DeleteFacts::owner(Ok(creds())) },
        )
        .await
        .unwrap();
    assert!(matches!(&cleanup, Cleanup::Orphaned { why } if why.contains("team-b/lobby")), "{cleanup:?}");
    assert!(actions_since(&sim, before).is_empty());
    assert!(sim.sim.room(APP, "lobby").is_some());
}

/// Credentials that now resolve to another AppId: AppIdChanged, and no call reaches either app.
#[tokio::test]
async fn app_id_change_calls_nothing() {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    let mut r = lobby();
    run(&rec, &mut r).await;
    assert_eq!(r.status.as_ref().unwrap().app_id, Some(APP));
    let mut other = creds();
    other.credentials.app_id = APP + 1;
    let before = last_seq(&sim);
    let out = rec.reconcile(&r, &Facts::owner(Ok(other)), &NoSink, now()).await;
    let c = out.status.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(c.reason, "AppIdChanged");
    assert!(c.message.contains(&APP.to_string()), "{}", c.message);
    assert!(actions_since(&sim, before).is_empty());
    assert_eq!(out.status.app_id, Some(APP), "the recorded app stays");
}

/// 20 client attributes and one more declared key: Ready stays True, Synced=False names the key, the key is not
/// owned, and the retry is slow.
#[tokio::test]
async fn refused_attribute_keeps_ready_and_is_not_owned() {
    let sim = sim(0, 100).await;
    let client_keys: Vec<(String, String)> = (0..20).map(|i| (format!("c{i}"), "x".into())).collect();
    sim.sim.seed_room(APP, "lobby", "", 600, &client_keys);
    let rec = reconciler(&sim);
    let mut r = room("lobby").namespace("chat").destroy_delay(600).attribute("mine", "v").build();
    let out = run(&rec, &mut r).await;
    assert_eq!(ready(&r), ("True".into(), "Available".into()));
    let synced = r.condition("Synced").unwrap();
    assert_eq!(synced.status, "False");
    assert!(synced.message.contains("mine"), "{}", synced.message);
    assert_eq!(out.requeue, Requeue::Slow);
    assert!(!r.status.as_ref().unwrap().managed_attribute_keys.contains(&"mine".to_string()));
}

/// The first manifest of an `apply` run owns a room; a second one declaring it is Conflict and costs nothing.
#[test]
fn apply_gives_a_room_to_the_first_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let a = room("lobby").namespace("team-a").yaml();
    let b = room("lobby").namespace("team-b").yaml();
    let path = dir.path().join("rooms.yaml");
    std::fs::write(&path, format!("{a}---\n{b}")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zim-operator"))
        .args(["apply", "--simulate", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("team-a/lobby: Ready"), "{stderr}");
    assert!(stderr.contains("team-b/lobby: not Ready (Conflict)"), "{stderr}");
    assert!(stderr.contains("owned by ZimRoom team-a/lobby"), "{stderr}");
}

/// An operator user ZIM no longer knows (660500002) on an action other than CreateRoom is registered again on the
/// next attempt, which then succeeds.
#[tokio::test]
async fn unregistered_operator_is_registered_again_on_any_action() {
    let sim = sim(0, 100).await;
    let rec = reconciler(&sim);
    let mut r = lobby();
    run(&rec, &mut r).await;
    assert!(sim.sim.unregister_user(APP, "zim-operator"));
    // An attribute edit: QueryRoomAttribute as the forgotten user.
    let mut edited = room("lobby").namespace("chat").destroy_delay(600).attribute("topic", "news").build();
    edited.status = r.status.clone();
    edited.metadata.generation = Some(2);
    let before = last_seq(&sim);
    run(&rec, &mut edited).await;
    assert_eq!(edited.condition("Synced").unwrap().status, "False");
    assert!(edited.condition("Synced").unwrap().message.contains("660500002"));
    run(&rec, &mut edited).await;
    assert_eq!(edited.condition("Synced").unwrap().status, "True");
    assert_eq!(
        actions_since(&sim, before),
        ["QueryRoomAttribute", "UserRegister", "QueryRoomAttribute", "ModifyRoomAttribute"]
    );
}
