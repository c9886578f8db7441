//! The callback receiver over real HTTP on 127.0.0.1: fed by the simulator's signed room callbacks, forged
//! requests, a burst for one room, an oversized body, other methods and paths, and a slow request head.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use zim_operator::callback::{
    CALLBACK_PATH, CallbackObserver, CallbackSecret, CallbackServer, Event, Outcome, RoomEvent, RoomEvents,
};
use zim_operator::sim::{CallbackConfig, CallbackTarget, SimConfig, Simulator};
use zim_operator::zim::types::{CreateRoomRequest, UserInfo};
use zim_operator::zim::{ClientConfig, Credentials, ServerSecret, ZimApi, ZimClient};

use zim_operator::testing::{APP, SECRET};
const CB_SECRET: &str = "callback-secret-for-the-receiver";
const OPERATOR: &str = "ops-bot";

/// How many callbacks ended with each (event, outcome).
#[derive(Default)]
struct Counts(Mutex<HashMap<(String, Outcome), u64>>);

impl CallbackObserver for Counts {
    fn observed(&self, event: Event, outcome: Outcome) {
        *self.0.lock().unwrap().entry((event.as_str().to_owned(), outcome)).or_default() += 1;
    }
}

impl Counts {
    fn get(&self, event: Event, outcome: Outcome) -> u64 {
        self.0.lock().unwrap().get(&(event.as_str().to_owned(), outcome)).copied().unwrap_or(0)
    }

    fn total(&self) -> u64 {
        self.0.lock().unwrap().values().sum()
    }
}

/// A receiver serving on 127.0.0.1 until dropped.
struct Receiver {
    addr: SocketAddr,
    events: RoomEvents,
    counts: Arc<Counts>,
    shutdown: CancellationToken,
}

impl Receiver {
    async fn start(capacity: usize) -> Self {
        let secrets = HashMap::from([(APP, vec![CallbackSecret::new(CB_SECRET)])]);
        let counts = Arc::new(Counts::default());
        let (server, events) = CallbackServer::new(Arc::new(secrets), counts.clone(), capacity);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(zim_operator::callback::serve(listener, server, shutdown.clone()));
        Self { addr, events, counts, shutdown }
    }

    fn url(&self) -> String {
        format!("http://{}{CALLBACK_PATH}", self.addr)
    }

