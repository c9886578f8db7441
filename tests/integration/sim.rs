//! The simulator itself: the in-memory backend against the HTTP path, fault kinds over real HTTP on 127.0.0.1,
//! the documented codes, and the server callbacks it sends.

use std::time::Duration;

use zim_operator::sim::{Fault, FaultPlan, InMemoryZim, LogEntry, SimConfig, Simulator};
use zim_operator::zim::codes;
use zim_operator::zim::types::*;
use zim_operator::zim::{ClientConfig, Credentials, ServerSecret, ZimApi, ZimClient, ZimError};

use zim_operator::testing::{APP, SECRET};
const OPERATOR: &str = "ops-bot";

fn simulator(qps: u32) -> Simulator {
    Simulator::new(SimConfig { apps: vec![(APP, ServerSecret::new(SECRET))], qps, ..Default::default() })
}

fn http_client(endpoint: String) -> ZimClient {
    ZimClient::new(&ClientConfig {
        endpoint,
        calls_per_second: 0,
        timeout: Duration::from_millis(1500),
        ..Default::default()
    })
    .unwrap()
}

fn creds() -> Credentials {
    Credentials::new(APP, SECRET)
}

fn create(id: &str) -> CreateRoomRequest {
    CreateRoomRequest {
        from_user_id: OPERATOR.into(),
        room_id: id.into(),
        room_name: Some("Lobby".into()),
        destroy_delay_time: Some(60),
        attributes: vec![CreateRoomAttribute {
            key: "topic".into(),
            value: "general".into(),
            auto_delete: 0,
        }],
    }
}

fn set(key: &str, value: &str) -> ModifyRoomAttribute {
    ModifyRoomAttribute {
        action: AttributeAction::Set,
        key: key.into(),
        value: value.into(),
        auto_delete: 0,
        stop_on_error: 0,
    }
}

fn operator() -> Vec<UserInfo> {
    vec![UserInfo { user_id: OPERATOR.into(), ..Default::default() }]
}

/// "ok" or the error's fixed label (the code, or the failure kind).
fn outcome<T>(r: &Result<T, ZimError>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => e.result_label(),
    }
}

/// The log without its arrival times: what a test counts.
fn calls(sim: &Simulator) -> Vec<(String, String, i64, Option<String>)> {
    sim.log().into_iter().map(|e: LogEntry| (e.action, e.room_id, e.code, e.fault)).collect()
}

/// One scenario touching every operation, the codes of the room rules, the credentials, the QPS window and
/// the fault kinds; each step's outcome (and the response fields that matter) as text.
async fn scenario<Z: ZimApi>(z: &Z, sim: &Simulator) -> Vec<String> {
    let mut out = Vec::new();
    let mut note = |step: &str, what: String| out.push(format!("{step}: {what}"));
    note("create unregistered", outcome(&z.create_room(&creds(), &create("r1")).await));
    let r = z.user_register(&creds(), &operator()).await;
    note("register", format!("{} {:?}", outcome(&r), r.map(|r| (r.envelope.code, r.error_list.len())).ok()));
    let r = z.user_register(&creds(), &operator()).await;
    note(
        "register again",
        format!("{} {:?}", outcome(&r), r.map(|r| (r.envelope.code, r.error_list.len())).ok()),
    );
    let r = z.create_room(&creds(), &create("r1")).await;
    note("create", format!("{} {:?}", outcome(&r), r.map(|r| r.attribute_seq).ok()));
    note("create again", outcome(&z.create_room(&creds(), &create("r1")).await));
    note("create bad id", outcome(&z.create_room(&creds(), &create("a/b")).await));
    let modify = ModifyRoomAttributeRequest {
        from_user_id: OPERATOR.into(),
        room_id: "r1".into(),
        attributes: vec![set("mode", "quiet"), set(&"k".repeat(17), "x")],
    };
    let r = z.modify_room_attribute(&creds(), &modify).await;
    note(
        "modify",
        format!("{} {:?}", outcome(&r), r.map(|r| (r.attribute_seq, r.succ_key_list, r.err_key_list)).ok()),
    );
    let r = z.query_room_attribute(&creds(), "r1", OPERATOR).await;
    note(
        "query attributes",
        format!("{} {:?}", outcome(&r), r.map(|r| (r.attribute_seq, r.attributes)).ok()),
    );
    note("users of an empty room", outcome(&z.query_room_user_list(&creds(), "r1", "", 10).await));
    sim.set_room_users(APP, "r1", ["a".to_string(), "b".to_string(), "c".to_string()].into());
    let r = z.query_room_user_list(&creds(), "r1", "", 2).await;
    note("users", format!("{} {:?}", outcome(&r), r.map(|r| (r.count, r.next_flag, r.user_list)).ok()));
    note("exists", format!("{:?}", z.room_exists(&creds(), "r1").await.ok()));
    note("destroy", outcome(&z.destroy_room(&creds(), "r1", Some(OPERATOR)).await));
    note("destroy again", outcome(&z.destroy_room(&creds(), "r1", None).await));
    note("query attributes of none", outcome(&z.query_room_attribute(&creds(), "r1", OPERATOR).await));
    note("exists after", format!("{:?}", z.room_exists(&creds(), "r1").await.ok()));
    let wrong = Credentials::new(APP, "00000000000000000000000000000000");
    note("wrong secret", outcome(&z.create_room(&wrong, &create("r2")).await));
    note("unknown app", outcome(&z.create_room(&Credentials::new(7, SECRET), &create("r2")).await));
    // The QPS window: two QueryRoomUserList calls in a second are fine, the third is refused.
    sim.set_limits(Some(2), None);
    for i in 0..3 {
        note(&format!("probe {i}"), outcome(&z.query_room_user_list(&creds(), "r1", "", 1).await));
    }
    sim.set_limits(Some(0), None);
    for (i, fault) in [
        Fault::Code { code: 1 },
        Fault::HttpStatus { status: 503 },
        Fault::Drop,
        Fault::Malformed,
        Fault::Delay { ms: 10 },
        Fault::DelayReply { ms: 10 },
        Fault::DropAfter,
        Fault::StatusAfter { status: 503 },
        Fault::HttpStatus { status: 404 },
        Fault::EmptyJson,
        Fault::HugeMessage { bytes: 2000 },
    ]
    .into_iter()
    .enumerate()
    {
        sim.set_faults(FaultPlan { next: [fault.clone()].into(), ..Default::default() });
        let id = format!("f{i}");
        let r = z.create_room(&creds(), &create(&id)).await;
        note(&format!("{fault:?}"), format!("{} room made: {}", outcome(&r), sim.room(APP, &id).is_some()));
    }
    out
}

