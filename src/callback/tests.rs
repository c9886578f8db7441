//! The receiver without HTTP: each accepted body form, the signature, the answers and outcomes, coalescing and
//! overflow. Over real HTTP against the simulator: `tests/integration/callback.rs`.

use super::*;
use serde_json::{Value, json};
use std::sync::Mutex;

const APP: u32 = 1_234_567;
const ROTATING_APP: u32 = 42;
const SECRET: &str = "callback-secret";

/// Every (event, outcome) the observer was told.
#[derive(Default)]
struct Seen(Mutex<Vec<(String, Outcome)>>);

impl CallbackObserver for Seen {
    fn observed(&self, event: Event, outcome: Outcome) {
        crate::lock(&self.0).push((event.as_str().to_owned(), outcome));
    }
}

impl Seen {
    fn all(&self) -> Vec<(String, Outcome)> {
        crate::lock(&self.0).clone()
    }
}

/// A receiver for APP (one secret) and ROTATING_APP (an old and a new one).
fn receiver(capacity: usize) -> (CallbackServer, RoomEvents, Arc<Seen>) {
    let secrets: HashMap<u32, Vec<CallbackSecret>> = HashMap::from([
        (APP, vec![CallbackSecret::new(SECRET)]),
        (ROTATING_APP, vec![CallbackSecret::new("old"), CallbackSecret::new("new")]),
    ]);
    let seen = Arc::new(Seen::default());
    let (server, events) =
        CallbackServer::with_clock(Arc::new(secrets), seen.clone(), capacity, sample_clock);
    (server, events, seen)
}

