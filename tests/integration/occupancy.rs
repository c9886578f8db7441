//! Room occupancy against the simulator over real HTTP on 127.0.0.1: members entering and leaving through the
//! admin API, QueryRoomUserList's pages, KickoutRoomUser and SendRoomMessage with their documented codes, the
//! `room_enter` / `room_exit` callbacks, and the ZIM side of a drain (message, list, kick, destroy) through the
//! rate-limited client.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use zim_operator::sim::{CallbackConfig, CallbackSecret, CallbackTarget, RunningSim, SimConfig, Simulator};
use zim_operator::zim::api::Transport;
use zim_operator::zim::codes;
use zim_operator::zim::types::*;
use zim_operator::zim::{
    Class, ClientConfig, Credentials, ServerSecret, Terminal, ZimApi, ZimClient, ZimError,
};

use zim_operator::testing::{APP, SECRET};

const OPERATOR: &str = "ops-bot";
const CB_SECRET: &str = "occupancy-callback-secret";

fn creds() -> Credentials {
    Credentials::new(APP, SECRET)
}

/// A simulator with the default limits (20/s per action), sending callbacks to `callback_url` when given.
async fn running(callback_url: Option<&str>) -> RunningSim {
    let target = callback_url
        .map(|url| CallbackTarget::new(url, CallbackSecret::new(CB_SECRET)).expect("callback URL"));
    let sim = Simulator::new(SimConfig {
        apps: vec![(APP, ServerSecret::new(SECRET))],
        callbacks: CallbackConfig {
            target,
            retry_after: vec![Duration::from_millis(200)],
            ..Default::default()
        },
        ..Default::default()
    });
    sim.start_local().await.expect("simulator starts")
}

fn client(sim: &RunningSim, calls_per_second: u32) -> ZimClient {
    ZimClient::new(&ClientConfig {
        endpoint: sim.endpoint(),
        calls_per_second,
        timeout: Duration::from_secs(3),
        ..Default::default()
    })
    .unwrap()
}

/// OPERATOR registered and room `room_id` created (DestroyDelayTime 60 s).
async fn with_room(c: &ZimClient, room_id: &str) {
    c.user_register(&creds(), &[UserInfo { user_id: OPERATOR.into(), ..Default::default() }]).await.unwrap();
    let request = CreateRoomRequest {
        from_user_id: OPERATOR.into(),
        room_id: room_id.into(),
        room_name: None,
        destroy_delay_time: Some(60),
        attributes: Vec::new(),
    };
    c.create_room(&creds(), &request).await.unwrap();
}

fn users(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:03}")).collect()
}

/// `POST /_sim/rooms/{app}/{room}/{what}` with `users`: the status and the JSON answer (Null when none).
async fn admin_move(sim: &RunningSim, room_id: &str, what: &str, users: &[String]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/_sim/rooms/{APP}/{room_id}/{what}", sim.endpoint()))
        .json(users)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn admin_messages(sim: &RunningSim, room_id: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}/_sim/rooms/{APP}/{room_id}/messages", sim.endpoint()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// One raw signed call through the HTTP transport (no limiter, no client-side checks).
async fn raw<R>(
    c: &ZimClient,
    action: Action,
    query: &[(&str, String)],
    body: Option<&Value>,
) -> Result<R, ZimError>
where
    R: serde::de::DeserializeOwned + HasEnvelope + Send,
{
    c.inner().call(&creds(), action, query, body).await
}

/// Polls `f` every 20 ms until it gives a value; fails after `deadline`.
async fn eventually<T>(what: &str, deadline: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A callback receiver on 127.0.0.1 that keeps every body whose signature verifies by the documented formula
/// (computed here, not with the simulator's code); a body that does not verify fails the test.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Receiver {
    async fn start() -> Self {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        let handler = move |body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                let body: Value = serde_json::from_slice(&body).unwrap_or_default();
                assert!(verify(&body), "a callback whose signature does not verify: {body}");
                kept.lock().unwrap().push(body);
                axum::http::StatusCode::OK
            }
        };
        let app = axum::Router::new().route("/cb", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
        });
        Self { url: format!("http://{addr}/cb"), bodies, _stop: tx }
    }

    /// The bodies of `event` received so far, in arrival order.
    fn of(&self, event: &str) -> Vec<Value> {
        self.bodies.lock().unwrap().iter().filter(|b| b["event"] == event).cloned().collect()
    }

    /// Waits until `n` bodies of `event` arrived; returns them.
    async fn wait_for(&self, event: &str, n: usize) -> Vec<Value> {
        eventually(&format!("{n} {event}"), Duration::from_secs(10), || {
            Some(self.of(event)).filter(|b| b.len() >= n)
        })
        .await
    }
}