/// The same scenario through the in-memory backend and through the HTTP client gives the same outcomes, the
/// same response fields and the same request log.
#[tokio::test]
async fn in_memory_and_http_answer_the_same() {
    let over_http = simulator(0);
    let running = over_http.start_local().await.unwrap();
    let http = scenario(&http_client(running.endpoint()), &over_http).await;
    let in_memory = simulator(0);
    let memory = scenario(&in_memory.in_memory(), &in_memory).await;
    assert_eq!(memory, http);
    assert_eq!(calls(&in_memory), calls(&over_http));
    // The scenario did reach the interesting outcomes.
    for expected in [
        "create unregistered: 660500002",
        "create again: 660300014",
        "create bad id: 660000002",
        "destroy again: 660300001",
        "wrong secret: 100000005",
        "unknown app: 100000010",
        "probe 2: 660300006",
        "Drop: transport room made: false",
        "Malformed: decode room made: false",
        "DelayReply { ms: 10 }: ok room made: true",
        "DropAfter: transport room made: true",
        "StatusAfter { status: 503 }: http_503 room made: true",
        "HttpStatus { status: 404 }: http_404 room made: false",
        "HugeMessage { bytes: 2000 }: 660000001 room made: false",
    ] {
        assert!(memory.iter().any(|l| l == expected), "{expected} missing from {memory:#?}");
    }
}

/// With a timeout, a reply delayed past it is a timeout after the room was made (the unknown outcome); a
/// request delayed past it before the action is a timeout and no room.
#[tokio::test]
async fn in_memory_timeout_leaves_the_outcome_where_the_delay_was() {
    let sim = simulator(0);
    let z = InMemoryZim::new(sim.clone()).with_timeout(Duration::from_millis(100));
    z.user_register(&creds(), &operator()).await.unwrap();
    sim.set_faults(FaultPlan { next: [Fault::DelayReply { ms: 1000 }].into(), ..Default::default() });
    let err = z.create_room(&creds(), &create("late")).await.unwrap_err();
    assert_eq!(err.result_label(), "timeout");
    assert!(sim.room(APP, "late").is_some());
    sim.set_faults(FaultPlan { next: [Fault::Delay { ms: 1000 }].into(), ..Default::default() });
    let err = z.create_room(&creds(), &create("never")).await.unwrap_err();
    assert_eq!(err.result_label(), "timeout");
    assert!(sim.room(APP, "never").is_none());
    // The next call is served normally, and registration is idempotent here too.
    z.create_room(&creds(), &create("never")).await.unwrap();
    let again = z.user_register(&creds(), &operator()).await.unwrap();
    assert_eq!(again.envelope.code, codes::USER_EXISTS);
}

/// A signed request URL for `action` at the simulator, built here from the documented formula.
fn signed_url(endpoint: &str, action: &str, extra: &str) -> String {
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let nonce = "00112233aabbccdd";
    let sig = zim_operator::zim::sign::signature(APP, nonce, SECRET, ts);
    format!(
        "{endpoint}/?Action={action}&AppId={APP}&SignatureNonce={nonce}&Timestamp={ts}&SignatureVersion=2.0&Signature={sig}{extra}"
    )
}

/// A raw CreateRoom of `room_id` by OPERATOR, without the project's client.
async fn raw_create(http: &reqwest::Client, endpoint: &str, room_id: &str) -> reqwest::Response {
    http.post(signed_url(endpoint, "CreateRoom", ""))
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(&create(room_id)).unwrap())
        .send()
        .await
        .unwrap()
}

