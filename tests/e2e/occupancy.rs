//! Rooms with people in them, end to end: the member count on the status (from the probes the operator makes
//! anyway), and deletions that look first (`spec.whenOccupied`) — Wait keeps the object Terminating until the room
//! is empty, Drain tells the members, waits its grace period, removes them 50 at a time and destroys the room,
//! Destroy is the old behaviour — on the real API server with the operator and the simulator's members.

use std::time::Duration;

use kube::api::DeleteParams;
use zim_operator::crd::{AfterTimeout, DeletionPhase, OccupiedPolicy, WhenOccupied, ZimRoom};

use crate::builder::room;
use crate::harness::*;

const T: Duration = Duration::from_secs(30);

fn users(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn occupied_room(name: &str, when: Option<WhenOccupied>) -> ZimRoom {
    let mut r = room(name).secret_ref("zego").destroy_delay(600).build();
    r.spec.when_occupied = when;
    r
}

async fn members_shown(w: &World, name: &str, members: u64) -> ZimRoom {
    eventually(&format!("{name} to show {members} members"), T, || async {
        let r = w.get(name).await?;
        (r.status.as_ref()?.occupancy.as_ref()?.members == members).then_some(r)
    })
    .await
}

async fn delete(w: &World, name: &str) {
    w.rooms().delete(name, &DeleteParams::default()).await.expect("delete");
}

/// The status shows the member count: 0 once created, the count the prober sees after members enter, and nothing
/// more is written while it stays. A deletion under the default (Wait) counts first and leaves an occupied room
/// alone, Terminating with Ready=False WaitingForEmptyRoom saying how many are inside and how to proceed, and
/// destroys it once the members have left.
#[tokio::test]
async fn a_deletion_waits_for_an_empty_room() {
    let w = World::new("e2e-occ-wait").await;
    w.create_secret("zego").await;
    let op = w.operator(&["--resync-period", "2s", "--occupied-recheck", "1s"]).await;
    w.apply_room(occupied_room("lobby", None)).await;
    let r = w.wait_reason("lobby", "Available", T).await;
    assert_eq!(r.status.unwrap().occupancy.map(|o| o.members), Some(0), "a room just created is empty");

    w.sim.sim.enter_room(APP, "lobby", &users("u", 3)).expect("the room exists");
    let r = members_shown(&w, "lobby", 3).await;
    let version = r.metadata.resource_version.clone();
    // Three more periods of probes with the same count write nothing.
    let probes = w.calls("QueryRoomUserList");
    eventually("three more probes", T, || async {
        (w.calls("QueryRoomUserList") >= probes + 3).then_some(())
    })
    .await;
    assert_eq!(
        w.get("lobby").await.unwrap().metadata.resource_version,
        version,
        "an unchanged count costs no write"
    );
    assert_eq!(op.metric("zim_operator_room_members{room_namespace=\"e2e-occ-wait\"}").await, 3.0);
    assert_eq!(op.metric("zim_operator_rooms_occupied{room_namespace=\"e2e-occ-wait\"}").await, 1.0);

    delete(&w, "lobby").await;
    let r = w.wait_reason("lobby", "WaitingForEmptyRoom", T).await;
    let ready = r.condition("Ready").unwrap();
    assert!(
        ready.message.contains("3 members") && ready.message.contains("\"policy\":\"Destroy\""),
        "{ready:?}"
    );
    assert!(r.metadata.deletion_timestamp.is_some(), "the object stays Terminating");
    assert_eq!(r.status.as_ref().unwrap().deletion.as_ref().map(|d| d.phase), Some(DeletionPhase::Waiting));
    assert_eq!(w.calls("DestroyRoom"), 0, "an occupied room is not destroyed");
    // It keeps counting (the recheck is 1 s here) and keeps waiting while anyone is inside.
    let counted = w.calls("QueryRoomUserList");
    eventually("two more counts", T, || async {
        (w.calls("QueryRoomUserList") >= counted + 2).then_some(())
    })
    .await;
    w.sim.sim.leave_room(APP, "lobby", &users("u", 2)).expect("the room exists");
    members_shown(&w, "lobby", 1).await;
    assert_eq!(w.calls("DestroyRoom"), 0);

    w.sim.sim.leave_room(APP, "lobby", &users("u", 3)[2..]).expect("the room exists");
    w.wait_gone("lobby", T).await;
    assert_eq!(w.calls("DestroyRoom"), 1, "destroyed once empty");
    assert!(w.sim.sim.room(APP, "lobby").is_none());
    assert_eq!(
        w.calls("KickoutRoomUser") + w.calls("SendRoomMessage"),
        0,
        "Wait never removes or messages anyone"
    );
}

/// Drain: the members get the message, the room stays for the grace period (Ready=False Draining with its
/// deadline), then the 60 members left are removed in two KickoutRoomUser calls of at most 50 and the room is
/// destroyed.
#[tokio::test]
async fn a_drain_tells_waits_then_removes_and_destroys() {
    let w = World::new("e2e-occ-drain").await;
    w.create_secret("zego").await;
    let _op = w.operator(&["--occupied-recheck", "1s"]).await;
    let when = WhenOccupied {
        policy: OccupiedPolicy::Drain,
        drain_message: Some("lobby closes in a moment".into()),
        drain_grace_seconds: Some(3),
        ..WhenOccupied::default()
    };
    w.apply_room(occupied_room("hall", Some(when))).await;
    w.wait_reason("hall", "Available", T).await;
    w.sim.sim.enter_room(APP, "hall", &users("p", 60)).expect("the room exists");

    delete(&w, "hall").await;
    let r = w.wait_reason("hall", "Draining", T).await;
    let deletion = r.status.as_ref().unwrap().deletion.clone().expect("the phase is recorded");
    assert_eq!(deletion.phase, DeletionPhase::Draining);
    assert!(deletion.deadline.is_some(), "{deletion:?}");
    assert!(r.condition("Ready").unwrap().message.contains("60 members"), "{:?}", r.condition("Ready"));
    let messages = w.sim.sim.room_messages(APP, "hall");
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].message, "lobby closes in a moment", "{messages:?}");
    assert_eq!(w.calls("KickoutRoomUser"), 0, "nobody is removed during the grace period");

    w.wait_gone("hall", T).await;
    assert_eq!(w.calls("KickoutRoomUser"), 2, "60 members, at most 50 per call");
    assert_eq!(w.calls("DestroyRoom"), 1);
    let log = w.log();
    let last_kick = log.iter().rposition(|e| e.action == "KickoutRoomUser").unwrap();
    let destroy = log.iter().position(|e| e.action == "DestroyRoom").unwrap();
    assert!(last_kick < destroy, "the members are removed before the room is destroyed");
    assert_eq!(w.calls("SendRoomMessage"), 1, "one message");
}

