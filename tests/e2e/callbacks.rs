//! ZEGO callbacks end to end: the simulator destroys an empty room when its room clock passes the room's
//! destroyDelayTime and sends the documented, signed `room_destroy` callback to the operator's `--callback-addr`;
//! the operator re-checks the room and recreates it — with the resync period at 1 h, so only the callback can
//! explain a quick recovery. Also through the standby of two replicas, without callbacks (the poll), with a
//! forged callback, and with a flood of callbacks for one room.

use std::time::{Duration, Instant};

use zim_operator::sim::{CallbackSecret, CallbackTarget};

use super::builder::room;
use super::harness::*;

const T: Duration = Duration::from_secs(30);
const CALLBACK_SECRET: &str = "cb-secret-for-tests";

/// A world with a Secret holding a callbackSecret, and the simulator sending callbacks to `port`.
async fn world(ns: &str, port: u16) -> World {
    let w = World::new(ns).await;
    w.create_secret_with("zego", &[("callbackSecret", CALLBACK_SECRET)]).await;
    let url = format!("http://127.0.0.1:{port}/zim/callback");
    w.sim
        .sim
        .set_callback_target(Some(CallbackTarget::new(&url, CallbackSecret::new(CALLBACK_SECRET)).unwrap()));
    w
}

/// Lets the simulator's clock pass `name`'s destroyDelayTime (60 s): the empty room is destroyed, as ZEGO does.
async fn destroy_by_clock(w: &World, room_id: &str) -> Instant {
    let start = Instant::now();
    w.sim.sim.advance_clock(61.0);
    eventually("the simulator to destroy the empty room", T, || async {
        w.sim.sim.room(APP, room_id).is_none().then_some(())
    })
    .await;
    start
}

/// A managed room destroyed by the simulator's clock is Ready again within 5 s with the period at 1 h.
#[tokio::test]
async fn a_destroyed_room_is_back_within_seconds() {
    let port = free_port();
    let w = world("e2e-cb-leader", port).await;
    let addr = format!("127.0.0.1:{port}");
    let op = w.operator(&["--resync-period", "1h", "--callback-addr", &addr]).await;
    w.apply_room(room("lobby").destroy_delay(60)).await;
    w.wait_reason("lobby", "Available", T).await;
    let before = w.last_seq();
    let destroyed = destroy_by_clock(&w, "lobby").await;
    eventually("the room to be recreated", Duration::from_secs(5), || async { w.sim.sim.room(APP, "lobby") })
        .await;
    let took = destroyed.elapsed();
    assert!(took <= Duration::from_secs(5), "recreated after {took:?}");
    let calls: Vec<String> = w.sim.sim.log_since(before).into_iter().map(|e| e.action).collect();
    // One probe, then the recreation (a retried delivery may add one more probe, never a write).
    assert_eq!(calls.iter().filter(|a| *a == "CreateRoom").count(), 1, "{calls:?}");
    assert!(
        calls.iter().all(|a| a == "CreateRoom" || a == "QueryRoomUserList") && calls.len() <= 3,
        "{calls:?}"
    );
    assert_eq!(calls[..2], ["QueryRoomUserList", "CreateRoom"], "{calls:?}");
    assert!(
        op.metric("zim_operator_callbacks_total{event=\"room_destroy\",outcome=\"accepted\"}").await >= 1.0
    );
    assert!(!op.logs().contains(CALLBACK_SECRET), "the callback secret is never logged");
}

