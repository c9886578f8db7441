//! ZEGO callbacks end to end: the simulator destroys an empty room when its room clock passes the room's
//! destroyDelayTime and sends the documented, signed `room_destroy` callback to the operator's `--callback-addr`;
//! the operator re-checks the room and recreates it — with the resync period at 1 h, so only the callback can
//! explain a quick recovery. Also: a standby of two replicas verifies nothing; without callbacks (the poll); a
//! forged callback; a flood of callbacks for one room; a callbackSecret beside a server secret ZIM never accepted
//! (another namespace claiming the app); and a flood for every room of one app, bounded by its allowance.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
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

/// Posts a `room_destroy` for `room_id` of `app`, signed now with `secret`; returns the HTTP status.
async fn post_destroy(
    http: &reqwest::Client,
    url: &str,
    app: u32,
    room_id: &str,
    secret: &str,
    nonce: u32,
) -> u16 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let signature = zim_operator::sim::callbacks::signature(secret, &now.to_string(), &nonce.to_string());
    let body = serde_json::json!({
        "appid": app.to_string(), "event": "room_destroy", "timestamp": now, "nonce": nonce.to_string(),
        "signature": signature, "room_id": room_id, "operator_account": "", "user_ids": [],
    });
    http.post(url).json(&body).send().await.unwrap().status().as_u16()
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

/// Two replicas, the callback sent to the standby: the standby makes no ZIM call, so it has proven no Secret and
/// verifies nothing; it answers 503 (ZEGO retries) and neither writes to the API server nor calls ZIM. The same
/// room_destroy sent to the leader (where the Service may send ZEGO's retry) brings the room back. Before, the
/// standby verified the callback with any Secret claiming the AppId and patched the object.
#[tokio::test]
async fn a_callback_to_the_standby_is_left_to_the_leader() {
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
    destroy_by_clock(&w, "lobby").await;
    eventually("the standby to answer the simulator's callback", T, || async {
        let standby = "zim_operator_callbacks_total{event=\"room_destroy\",outcome=\"standby\"}";
        (b.metric(standby).await >= 1.0).then_some(())
    })
    .await;
    let http = reqwest::Client::new();
    let leader = format!("http://127.0.0.1:{leader_port}/zim/callback");
    let sent = Instant::now();
    assert_eq!(post_destroy(&http, &leader, APP, "lobby", CALLBACK_SECRET, 1).await, 200);
    eventually("the leader to recreate the room", Duration::from_secs(5), || async {
        w.sim.sim.room(APP, "lobby")
    })
    .await;
    println!("standby: recreated {:?} after the callback reached the leader", sent.elapsed());
    assert_eq!(
        b.metric("zim_operator_callbacks_total{event=\"room_destroy\",outcome=\"accepted\"}").await,
        0.0,
        "the standby verified nothing"
    );
    assert_eq!(b.metric("zim_operator_zim_calls_total").await, 0.0, "the standby never calls ZIM");
    let r = w.get("lobby").await.unwrap();
    assert!(
        !r.metadata.annotations.unwrap_or_default().contains_key("zim.zego.im/reconcile-requested-at"),
        "the standby wrote nothing to the object"
    );
}

