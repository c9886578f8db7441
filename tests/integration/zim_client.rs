//! The ZIM client against the simulator over real HTTP on 127.0.0.1: every operation, every outcome class,
//! the rate limit, fault injection, the room clock, and an independently signed request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use zim_operator::sim::{Fault, FaultPlan, RunningSim, SimConfig, Simulator};
use zim_operator::zim::codes;
use zim_operator::zim::types::*;
use zim_operator::zim::{Class, ClientConfig, Clock, Credentials, Terminal, ZimApi, ZimClient, ZimError};

use zim_operator::testing::{APP, SECRET};
const OPERATOR: &str = "ops-bot";

async fn sim_with(qps: u32, quota: usize) -> RunningSim {
    let sim = Simulator::new(SimConfig {
        apps: vec![(APP, zim_operator::zim::ServerSecret::new(SECRET))],
        qps,
        room_quota: quota,
        ..Default::default()
    });
    sim.start_local().await.expect("simulator starts")
}

fn client(sim: &RunningSim, qps: u32) -> ZimClient {
    ZimClient::new(&ClientConfig {
        endpoint: sim.endpoint(),
        calls_per_second: qps,
        timeout: Duration::from_millis(1500),
        ..Default::default()
    })
    .unwrap()
}

fn creds() -> Credentials {
    Credentials::new(APP, SECRET)
}

fn room(id: &str) -> CreateRoomRequest {
    CreateRoomRequest {
        from_user_id: OPERATOR.into(),
        room_id: id.into(),
        room_name: Some("Lobby".into()),
        destroy_delay_time: Some(3600),
        attributes: vec![CreateRoomAttribute {
            key: "topic".into(),
            value: "general".into(),
            auto_delete: 0,
        }],
    }
}

async fn registered(c: &ZimClient) {
    let r = c
        .user_register(&creds(), &[UserInfo { user_id: OPERATOR.into(), ..Default::default() }])
        .await
        .unwrap();
    assert!(r.error_list.is_empty());
}

fn class_of<T: std::fmt::Debug>(r: Result<T, ZimError>) -> Class {
    r.expect_err("expected a failure").class()
}

/// A client registered as OPERATOR that has created `lobby-1` (with topic=general), and its simulator.
async fn with_lobby() -> (RunningSim, ZimClient) {
    let sim = sim_with(0, 100).await;
    let c = client(&sim, 0);
    registered(&c).await;
    c.create_room(&creds(), &room("lobby-1")).await.unwrap();
    (sim, c)
}

/// Registering a user again is success (660700002 is treated as ok).
#[tokio::test]
async fn user_register_is_idempotent() {
    let sim = sim_with(0, 100).await;
    let c = client(&sim, 0);
    registered(&c).await;
    registered(&c).await;
}

/// CreateRoom answers a request id and the first attribute sequence; creating it again is "exists".
#[tokio::test]
async fn create_room_round_trips() {
    let sim = sim_with(0, 100).await;
    let c = client(&sim, 0);
    registered(&c).await;
    let created = c.create_room(&creds(), &room("lobby-1")).await.unwrap();
    assert!(!created.envelope.request_id.is_empty());
    assert_eq!(created.attribute_seq, 1);
    assert_eq!(class_of(c.create_room(&creds(), &room("lobby-1")).await), Class::Exists);
}

/// QueryRoomAttribute returns the attributes the room was created with.
#[tokio::test]
async fn query_room_attribute_round_trips() {
    let (_sim, c) = with_lobby().await;
    let attrs = c.query_room_attribute(&creds(), "lobby-1", OPERATOR).await.unwrap();
    assert_eq!(attrs.attributes.len(), 1);
    assert_eq!((attrs.attributes[0].key.as_str(), attrs.attributes[0].value.as_str()), ("topic", "general"));
}

