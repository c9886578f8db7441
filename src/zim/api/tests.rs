//! The operations built on [`Transport`]: what each sends (action, query, body), how answers are read, and the
//! requests refused before anything is sent. A scripted transport stands in for ZIM.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::*;
use crate::zim::types::HasEnvelope;

/// One request as the transport received it.
#[derive(Debug, Clone, PartialEq)]
struct Sent {
    action: Action,
    query: Vec<(String, String)>,
    body: Value,
}

/// Answers each call with the next scripted JSON answer (success with no fields when the script is spent), and
/// records what was sent.
#[derive(Default)]
struct Scripted {
    answers: Mutex<VecDeque<Value>>,
    sent: Mutex<Vec<Sent>>,
}

impl Scripted {
    fn answering(answers: impl IntoIterator<Item = Value>) -> Self {
        Self { answers: Mutex::new(answers.into_iter().collect()), sent: Mutex::default() }
    }

    fn sent(&self) -> Vec<Sent> {
        crate::lock(&self.sent).clone()
    }
}

impl Transport for Scripted {
    async fn call<B, R>(
        &self,
        _: &Credentials,
        action: Action,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<R, ZimError>
    where
        B: Serialize + Sync + ?Sized,
        R: DeserializeOwned + HasEnvelope + Send,
    {
        let body = body.map(|b| serde_json::to_value(b).unwrap()).unwrap_or(Value::Null);
        let query = query.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        crate::lock(&self.sent).push(Sent { action, query, body });
        let answer = crate::lock(&self.answers)
            .pop_front()
            .unwrap_or_else(|| json!({"Code": 0, "Message": "success", "RequestId": "1"}));
        crate::zim::client::decode_answer(action, &serde_json::to_vec(&answer).unwrap())
    }
}

fn creds() -> Credentials {
    Credentials::new(7, "secret")
}

fn code(code: i64) -> Value {
    json!({"Code": code, "Message": "m", "RequestId": "r"})
}

/// A page of users `from..to` with the given NextFlag and Count.
fn page(from: usize, to: usize, next_flag: &str, count: usize) -> Value {
    let users: Vec<Value> = (from..to).map(|i| json!({"UserId": format!("u{i}"), "UserName": ""})).collect();
    json!({"Code": 0, "Message": "success", "RequestId": "1", "Count": count, "NextFlag": next_flag, "UserList": users})
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("u{i}")).collect()
}

fn query_of(sent: &Sent, key: &str) -> Vec<String> {
    sent.query.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
}

/// probe_room reads Count, 660300008 as an empty room that exists, 660300001 as missing, and passes the rest.
#[tokio::test]
async fn probe_room_reads_count_empty_and_missing() {
    let z = Scripted::answering([
        page(0, 1, "1", 42),
        code(codes::ROOM_EMPTY),
        code(codes::ROOM_NOT_FOUND),
        code(1),
    ]);
    assert_eq!(z.probe_room(&creds(), "r").await.unwrap(), RoomProbe::Exists { members: 42 });
    assert_eq!(z.probe_room(&creds(), "r").await.unwrap(), RoomProbe::Exists { members: 0 });
    assert_eq!(z.probe_room(&creds(), "r").await.unwrap(), RoomProbe::Missing);
    assert_eq!(z.probe_room(&creds(), "r").await.unwrap_err().class(), Class::Transient);
    let sent = z.sent();
    assert_eq!(sent.len(), 4);
    assert_eq!(sent[0].action, Action::QueryRoomUserList);
    assert_eq!(query_of(&sent[0], "Limit"), ["1"]);
    assert_eq!(query_of(&sent[0], "NextFlag"), [""]);
    // room_exists is the same probe.
    let z = Scripted::answering([code(codes::ROOM_EMPTY), code(codes::ROOM_NOT_FOUND)]);
    assert!(z.room_exists(&creds(), "r").await.unwrap());
    assert!(!z.room_exists(&creds(), "r").await.unwrap());
}

/// A negative Count (a broken answer) reads as no members rather than wrapping around.
#[test]
fn a_negative_count_reads_as_zero() {
    let answer = QueryRoomUserListResponse { count: -3, ..Default::default() };
    assert_eq!(probe(Ok(answer)).unwrap(), RoomProbe::Exists { members: 0 });
}