/// A simulator over HTTP with OPERATOR registered, a client, and the next request's fault set.
async fn with_fault(fault: Fault) -> (zim_operator::sim::RunningSim, ZimClient) {
    let running = simulator(0).start_local().await.unwrap();
    let client = http_client(running.endpoint());
    client.user_register(&creds(), &operator()).await.unwrap();
    running.sim.set_faults(FaultPlan { next: [fault].into(), ..Default::default() });
    (running, client)
}

/// The last log entry: (action, code, fault).
fn last_call(sim: &Simulator) -> (String, i64, Option<String>) {
    let e = sim.log().pop().unwrap();
    (e.action, e.code, e.fault)
}

/// DropAfter: the room is created, then the connection breaks; the client sees a transport failure.
#[tokio::test]
async fn drop_after_performs_then_breaks_the_connection() {
    let (running, client) = with_fault(Fault::DropAfter).await;
    let err = client.create_room(&creds(), &create("lost")).await.unwrap_err();
    assert!(matches!(err, ZimError::Transport { .. }), "{err:?}");
    assert!(running.sim.room(APP, "lost").is_some());
    assert_eq!(last_call(&running.sim), ("CreateRoom".into(), 0, Some("drop_after".into())));
}

/// StatusAfter 503: the room is created, then the answer is HTTP 503 with a plain-text body and no ZIM answer.
#[tokio::test]
async fn status_after_performs_then_answers_the_status() {
    let (running, client) = with_fault(Fault::StatusAfter { status: 503 }).await;
    let err = client.create_room(&creds(), &create("proxied")).await.unwrap_err();
    assert!(matches!(err, ZimError::HttpStatus { status: 503, .. }), "{err:?}");
    assert!(running.sim.room(APP, "proxied").is_some());
    assert_eq!(last_call(&running.sim), ("CreateRoom".into(), 0, Some("http_503_after".into())));

    running
        .sim
        .set_faults(FaultPlan { next: [Fault::StatusAfter { status: 503 }].into(), ..Default::default() });
    let r = raw_create(&reqwest::Client::new(), &running.endpoint(), "proxied-2").await;
    assert_eq!(r.status(), 503);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let body = r.text().await.unwrap();
    assert!(serde_json::from_str::<serde_json::Value>(&body).is_err(), "{body}");
    assert!(running.sim.room(APP, "proxied-2").is_some());
}

/// DelayReply: the room is created at once, the answer comes after the client gave up.
#[tokio::test]
async fn delay_reply_performs_then_answers_late() {
    let (running, client) = with_fault(Fault::DelayReply { ms: 2500 }).await;
    let err = client.create_room(&creds(), &create("slow")).await.unwrap_err();
    assert!(matches!(err, ZimError::Timeout { .. }), "{err:?}");
    assert!(running.sim.room(APP, "slow").is_some());
}

/// EmptyJson: HTTP 200, `application/json`, body exactly `{}`; nothing is performed.
#[tokio::test]
async fn empty_json_is_json_but_no_zim_answer() {
    let (running, _client) = with_fault(Fault::EmptyJson).await;
    let r = raw_create(&reqwest::Client::new(), &running.endpoint(), "nothing").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    assert_eq!(r.text().await.unwrap(), "{}");
    assert!(running.sim.room(APP, "nothing").is_none());
    assert_eq!(last_call(&running.sim), ("CreateRoom".into(), -1, Some("empty_json".into())));
}