/// ModifyRoomAttribute sets and deletes keys, and a partial success keeps both the succeeded and the failed keys.
#[tokio::test]
async fn modify_room_attribute_keeps_partial_success() {
    let (sim, c) = with_lobby().await;
    let modify = ModifyRoomAttributeRequest {
        from_user_id: OPERATOR.into(),
        room_id: "lobby-1".into(),
        attributes: vec![
            ModifyRoomAttribute {
                action: AttributeAction::Set,
                key: "mode".into(),
                value: "quiet".into(),
                auto_delete: 0,
                stop_on_error: 0,
            },
            ModifyRoomAttribute {
                action: AttributeAction::Delete,
                key: "topic".into(),
                value: String::new(),
                auto_delete: 0,
                stop_on_error: 0,
            },
            // Too long a key: this item fails, the others succeed (partial success is kept, not lost).
            ModifyRoomAttribute {
                action: AttributeAction::Set,
                key: "k".repeat(17),
                value: "x".into(),
                auto_delete: 0,
                stop_on_error: 0,
            },
        ],
    };
    let m = c.modify_room_attribute(&creds(), &modify).await.unwrap();
    assert_eq!(m.succ_key_list.iter().map(|k| k.key.as_str()).collect::<Vec<_>>(), ["mode", "topic"]);
    assert_eq!(m.err_key_list.len(), 1);
    assert_eq!(m.err_key_list[0].sub_code, codes::INVALID_PARAMS);
    assert_eq!(m.attribute_seq, 3);
    assert_eq!(
        sim.sim.room(APP, "lobby-1").unwrap().attributes.into_iter().collect::<Vec<_>>(),
        [("mode".to_string(), "quiet".to_string())]
    );
}

/// The existence probe: an empty room in its delay answers 660300008 (exists); with users it answers 0 and pages
/// as the NextFlag example documents (the next page's number, "0" on the last page).
#[tokio::test]
async fn query_room_user_list_probes_and_pages() {
    let (sim, c) = with_lobby().await;
    assert!(c.room_exists(&creds(), "lobby-1").await.unwrap());
    let empty = c.query_room_user_list(&creds(), "lobby-1", "", 10).await;
    assert_eq!(empty.unwrap_err().code(), Some(codes::ROOM_EMPTY));
    sim.sim.set_room_users(APP, "lobby-1", ["a".to_string(), "b".to_string(), "c".to_string()].into());
    let page = c.query_room_user_list(&creds(), "lobby-1", "", 2).await.unwrap();
    assert_eq!((page.count, page.user_list.len(), page.next_flag.as_str()), (3, 2, "1"));
    let rest = c.query_room_user_list(&creds(), "lobby-1", &page.next_flag, 2).await.unwrap();
    assert_eq!((rest.user_list.len(), rest.next_flag.as_str()), (1, "0"));
}

/// DestroyRoom answers a request id; afterwards the room is "not found" to every operation.
#[tokio::test]
async fn destroy_room_round_trips() {
    let (_sim, c) = with_lobby().await;
    let destroyed = c.destroy_room(&creds(), "lobby-1", Some(OPERATOR)).await.unwrap();
    assert!(!destroyed.envelope.request_id.is_empty());
    assert_eq!(class_of(c.destroy_room(&creds(), "lobby-1", None).await), Class::NotFound);
    assert!(!c.room_exists(&creds(), "lobby-1").await.unwrap());
    assert_eq!(class_of(c.query_room_attribute(&creds(), "lobby-1", OPERATOR).await), Class::NotFound);
}

/// A wrong secret is 100000005, a terminal auth failure, and the error does not contain the secret.
#[tokio::test]
async fn wrong_secret_is_rejected() {
    let sim = sim_with(0, 100).await;
    let wrong = client(&sim, 0);
    let err = wrong
        .create_room(&Credentials::new(APP, "00000000000000000000000000000000"), &room("r"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::SIGNATURE_WRONG));
    assert_eq!(err.class(), Class::Terminal(Terminal::Auth));
    assert!(!err.to_string().contains(SECRET));
}

