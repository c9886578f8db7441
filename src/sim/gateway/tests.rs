//! Unit tests of the gateway: every documented gateway code, parameter placement and the QPS window.

use super::*;

const APP: u32 = 12345;
const SECRET: &str = "9193cc662a4c0ec135ec71fb57194b38";
const NOW: i64 = 1_615_186_943;
const NONCE: &str = "4fd24687296dd9f3";

fn gateway() -> Gateway {
    Gateway::new(vec![(APP, ServerSecret::new(SECRET))], 20)
}

/// The query of a correctly signed request of `action` at `ts`.
fn signed(action: &str, ts: i64) -> Vec<(String, String)> {
    let sig = sign::signature(APP, NONCE, SECRET, ts);
    [
        ("Action", action.to_owned()),
        ("AppId", APP.to_string()),
        ("SignatureNonce", NONCE.to_owned()),
        ("Timestamp", ts.to_string()),
        ("SignatureVersion", "2.0".to_owned()),
        ("Signature", sig),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn with(mut query: Vec<(String, String)>, key: &str, value: Option<&str>) -> Vec<(String, String)> {
    query.retain(|(k, _)| k != key);
    if let Some(v) = value {
        query.push((key.to_owned(), v.to_owned()));
    }
    query
}

type Query = Vec<(String, String)>;

fn get(query: &[(String, String)]) -> HttpRequest<'_> {
    HttpRequest { query, body: b"", is_post: false, content_type: None }
}

fn post<'a>(query: &'a [(String, String)], body: &'a [u8], ct: Option<&'a str>) -> HttpRequest<'a> {
    HttpRequest { query, body, is_post: true, content_type: ct }
}

fn code(r: Result<Admitted, Refusal>) -> i64 {
    r.map_or_else(|r| r.code, |_| 0)
}