/// HttpStatus 404 answers exactly like a wrong path: status, content type and plain-text body.
#[tokio::test]
async fn http_404_answers_like_a_wrong_path() {
    let (running, client) = with_fault(Fault::preset("404").unwrap()).await;
    let http = reqwest::Client::new();
    let faulted = raw_create(&http, &running.endpoint(), "nowhere").await;
    let wrong = http.get(format!("{}/v1/zim", running.endpoint())).send().await.unwrap();
    assert_eq!(
        (faulted.status(), wrong.status()),
        (reqwest::StatusCode::NOT_FOUND, reqwest::StatusCode::NOT_FOUND)
    );
    assert_eq!(faulted.headers()["content-type"], wrong.headers()["content-type"]);
    assert!(wrong.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(faulted.text().await.unwrap(), wrong.text().await.unwrap());
    assert!(running.sim.room(APP, "nowhere").is_none());
    running
        .sim
        .set_faults(FaultPlan { next: [Fault::HttpStatus { status: 404 }].into(), ..Default::default() });
    let err = client.create_room(&creds(), &create("nowhere")).await.unwrap_err();
    assert!(matches!(err, ZimError::HttpStatus { status: 404, .. }), "{err:?}");
}

/// HugeBody: HTTP 200 with a body of exactly N bytes (a JSON string of padding), read here chunk by chunk.
#[tokio::test]
async fn huge_body_streams_exactly_n_bytes() {
    const N: u64 = 16 << 20;
    let (running, _client) = with_fault(Fault::HugeBody { bytes: N }).await;
    let mut r = raw_create(&reqwest::Client::new(), &running.endpoint(), "big").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    assert_eq!(r.content_length(), None, "streamed without a length");
    let (mut total, mut first, mut last) = (0u64, None, 0u8);
    while let Some(chunk) = r.chunk().await.unwrap() {
        first.get_or_insert(chunk[0]);
        last = *chunk.last().unwrap();
        total += chunk.len() as u64;
    }
    assert_eq!((total, first, last), (N, Some(b'"'), b'"'));
    assert!(running.sim.room(APP, "big").is_none());
    assert_eq!(last_call(&running.sim).2, Some(format!("huge_body_{N}")));
}

/// HugeMessage: a well-formed ZIM error answer, Code 660000001, whose Message is N bytes.
#[tokio::test]
async fn huge_message_is_a_zim_error_with_an_n_byte_message() {
    const N: usize = 1 << 20;
    let (running, client) = with_fault(Fault::HugeMessage { bytes: N as u64 }).await;
    let r = raw_create(&reqwest::Client::new(), &running.endpoint(), "chatty").await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["Code"], 660000001);
    assert_eq!(body["Message"].as_str().unwrap().len(), N);
    assert!(!body["RequestId"].as_str().unwrap().is_empty());
    assert_eq!(last_call(&running.sim), ("CreateRoom".into(), 660000001, Some(format!("huge_message_{N}"))));
    running.sim.set_faults(FaultPlan {
        next: [Fault::HugeMessage { bytes: N as u64 }].into(),
        ..Default::default()
    });
    // The project's client reads at most MAX_BODY_BYTES (1 MiB) of an answer: this one is longer, so it is a
    // transport failure rather than a ZIM answer (tests/integration/hardening.rs covers the client's bounds).
    match client.create_room(&creds(), &create("chatty")).await.unwrap_err() {
        ZimError::Transport { .. } => {}
        other => panic!("{other:?}"),
    }
    assert!(running.sim.room(APP, "chatty").is_none());
}

/// Redirect: the status with its Location header and an empty body; nothing is performed.
#[tokio::test]
async fn redirect_answers_its_status_and_location() {
    let location = "http://127.0.0.1:9/elsewhere";
    let (running, _client) = with_fault(Fault::Redirect { status: 307, location: location.into() }).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = raw_create(&http, &running.endpoint(), "moved").await;
    assert_eq!(r.status(), 307);
    assert_eq!(r.headers()["location"], location);
    assert_eq!(r.bytes().await.unwrap().len(), 0);
    assert!(running.sim.room(APP, "moved").is_none());
    assert_eq!(last_call(&running.sim), ("CreateRoom".into(), -1, Some("redirect_307".into())));
    assert_eq!(
        Fault::preset("redirect"),
        Some(Fault::Redirect { status: 307, location: "http://127.0.0.1:9/".into() })
    );
}

/// In memory, the "after" faults perform the action too, and the redirect is its status.
#[tokio::test]
async fn in_memory_after_faults_perform_the_action() {
    let sim = simulator(0);
    let z = sim.in_memory();
    z.user_register(&creds(), &operator()).await.unwrap();
    sim.set_faults(FaultPlan { next: [Fault::DropAfter].into(), ..Default::default() });
    assert_eq!(outcome(&z.create_room(&creds(), &create("a")).await), "transport");
    sim.set_faults(FaultPlan { next: [Fault::StatusAfter { status: 502 }].into(), ..Default::default() });
    assert_eq!(outcome(&z.create_room(&creds(), &create("b")).await), "http_502");
    assert!(sim.room(APP, "a").is_some() && sim.room(APP, "b").is_some());
    let redirect = Fault::Redirect { status: 308, location: "http://127.0.0.1:9/".into() };
    sim.set_faults(FaultPlan { next: [redirect].into(), ..Default::default() });
    assert_eq!(outcome(&z.create_room(&creds(), &create("c")).await), "http_308");
    sim.set_faults(FaultPlan { next: [Fault::HugeBody { bytes: 1000 }].into(), ..Default::default() });
    assert_eq!(outcome(&z.create_room(&creds(), &create("c")).await), "decode");
    assert!(sim.room(APP, "c").is_none());
}

/// Every preset `simulate --fault-kinds` documents parses.
#[test]
fn every_fault_preset_parses() {
    for name in zim_operator::sim::FAULT_PRESETS {
        assert!(Fault::preset(name).is_some(), "{name}");
    }
    assert_eq!(Fault::preset("drop_after"), Some(Fault::DropAfter));
    assert_eq!(Fault::preset("5xx_after"), Some(Fault::StatusAfter { status: 503 }));
    assert_eq!(Fault::preset("empty_json"), Some(Fault::EmptyJson));
    assert_eq!(Fault::preset("huge_body"), Some(Fault::HugeBody { bytes: 64 << 20 }));
    assert_eq!(Fault::preset("huge_message"), Some(Fault::HugeMessage { bytes: 1 << 20 }));
}