/// The NextFlag example of obtain-information-about-users-in-a-room.yaml: 250 users in pages of 100 come back
/// with flags "1", "2", "0". The client asks with Limit 500 (the maximum) on every page, starts with an empty
/// flag and passes each flag on.
#[tokio::test]
async fn member_ids_follow_next_flag_to_zero() {
    let z = Scripted::answering([page(0, 100, "1", 250), page(100, 200, "2", 250), page(200, 250, "0", 250)]);
    assert_eq!(z.room_member_ids(&creds(), "r").await.unwrap(), ids(0..250));
    let sent = z.sent();
    let flags: Vec<Vec<String>> = sent.iter().map(|s| query_of(s, "NextFlag")).collect();
    assert_eq!(flags, [[""], ["1"], ["2"]]);
    assert!(sent.iter().all(|s| query_of(s, "Limit") == ["500"] && query_of(s, "Mode") == ["0"]));
}

/// An empty NextFlag (the response field's own text) also ends the list; a flag that does not move ends it
/// rather than loop; IDs seen twice (members moving between pages) are returned once.
#[tokio::test]
async fn member_ids_stop_at_an_empty_or_stuck_flag() {
    let z = Scripted::answering([page(0, 3, "", 3)]);
    assert_eq!(z.room_member_ids(&creds(), "r").await.unwrap(), ids(0..3));
    assert_eq!(z.sent().len(), 1);
    let z = Scripted::answering([page(0, 3, "1", 9), page(2, 5, "1", 9), page(5, 9, "0", 9)]);
    assert_eq!(z.room_member_ids(&creds(), "r").await.unwrap(), ids(0..5));
    assert_eq!(z.sent().len(), 2);
}

/// An empty room (660300008, first or later page) is an empty list; a missing room is the NotFound error.
#[tokio::test]
async fn member_ids_of_empty_and_missing_rooms() {
    let z = Scripted::answering([code(codes::ROOM_EMPTY)]);
    assert!(z.room_member_ids(&creds(), "r").await.unwrap().is_empty());
    let z = Scripted::answering([page(0, 2, "1", 4), code(codes::ROOM_EMPTY)]);
    assert_eq!(z.room_member_ids(&creds(), "r").await.unwrap(), ids(0..2));
    let z = Scripted::answering([code(codes::ROOM_NOT_FOUND)]);
    assert_eq!(z.room_member_ids(&creds(), "r").await.unwrap_err().class(), Class::NotFound);
}

/// The list is bounded: at most MAX_LISTED_MEMBERS IDs, and at most MAX_MEMBER_PAGES calls even when the server
/// answers small pages forever.
#[tokio::test]
async fn member_ids_are_bounded() {
    let full = (0..30).map(|p| page(p * 500, (p + 1) * 500, &(p + 1).to_string(), 15_000));
    let z = Scripted::answering(full);
    let listed = z.room_member_ids(&creds(), "r").await.unwrap();
    assert_eq!(listed, ids(0..MAX_LISTED_MEMBERS));
    assert_eq!(z.sent().len(), MAX_LISTED_MEMBERS / 500);
    let tiny = (0..100).map(|p| page(p, p + 1, &(p + 1).to_string(), 100));
    let z = Scripted::answering(tiny);
    assert_eq!(z.room_member_ids(&creds(), "r").await.unwrap().len(), MAX_MEMBER_PAGES);
    assert_eq!(z.sent().len(), MAX_MEMBER_PAGES);
}

/// KickoutRoomUser is a GET: RoomId, one `UserId[]` per user in order, then the optional CustomReason and
/// FromUserId; no body.
#[tokio::test]
async fn kickout_sends_repeated_user_ids() {
    let z = Scripted::default();
    let users = vec!["a".to_string(), "b c".to_string()];
    z.kickout_room_users(&creds(), "lobby", &users, Some("closing"), Some("ops")).await.unwrap();
    z.kickout_room_users(&creds(), "lobby", &users[..1], None, None).await.unwrap();
    let sent = z.sent();
    assert!(!Action::KickoutRoomUser.is_post());
    assert_eq!(sent[0].action, Action::KickoutRoomUser);
    assert_eq!(sent[0].body, Value::Null);
    let pairs = |s: &Sent| s.query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>();
    assert_eq!(
        pairs(&sent[0]),
        ["RoomId=lobby", "UserId[]=a", "UserId[]=b c", "CustomReason=closing", "FromUserId=ops"]
    );
    assert_eq!(pairs(&sent[1]), ["RoomId=lobby", "UserId[]=a"]);
}