/// A timestamp outside ±10 minutes is 100000004, a terminal auth failure; within the window is fine.
#[tokio::test]
async fn timestamp_outside_the_window_is_rejected() {
    let sim = sim_with(0, 100).await;
    struct Skewed(i64);
    impl Clock for Skewed {
        fn unix_seconds(&self) -> i64 {
            zim_operator::zim::SystemClock.unix_seconds() + self.0
        }
    }
    for skew in [-601, 601] {
        let c = client(&sim, 0).with_clock(Arc::new(Skewed(skew)));
        let err = c.create_room(&creds(), &room("r")).await.unwrap_err();
        assert_eq!(err.code(), Some(codes::SIGNATURE_EXPIRED), "skew {skew}");
        assert_eq!(err.class(), Class::Terminal(Terminal::Auth));
    }
    // Within the window is fine.
    let c = client(&sim, 0).with_clock(Arc::new(Skewed(-590)));
    registered(&c).await;
}

/// An AppId the service does not know is 100000010.
#[tokio::test]
async fn unknown_app_id_is_rejected() {
    let sim = sim_with(0, 100).await;
    let err = client(&sim, 0).create_room(&Credentials::new(7, SECRET), &room("r")).await.unwrap_err();
    assert_eq!(err.code(), Some(100000010));
}

/// CreateRoom by an unregistered FromUserId is 660500002 (the return-code table's "operator not registered"),
/// retried after registering again, not a refusal of the parameters.
#[tokio::test]
async fn unregistered_from_user_is_retried_after_registering() {
    let sim = sim_with(0, 100).await;
    let c = client(&sim, 0);
    let err = c.create_room(&creds(), &room("r1")).await.unwrap_err();
    assert_eq!(err.code(), Some(660500002));
    assert_eq!(err.class(), Class::Transient);
}

/// Each documented parameter check (ID length and charset, name bytes, delay, attribute count) answers 660000002
/// and classifies as invalid parameters.
#[tokio::test]
async fn documented_parameter_checks_are_invalid_params() {
    let sim = sim_with(0, 100).await;
    let c = client(&sim, 0);
    registered(&c).await;
    let cases: Vec<(&str, CreateRoomRequest)> = vec![
        ("room id over 32 bytes", CreateRoomRequest { room_id: "x".repeat(33), ..room("") }),
        ("room id charset", CreateRoomRequest { room_id: "a/b".into(), ..room("") }),
        ("room name over 64 bytes", CreateRoomRequest { room_name: Some("é".repeat(33)), ..room("r1") }),
        ("delay over 10800", CreateRoomRequest { destroy_delay_time: Some(10801), ..room("r1") }),
        (
            "21 attributes",
            CreateRoomRequest {
                attributes: (0..21)
                    .map(|i| CreateRoomAttribute { key: format!("k{i}"), value: "v".into(), auto_delete: 0 })
                    .collect(),
                ..room("r1")
            },
        ),
    ];
    for (what, req) in cases {
        let err = c.create_room(&creds(), &req).await.unwrap_err();
        assert_eq!(err.code(), Some(codes::INVALID_PARAMS), "{what}");
        assert_eq!(err.class(), Class::Terminal(Terminal::InvalidParams), "{what}");
    }
}

/// A room over the quota is 660300015 (terminal: quota); destroyed rooms do not count against it.
#[tokio::test]
async fn quota_counts_live_rooms() {
    let sim = sim_with(0, 1).await;
    let c = client(&sim, 0);
    registered(&c).await;
    c.create_room(&creds(), &room("r1")).await.unwrap();
    let err = c.create_room(&creds(), &room("r2")).await.unwrap_err();
    assert_eq!(err.code(), Some(codes::ROOM_QUOTA));
    assert_eq!(err.class(), Class::Terminal(Terminal::Quota));
    // Destroyed rooms do not count against the quota.
    c.destroy_room(&creds(), "r1", None).await.unwrap();
    c.create_room(&creds(), &room("r2")).await.unwrap();
}

/// An empty room vanishes once the room clock passes its DestroyDelayTime; then it answers 660300001.
#[tokio::test]
async fn vanished_room_answers_not_found() {
    let sim = sim_with(0, 100).await;
    let c = client(&sim, 0);
    registered(&c).await;
    c.create_room(&creds(), &room("ephemeral")).await.unwrap();
    sim.sim.advance_clock(3599.0);
    assert!(c.room_exists(&creds(), "ephemeral").await.unwrap());
    sim.sim.advance_clock(2.0);
    let err = c.query_room_user_list(&creds(), "ephemeral", "", 1).await.unwrap_err();
    assert_eq!(err.code(), Some(codes::ROOM_NOT_FOUND));
    assert_eq!(err.class(), Class::NotFound);
    // It can be created again.
    c.create_room(&creds(), &room("ephemeral")).await.unwrap();
}