/// Every action that takes FromUserId answers 660500002 (the return-code table's "operator user not
/// registered") for a well-formed but unregistered operator, over HTTP and in memory; a missing or malformed one
/// is a parameter error (660000002); DestroyRoom without FromUserId needs no operator.
#[tokio::test]
async fn unregistered_operator_answers_660500002() {
    let over_http = simulator(0);
    let running = over_http.start_local().await.unwrap();
    let in_memory = simulator(0);
    let backends = [
        ("http", &over_http, Backend::Http(http_client(running.endpoint()))),
        ("memory", &in_memory, Backend::Memory(in_memory.in_memory())),
    ];
    for (name, sim, z) in backends {
        sim.seed_room(APP, "lobby", "Lobby", 3600, &[]);
        for (from, expected) in [
            ("stranger", codes::OPERATOR_NOT_REGISTERED),
            ("", codes::INVALID_PARAMS),
            ("a/b", codes::INVALID_PARAMS),
        ] {
            let from = from.to_owned();
            let create = CreateRoomRequest { from_user_id: from.clone(), ..create("new") };
            let modify = ModifyRoomAttributeRequest {
                from_user_id: from.clone(),
                room_id: "lobby".into(),
                attributes: vec![set("k", "v")],
            };
            let results = [
                ("CreateRoom", z.create_room(&creds(), &create).await.err().and_then(|e| e.code())),
                (
                    "DestroyRoom",
                    z.destroy_room(&creds(), "lobby", Some(&from)).await.err().and_then(|e| e.code()),
                ),
                (
                    "ModifyRoomAttribute",
                    z.modify_room_attribute(&creds(), &modify).await.err().and_then(|e| e.code()),
                ),
                (
                    "QueryRoomAttribute",
                    z.query_room_attribute(&creds(), "lobby", &from).await.err().and_then(|e| e.code()),
                ),
            ];
            for (action, code) in results {
                assert_eq!(code, Some(expected), "{name}: {action} by {from:?}");
            }
        }
        assert!(sim.room(APP, "lobby").is_some() && sim.room(APP, "new").is_none(), "{name}");
        z.destroy_room(&creds(), "lobby", None).await.unwrap();
        // Once registered, the same operator is accepted.
        z.user_register(&creds(), &[UserInfo { user_id: "stranger".into(), ..Default::default() }])
            .await
            .unwrap();
        let create = CreateRoomRequest { from_user_id: "stranger".into(), ..create("new") };
        z.create_room(&creds(), &create).await.unwrap();
        z.destroy_room(&creds(), "new", Some("stranger")).await.unwrap();
    }
}

/// Either backend, for tests that run the same steps through both.
#[derive(Clone)]
enum Backend {
    Http(ZimClient),
    Memory(InMemoryZim),
}

macro_rules! both {
    ($self:ident, $z:ident => $call:expr) => {
        match $self {
            Backend::Http($z) => $call.await,
            Backend::Memory($z) => $call.await,
        }
    };
}

impl ZimApi for Backend {
    async fn user_register(
        &self,
        c: &Credentials,
        users: &[UserInfo],
    ) -> Result<UserRegisterResponse, ZimError> {
        both!(self, z => z.user_register(c, users))
    }
    async fn create_room(&self, c: &Credentials, r: &CreateRoomRequest) -> Result<RoomResponse, ZimError> {
        both!(self, z => z.create_room(c, r))
    }
    async fn destroy_room(
        &self,
        c: &Credentials,
        room: &str,
        from: Option<&str>,
    ) -> Result<RoomResponse, ZimError> {
        both!(self, z => z.destroy_room(c, room, from))
    }
    async fn modify_room_attribute(
        &self,
        c: &Credentials,
        r: &ModifyRoomAttributeRequest,
    ) -> Result<ModifyRoomAttributeResponse, ZimError> {
        both!(self, z => z.modify_room_attribute(c, r))
    }
    async fn query_room_attribute(
        &self,
        c: &Credentials,
        room: &str,
        from: &str,
    ) -> Result<QueryRoomAttributeResponse, ZimError> {
        both!(self, z => z.query_room_attribute(c, room, from))
    }
    async fn query_room_user_list(
        &self,
        c: &Credentials,
        room: &str,
        next: &str,
        limit: u32,
    ) -> Result<QueryRoomUserListResponse, ZimError> {
        both!(self, z => z.query_room_user_list(c, room, next, limit))
    }
    async fn kickout_room_users(
        &self,
        c: &Credentials,
        room: &str,
        users: &[String],
        reason: Option<&str>,
        from: Option<&str>,
    ) -> Result<CommonResponse, ZimError> {
        both!(self, z => z.kickout_room_users(c, room, users, reason, from))
    }
    async fn send_room_message(
        &self,
        c: &Credentials,
        r: &SendRoomMessageRequest,
    ) -> Result<SendRoomMessageResponse, ZimError> {
        both!(self, z => z.send_room_message(c, r))
    }
}

// ---- Server callbacks ----------------------------------------------------------------------------------------

const CB_SECRET: &str = "callback-secret-for-tests";

/// One callback as the test receiver saw it.
#[derive(Clone, Debug)]
struct Received {
    at: std::time::Instant,
    content_type: String,
    body: serde_json::Value,
    signature_ok: bool,
}