/// `Destroy` keeps the old behaviour (no count, destroyed with its members), and a Wait with a timeout turns into
/// its afterTimeout once the time has passed.
#[tokio::test]
async fn destroy_and_a_wait_that_times_out() {
    let w = World::new("e2e-occ-destroy").await;
    w.create_secret("zego").await;
    let _op = w.operator(&["--occupied-recheck", "1s"]).await;
    let destroy = WhenOccupied { policy: OccupiedPolicy::Destroy, ..WhenOccupied::default() };
    let timed = WhenOccupied {
        policy: OccupiedPolicy::Wait,
        timeout_seconds: Some(2),
        after_timeout: Some(AfterTimeout::Destroy),
        ..WhenOccupied::default()
    };
    w.apply_room(occupied_room("now", Some(destroy))).await;
    w.apply_room(occupied_room("later", Some(timed))).await;
    w.wait_reason("now", "Available", T).await;
    w.wait_reason("later", "Available", T).await;
    w.sim.sim.enter_room(APP, "now", &users("a", 2)).unwrap();
    w.sim.sim.enter_room(APP, "later", &users("b", 2)).unwrap();

    let counts = w.calls("QueryRoomUserList");
    delete(&w, "now").await;
    w.wait_gone("now", T).await;
    assert_eq!(w.calls("QueryRoomUserList"), counts, "Destroy destroys without counting");
    assert!(w.sim.sim.room(APP, "now").is_none());

    delete(&w, "later").await;
    let r = w.wait_reason("later", "WaitingForEmptyRoom", T).await;
    assert!(r.status.unwrap().deletion.unwrap().deadline.is_some(), "the wait shows its deadline");
    w.wait_gone("later", T).await;
    assert!(w.sim.sim.room(APP, "later").is_none(), "destroyed after the timeout, members or not");
    assert_eq!(w.calls("KickoutRoomUser"), 0);
}