/// Scenario 5 of issue 22: a Secret in another namespace claims app A's AppId, with a callbackSecret of its own
/// and a server secret ZIM refuses (so never proven). Its callbackSecret verifies nothing for app A: 401 and no
/// re-check, where before the callback was accepted and A's room probed. The owner's Secret, whose server secret
/// ZIM has accepted, still verifies.
#[tokio::test]
async fn a_callback_secret_beside_an_unproven_server_secret_verifies_nothing() {
    let port = free_port();
    let w = world("e2e-cb-squat", port).await;
    let squatter = "e2e-cb-squat-b";
    w.tenant_namespace(squatter, APP, "00000000000000000000000000000000").await;
    let secrets: Api<Secret> = Api::namespaced(w.client.clone(), squatter);
    let patch = serde_json::json!({"stringData": {"callbackSecret": "squatter-cb"}});
    secrets.patch("zego", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    let addr = format!("127.0.0.1:{port}");
    let _op =
        w.operator(&["--resync-period", "1h", "--callback-addr", &addr, "--namespaces", squatter]).await;
    w.apply_room(room("lobby")).await;
    w.wait_reason("lobby", "Available", T).await;
    // The squatter's Secret is read (its object uses it) and refused by ZIM.
    w.apply_room_in(squatter, room("decoy").secret_ref("zego")).await;
    w.wait_reason_in(squatter, "decoy", "AuthFailed", T).await;

    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/zim/callback");
    let probes_of_lobby = |since: u64| {
        w.sim.sim.log_since(since).into_iter().filter(|e| e.app_id == APP && e.room_id == "lobby").count()
    };
    let before = w.last_seq();
    for nonce in 0..5 {
        let status = post_destroy(&http, &url, APP, "lobby", "squatter-cb", nonce).await;
        assert_eq!(status, 401, "a callbackSecret beside an unproven server secret verifies nothing");
    }
    // The owner's callback goes through the same path: once it has been acted on, the squatter's had their chance.
    assert_eq!(post_destroy(&http, &url, APP, "lobby", CALLBACK_SECRET, 100).await, 200);
    eventually("the owner's callback to re-check lobby", T, || async {
        (probes_of_lobby(before) >= 1).then_some(())
    })
    .await;
    assert_eq!(probes_of_lobby(before), 1, "one re-check, the owner's");
}

/// Scenario 5's flood: every room of one app signed `room_destroy` once a second. The app's callback re-checks
/// stay within its allowance (a quarter of its probe budget per second, one second's burst; the rest
/// `throttled`), so the app's QueryRoomUserList calls stay far under its lane, and the periodic re-check of
/// another app's rooms goes on. Before, each room was re-checked once a second: the app's lane ran at the limit.
#[tokio::test]
async fn a_flood_of_callbacks_for_many_rooms_stays_within_the_app_s_allowance() {
    const ROOMS: usize = 24;
    const FLOOD_SECS: u64 = 8;
    let resync = Duration::from_secs(6);
    let port = free_port();
    let w = world("e2e-cb-budget", port).await;
    let other = "e2e-cb-budget-b";
    w.tenant_namespace(other, APP_B, SECRET_B).await;
    let addr = format!("127.0.0.1:{port}");
    let op = w.operator(&["--resync-period", "6s", "--callback-addr", &addr, "--namespaces", other]).await;
    let names: Vec<String> = (0..ROOMS).map(|i| format!("r-{i}")).collect();
    w.apply_rooms(names.iter().map(|n| room(n).build()).collect()).await;
    w.apply_room_in(other, room("b-0").secret_ref("zego")).await;
    w.apply_room_in(other, room("b-1").secret_ref("zego")).await;
    for n in &names {
        w.wait_reason(n, "Available", T).await;
    }
    w.wait_reason_in(other, "b-0", "Available", T).await;
    w.wait_reason_in(other, "b-1", "Available", T).await;

    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/zim/callback");
    let start_ms = w.sim.sim.log().last().map_or(0, |e| e.at_ms);
    let before = w.last_seq();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    let mut nonce = 0u32;
    for _ in 0..FLOOD_SECS {
        ticks.tick().await;
        let sends = names.iter().map(|n| {
            nonce += 1;
            post_destroy(&http, &url, APP, n, CALLBACK_SECRET, nonce)
        });
        let statuses = futures::future::join_all(sends).await;
        assert!(statuses.iter().all(|s| *s == 200), "every verified callback is answered 200: {statuses:?}");
    }
    // The window: the flood and one more second for the last admitted re-checks; wait until the simulator's
    // clock has passed it (the periodic probes keep arriving).
    let end_ms = start_ms + (FLOOD_SECS + 1) * 1000;
    eventually("the simulator's log to pass the window", T, || async {
        w.sim.sim.log().last().is_some_and(|e| e.at_ms > end_ms).then_some(())
    })
    .await;
    let in_window: Vec<_> = w
        .sim
        .sim
        .log_since(before)
        .into_iter()
        .filter(|e| e.at_ms <= end_ms && e.action == "QueryRoomUserList")
        .collect();
    let of_a: Vec<u64> =
        in_window.iter().filter(|e| e.app_id == APP).map(|e| (e.at_ms - start_ms) / 1000).collect();
    let of_b = in_window.iter().filter(|e| e.app_id == APP_B).count();
    let per_second: Vec<usize> = (0..=FLOOD_SECS).map(|s| of_a.iter().filter(|x| **x == s).count()).collect();
    let window = Duration::from_millis(end_ms - start_ms);
    // The bound: the periodic probes (each room at most once per 0.9 × period, plus one) and the allowance.
    let budget = zim_operator::zim::limiter::granted_per_second(20) * 0.8;
    let rate = zim_operator::reconcile::decide::callback::recheck_rate(Some(budget));
    let periodic =
        ROOMS * (window.as_secs_f64() / resync.mul_f64(0.9).as_secs_f64()).floor() as usize + ROOMS;
    let callbacks = (rate * window.as_secs_f64() + rate.max(1.0)).ceil() as usize;
    let throttled =
        op.metric("zim_operator_callbacks_total{event=\"room_destroy\",outcome=\"throttled\"}").await;
    println!(
        "flood: {} callbacks over {FLOOD_SECS} s → {} QueryRoomUserList of app A in {window:?} (per second {per_second:?}; \
         bound {periodic} periodic + {callbacks} callback re-checks at {rate:.2}/s), {throttled} throttled, \
         {of_b} of app B",
        ROOMS as u64 * FLOOD_SECS,
        of_a.len()
    );
    assert!(
        of_a.len() <= periodic + callbacks,
        "{} probes of app A, over {periodic} + {callbacks}",
        of_a.len()
    );
    assert!(
        throttled >= (ROOMS as u64 * FLOOD_SECS) as f64 / 2.0,
        "most of the flood was throttled: {throttled}"
    );
    assert!(of_b >= 2, "the other app's rooms were re-checked by the poll during the flood: {of_b}");
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

/// A deletion waiting for an occupied room (counting again only hourly here) destroys it within seconds of the
/// last member leaving: the simulator's `room_exit` callback re-checks it. `room_exit` callbacks of rooms nobody
/// waits for are ignored (no call).
#[tokio::test]
async fn room_exit_ends_a_waiting_deletion_at_once() {
    let port = free_port();
    let w = world("e2e-cb-exit", port).await;
    let addr = format!("127.0.0.1:{port}");
    let op =
        w.operator(&["--resync-period", "1h", "--occupied-recheck", "1h", "--callback-addr", &addr]).await;
    w.apply_room(room("stage").secret_ref("zego").destroy_delay(600)).await;
    w.apply_room(room("other").secret_ref("zego").destroy_delay(600)).await;
    w.wait_reason("stage", "Available", T).await;
    w.wait_reason("other", "Available", T).await;
    let people: Vec<String> = vec!["ann".into(), "bob".into()];
    w.sim.sim.enter_room(APP, "stage", &people).unwrap();
    w.sim.sim.enter_room(APP, "other", &people).unwrap();
    // A leaving member of a room nobody waits for: ignored.
    let before = w.last_seq();
    w.sim.sim.leave_room(APP, "other", &people[..1]).unwrap();
    eventually("the room_exit of other to be ignored", T, || async {
        (op.metric("zim_operator_callbacks_total{event=\"room_exit\",outcome=\"ignored\"}").await >= 1.0)
            .then_some(())
    })
    .await;
    assert!(w.sim.sim.log_since(before).is_empty(), "an ignored room_exit makes no call");

    w.rooms().delete("stage", &kube::api::DeleteParams::default()).await.unwrap();
    w.wait_reason("stage", "WaitingForEmptyRoom", T).await;
    w.sim.sim.leave_room(APP, "stage", &people).unwrap();
    let left = Instant::now();
    w.wait_gone("stage", T).await;
    assert!(
        left.elapsed() <= Duration::from_secs(10),
        "destroyed {:?} after the last member left",
        left.elapsed()
    );
    assert!(w.sim.sim.room(APP, "stage").is_none());
    assert!(op.metric("zim_operator_callbacks_total{event=\"room_exit\",outcome=\"accepted\"}").await >= 1.0);
}