/// A callback receiver on 127.0.0.1 that checks every signature with the documented formula (computed here,
/// not with the simulator's code) and answers 500 to the first `failures` requests, then 200.
struct Receiver {
    url: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Receiver {
    async fn start(failures: usize) -> Self {
        use axum::http::{HeaderMap, StatusCode};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let left = std::sync::Arc::new(AtomicUsize::new(failures));
        let (log, left2) = (received.clone(), left.clone());
        let handler = move |headers: HeaderMap, body: axum::body::Bytes| {
            let (log, left) = (log.clone(), left2.clone());
            async move {
                let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let content_type =
                    headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let signature_ok = verify(&body);
                log.lock().unwrap().push(Received {
                    at: std::time::Instant::now(),
                    content_type,
                    body,
                    signature_ok,
                });
                let fail =
                    left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
                if fail { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK }
            }
        };
        let app = axum::Router::new().route("/zego/callback", axum::routing::post(handler));
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
        Self { url: format!("http://{addr}/zego/callback"), received, _stop: tx }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (up to `deadline`) until a callback of `event` for `room_id` arrived.
    async fn wait_for(&self, event: &str, room_id: &str, deadline: Duration) -> Received {
        eventually(&format!("{event} for {room_id}"), deadline, || {
            self.received().into_iter().find(|r| r.body["event"] == event && r.body["room_id"] == room_id)
        })
        .await
    }
}

/// The documented check: sha1 of [callbacksecret, timestamp, nonce] sorted as strings and concatenated, in
/// lowercase hex, equals `signature`.
fn verify(body: &serde_json::Value) -> bool {
    use sha1::{Digest, Sha1};
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut parts = [CB_SECRET.to_owned(), text(&body["timestamp"]), text(&body["nonce"])];
    parts.sort();
    let digest = Sha1::digest(parts.concat().as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    body["signature"].as_str() == Some(hex.as_str())
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

fn target(url: &str) -> zim_operator::sim::CallbackTarget {
    zim_operator::sim::CallbackTarget::new(url, zim_operator::sim::CallbackSecret::new(CB_SECRET)).unwrap()
}

/// A simulator sending callbacks to `url` with retries after `retry_ms`.
fn simulator_with_callbacks(url: &str, retry_ms: &[u64]) -> Simulator {
    Simulator::new(SimConfig {
        apps: vec![(APP, ServerSecret::new(SECRET))],
        qps: 0,
        callbacks: zim_operator::sim::CallbackConfig {
            target: Some(target(url)),
            retry_after: retry_ms.iter().map(|ms| Duration::from_millis(*ms)).collect(),
            ..Default::default()
        },
        ..Default::default()
    })
}

fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// CreateRoom over HTTP sends a signed room_create with the documented fields; DestroyRoom sends room_destroy
/// with the destroyer and the members at destruction. The delivery log names event, room, attempt and status,
/// and no secret.
#[tokio::test]
async fn create_and_destroy_send_signed_callbacks() {
    let receiver = Receiver::start(0).await;
    let running = simulator_with_callbacks(&receiver.url, &[200]).start_local().await.unwrap();
    let client = http_client(running.endpoint());
    client.user_register(&creds(), &operator()).await.unwrap();
    client.create_room(&creds(), &create("cb-room")).await.unwrap();
    let created = receiver.wait_for("room_create", "cb-room", Duration::from_secs(5)).await;
    assert!(created.signature_ok, "{}", created.body);
    assert!(created.content_type.starts_with("application/json"), "{}", created.content_type);
    let b = &created.body;
    assert_eq!(b["appid"], APP.to_string());
    assert!((b["timestamp"].as_i64().unwrap() - now_unix()).abs() <= 5, "seconds: {}", b["timestamp"]);
    assert!(b["nonce"].as_str().unwrap().bytes().all(|c| c.is_ascii_digit()), "{}", b["nonce"]);
    assert_eq!(b["operator_account"], OPERATOR);
    assert_eq!(b["room_name"], "Lobby");
    assert_eq!(b["attributes"], serde_json::json!([{"key": "topic", "value": "general", "auto_delete": 0}]));

    running.sim.set_room_users(APP, "cb-room", ["a".to_string(), "b".to_string()].into());
    client.destroy_room(&creds(), "cb-room", Some(OPERATOR)).await.unwrap();
    let destroyed = receiver.wait_for("room_destroy", "cb-room", Duration::from_secs(5)).await;
    assert!(destroyed.signature_ok, "{}", destroyed.body);
    assert_eq!(destroyed.body["operator_account"], OPERATOR);
    assert_eq!(destroyed.body["user_ids"], serde_json::json!(["a", "b"]));
    // A failed call sends nothing.
    assert!(client.destroy_room(&creds(), "cb-room", None).await.is_err());
    assert!(client.create_room(&creds(), &create("a/b")).await.is_err());

    let report = eventually("two deliveries", Duration::from_secs(5), || {
        Some(running.sim.callback_report(0)).filter(|r| r.deliveries.len() == 2 && r.pending == 0)
    })
    .await;
    let summary: Vec<_> = report
        .deliveries
        .iter()
        .map(|d| (d.event.as_str(), d.room_id.as_str(), d.attempt, d.status))
        .collect();
    assert_eq!(
        summary,
        [("room_create", "cb-room", 1, Some(200)), ("room_destroy", "cb-room", 1, Some(200))]
    );
    assert_eq!(receiver.received().len(), 2);
    let text = serde_json::to_string(&report).unwrap();
    assert!(!text.contains(CB_SECRET) && !text.contains("signature"), "{text}");
}

/// An empty room is destroyed, and announced with no operator and no users, within a second of its delay
/// passing: at once when the room clock is advanced, and by the background sweep when real time passes.
#[tokio::test]
async fn empty_room_past_its_delay_sends_room_destroy() {
    let receiver = Receiver::start(0).await;
    let sim = simulator_with_callbacks(&receiver.url, &[200]);
    let z = sim.in_memory();
    z.user_register(&creds(), &operator()).await.unwrap();
    z.create_room(&creds(), &create("idle")).await.unwrap();
    receiver.wait_for("room_create", "idle", Duration::from_secs(5)).await;
    // Advancing sweeps at once, so a room that expired would already be gone and its event queued.
    sim.advance_clock(59.0);
    assert!(sim.room(APP, "idle").is_some(), "destroyed too early");
    assert!(sim.callback_report(1).deliveries.is_empty() && sim.callback_report(0).pending == 0);
    sim.advance_clock(2.0);
    let gone = receiver.wait_for("room_destroy", "idle", Duration::from_secs(1)).await;
    assert!(gone.signature_ok);
    assert_eq!(
        (&gone.body["operator_account"], &gone.body["user_ids"]),
        (&serde_json::json!(""), &serde_json::json!([]))
    );
    assert!(sim.room(APP, "idle").is_none());

    // Real time: a one-second delay, no advancing and no request; the sweep finds it.
    let short = CreateRoomRequest { destroy_delay_time: Some(1), ..create("brief") };
    z.create_room(&creds(), &short).await.unwrap();
    let created_at = receiver.wait_for("room_create", "brief", Duration::from_secs(5)).await.at;
    let gone = receiver.wait_for("room_destroy", "brief", Duration::from_secs(3)).await;
    let after = gone.at.duration_since(created_at);
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(2),
        "announced after {after:?}"
    );
    // Exactly one room_destroy per room: events are queued when they happen, so once nothing is pending every
    // event so far was delivered.
    eventually("no pending events", Duration::from_secs(2), || {
        (sim.callback_report(0).pending == 0).then_some(())
    })
    .await;
    let destroys = receiver.received().iter().filter(|r| r.body["event"] == "room_destroy").count();
    assert_eq!(destroys, 2);
}

/// A receiver answering 500 twice gets the third attempt on the schedule: each retry at least its wait after
/// the previous attempt (and not much later), with the same body and signature.
#[tokio::test]
async fn failed_callback_is_retried_on_the_schedule() {
    let receiver = Receiver::start(2).await;
    let sim = simulator_with_callbacks(&receiver.url, &[300, 600, 5000]);
    let z = sim.in_memory();
    z.user_register(&creds(), &operator()).await.unwrap();
    z.create_room(&creds(), &create("flaky")).await.unwrap();
    let got = eventually("three attempts", Duration::from_secs(5), || {
        Some(receiver.received()).filter(|r| r.len() >= 3)
    })
    .await;
    let gaps = [got[1].at.duration_since(got[0].at), got[2].at.duration_since(got[1].at)];
    for (gap, wait) in gaps.iter().zip([300, 600]) {
        let wait = Duration::from_millis(wait);
        assert!(*gap >= wait && *gap < wait + Duration::from_millis(700), "gaps {gaps:?}");
    }
    assert!(got.iter().all(|r| r.signature_ok && r.body == got[0].body));
    let report = eventually("the delivery", Duration::from_secs(2), || {
        Some(sim.callback_report(0)).filter(|r| r.pending == 0)
    })
    .await;
    let attempts: Vec<_> = report.deliveries.iter().map(|d| (d.attempt, d.status)).collect();
    assert_eq!(attempts, [(1, Some(500)), (2, Some(500)), (3, Some(200))]);
}

/// After the last retry the event is lost; a receiver that is not there is recorded as an error.
#[tokio::test]
async fn callback_is_dropped_after_the_last_retry() {
    let receiver = Receiver::start(usize::MAX).await;
    let sim = simulator_with_callbacks(&receiver.url, &[100]);
    let z = sim.in_memory();
    z.user_register(&creds(), &operator()).await.unwrap();
    z.create_room(&creds(), &create("doomed")).await.unwrap();
    let report = eventually("the event to be given up", Duration::from_secs(5), || {
        Some(sim.callback_report(0)).filter(|r| r.pending == 0 && !r.deliveries.is_empty())
    })
    .await;
    // Nothing pending: the delivery ended after its second attempt.
    assert_eq!(report.deliveries.iter().map(|d| d.status).collect::<Vec<_>>(), [Some(500), Some(500)]);
    assert_eq!(receiver.received().len(), 2);

    // Nobody listening: each attempt records an error instead of a status.
    let nobody = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/cb", l.local_addr().unwrap())
    };
    sim.set_callback_target(Some(target(&nobody)));
    sim.set_callback_retry(Vec::new());
    z.create_room(&creds(), &create("unheard")).await.unwrap();
    let report = eventually("an error", Duration::from_secs(5), || {
        Some(sim.callback_report(2)).filter(|r| r.pending == 0 && !r.deliveries.is_empty())
    })
    .await;
    let d = &report.deliveries[0];
    assert_eq!((d.room_id.as_str(), d.status), ("unheard", None));
    assert!(d.error.is_some());
}

/// Past the queue bound events are dropped and counted.
#[tokio::test]
async fn full_callback_queue_drops_and_counts() {
    let receiver = Receiver::start(usize::MAX).await;
    let sim = Simulator::new(SimConfig {
        apps: vec![(APP, ServerSecret::new(SECRET))],
        qps: 0,
        callbacks: zim_operator::sim::CallbackConfig {
            target: Some(target(&receiver.url)),
            retry_after: vec![Duration::from_secs(60)],
            queue_limit: 1,
            ..Default::default()
        },
        ..Default::default()
    });
    let z = sim.in_memory();
    z.user_register(&creds(), &operator()).await.unwrap();
    for id in ["q1", "q2", "q3"] {
        z.create_room(&creds(), &create(id)).await.unwrap();
    }
    let report = sim.callback_report(0);
    assert_eq!((report.pending, report.dropped), (1, 2));
    receiver.wait_for("room_create", "q1", Duration::from_secs(5)).await;
}

/// The admin API sets and clears the target at runtime and lists deliveries; without a target nothing is sent.
#[tokio::test]
async fn admin_api_sets_and_clears_the_callback_target() {
    let receiver = Receiver::start(0).await;
    let running = simulator(0).start_local().await.unwrap();
    let client = http_client(running.endpoint());
    let admin = reqwest::Client::new();
    let url = format!("{}/_sim/callbacks/target", running.endpoint());
    client.user_register(&creds(), &operator()).await.unwrap();
    client.create_room(&creds(), &create("before")).await.unwrap();

    let bad = admin
        .put(&url)
        .json(&serde_json::json!({"url": "ftp://x", "secret": CB_SECRET}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let set = serde_json::json!({"url": receiver.url, "secret": CB_SECRET, "retry_after_ms": [100]});
    assert_eq!(admin.put(&url).json(&set).send().await.unwrap().status(), 204);
    client.create_room(&creds(), &create("during")).await.unwrap();
    receiver.wait_for("room_create", "during", Duration::from_secs(5)).await;
    let report: serde_json::Value = admin
        .get(format!("{}/_sim/callbacks/deliveries?since=0", running.endpoint()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["deliveries"][0]["event"], "room_create");
    assert_eq!(report["deliveries"][0]["room_id"], "during");
    assert_eq!(report["deliveries"][0]["attempt"], 1);
    assert_eq!(report["deliveries"][0]["status"], 200);
    assert!(!report.to_string().contains(CB_SECRET));

    assert_eq!(admin.delete(&url).send().await.unwrap().status(), 204);
    client.create_room(&creds(), &create("after")).await.unwrap();
    client.destroy_room(&creds(), "during", None).await.unwrap();
    // Events are queued when they happen; without a target none was.
    let report = running.sim.callback_report(0);
    assert_eq!((report.deliveries.len(), report.pending, report.dropped), (1, 0, 0));
    let rooms: Vec<_> =
        receiver.received().iter().map(|r| r.body["room_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(rooms, ["during"]);
}

/// `simulate --callback-url` takes the secret from a file or the environment, never from the command line.
#[test]
fn simulate_reads_the_callback_secret_from_a_file_or_the_environment() {
    use zim_operator::cmd_simulate::{SimulateError, callback_target};
    let url = Some("http://127.0.0.1:9000/cb");
    assert!(callback_target(None, None, Some("x")).unwrap().is_none());
    assert!(matches!(callback_target(url, None, None), Err(SimulateError::NoCallbackSecret)));
    assert!(matches!(callback_target(url, None, Some("  ")), Err(SimulateError::NoCallbackSecret)));
    assert_eq!(
        callback_target(url, None, Some(CB_SECRET)).unwrap(),
        Some(target("http://127.0.0.1:9000/cb"))
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cb-secret");
    std::fs::write(&file, format!("{CB_SECRET}\n")).unwrap();
    assert_eq!(
        callback_target(url, Some(&file), Some("ignored")).unwrap(),
        Some(target("http://127.0.0.1:9000/cb"))
    );
    assert!(matches!(
        callback_target(url, Some(&dir.path().join("missing")), None),
        Err(SimulateError::CallbackSecretFile { .. })
    ));
    assert!(matches!(
        callback_target(Some("not a url"), None, Some("s")),
        Err(SimulateError::CallbackUrl(_))
    ));
}