/// Each injected fault maps to its class, and the next call succeeds.
#[tokio::test]
async fn injected_faults_map_to_their_class() {
    let sim = sim_with(0, 100).await;
    let c = client(&sim, 0);
    registered(&c).await;
    let cases = [
        (Fault::Code { code: 1 }, Class::Transient, "1"),
        (Fault::Code { code: 660000001 }, Class::Transient, "660000001"),
        (Fault::Code { code: codes::RATE_LIMITED_APP }, Class::Throttled, "660300005"),
        (Fault::Code { code: 7 }, Class::Throttled, "7"),
        // Codes the table does not know share one bounded metric label.
        (Fault::Code { code: 99 }, Class::Unknown, "other"),
        (Fault::HttpStatus { status: 503 }, Class::Transient, "http_503"),
        (Fault::HttpStatus { status: 500 }, Class::Transient, "http_500"),
        (Fault::Drop, Class::Transient, "transport"),
        (Fault::Malformed, Class::Transient, "decode"),
        (Fault::Delay { ms: 3000 }, Class::Transient, "timeout"),
    ];
    for (i, (fault, class, label)) in cases.into_iter().enumerate() {
        sim.sim.set_faults(FaultPlan { next: [fault.clone()].into(), ..Default::default() });
        let err = c.create_room(&creds(), &room(&format!("f{i}"))).await.unwrap_err();
        assert_eq!(err.class(), class, "{fault:?}: {err}");
        assert_eq!(err.result_label(), label, "{fault:?}");
        assert!(err.class().is_retryable(), "{fault:?}");
        assert!(!err.to_string().contains("Signature="), "{err}");
    }
    sim.sim.set_faults(FaultPlan::default());
    c.create_room(&creds(), &room("after-faults")).await.unwrap();
}

/// A burst of 200 CreateRoom calls through one client against a simulator limited to 20/s: no 660300005, about 10 s.
#[tokio::test]
async fn burst_of_200_creates_stays_under_the_limit() {
    let sim = sim_with(20, 10_000).await;
    let c = client(&sim, 20);
    registered(&c).await;
    let start = Instant::now();
    let calls = (0..200).map(|i| {
        let c = c.clone();
        async move { c.create_room(&creds(), &room(&format!("burst-{i}"))).await }
    });
    let results = futures::future::join_all(calls).await;
    let elapsed = start.elapsed().as_secs_f64();
    let throttled = results
        .iter()
        .filter(|r| r.as_ref().err().and_then(|e| e.code()) == Some(codes::RATE_LIMITED_APP))
        .count();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let rate = 200.0 / elapsed;
    println!(
        "burst: 200 CreateRoom in {elapsed:.2} s = {rate:.2}/s, {:.3} of the 20/s limit; {throttled} throttled; limiter waited {:.1} s in total",
        rate / 20.0,
        c.limiter().total_waited().as_secs_f64()
    );
    assert_eq!(throttled, 0);
    assert_eq!(ok, 200);
    // 200 calls within less than 9 s would put more than 20 into some second; 20 go in the first second.
    assert!(rate / 20.0 > 0.9 && elapsed >= 9.0, "achieved {rate:.2}/s");
    let served = sim.sim.log().iter().filter(|e| e.action == "CreateRoom" && e.code == 0).count();
    assert_eq!(served, 200);
}