/// More than 50 users, none, or a CustomReason over 32 bytes are refused without a call; 50 go out.
#[tokio::test]
async fn kickout_limits_are_checked_before_sending() {
    let z = Scripted::default();
    let users: Vec<String> = (0..51).map(|i| format!("u{i}")).collect();
    for (list, reason) in [(&users[..], None), (&users[..0], None), (&users[..1], Some("r".repeat(33)))] {
        let err = z.kickout_room_users(&creds(), "r", list, reason.as_deref(), None).await.unwrap_err();
        assert!(matches!(err, ZimError::Refused { action: Action::KickoutRoomUser, .. }), "{err:?}");
        assert_eq!(err.class(), Class::Terminal(crate::zim::Terminal::InvalidParams));
    }
    assert!(z.sent().is_empty());
    z.kickout_room_users(&creds(), "r", &users[..50], Some(&"r".repeat(32)), None).await.unwrap();
    assert_eq!(query_of(&z.sent()[0], "UserId[]").len(), 50);
}

/// ZIM's KickoutRoomUser codes come back with their classes.
#[tokio::test]
async fn kickout_codes_have_their_classes() {
    let z = Scripted::answering([
        code(codes::TOO_MANY_USERS),
        code(codes::ROOM_NOT_FOUND),
        code(codes::USER_NOT_IN_ROOM),
    ]);
    let users = vec!["a".to_string()];
    let mut classes = Vec::new();
    for _ in 0..3 {
        classes.push(z.kickout_room_users(&creds(), "r", &users, None, None).await.unwrap_err().class());
    }
    let invalid = Class::Terminal(crate::zim::Terminal::InvalidParams);
    assert_eq!(classes, [invalid, Class::NotFound, invalid]);
}

/// SendRoomMessage posts FromUserId, RoomId, MessageType 1, a Priority and the MessageBody — with no HasReceipt
/// and no OfflinePush — and reads MsgSeq when ZIM returns it.
#[tokio::test]
async fn send_room_message_posts_a_text_body() {
    let z = Scripted::answering([json!({"Code": 0, "Message": "success", "RequestId": "1", "MsgSeq": "17"})]);
    let mut request = SendRoomMessageRequest::text("ops", "lobby", "closing in 5 minutes");
    request.message_body.extended_data = Some("{\"kind\":\"drain\"}".into());
    let answer = z.send_room_message(&creds(), &request).await.unwrap();
    assert_eq!(answer.msg_seq, 17);
    let sent = z.sent();
    assert!(Action::SendRoomMessage.is_post());
    assert_eq!(sent[0].action, Action::SendRoomMessage);
    assert!(sent[0].query.is_empty());
    assert_eq!(
        sent[0].body,
        json!({
            "FromUserId": "ops", "RoomId": "lobby", "MessageType": 1, "Priority": 2,
            "MessageBody": {"Message": "closing in 5 minutes", "ExtendedData": "{\"kind\":\"drain\"}"}
        })
    );
    // Without extended data the field is left out; the answer without MsgSeq reads as 0.
    let answer =
        z.send_room_message(&creds(), &SendRoomMessageRequest::text("ops", "lobby", "bye")).await.unwrap();
    assert_eq!(answer.msg_seq, 0);
    assert_eq!(z.sent()[1].body["MessageBody"], json!({"Message": "bye"}));
}

/// An empty text, one over 2 KB or extended data over 1 KB are refused without a call; 2048 bytes go out.
#[tokio::test]
async fn room_message_sizes_are_checked_before_sending() {
    let z = Scripted::default();
    let mut long_extended = SendRoomMessageRequest::text("ops", "r", "x");
    long_extended.message_body.extended_data = Some("e".repeat(1025));
    for request in [
        SendRoomMessageRequest::text("ops", "r", ""),
        SendRoomMessageRequest::text("ops", "r", &"é".repeat(1025)),
        long_extended,
    ] {
        let err = z.send_room_message(&creds(), &request).await.unwrap_err();
        assert!(matches!(err, ZimError::Refused { action: Action::SendRoomMessage, .. }), "{err:?}");
    }
    assert!(z.sent().is_empty());
    z.send_room_message(&creds(), &SendRoomMessageRequest::text("ops", "r", &"x".repeat(2048)))
        .await
        .unwrap();
    assert_eq!(z.sent().len(), 1);
}

/// The priority's wire values, both ways.
#[test]
fn priorities_are_one_to_three() {
    use crate::zim::types::MessagePriority::*;
    for (priority, wire) in [(Low, 1), (Medium, 2), (High, 3)] {
        assert_eq!(serde_json::to_value(priority).unwrap(), json!(wire));
        assert_eq!(
            serde_json::from_value::<crate::zim::types::MessagePriority>(json!(wire)).unwrap(),
            priority
        );
    }
    assert!(serde_json::from_value::<crate::zim::types::MessagePriority>(json!(4)).is_err());
}