/// The documented check, computed here independently of `signature.rs`.
fn sign(secret: &str, timestamp: &str, nonce: &str) -> String {
    use sha1::{Digest, Sha1};
    let mut parts = [secret, timestamp, nonce];
    parts.sort();
    Sha1::digest(parts.concat()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A room_destroy as in ZEGO's sample (appid and nonce strings, timestamp a number), signed with SECRET.
/// A room_destroy at the sample's time, with a nonce of its own (each call is another delivery).
fn destroy(room: &str) -> Value {
    static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(350_176);
    let nonce = NONCE.fetch_add(1, Ordering::Relaxed).to_string();
    event_body(APP, "room_destroy", room, 1_499_676_978, &nonce, SECRET)
}

/// This machine's clock in these tests: half a minute after ZEGO's sample callbacks were signed.
fn sample_clock() -> u64 {
    1_499_677_008_000
}

fn event_body(app: u32, event: &str, room: &str, timestamp: u64, nonce: &str, secret: &str) -> Value {
    json!({
        "appid": app.to_string(),
        "event": event,
        "room_id": room,
        "nonce": nonce,
        "signature": sign(secret, &timestamp.to_string(), nonce),
        "user_ids": ["Tony", "Jenny"],
        "operator_account": "userA",
        "timestamp": timestamp,
    })
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// Percent-encodes every byte but ASCII letters and digits.
fn percent_encode(s: &[u8]) -> String {
    s.iter()
        .map(|&b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish().into_bytes()
}

fn destroyed(room: &str) -> RoomEvent {
    RoomEvent { app_id: APP, room_id: room.into(), event: Event::RoomDestroy }
}

fn outcome_of(server: &CallbackServer, body: &[u8]) -> (Outcome, u16) {
    let handled = server.handle(body);
    (handled.outcome, handled.status.as_u16())
}

/// ZEGO's documented sample body, signed: 200, queued as a room event, reported as accepted.
#[test]
fn documented_json_room_destroy_is_queued() {
    let (server, mut events, seen) = receiver(8);
    let handled = server.handle(&bytes(&destroy("room-1")));
    assert_eq!(
        (handled.event, handled.outcome, handled.status),
        (Event::RoomDestroy, Outcome::Accepted, StatusCode::OK)
    );
    assert_eq!(events.try_recv(), Some(destroyed("room-1")));
    assert_eq!(events.try_recv(), None);
    assert_eq!(seen.all(), [("room_destroy".to_owned(), Outcome::Accepted)]);
}

/// ZEGO's published signature vector in a whole body (room_create: verified, then ignored).
#[test]
fn published_vector_verifies_in_a_body() {
    let (server, mut events, seen) = receiver(8);
    let secrets = HashMap::from([(1u32, vec![CallbackSecret::new("secret")])]);
    let (vector_server, _events) =
        CallbackServer::with_clock(Arc::new(secrets), seen.clone(), 8, || 1_470_820_228_000);
    let body = json!({
        "appid": "1", "event": "room_create", "room_id": "r", "timestamp": 1_470_820_198u64, "nonce": "123412",
        "signature": "5bd59fd62953a8059fb7eaba95720f66d19e4517",
    });
    assert_eq!(outcome_of(&vector_server, &bytes(&body)), (Outcome::Ignored, 200));
    // The same body for an app whose secret is not `secret` fails.
    let mut other = body.clone();
    other["appid"] = json!(APP.to_string());
    assert_eq!(outcome_of(&server, &bytes(&other)), (Outcome::BadSignature, 401));
    assert_eq!(events.try_recv(), None);
}

/// A form body (`application/x-www-form-urlencoded`, as ZEGO's PHP and Java samples read it).
#[test]
fn form_body_is_accepted() {
    let (server, mut events, _) = receiver(8);
    let signature = sign(SECRET, "1499676978", "350176");
    let body = form(&[
        ("appid", &APP.to_string()),
        ("event", "room_destroy"),
        ("room_id", "lobby 1&2=3"),
        ("timestamp", "1499676978"),
        ("nonce", "350176"),
        ("signature", &signature),
    ]);
    assert_eq!(outcome_of(&server, &body), (Outcome::Accepted, 200));
    assert_eq!(events.try_recv(), Some(destroyed("lobby 1&2=3")));
}

/// A percent-encoded JSON body ("needs UrlDecode"), with `%XX` escapes and with `+` for spaces.
#[test]
fn percent_encoded_json_body_is_accepted() {
    let (server, mut events, _) = receiver(8);
    let body = percent_encode(&bytes(&destroy("lobby one")));
    assert!(body.starts_with("%7B"), "{body}");
    assert_eq!(outcome_of(&server, body.as_bytes()), (Outcome::Accepted, 200));
    assert_eq!(events.try_recv(), Some(destroyed("lobby one")));

    // `+` for the space and lower-case hex digits, as other encoders write them (another delivery).
    let body = percent_encode(&bytes(&destroy("lobby one")));
    let plus = body.replace("%20", "+").replace("%7B", "%7b").replace("%7D", "%7d");
    assert!(plus.contains("lobby+one") && plus.starts_with("%7b"), "{plus}");
    assert_eq!(outcome_of(&server, plus.as_bytes()), (Outcome::Accepted, 200));
    assert_eq!(events.try_recv(), Some(destroyed("lobby one")));
}

/// JSON with leading whitespace, `appid` and `nonce` as numbers and `timestamp` as a string: the signature is
/// computed over the text as sent.
#[test]
fn numbers_and_strings_are_both_accepted() {
    let (server, mut events, _) = receiver(8);
    let body = json!({
        "appid": APP, "event": "room_destroy", "room_id": "r-num", "timestamp": "1499676978", "nonce": 350176,
        "signature": sign(SECRET, "1499676978", "350176"),
    });
    let mut text = b"\n  ".to_vec();
    text.extend(bytes(&body));
    assert_eq!(outcome_of(&server, &text), (Outcome::Accepted, 200));
    assert_eq!(events.try_recv(), Some(destroyed("r-num")));
}

/// A timestamp in milliseconds (as the field tables say) verifies over its own digits and reads as the same
/// instant as the seconds the samples show.
#[test]
fn millisecond_timestamps_are_accepted() {
    let (server, mut events, _) = receiver(8);
    let ms = event_body(APP, "room_destroy", "r-ms", 1_499_676_978_123, "77", SECRET);
    assert_eq!(outcome_of(&server, &bytes(&ms)), (Outcome::Accepted, 200));
    assert_eq!(events.try_recv(), Some(destroyed("r-ms")));
    assert_eq!(body::parse(&bytes(&ms)).unwrap().unix_ms, 1_499_676_978_123);
    assert_eq!(body::parse(&bytes(&destroy("r"))).unwrap().unix_ms, 1_499_676_978_000);
    // Signed over the seconds but sent as milliseconds: the text differs, so the signature does not match.
    let mut shifted = destroy("r-ms");
    shifted["timestamp"] = json!(1_499_676_978_000u64);
    assert_eq!(outcome_of(&server, &bytes(&shifted)), (Outcome::BadSignature, 401));
}

/// A wrong signature, one for another nonce or timestamp (a replayed signature on a changed request), a
/// missing, empty or non-string signature: 401, nothing queued, counted as bad_signature.
#[test]
fn bad_or_missing_signatures_are_refused() {
    let (server, mut events, seen) = receiver(8);
    let good = destroy("r-sig");
    let mut cases = Vec::new();
    let mut wrong = good.clone();
    wrong["signature"] = json!(sign("not-the-secret", "1499676978", "350176"));
    cases.push(wrong);
    let mut other_nonce = good.clone();
    // (Not one `destroy` hands out: tests running at once take nonces from one counter.)
    other_nonce["nonce"] = json!("999999999");
    cases.push(other_nonce);
    let mut other_time = good.clone();
    other_time["timestamp"] = json!(1_499_676_979u64);
    cases.push(other_time);
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("signature");
    cases.push(missing);
    let mut empty = good.clone();
    empty["signature"] = json!("");
    cases.push(empty);
    let mut number = good.clone();
    number["signature"] = json!(12345);
    cases.push(number);
    for case in &cases {
        assert_eq!(outcome_of(&server, &bytes(case)), (Outcome::BadSignature, 401), "{case}");
    }
    assert_eq!(events.try_recv(), None);
    assert!(seen.all().iter().all(|(e, o)| e == "room_destroy" && *o == Outcome::BadSignature));
    assert_eq!(seen.all().len(), cases.len());
}

/// A callback for an AppId without a secret cannot be verified: 401, counted as bad_signature.
#[test]
fn unknown_app_is_refused() {
    let (server, mut events, seen) = receiver(8);
    let body = event_body(999, "room_destroy", "r", 1_499_676_978, "1", SECRET);
    assert_eq!(outcome_of(&server, &bytes(&body)), (Outcome::BadSignature, 401));
    assert_eq!(events.try_recv(), None);
    assert_eq!(seen.all(), [("room_destroy".to_owned(), Outcome::BadSignature)]);
}

/// During a rotation both the old and the new secret verify; a third does not.
#[test]
fn any_of_several_secrets_verifies() {
    let (server, mut events, _) = receiver(8);
    for (secret, room, nonce) in [("old", "a", "5"), ("new", "b", "6")] {
        let body = event_body(ROTATING_APP, "room_destroy", room, 1_499_676_978, nonce, secret);
        assert_eq!(outcome_of(&server, &bytes(&body)), (Outcome::Accepted, 200), "{secret}");
        assert_eq!(events.try_recv().map(|e| (e.app_id, e.room_id)), Some((ROTATING_APP, room.to_owned())));
    }
    let body = event_body(ROTATING_APP, "room_destroy", "c", 1_499_676_978, "5", SECRET);
    assert_eq!(outcome_of(&server, &bytes(&body)), (Outcome::BadSignature, 401));
}

/// A missing or mistyped common field, an unreadable body, and a signed room_destroy without a room: 400,
/// counted as malformed under the event when it could be read.
#[test]
fn malformed_bodies_are_refused() {
    let (server, mut events, seen) = receiver(8);
    let good = destroy("r-bad");
    let mut cases: Vec<(Vec<u8>, &str)> = Vec::new();
    for field in ["appid", "event", "timestamp", "nonce"] {
        let mut body = good.clone();
        body.as_object_mut().unwrap().remove(field);
        let event = if field == "event" { "other" } else { "room_destroy" };
        cases.push((bytes(&body), event));
    }
    let changed = |field: &str, value: Value| {
        let mut body = good.clone();
        body[field] = value;
        bytes(&body)
    };
    cases.push((changed("appid", json!("12ab")), "room_destroy"));
    cases.push((changed("appid", json!("4294967296")), "room_destroy"));
    cases.push((changed("appid", json!(-1)), "room_destroy"));
    cases.push((changed("timestamp", json!(1_499_676_978.5)), "room_destroy"));
    cases.push((changed("timestamp", json!("-5")), "room_destroy"));
    cases.push((changed("nonce", json!(["1"])), "room_destroy"));
    cases.push((changed("nonce", json!("")), "room_destroy"));
    cases.push((changed("event", json!(7)), "other"));
    cases.push((changed("room_id", json!({"id": "r"})), "room_destroy"));
    cases.push((changed("room_id", json!("r".repeat(200))), "room_destroy"));
    cases.push((changed("room_id", json!("a\nb")), "room_destroy"));
    let mut unnamed = good.clone();
    unnamed.as_object_mut().unwrap().remove("room_id");
    cases.push((bytes(&unnamed), "room_destroy"));
    cases.push((b"".to_vec(), "other"));
    cases.push((b"{not json".to_vec(), "other"));
    cases.push((b"[1, 2]".to_vec(), "other"));
    cases.push((percent_encode(b"{broken").into_bytes(), "other"));
    cases.push((b"just some text".to_vec(), "other"));
    for (body, event) in &cases {
        let text = String::from_utf8_lossy(body);
        let handled = server.handle(body);
        assert_eq!((handled.outcome, handled.status.as_u16()), (Outcome::Malformed, 400), "{text}");
        assert_eq!(handled.event.as_str(), *event, "{text}");
        assert!(handled.reason.is_some(), "{text}");
    }
    assert_eq!(events.try_recv(), None);
    assert_eq!(seen.all().len(), cases.len());
    let missing_room = server.handle(&bytes(&unnamed)).reason.unwrap().to_string();
    assert_eq!(missing_room, "missing field `room_id`");
}

/// room_create, room_enter, room_exit and unknown events are verified, answered 200 and not queued.
#[test]
fn other_events_are_acknowledged_and_ignored() {
    let (server, mut events, seen) = receiver(8);
    for (event, nonce) in
        [("room_create", "9"), ("room_enter", "10"), ("room_exit", "11"), ("group_create", "12")]
    {
        let body = event_body(APP, event, "r-other", 1_499_676_978, nonce, SECRET);
        assert_eq!(outcome_of(&server, &bytes(&body)), (Outcome::Ignored, 200), "{event}");
    }
    // Unverified, they are refused like any other.
    let forged = event_body(APP, "room_enter", "r-other", 1_499_676_978, "9", "forged");
    assert_eq!(outcome_of(&server, &bytes(&forged)), (Outcome::BadSignature, 401));
    assert_eq!(events.try_recv(), None);
    let labels: Vec<_> = seen.all().into_iter().map(|(e, o)| format!("{e}/{}", o.as_str())).collect();
    assert_eq!(
        labels,
        ["room_create/ignored", "other/ignored", "room_exit/ignored", "other/ignored", "other/bad_signature"]
    );
}

/// A verified room_exit is queued only for a room whose deletion waits for it to empty (the controller then
/// counts its members again); for any other room it is ignored and costs nothing.
#[test]
fn room_exit_is_queued_only_for_an_awaited_room() {
    struct Awaiting;
    impl CallbackSecrets for Awaiting {
        fn secrets(&self, app_id: u32) -> Vec<CallbackSecret> {
            if app_id == APP { vec![CallbackSecret::new(SECRET)] } else { Vec::new() }
        }
        fn awaits_exit(&self, app_id: u32, room_id: &str) -> bool {
            app_id == APP && room_id == "closing"
        }
    }
    let seen = Arc::new(Seen::default());
    let (server, mut events) = CallbackServer::with_clock(Arc::new(Awaiting), seen, 8, sample_clock);
    let other = event_body(APP, "room_exit", "busy", 1_499_676_978, "1", SECRET);
    assert_eq!(outcome_of(&server, &bytes(&other)), (Outcome::Ignored, 200));
    assert_eq!(events.try_recv(), None);
    let awaited = event_body(APP, "room_exit", "closing", 1_499_676_978, "2", SECRET);
    assert_eq!(outcome_of(&server, &bytes(&awaited)), (Outcome::Accepted, 200));
    let queued = events.try_recv().expect("queued");
    assert_eq!((queued.room_id.as_str(), queued.event), ("closing", Event::RoomExit));
}

/// A second room_destroy for a room whose event is still queued is coalesced; once the controller takes the
/// event, the next one is queued again. Other rooms and the same room in another app are separate.
#[test]
fn duplicates_coalesce_while_queued() {
    let (server, mut events, _) = receiver(8);
    assert_eq!(outcome_of(&server, &bytes(&destroy("dup"))).0, Outcome::Accepted);
    let retry = event_body(APP, "room_destroy", "dup", 1_499_676_990, "2", SECRET);
    assert_eq!(outcome_of(&server, &bytes(&retry)), (Outcome::Coalesced, 200));
    assert_eq!(outcome_of(&server, &bytes(&destroy("other"))).0, Outcome::Accepted);
    let other_app = event_body(ROTATING_APP, "room_destroy", "dup", 1_499_676_978, "3", "new");
    assert_eq!(outcome_of(&server, &bytes(&other_app)).0, Outcome::Accepted);
    assert_eq!(events.len(), 3);
    assert_eq!(events.try_recv(), Some(destroyed("dup")));
    assert_eq!(outcome_of(&server, &bytes(&destroy("dup"))).0, Outcome::Accepted);
    let rest: Vec<_> = std::iter::from_fn(|| events.try_recv()).collect();
    assert_eq!(
        rest,
        [
            destroyed("other"),
            RoomEvent { app_id: ROTATING_APP, room_id: "dup".into(), event: Event::RoomDestroy },
            destroyed("dup"),
        ]
    );
    assert!(events.is_empty());
}

/// With the queue full, a new room's event is dropped, answered 200 and counted as overflow; with room again it
/// is queued. With the controller's end gone, events are dropped the same way.
#[tokio::test]
async fn full_queue_drops_and_counts_overflow() {
    let (server, mut events, seen) = receiver(1);
    assert_eq!(outcome_of(&server, &bytes(&destroy("first"))), (Outcome::Accepted, 200));
    assert_eq!(outcome_of(&server, &bytes(&destroy("second"))), (Outcome::Overflow, 200));
    assert_eq!(outcome_of(&server, &bytes(&destroy("first"))), (Outcome::Coalesced, 200));
    assert_eq!(events.recv().await, Some(destroyed("first")));
    assert_eq!(outcome_of(&server, &bytes(&destroy("second"))), (Outcome::Accepted, 200));
    assert_eq!(events.len(), 1);
    drop(events);
    assert_eq!(outcome_of(&server, &bytes(&destroy("third"))), (Outcome::Overflow, 200));
    let outcomes: Vec<_> = seen.all().into_iter().map(|(_, o)| o).collect();
    use Outcome::*;
    assert_eq!(outcomes, [Accepted, Overflow, Coalesced, Accepted, Overflow]);
}

/// The label values are exactly the ones the metric `zim_operator_callbacks_total{event,outcome}` uses.
#[test]
fn labels_are_the_documented_closed_sets() {
    let events: Vec<_> = Event::ALL.iter().map(|e| e.as_str()).collect();
    assert_eq!(events, ["room_create", "room_destroy", "room_exit", "other"]);
    let outcomes: Vec<_> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
    assert_eq!(
        outcomes,
        [
            "accepted",
            "coalesced",
            "ignored",
            "bad_signature",
            "malformed",
            "overflow",
            "stale",
            "replayed",
            "throttled",
            "standby"
        ]
    );
}

/// A callback secret never shows in `Debug` or `Display`; whitespace from a file is trimmed.
#[test]
fn secret_is_never_printed() {
    let secret = CallbackSecret::new(" s3cr3t-value\n");
    assert_eq!(secret.expose(), "s3cr3t-value");
    let shown = format!("{secret:?} {secret} {:?}", vec![secret.clone()]);
    assert!(!shown.contains("s3cr3t"), "{shown}");
}

/// A closure works as the secrets lookup and as the observer.
#[test]
fn closures_serve_as_lookup_and_observer() {
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = count.clone();
    let observer = move |event: Event, outcome: Outcome| {
        if event == Event::RoomDestroy && outcome == Outcome::Accepted {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    };
    let lookup = |app_id: u32| if app_id == APP { vec![CallbackSecret::new(SECRET)] } else { Vec::new() };
    let (server, mut events) =
        CallbackServer::with_clock(Arc::new(lookup), Arc::new(observer), 4, sample_clock);
    assert_eq!(outcome_of(&server, &bytes(&destroy("closure"))), (Outcome::Accepted, 200));
    assert_eq!(events.try_recv(), Some(destroyed("closure")));
    assert_eq!(count.load(Ordering::Relaxed), 1);
}

/// Issue 22, scenario 5: a verified callback outside the freshness window is refused (401, `stale`): more than
/// twelve minutes behind this machine's clock or more than ten ahead; inside the window it is accepted. A second
/// delivery of one (AppId, timestamp, nonce) — a retry already handled, or a capture sent again with another
/// room in its body — is answered 200 and not queued (`replayed`). Before, any captured callback replayed forever.
#[test]
fn stale_and_replayed_callbacks_are_not_acted_on() {
    let (server, mut events, _) = receiver(8);
    let now = sample_clock() / 1000;
    let at = |offset: i64, room: &str, nonce: &str| {
        event_body(APP, "room_destroy", room, now.checked_add_signed(offset).unwrap(), nonce, SECRET)
    };
    assert_eq!(outcome_of(&server, &bytes(&at(-13 * 60, "old", "1"))), (Outcome::Stale, 401));
    assert_eq!(outcome_of(&server, &bytes(&at(11 * 60, "ahead", "2"))), (Outcome::Stale, 401));
    assert_eq!(events.try_recv(), None);
    assert_eq!(outcome_of(&server, &bytes(&at(-11 * 60, "late", "3"))), (Outcome::Accepted, 200));
    assert_eq!(outcome_of(&server, &bytes(&at(9 * 60, "early", "4"))), (Outcome::Accepted, 200));
    assert_eq!(events.try_recv(), Some(destroyed("late")));
    assert_eq!(events.try_recv(), Some(destroyed("early")));

    let first = at(-5, "lobby", "77");
    assert_eq!(outcome_of(&server, &bytes(&first)), (Outcome::Accepted, 200));
    assert_eq!(events.try_recv(), Some(destroyed("lobby")));
    // The same delivery again (ZEGO's retry of one we answered, or a capture), and the capture with another room.
    assert_eq!(outcome_of(&server, &bytes(&first)), (Outcome::Replayed, 200));
    assert_eq!(outcome_of(&server, &bytes(&at(-5, "elsewhere", "77"))), (Outcome::Replayed, 200));
    assert_eq!(events.try_recv(), None, "nothing queued for a replay");
    // Another nonce is another callback.
    assert_eq!(outcome_of(&server, &bytes(&at(-5, "lobby", "78"))), (Outcome::Accepted, 200));
}

/// A lookup that stands by, or admits `allowance` re-checks in all.
struct Gate {
    leading: bool,
    allowance: std::sync::atomic::AtomicUsize,
}

impl CallbackSecrets for Gate {
    fn secrets(&self, app_id: u32) -> Vec<CallbackSecret> {
        if app_id == APP { vec![CallbackSecret::new(SECRET)] } else { Vec::new() }
    }

    fn verifying(&self) -> bool {
        self.leading
    }

    fn admit_recheck(&self, _app_id: u32) -> bool {
        self.allowance.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok()
    }
}

/// A standby verifies nothing: even a correctly signed callback is answered 503 (`standby`) and queues nothing,
/// so ZEGO retries and the retry may reach the leader.
#[test]
fn a_standby_verifies_nothing() {
    let gate = Gate { leading: false, allowance: 10.into() };
    let seen = Arc::new(Seen::default());
    let (server, mut events) = CallbackServer::with_clock(Arc::new(gate), seen.clone(), 8, sample_clock);
    assert_eq!(outcome_of(&server, &bytes(&destroy("lobby"))), (Outcome::Standby, 503));
    assert!(events.try_recv().is_none());
}

/// Beyond the app's allowance a room_destroy is `throttled`: answered 200, not queued. A room already queued
/// coalesces without taking from the allowance.
#[test]
fn re_checks_beyond_the_allowance_are_throttled() {
    let gate = Gate { leading: true, allowance: 2.into() };
    let seen = Arc::new(Seen::default());
    let (server, mut events) = CallbackServer::with_clock(Arc::new(gate), seen.clone(), 64, sample_clock);
    use Outcome::*;
    let outcomes: Vec<_> =
        ["a", "a", "b", "c", "d"].iter().map(|r| outcome_of(&server, &bytes(&destroy(r)))).collect();
    assert_eq!(
        outcomes,
        [(Accepted, 200), (Coalesced, 200), (Accepted, 200), (Throttled, 200), (Throttled, 200)]
    );
    assert_eq!(events.try_recv(), Some(destroyed("a")));
    assert_eq!(events.try_recv(), Some(destroyed("b")));
    assert!(events.try_recv().is_none());
}