    /// Every event queued so far.
    fn drain(&mut self) -> Vec<RoomEvent> {
        std::iter::from_fn(|| self.events.try_recv()).collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Polls `f` every 20 ms until it gives a value; fails after `deadline`.
async fn eventually<T>(what: &str, deadline: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The documented signature, computed here rather than with the crate's code.
fn sign(secret: &str, timestamp: &str, nonce: &str) -> String {
    use sha1::{Digest, Sha1};
    let mut parts = [secret, timestamp, nonce];
    parts.sort();
    Sha1::digest(parts.concat()).iter().map(|b| format!("{b:02x}")).collect()
}

fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// A room_destroy for `room` in the shape ZEGO documents, signed with `secret`.
fn room_destroy(room: &str, nonce: &str, secret: &str) -> serde_json::Value {
    let timestamp = now_unix();
    json!({
        "appid": APP.to_string(),
        "event": "room_destroy",
        "room_id": room,
        "nonce": nonce,
        "timestamp": timestamp,
        "signature": sign(secret, &timestamp.to_string(), nonce),
        "user_ids": [],
        "operator_account": "",
    })
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

/// CreateRoom and DestroyRoom through the ZIM client against the simulator, whose callbacks go to the receiver:
/// the room_destroy for that room is queued, exactly once; the room_create is verified and ignored; both were
/// answered 200 at the first attempt.
#[tokio::test]
async fn simulator_callbacks_queue_exactly_the_room_destroy() {
    let mut receiver = Receiver::start(64).await;
    let target =
        CallbackTarget::new(&receiver.url(), zim_operator::sim::CallbackSecret::new(CB_SECRET)).unwrap();
    let sim = Simulator::new(SimConfig {
        apps: vec![(APP, ServerSecret::new(SECRET))],
        qps: 0,
        callbacks: CallbackConfig {
            target: Some(target),
            retry_after: vec![Duration::from_millis(200)],
            ..Default::default()
        },
        ..Default::default()
    });
    let running = sim.start_local().await.unwrap();
    let client = ZimClient::new(&ClientConfig {
        endpoint: running.endpoint(),
        calls_per_second: 0,
        timeout: Duration::from_secs(3),
        ..Default::default()
    })
    .unwrap();
    let creds = Credentials::new(APP, SECRET);
    let operator = vec![UserInfo { user_id: OPERATOR.into(), ..Default::default() }];
    client.user_register(&creds, &operator).await.unwrap();
    let create = CreateRoomRequest {
        from_user_id: OPERATOR.into(),
        room_id: "cb-room".into(),
        room_name: Some("Lobby".into()),
        destroy_delay_time: Some(600),
        attributes: Vec::new(),
    };
    client.create_room(&creds, &create).await.unwrap();
    client.destroy_room(&creds, "cb-room", Some(OPERATOR)).await.unwrap();

    let report = eventually("both callbacks delivered", Duration::from_secs(10), || {
        Some(running.sim.callback_report(0)).filter(|r| r.deliveries.len() >= 2 && r.pending == 0)
    })
    .await;
    let deliveries: Vec<_> = report
        .deliveries
        .iter()
        .map(|d| (d.event.as_str(), d.room_id.as_str(), d.attempt, d.status))
        .collect();
    assert_eq!(
        deliveries,
        [("room_create", "cb-room", 1, Some(200)), ("room_destroy", "cb-room", 1, Some(200))]
    );
    let counts = &receiver.counts;
    assert_eq!(counts.get(Event::RoomCreate, Outcome::Ignored), 1);
    assert_eq!(counts.get(Event::RoomDestroy, Outcome::Accepted), 1);
    assert_eq!(counts.total(), 2);
    assert_eq!(
        receiver.drain(),
        [RoomEvent { app_id: APP, room_id: "cb-room".into(), event: Event::RoomDestroy }]
    );
}

/// A forged callback (wrong secret), one for an AppId with no secret, and one with no signature are answered
/// 401 without echoing anything, and nothing is queued.
#[tokio::test]
async fn forged_callbacks_are_refused() {
    let mut receiver = Receiver::start(64).await;
    let http = http();
    let forged = room_destroy("victim", "1001", "guessed-secret");
    let mut other_app = room_destroy("victim", "1002", CB_SECRET);
    other_app["appid"] = json!("999");
    let mut unsigned = room_destroy("victim", "1003", CB_SECRET);
    unsigned.as_object_mut().unwrap().remove("signature");
    for body in [&forged, &other_app, &unsigned] {
        let response = http.post(receiver.url()).json(body).send().await.unwrap();
        assert_eq!(response.status(), 401, "{body}");
        let text = response.text().await.unwrap();
        assert!(!text.contains("victim") && !text.contains(CB_SECRET), "{text}");
        if let Some(sig) = body["signature"].as_str() {
            assert!(!text.contains(sig), "{text}");
        }
    }
    assert_eq!(receiver.counts.get(Event::RoomDestroy, Outcome::BadSignature), 3);
    assert_eq!(receiver.counts.total(), 3);
    assert!(receiver.drain().is_empty());
    // The same request correctly signed goes through, on `/` as well as on the callback path.
    let root = format!("http://{}/", receiver.addr);
    let response = http.post(&root).json(&room_destroy("victim", "1004", CB_SECRET)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(receiver.drain().len(), 1);
}

/// 1 000 signed room_destroy callbacks for one room, 50 at a time: every one is answered 2xx, the queue holds
/// one event for the room (the rest coalesced into it), and the burst takes well under the retry interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_for_one_room_coalesces() {
    let mut receiver = Receiver::start(64).await;
    let http = http();
    let url = receiver.url();
    let started = Instant::now();
    let statuses: Vec<u16> = futures::stream::iter(0..1000)
        .map(|i| {
            let body = room_destroy("busy-room", &(100_000 + i).to_string(), CB_SECRET);
            let request = http.post(&url).json(&body);
            async move { request.send().await.map(|r| r.status().as_u16()).unwrap_or(0) }
        })
        .buffer_unordered(50)
        .collect()
        .await;
    let took = started.elapsed();
    eprintln!("1000 callbacks answered in {took:?}");
    let failed: Vec<_> = statuses.iter().filter(|s| !(200..300).contains(*s)).collect();
    assert!(failed.is_empty(), "{} not 2xx: {:?}", failed.len(), &failed[..failed.len().min(10)]);
    assert!(took < Duration::from_secs(10), "1000 callbacks took {took:?}");
    let counts = &receiver.counts;
    assert_eq!(counts.get(Event::RoomDestroy, Outcome::Accepted), 1);
    assert_eq!(counts.get(Event::RoomDestroy, Outcome::Coalesced), 999);
    let queued = receiver.drain();
    assert_eq!(queued, [RoomEvent { app_id: APP, room_id: "busy-room".into(), event: Event::RoomDestroy }]);
    // Taken by the controller, the room is queued again by the next callback.
    let response = http.post(&url).json(&room_destroy("busy-room", "7", CB_SECRET)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(receiver.drain().len(), 1);
}

/// A 1 MiB body is answered 413 and counted as malformed; GET is 405 and another path 404, neither counted.
#[tokio::test]
async fn oversized_bodies_and_other_requests_are_refused() {
    let mut receiver = Receiver::start(64).await;
    let http = http();
    let mut big = room_destroy("big-room", "1", CB_SECRET);
    big["padding"] = json!("x".repeat(1024 * 1024));
    let response = http.post(receiver.url()).json(&big).send().await.unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(receiver.counts.get(Event::Other, Outcome::Malformed), 1);

    // Without a Content-Length (chunked), the body is cut at the limit too.
    let status = chunked_post(receiver.addr, 1024 * 1024).await;
    assert_eq!(status, Some(413));
    assert_eq!(receiver.counts.get(Event::Other, Outcome::Malformed), 2);

    assert_eq!(http.get(receiver.url()).send().await.unwrap().status(), 405);
    let elsewhere = format!("http://{}/callback", receiver.addr);
    let body = room_destroy("big-room", "2", CB_SECRET);
    assert_eq!(http.post(elsewhere).json(&body).send().await.unwrap().status(), 404);
    let not_json = http.post(receiver.url()).body("hello").send().await.unwrap();
    assert_eq!(not_json.status(), 400);
    assert_eq!(receiver.counts.total(), 3);
    assert!(receiver.drain().is_empty());
}

/// POSTs `size` bytes of chunked body on a raw connection; the status answered, if any.
async fn chunked_post(addr: SocketAddr, size: usize) -> Option<u16> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let head = format!("POST {CALLBACK_PATH} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    s.write_all(head.as_bytes()).await.ok()?;
    let chunk = vec![b'x'; 16 * 1024];
    for _ in 0..size / chunk.len() {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(&chunk);
        frame.extend_from_slice(b"\r\n");
        // The server may answer and close before the whole body is sent.
        if s.write_all(&frame).await.is_err() {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).split_whitespace().nth(1)?.parse().ok()
}

/// A client that sends half a request head and stops is disconnected after the header timeout (the admin
/// server's defences).
#[tokio::test]
async fn a_slow_request_head_is_cut() {
    let receiver = Receiver::start(64).await;
    let mut s = tokio::net::TcpStream::connect(receiver.addr).await.unwrap();
    s.write_all(format!("POST {CALLBACK_PATH} HTTP/1.1\r\nHost: x\r\n").as_bytes()).await.unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf)).await.expect("closed");
    let took = start.elapsed();
    assert!(took < Duration::from_secs(7), "{took:?}");
    assert_eq!(receiver.counts.total(), 0);
}