fn verify(body: &Value) -> bool {
    use sha1::{Digest, Sha1};
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut parts = [CB_SECRET.to_owned(), text(&body["timestamp"]), text(&body["nonce"])];
    parts.sort();
    let hex: String = Sha1::digest(parts.concat().as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    body["signature"].as_str() == Some(hex.as_str())
}

/// The example of the NextFlag parameter: 250 users in pages of 100 come back as users 1–100 with flag "1",
/// 101–200 with "2", 201–250 with "0", oldest entry first; Count is every user on each page. room_member_ids
/// reads them all and probe_room reads the count.
#[tokio::test]
async fn user_list_pages_follow_the_documented_next_flag() {
    let sim = running(None).await;
    let c = client(&sim, 0);
    with_room(&c, "big").await;
    // Entry order differs from name order, so the order checked is the entry order.
    let mut everyone = users("m", 250);
    everyone.reverse();
    let (status, answer) = admin_move(&sim, "big", "enter", &everyone).await;
    assert_eq!((status, answer["users"].as_array().map(Vec::len)), (200, Some(250)));

    let mut flag = String::new();
    let mut pages = Vec::new();
    loop {
        let page = c.query_room_user_list(&creds(), "big", &flag, 100).await.unwrap();
        assert_eq!(page.count, 250);
        let ids: Vec<String> = page.user_list.into_iter().map(|u| u.user_id).collect();
        pages.push((ids, page.next_flag.clone()));
        if page.next_flag == "0" {
            break;
        }
        flag = page.next_flag;
        assert!(pages.len() < 4, "{pages:?}");
    }
    let flags: Vec<&str> = pages.iter().map(|(_, f)| f.as_str()).collect();
    assert_eq!(flags, ["1", "2", "0"]);
    assert_eq!(pages.iter().map(|(ids, _)| ids.len()).collect::<Vec<_>>(), [100, 100, 50]);
    assert_eq!(pages.concat_ids(), everyone);

    assert_eq!(c.room_member_ids(&creds(), "big").await.unwrap(), everyone);
    assert_eq!(c.probe_room(&creds(), "big").await.unwrap(), RoomProbe::Exists { members: 250 });
    // Mode 1 is the reverse order.
    let newest: QueryRoomUserListResponse = raw(
        &c,
        Action::QueryRoomUserList,
        &[("RoomId", "big".into()), ("Mode", "1".into()), ("Limit", "3".into())],
        None,
    )
    .await
    .unwrap();
    let ids: Vec<String> = newest.user_list.into_iter().map(|u| u.user_id).collect();
    assert_eq!(ids, ["m000", "m001", "m002"]);
    assert_eq!(newest.next_flag, "1");
}

trait ConcatIds {
    fn concat_ids(&self) -> Vec<String>;
}

impl ConcatIds for Vec<(Vec<String>, String)> {
    fn concat_ids(&self) -> Vec<String> {
        self.iter().flat_map(|(ids, _)| ids.clone()).collect()
    }
}

/// Members entering and leaving through the admin API are announced by signed room_enter and room_exit (Quit)
/// callbacks; the last one out starts the room's DestroyDelayTime, and the room is then destroyed on its own.
/// probe_room follows: Exists with the count, Exists with 0 (660300008) while in the delay, then Missing.
#[tokio::test]
async fn entering_and_leaving_send_callbacks_and_drive_the_delay() {
    let receiver = Receiver::start().await;
    let sim = running(Some(&receiver.url)).await;
    let c = client(&sim, 0);
    with_room(&c, "hall").await;
    let (status, answer) =
        admin_move(&sim, "hall", "enter", &["alice".into(), "bob".into(), "alice".into()]).await;
    assert_eq!((status, &answer["users"]), (200, &json!(["alice", "bob"])));
    let entered = receiver.wait_for("room_enter", 2).await;
    let who: Vec<&str> = entered.iter().map(|b| b["operator_account"].as_str().unwrap()).collect();
    assert_eq!(who, ["alice", "bob"]);
    let app = json!(APP.to_string());
    assert!(entered.iter().all(|b| b["room_id"] == "hall" && b["appid"] == app));
    assert_eq!(c.probe_room(&creds(), "hall").await.unwrap(), RoomProbe::Exists { members: 2 });

    // Entering twice, or leaving when not in, changes nothing and sends nothing.
    let (_, answer) = admin_move(&sim, "hall", "leave", &["carol".into(), "bob".into()]).await;
    assert_eq!(answer["users"], json!(["bob"]));
    let quit = receiver.wait_for("room_exit", 1).await;
    assert_eq!(
        (&quit[0]["exit_type"], &quit[0]["operator_account"], &quit[0]["exit_user_ids"]),
        (&json!("Quit"), &json!("bob"), &json!(["bob"]))
    );
    // The room clock moves while someone is in: nothing expires.
    sim.sim.advance_clock(120.0);
    assert_eq!(c.probe_room(&creds(), "hall").await.unwrap(), RoomProbe::Exists { members: 1 });
    sim.sim.leave_room(APP, "hall", &["alice".into()]).unwrap();
    receiver.wait_for("room_exit", 2).await;
    assert_eq!(c.probe_room(&creds(), "hall").await.unwrap(), RoomProbe::Exists { members: 0 });
    assert!(c.room_member_ids(&creds(), "hall").await.unwrap().is_empty());
    sim.sim.advance_clock(61.0);
    let destroyed = receiver.wait_for("room_destroy", 1).await;
    assert_eq!((&destroyed[0]["room_id"], &destroyed[0]["user_ids"]), (&json!("hall"), &json!([])));
    assert_eq!(c.probe_room(&creds(), "hall").await.unwrap(), RoomProbe::Missing);

    // The admin API: 404 without such a room, 400 for an ID ZIM would refuse; nothing is sent for them.
    assert_eq!(admin_move(&sim, "hall", "enter", &["x".into()]).await.0, 404);
    assert_eq!(admin_move(&sim, "nowhere", "leave", &["x".into()]).await.0, 404);
    assert_eq!(admin_move(&sim, "hall", "enter", &["a/b".into()]).await.0, 400);
    assert_eq!(receiver.of("room_enter").len(), 2);
    // The request log names the probes and no secret.
    let log = serde_json::to_string(&sim.sim.log()).unwrap();
    assert!(!log.contains(SECRET) && !log.contains(CB_SECRET));
}

/// KickoutRoomUser over HTTP: the users go, one room_exit (Kickout) names them with FromUserId as operator, and
/// the documented codes come back: 660300002 when a user named is not in the room (nobody is removed then),
/// 660000011 above 50 users (sent raw: the client refuses without a call), 660000012 for a UserId over 32 bytes,
/// 660300001 for no such room, 660500002 for an unregistered FromUserId.
#[tokio::test]
async fn kickout_removes_members_and_answers_the_documented_codes() {
    let receiver = Receiver::start().await;
    let sim = running(Some(&receiver.url)).await;
    let c = client(&sim, 0);
    with_room(&c, "stage").await;
    let members = users("k", 5);
    admin_move(&sim, "stage", "enter", &members).await;

    let kicked = vec!["k001".to_string(), "k003".to_string()];
    c.kickout_room_users(&creds(), "stage", &kicked, Some("closing"), Some(OPERATOR)).await.unwrap();
    let exit = receiver.wait_for("room_exit", 1).await;
    assert_eq!(
        (&exit[0]["exit_type"], &exit[0]["operator_account"], &exit[0]["exit_user_ids"]),
        (&json!("Kickout"), &json!(OPERATOR), &json!(["k001", "k003"]))
    );
    assert_eq!(c.room_member_ids(&creds(), "stage").await.unwrap(), ["k000", "k002", "k004"]);

    let code = |r: Result<CommonResponse, ZimError>| r.expect_err("a refusal").code();
    let gone = vec!["k000".to_string(), "k001".to_string()];
    let err = c.kickout_room_users(&creds(), "stage", &gone, None, None).await.unwrap_err();
    assert_eq!(
        (err.code(), err.class()),
        (Some(codes::USER_NOT_IN_ROOM), Class::Terminal(Terminal::InvalidParams))
    );
    assert_eq!(c.probe_room(&creds(), "stage").await.unwrap(), RoomProbe::Exists { members: 3 });

    let mut fifty_one = vec![("RoomId", "stage".to_string())];
    fifty_one.extend(users("x", 51).into_iter().map(|u| ("UserId[]", u)));
    assert_eq!(code(raw(&c, Action::KickoutRoomUser, &fifty_one, None).await), Some(codes::TOO_MANY_USERS));
    let long = vec!["u".repeat(33)];
    assert_eq!(
        code(c.kickout_room_users(&creds(), "stage", &long, None, None).await),
        Some(codes::USER_ID_TOO_LONG)
    );
    let one = vec!["k000".to_string()];
    let err = c.kickout_room_users(&creds(), "nowhere", &one, None, None).await.unwrap_err();
    assert_eq!((err.code(), err.class()), (Some(codes::ROOM_NOT_FOUND), Class::NotFound));
    assert_eq!(
        code(c.kickout_room_users(&creds(), "stage", &one, None, Some("stranger")).await),
        Some(codes::OPERATOR_NOT_REGISTERED)
    );
    let no_users = [("RoomId", "stage".to_string())];
    assert_eq!(code(raw(&c, Action::KickoutRoomUser, &no_users, None).await), Some(codes::INVALID_PARAMS));
    // None of the refusals removed anyone or announced anything.
    assert_eq!(c.probe_room(&creds(), "stage").await.unwrap(), RoomProbe::Exists { members: 3 });
    assert_eq!(receiver.of("room_exit").len(), 1);
    let logged: Vec<i64> =
        sim.sim.log().iter().filter(|e| e.action == "KickoutRoomUser").map(|e| e.code).collect();
    assert_eq!(logged.first(), Some(&0));
    assert!(logged.contains(&codes::TOO_MANY_USERS) && logged.contains(&codes::USER_NOT_IN_ROOM));
}

/// SendRoomMessage over HTTP: recorded with its sender, type, priority, text, extended data and the users in the
/// room, readable through the admin API after the room is gone; HasReceipt is 660300013, a text over 2 KB
/// 660400001 (both sent raw: the client never sends them), a missing room 660300001; and messages are limited
/// at half the per-action rate (10/s of 20; exactly checked by the gateway's unit test) with 660300005.
#[tokio::test]
async fn room_messages_are_recorded_with_their_codes_and_rate() {
    let sim = running(None).await;
    let c = client(&sim, 0);
    with_room(&c, "news").await;
    admin_move(&sim, "news", "enter", &["ann".into(), "ben".into()]).await;
    let mut message = SendRoomMessageRequest::text(OPERATOR, "news", "closing in 5 minutes");
    message.priority = MessagePriority::High;
    message.message_body.extended_data = Some("drain".into());
    let sent = c.send_room_message(&creds(), &message).await.unwrap();
    assert_eq!(sent.msg_seq, 1);

    let body = |extra: Value| {
        let mut b = json!({"FromUserId": OPERATOR, "RoomId": "news", "MessageType": 1, "Priority": 1,
            "MessageBody": {"Message": "hi"}});
        for (k, v) in extra.as_object().unwrap() {
            b["MessageBody"][k] = v.clone();
        }
        b
    };
    let code = |r: Result<SendRoomMessageResponse, ZimError>| r.expect_err("a refusal").code();
    let receipt = body(json!({"HasReceipt": 1}));
    assert_eq!(
        code(raw(&c, Action::SendRoomMessage, &[], Some(&receipt)).await),
        Some(codes::ROOM_MESSAGE_NO_RECEIPT)
    );
    let large = body(json!({"Message": "x".repeat(2049)}));
    assert_eq!(
        code(raw(&c, Action::SendRoomMessage, &[], Some(&large)).await),
        Some(codes::MESSAGE_TOO_LARGE)
    );
    let nowhere = SendRoomMessageRequest::text(OPERATOR, "nowhere", "hello");
    assert_eq!(code(c.send_room_message(&creds(), &nowhere).await), Some(codes::ROOM_NOT_FOUND));

    let recorded = admin_messages(&sim, "news").await;
    assert_eq!(
        recorded,
        json!([{"seq": 1, "from_user_id": OPERATOR, "message_type": 1, "priority": 3,
            "message": "closing in 5 minutes", "extended_data": "drain", "recipients": ["ann", "ben"]}])
    );

    // Half the per-action limit for messages: at 2/s, messages get 1/s, so of three sent back to back (within
    // two seconds, however slow the machine) at least one is refused with the AppId-level code, while a
    // QueryRoomUserList of the same app still goes through.
    sim.sim.set_limits(Some(2), None);
    let mut answers = Vec::new();
    for i in 0..3 {
        let text = format!("n{i}");
        let r = c.send_room_message(&creds(), &SendRoomMessageRequest::text(OPERATOR, "news", &text)).await;
        answers.push(r.err().and_then(|e| e.code()).unwrap_or(0));
    }
    assert_eq!(answers[0], 0, "{answers:?}");
    assert!(answers.contains(&codes::RATE_LIMITED_APP), "{answers:?}");
    assert!(c.probe_room(&creds(), "news").await.is_ok());
    sim.sim.set_limits(Some(20), None);

    // Messages outlive the room.
    c.destroy_room(&creds(), "news", Some(OPERATOR)).await.unwrap();
    assert!(admin_messages(&sim, "news").await.as_array().unwrap().len() >= 2);
    assert_eq!(sim.sim.room_messages(APP, "news")[0].message, "closing in 5 minutes");
}

/// The ZIM side of a drain through the rate-limited client (20/s configured, so 10/s for messages): announce,
/// list 120 members, kick them 50 at a time, see the room empty, destroy it. No call is throttled (the limiter
/// keeps each action within the simulator's windows), three KickoutRoomUser calls are made, and the
/// room_destroy names no users.
#[tokio::test]
async fn a_drain_lists_kicks_and_destroys_within_the_limits() {
    let receiver = Receiver::start().await;
    let sim = running(Some(&receiver.url)).await;
    let c = client(&sim, 20);
    with_room(&c, "party").await;
    let crowd = users("p", 120);
    admin_move(&sim, "party", "enter", &crowd).await;
    receiver.wait_for("room_enter", 120).await;

    c.send_room_message(&creds(), &SendRoomMessageRequest::text(OPERATOR, "party", "closing now"))
        .await
        .unwrap();
    assert_eq!(c.probe_room(&creds(), "party").await.unwrap(), RoomProbe::Exists { members: 120 });
    let members = c.room_member_ids(&creds(), "party").await.unwrap();
    assert_eq!(members, crowd);
    for chunk in members.chunks(50) {
        c.kickout_room_users(&creds(), "party", chunk, Some("room closed"), Some(OPERATOR)).await.unwrap();
    }
    assert_eq!(c.probe_room(&creds(), "party").await.unwrap(), RoomProbe::Exists { members: 0 });
    c.destroy_room(&creds(), "party", Some(OPERATOR)).await.unwrap();
    assert_eq!(c.probe_room(&creds(), "party").await.unwrap(), RoomProbe::Missing);

    let exits = receiver.wait_for("room_exit", 3).await;
    let sizes: Vec<usize> = exits.iter().map(|b| b["exit_user_ids"].as_array().unwrap().len()).collect();
    assert_eq!(sizes, [50, 50, 20]);
    assert!(exits.iter().all(|b| b["exit_type"] == "Kickout" && b["operator_account"] == OPERATOR));
    let destroyed = receiver.wait_for("room_destroy", 1).await;
    assert_eq!(destroyed[0]["user_ids"], json!([]));
    let log = sim.sim.log();
    // No call was throttled: every answer is success, or the two probe answers of an empty and a gone room.
    let expected = [0, codes::ROOM_EMPTY, codes::ROOM_NOT_FOUND];
    assert!(log.iter().all(|e| expected.contains(&e.code)), "{log:?}");
    assert_eq!(log.iter().filter(|e| e.action == "KickoutRoomUser").count(), 3);
    assert_eq!(admin_messages(&sim, "party").await[0]["recipients"].as_array().unwrap().len(), 120);
}