/// A request signed in this test from the documented formula (md5 of AppId+Nonce+Secret+Timestamp), without the
/// project's signer or client, is accepted; the same request with one character of the signature changed is not.
#[tokio::test]
async fn independently_signed_request_is_accepted() {
    let sim = sim_with(0, 100).await;
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let nonce = "a1b2c3d4e5f60718";
    let digest = Md5::digest(format!("{APP}{nonce}{SECRET}{ts}").as_bytes());
    let sig: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let http = reqwest::Client::new();
    let send = |sig: String| {
        let url = format!(
            "{}/?Action=UserRegister&AppId={APP}&SignatureNonce={nonce}&Timestamp={ts}&SignatureVersion=2.0&Signature={sig}",
            sim.endpoint()
        );
        http.post(url)
            .header("Content-Type", "application/json")
            .body(r#"{"UserInfo":[{"UserId":"independent"}]}"#)
            .send()
    };
    let body: serde_json::Value = send(sig.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(body["Code"], 0, "{body}");
    assert!(sim.sim.log().iter().any(|e| e.action == "UserRegister" && e.code == 0));
    let mut bad = sig.into_bytes();
    bad[0] = if bad[0] == b'0' { b'1' } else { b'0' };
    let body: serde_json::Value = send(String::from_utf8(bad).unwrap()).await.unwrap().json().await.unwrap();
    assert_eq!(body["Code"], codes::SIGNATURE_WRONG);
}

/// POST actions take their business parameters in a JSON body with the JSON content type, as documented: in the
/// query, called with GET, or without the content type they are refused.
#[tokio::test]
async fn parameter_placement_is_enforced() {
    let sim = sim_with(0, 100).await;
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let nonce = "0f0e0d0c0b0a0908";
    let sig = zim_operator::zim::sign::signature(APP, nonce, SECRET, ts as i64);
    let base = format!(
        "{}/?AppId={APP}&SignatureNonce={nonce}&Timestamp={ts}&SignatureVersion=2.0&Signature={sig}",
        sim.endpoint()
    );
    let http = reqwest::Client::new();
    // CreateRoom with its parameters in the query instead of a body.
    let r: serde_json::Value = http
        .post(format!("{base}&Action=CreateRoom&RoomId=x&FromUserId=y"))
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["Code"], codes::INVALID_PARAMS);
    // A POST action called with GET.
    let r: serde_json::Value =
        http.get(format!("{base}&Action=CreateRoom")).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["Code"], codes::INVALID_PARAMS);
    // A body without the JSON content type.
    let r: serde_json::Value = http
        .post(format!("{base}&Action=UserRegister"))
        .body(r#"{"UserInfo":[{"UserId":"u"}]}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["Code"], codes::INVALID_PARAMS);
}

/// Missing public parameters and an unknown action answer their own documented codes.
#[tokio::test]
async fn missing_public_parameters_answer_their_codes() {
    let sim = sim_with(0, 100).await;
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let nonce = "0f0e0d0c0b0a0908";
    let sig = zim_operator::zim::sign::signature(APP, nonce, SECRET, ts as i64);
    let base = format!(
        "{}/?AppId={APP}&SignatureNonce={nonce}&Timestamp={ts}&SignatureVersion=2.0&Signature={sig}",
        sim.endpoint()
    );
    let http = reqwest::Client::new();
    let r: serde_json::Value = http
        .get(format!("{}/?Action=DestroyRoom&AppId={APP}", sim.endpoint()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["Code"], 100000002);
    let r: serde_json::Value = http
        .get(format!(
            "{}/?Action=DestroyRoom&AppId={APP}&Timestamp={ts}&SignatureNonce={nonce}&Signature={sig}",
            sim.endpoint()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["Code"], 100000013);
    let r: serde_json::Value =
        http.get(format!("{base}&Action=NoSuchAction")).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["Code"], 100000007);
}

/// The request log names action, room and code, and never the secret or signature.
#[tokio::test]
async fn request_log_has_no_secrets() {
    let sim = sim_with(0, 100).await;
    let c = client(&sim, 0);
    registered(&c).await;
    c.create_room(&creds(), &room("logged")).await.unwrap();
    let log = sim.sim.log();
    let entry = log.iter().find(|e| e.action == "CreateRoom").unwrap();
    assert_eq!((entry.room_id.as_str(), entry.code, entry.app_id), ("logged", 0, APP));
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains(SECRET));
    assert!(!text.contains("Signature"));
}
