//! The simulator itself: the in-memory backend against the HTTP path, fault kinds over real HTTP on 127.0.0.1,
//! the documented codes, and the server callbacks it sends.

use std::time::Duration;

use zim_operator::sim::{Fault, FaultPlan, InMemoryZim, LogEntry, SimConfig, Simulator};
use zim_operator::zim::codes;
use zim_operator::zim::types::*;
use zim_operator::zim::{ClientConfig, Credentials, ServerSecret, ZimApi, ZimClient, ZimError};

const APP: u32 = 515151;
const SECRET: &str = "8277e0910d750195b448797616e091ad";
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
        "create again: 660300014",
        "create bad id: 660000002",
        "destroy again: 660300001",
        "wrong secret: 100000005",
        "unknown app: 100000010",
        "probe 2: 660300006",
        "Drop: transport room made: false",
        "Malformed: decode room made: false",
        "DelayReply { ms: 10 }: ok room made: true",
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