/// Two replicas, the callback sent to the standby: it nudges the leader through the API server.
#[tokio::test]
async fn a_callback_to_the_standby_reaches_the_leader() {
    let (leader_port, standby_port) = (free_port(), free_port());
    let w = world("e2e-cb-standby", standby_port).await;
    let a = w
        .operator(&[
            "--resync-period",
            "1h",
            "--identity",
            "a",
            "--callback-addr",
            &format!("127.0.0.1:{leader_port}"),
        ])
        .await;
    eventually("a to lead", T, || async { (a.metric("zim_operator_leader").await == 1.0).then_some(()) })
        .await;
    let b = w
        .operator(&[
            "--resync-period",
            "1h",
            "--identity",
            "b",
            "--callback-addr",
            &format!("127.0.0.1:{standby_port}"),
        ])
        .await;
    eventually("b to stand by", T, || async {
        (b.get("/readyz").await.as_deref() == Some("standby: waiting for the leader lease")).then_some(())
    })
    .await;
    w.apply_room(room("lobby").destroy_delay(60)).await;
    w.wait_reason("lobby", "Available", T).await;
    let destroyed = destroy_by_clock(&w, "lobby").await;
    let back = tokio::time::timeout(Duration::from_secs(5), async {
        while w.sim.sim.room(APP, "lobby").is_none() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(back.is_ok(), "not recreated within 5 s\nstandby:\n{}\nleader:\n{}", b.logs(), a.logs());
    assert!(destroyed.elapsed() <= Duration::from_secs(5));
    assert!(
        b.metric("zim_operator_callbacks_total{event=\"room_destroy\",outcome=\"accepted\"}").await >= 1.0
    );
    assert_eq!(b.metric("zim_operator_zim_calls_total").await, 0.0, "the standby never calls ZIM");
    let r = w.get("lobby").await.unwrap();
    assert!(
        r.metadata.annotations.unwrap_or_default().contains_key("zim.zego.im/reconcile-requested-at"),
        "the standby nudged the object"
    );
}

/// Without callbacks the room comes back at the poll (a 3 s period here), not before: the CreateRoom that brings
/// it back follows an existence probe that found it gone, and nothing else touched the room in between.
#[tokio::test]
async fn without_callbacks_the_poll_brings_it_back() {
    let w = World::new("e2e-cb-off").await;
    w.create_secret("zego").await;
    let _op = w.operator(&["--resync-period", "3s"]).await;
    w.apply_room(room("lobby").destroy_delay(60)).await;
    w.wait_reason("lobby", "Available", T).await;
    let since = w.sim.sim.log().last().map_or(0, |e| e.seq);
    destroy_by_clock(&w, "lobby").await;
    eventually("the poll to recreate the room", T, || async { w.sim.sim.room(APP, "lobby") }).await;
    let calls: Vec<(u64, String, i64)> = w
        .sim
        .sim
        .log_since(since)
        .into_iter()
        .filter(|e| e.room_id == "lobby")
        .map(|e| (e.seq, e.action, e.code))
        .collect();
    let create = calls.iter().position(|(_, a, _)| a == "CreateRoom").expect("recreated with CreateRoom");
    assert!(create > 0, "a probe comes first: {calls:?}");
    let (_, probe, code) = &calls[create - 1];
    assert_eq!(probe, "QueryRoomUserList", "the recreation follows the poll's probe: {calls:?}");
    assert_ne!(*code, 0, "the probe found the room gone: {calls:?}");
    assert!(
        calls[..create].iter().all(|(_, a, _)| a == "QueryRoomUserList"),
        "nothing but the poll's probes touched the room before it came back: {calls:?}"
    );
}

/// A forged callback (wrong signature) is refused with 401 and changes nothing; 1 000 valid callbacks for one
/// room in about a second cause at most a handful of probes.
#[tokio::test]
async fn forged_and_flooding_callbacks() {
    let port = free_port();
    let w = world("e2e-cb-flood", port).await;
    let op = w.operator(&["--resync-period", "1h", "--callback-addr", &format!("127.0.0.1:{port}")]).await;
    w.apply_room(room("lobby").destroy_delay(60)).await;
    w.wait_reason("lobby", "Available", T).await;
    let before = w.last_seq();
    let url = format!("http://127.0.0.1:{port}/zim/callback");
    let http = reqwest::Client::new();
    // Signed now: a callback outside the freshness window (12 minutes behind) is refused.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let body_at = |timestamp: u64, signature: &str, nonce: u32| {
        serde_json::json!({
            "appid": APP.to_string(), "event": "room_destroy", "timestamp": timestamp,
            "nonce": nonce.to_string(), "signature": signature, "room_id": "lobby",
            "operator_account": "", "user_ids": [],
        })
    };
    let body = |signature: &str, nonce: u32| body_at(now, signature, nonce);
    let forged =
        http.post(&url).json(&body("0000000000000000000000000000000000000000", 1)).send().await.unwrap();
    assert_eq!(forged.status(), 401);
    assert!(
        op.metric("zim_operator_callbacks_total{event=\"room_destroy\",outcome=\"bad_signature\"}").await
            >= 1.0
    );

    let sign_at = |timestamp: u64, nonce: u32| {
        zim_operator::sim::callbacks::signature(CALLBACK_SECRET, &timestamp.to_string(), &nonce.to_string())
    };
    let sign = |nonce: u32| sign_at(now, nonce);
    let old = now - 13 * 60;
    let stale = http.post(&url).json(&body_at(old, &sign_at(old, 5000), 5000)).send().await.unwrap();
    assert_eq!(stale.status(), 401, "a callback signed 13 minutes ago is refused");
    assert!(op.metric("zim_operator_callbacks_total{event=\"room_destroy\",outcome=\"stale\"}").await >= 1.0);
    let start = Instant::now();
    use futures::StreamExt;
    let sends = futures::stream::iter(0..1000u32)
        .map(|n| {
            let (http, url, b) = (http.clone(), url.clone(), body(&sign(n), n));
            async move { http.post(&url).json(&b).send().await.map(|r| r.status().as_u16()) }
        })
        .buffer_unordered(50);
    let statuses: Vec<_> = sends.collect().await;
    assert!(statuses.iter().all(|s| matches!(s, Ok(200))), "every callback answered 200");
    let sent_in = start.elapsed();
    // Let the queued re-checks run, then count.
    eventually("the callbacks to be handled", T, || async {
        let handled = op.metric("zim_operator_callbacks_total{event=\"room_destroy\"").await;
        (handled >= 1001.0).then_some(())
    })
    .await;
    // Coalesced: one re-check at once, and one after the coalescing interval (which covers the rest).
    let probes =
        || w.sim.sim.log_since(before).into_iter().filter(|e| e.action == "QueryRoomUserList").count();
    eventually("the coalesced re-checks", T, || async { (probes() >= 2).then_some(()) }).await;
    let probes = w.sim.sim.log_since(before).into_iter().filter(|e| e.action == "QueryRoomUserList").count();
    assert!(probes <= 5, "{probes} probes for 1 000 callbacks sent in {sent_in:?}");
    println!("flood: 1 000 callbacks in {sent_in:?} → {probes} probes");
    assert!(w.sim.sim.room(APP, "lobby").is_some(), "the room was never destroyed");
    let writes = w.sim.sim.log_since(before).into_iter().filter(|e| e.action != "QueryRoomUserList").count();
    assert_eq!(writes, 0, "no write on a callback's word");
}