/// A correctly signed GET and POST are admitted with their business parameters where the docs put them.
#[test]
fn signed_requests_are_admitted() {
    let g = gateway();
    let q = signed("DestroyRoom", NOW);
    let a = g.admit_http(&get(&q), NOW).unwrap();
    assert_eq!((a.app_id, a.action, a.body), (APP, Action::DestroyRoom, Value::Null));
    let q = signed("CreateRoom", NOW);
    let a =
        g.admit_http(&post(&q, br#"{"RoomId":"r"}"#, Some("application/json; charset=utf-8")), NOW).unwrap();
    assert_eq!(a.body["RoomId"], "r");
}

/// Each missing or malformed public parameter answers its own gateway code from the "Return codes" page.
#[test]
fn each_public_parameter_has_its_code() {
    let g = gateway();
    let ok = signed("DestroyRoom", NOW);
    let cases: Vec<(&str, Query, i64)> = vec![
        ("empty Action", with(ok.clone(), "Action", Some("")), 100000006),
        ("missing Action", with(ok.clone(), "Action", None), 100000006),
        ("non-numeric AppId", with(ok.clone(), "AppId", Some("12a")), 100000001),
        ("missing AppId", with(ok.clone(), "AppId", None), 100000001),
        ("empty Timestamp", with(ok.clone(), "Timestamp", Some("")), 100000002),
        ("missing Timestamp", with(ok.clone(), "Timestamp", None), 100000002),
        ("bad Timestamp", with(ok.clone(), "Timestamp", Some("yesterday")), 100000003),
        ("empty nonce", with(ok.clone(), "SignatureNonce", Some("")), 100000008),
        ("empty signature", with(ok.clone(), "Signature", Some("")), 100000009),
        ("empty SignatureVersion", with(ok.clone(), "SignatureVersion", Some("")), 100000013),
        ("missing SignatureVersion", with(ok.clone(), "SignatureVersion", None), 100000013),
        ("SignatureVersion 1.0", with(ok.clone(), "SignatureVersion", Some("1.0")), 100000014),
        ("nonce not 16 hex", with(ok.clone(), "SignatureNonce", Some("15215528852396")), 2),
        ("unknown AppId", with(ok.clone(), "AppId", Some("7")), 100000010),
        ("wrong signature", with(ok.clone(), "Signature", Some(&"0".repeat(32))), codes::SIGNATURE_WRONG),
    ];
    for (what, query, expected) in cases {
        assert_eq!(code(g.admit_http(&get(&query), NOW)), expected, "{what}");
    }
}

/// A timestamp 601 s away from the gateway's clock, either way, is expired; 600 s is still accepted.
#[test]
fn timestamps_outside_ten_minutes_are_expired() {
    let g = gateway();
    for skew in [-601, 601] {
        let q = signed("DestroyRoom", NOW + skew);
        assert_eq!(code(g.admit_http(&get(&q), NOW)), codes::SIGNATURE_EXPIRED, "skew {skew}");
    }
    for skew in [-600, 600] {
        let q = signed("DestroyRoom", NOW + skew);
        assert_eq!(code(g.admit_http(&get(&q), NOW)), 0, "skew {skew}");
    }
}

/// An Action the service does not have is 100000007, checked after the signature.
#[test]
fn unsupported_action() {
    let g = gateway();
    let q = signed("QueryRoomMembers", NOW);
    assert_eq!(code(g.admit_http(&get(&q), NOW)), 100000007);
    let q = with(q, "Signature", Some(&"0".repeat(32)));
    assert_eq!(code(g.admit_http(&get(&q), NOW)), codes::SIGNATURE_WRONG);
}

/// A POST action needs POST, `Content-Type: application/json` and a JSON object body; a GET action ignores the
/// body.
#[test]
fn post_parameters_go_in_a_json_body() {
    let g = gateway();
    let q = signed("CreateRoom", NOW);
    let body = br#"{"RoomId":"r"}"#;
    assert_eq!(code(g.admit_http(&get(&q), NOW)), codes::INVALID_PARAMS, "GET for a POST action");
    assert_eq!(code(g.admit_http(&post(&q, body, None), NOW)), codes::INVALID_PARAMS, "no Content-Type");
    assert_eq!(
        code(g.admit_http(&post(&q, body, Some("application/x-www-form-urlencoded")), NOW)),
        codes::INVALID_PARAMS,
        "form Content-Type"
    );
    assert_eq!(
        code(g.admit_http(&post(&q, b"[1]", Some("application/json")), NOW)),
        codes::INVALID_PARAMS,
        "not an object"
    );
    let q = signed("QueryRoomUserList", NOW);
    assert_eq!(code(g.admit_http(&post(&q, b"junk", None), NOW)), 0, "GET action sent as POST");
}

/// The in-memory path: an unknown app and a wrong secret answer what they answer over HTTP.
#[test]
fn credentials_are_checked_without_signing() {
    let g = gateway();
    assert_eq!(g.admit_credentials(&Credentials::new(APP, SECRET)), Ok(()));
    assert_eq!(g.admit_credentials(&Credentials::new(7, SECRET)).unwrap_err().code, 100000010);
    assert_eq!(g.admit_credentials(&Credentials::new(APP, "x")).unwrap_err().code, codes::SIGNATURE_WRONG);
}

/// The 21st call of one (AppId, Action) within a second is refused with the action's documented code and not
/// counted; once the first call is a second old, a call is accepted again. Other keys have their own window.
#[test]
fn qps_window_refuses_the_21st_call_within_a_second() {
    for (action, expected) in [
        (Action::CreateRoom, codes::RATE_LIMITED_APP),
        (Action::DestroyRoom, codes::RATE_LIMITED_APP),
        (Action::ModifyRoomAttribute, codes::RATE_LIMITED_APP),
        (Action::QueryRoomAttribute, codes::RATE_LIMITED_APP),
        (Action::QueryRoomUserList, codes::RATE_LIMITED_ROOM),
        (Action::UserRegister, codes::REGISTER_RATE_LIMITED),
        (Action::KickoutRoomUser, codes::RATE_LIMITED_APP),
    ] {
        let mut g = gateway();
        let t0 = Instant::now();
        for i in 0..20 {
            g.admit_rate(APP, action, t0 + Duration::from_millis(i * 10)).unwrap();
        }
        let at = t0 + Duration::from_millis(999);
        assert_eq!(g.admit_rate(APP, action, at).unwrap_err().code, expected, "{action}");
        assert_eq!(g.admit_rate(APP + 1, action, at), Ok(()), "{action}: another app");
        let other = if action == Action::CreateRoom { Action::DestroyRoom } else { Action::CreateRoom };
        assert_eq!(g.admit_rate(APP, other, at), Ok(()), "{action}: another action");
        // The first call leaves the window at t0 + 1 s; the refused call was not counted.
        assert_eq!(g.admit_rate(APP, action, t0 + Duration::from_secs(1)), Ok(()), "{action}");
        assert!(g.admit_rate(APP, action, t0 + Duration::from_millis(1005)).is_err(), "{action}");
    }
}

/// SendRoomMessage is documented at 10 calls/s per app: the 11th within a second is refused (660300005), while
/// the 20/s actions of the same app are not affected.
#[test]
fn send_room_message_allows_ten_a_second() {
    let mut g = gateway();
    let t0 = Instant::now();
    for i in 0..10 {
        g.admit_rate(APP, Action::SendRoomMessage, t0 + Duration::from_millis(i * 10)).unwrap();
    }
    let at = t0 + Duration::from_millis(500);
    assert_eq!(g.admit_rate(APP, Action::SendRoomMessage, at).unwrap_err().code, codes::RATE_LIMITED_APP);
    assert_eq!(g.admit_rate(APP + 1, Action::SendRoomMessage, at), Ok(()));
    assert_eq!(g.admit_rate(APP, Action::KickoutRoomUser, at), Ok(()));
    assert_eq!(g.admit_rate(APP, Action::SendRoomMessage, t0 + Duration::from_secs(1)), Ok(()));
}

/// A limit of 0 disables the window; changing the limit starts counting afresh.
#[test]
fn qps_zero_disables_the_window() {
    let mut g = Gateway::new(Vec::new(), 0);
    let t0 = Instant::now();
    for _ in 0..100 {
        g.admit_rate(APP, Action::CreateRoom, t0).unwrap();
    }
    g.set_qps(1);
    g.admit_rate(APP, Action::CreateRoom, t0).unwrap();
    assert!(g.admit_rate(APP, Action::CreateRoom, t0).is_err());
}
