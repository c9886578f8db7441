//! The ZIM room operations the operator uses, with their documented request and response fields.
//!
//! Field names follow ZEGO's OpenAPI files (PascalCase). Responses keep every documented field (RequestId,
//! AttributeSeq, SuccKeyList/ErrKeyList, ErrorList) and decode leniently: a number where a string is documented
//! (or the reverse) is accepted, and absent fields take their empty value.
//!
//! The lenient decoders are in [`lenient`].

mod lenient;

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A ZIM server API action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Register users (POST).
    UserRegister,
    /// Create a room (POST).
    CreateRoom,
    /// Destroy a room (GET).
    DestroyRoom,
    /// Set or delete room attributes (POST).
    ModifyRoomAttribute,
    /// Read room attributes (POST).
    QueryRoomAttribute,
    /// List a room's users; also the existence probe (GET).
    QueryRoomUserList,
    /// Remove users from a room, at most 50 per call (GET).
    KickoutRoomUser,
    /// Send a message to everyone online in a room (POST).
    SendRoomMessage,
}

impl Action {
    /// Every action, in a fixed order.
    pub const ALL: [Action; 8] = [
        Action::UserRegister,
        Action::CreateRoom,
        Action::DestroyRoom,
        Action::ModifyRoomAttribute,
        Action::QueryRoomAttribute,
        Action::QueryRoomUserList,
        Action::KickoutRoomUser,
        Action::SendRoomMessage,
    ];

    /// The `Action` query value.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::UserRegister => "UserRegister",
            Action::CreateRoom => "CreateRoom",
            Action::DestroyRoom => "DestroyRoom",
            Action::ModifyRoomAttribute => "ModifyRoomAttribute",
            Action::QueryRoomAttribute => "QueryRoomAttribute",
            Action::QueryRoomUserList => "QueryRoomUserList",
            Action::KickoutRoomUser => "KickoutRoomUser",
            Action::SendRoomMessage => "SendRoomMessage",
        }
    }

    /// Parses an `Action` query value.
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Whether the action is a POST with a JSON body (otherwise a GET with everything in the query).
    pub fn is_post(self) -> bool {
        !matches!(self, Action::DestroyRoom | Action::QueryRoomUserList | Action::KickoutRoomUser)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One user to register.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct UserInfo {
    /// User ID, ≤32 bytes.
    pub user_id: String,
    /// Display name, ≤256 bytes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_name: String,
    /// Avatar URL, ≤500 bytes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_avatar: String,
}

/// UserRegister body.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserRegisterRequest {
    /// At most 100 users.
    pub user_info: Vec<UserInfo>,
}

/// A room attribute as sent with CreateRoom.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct CreateRoomAttribute {
    /// Attribute key.
    pub key: String,
    /// Attribute value.
    pub value: String,
    /// 1: delete when the owning user leaves the room; 0: keep.
    #[serde(default)]
    pub auto_delete: u8,
}

/// CreateRoom body.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateRoomRequest {
    /// The registered operator user; not added to the room.
    pub from_user_id: String,
    /// Room ID, ≤32 bytes.
    pub room_id: String,
    /// Room name, ≤64 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_name: Option<String>,
    /// Seconds the room survives once empty, ≤10800.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destroy_delay_time: Option<u32>,
    /// Initial attributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<CreateRoomAttribute>,
}

/// What to do with one attribute in ModifyRoomAttribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttributeAction {
    /// Create or overwrite (`Action: 0`).
    Set,
    /// Delete (`Action: 1`).
    Delete,
}

impl Serialize for AttributeAction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(match self {
            AttributeAction::Set => 0,
            AttributeAction::Delete => 1,
        })
    }
}

impl<'de> Deserialize<'de> for AttributeAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match lenient_i64(d)? {
            0 => Ok(AttributeAction::Set),
            1 => Ok(AttributeAction::Delete),
            other => Err(serde::de::Error::custom(format!("attribute Action must be 0 or 1, got {other}"))),
        }
    }
}

/// One change in ModifyRoomAttribute.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ModifyRoomAttribute {
    /// Set or delete.
    pub action: AttributeAction,
    /// Attribute key.
    pub key: String,
    /// New value; "" when deleting.
    #[serde(default)]
    pub value: String,
    /// 1: delete when the owning user leaves the room.
    #[serde(default)]
    pub auto_delete: u8,
    /// 1: stop at the first failing item (earlier changes are kept); 0: record and continue.
    #[serde(default)]
    pub stop_on_error: u8,
}

/// ModifyRoomAttribute body.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModifyRoomAttributeRequest {
    /// The registered operator user.
    pub from_user_id: String,
    /// Room ID.
    pub room_id: String,
    /// The changes.
    pub attributes: Vec<ModifyRoomAttribute>,
}

/// QueryRoomAttribute body.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueryRoomAttributeRequest {
    /// The registered operator user.
    pub from_user_id: String,
    /// Room ID.
    pub room_id: String,
}

/// Fields every response carries.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Envelope {
    /// 0 on success.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub code: i64,
    /// Status text.
    #[serde(default, deserialize_with = "lenient_string")]
    pub message: String,
    /// Unique request identifier.
    #[serde(default, deserialize_with = "lenient_string")]
    pub request_id: String,
}

/// A failure for one user in UserRegister.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct UserError {
    /// The user.
    #[serde(default, deserialize_with = "lenient_string")]
    pub user_id: String,
    /// Why it failed (660700002: already registered).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub sub_code: i64,
    /// Text.
    #[serde(default, deserialize_with = "lenient_string")]
    pub sub_message: String,
}

/// UserRegister response.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserRegisterResponse {
    /// Code, Message, RequestId.
    #[serde(flatten)]
    pub envelope: Envelope,
    /// Users that failed (a call can partly succeed).
    #[serde(default, deserialize_with = "lenient_vec")]
    pub error_list: Vec<UserError>,
}

/// CreateRoom / DestroyRoom response.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoomResponse {
    /// Code, Message, RequestId.
    #[serde(flatten)]
    pub envelope: Envelope,
    /// Total attribute changes over the room's life (CreateRoom only).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub attribute_seq: i64,
}

/// A key that ModifyRoomAttribute changed.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct SuccKey {
    /// The key.
    #[serde(default, deserialize_with = "lenient_string")]
    pub key: String,
    /// The AttributeSeq when it was changed.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub seq: i64,
}

/// A key that ModifyRoomAttribute failed to change.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ErrKey {
    /// The failure's code.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub sub_code: i64,
    /// The key.
    #[serde(default, deserialize_with = "lenient_string")]
    pub key: String,
}

/// ModifyRoomAttribute response; it can partly succeed (Code 0 with a non-empty `err_key_list`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModifyRoomAttributeResponse {
    /// Code, Message, RequestId.
    #[serde(flatten)]
    pub envelope: Envelope,
    /// Total attribute changes over the room's life.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub attribute_seq: i64,
    /// Keys changed.
    #[serde(default, deserialize_with = "lenient_vec")]
    pub succ_key_list: Vec<SuccKey>,
    /// Keys not changed.
    #[serde(default, deserialize_with = "lenient_vec")]
    pub err_key_list: Vec<ErrKey>,
}

/// A room attribute as read back.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct RoomAttribute {
    /// Key.
    #[serde(default, deserialize_with = "lenient_string")]
    pub key: String,
    /// Value.
    #[serde(default, deserialize_with = "lenient_string")]
    pub value: String,
    /// AttributeSeq when last set.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub seq: i64,
    /// 1 if deleted when its user leaves.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub auto_delete: i64,
}

/// QueryRoomAttribute response.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueryRoomAttributeResponse {
    /// Code, Message, RequestId.
    #[serde(flatten)]
    pub envelope: Envelope,
    /// Total attribute changes over the room's life.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub attribute_seq: i64,
    /// The room's attributes.
    #[serde(default, deserialize_with = "lenient_vec")]
    pub attributes: Vec<RoomAttribute>,
}

/// A user in a room.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct RoomUser {
    /// User ID.
    #[serde(default, deserialize_with = "lenient_string")]
    pub user_id: String,
    /// User name.
    #[serde(default, deserialize_with = "lenient_string")]
    pub user_name: String,
}

/// QueryRoomUserList response.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueryRoomUserListResponse {
    /// Code, Message, RequestId.
    #[serde(flatten)]
    pub envelope: Envelope,
    /// Users in the room now.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub count: i64,
    /// Pagination flag; empty when everything was returned.
    #[serde(default, deserialize_with = "lenient_string")]
    pub next_flag: String,
    /// This page of users.
    #[serde(default, deserialize_with = "lenient_vec")]
    pub user_list: Vec<RoomUser>,
}

/// A response with only the common fields (ZEGO's `CommonResponse`: KickoutRoomUser).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CommonResponse {
    /// Code, Message, RequestId.
    #[serde(flatten)]
    pub envelope: Envelope,
}

/// Whether a room exists and how many users are in it, as one QueryRoomUserList with `Limit` 1 tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoomProbe {
    /// No such room (660300001): never created, destroyed, or expired after its DestroyDelayTime.
    Missing,
    /// The room exists. `members` is the answer's `Count`; 0 also when ZIM answered 660300008 (an empty room in
    /// its delayed-destruction period).
    Exists {
        /// Users in the room now.
        members: u64,
    },
}

/// `MessageType` of SendRoomMessage: the one kind the operator sends. ZEGO's "MessageBody introduction" lists
/// 1 text, 2 command, 10 multi-item, 11–14 media, 200 custom and 20 pop-up (rooms only).
pub const MESSAGE_TYPE_TEXT: u32 = 1;

/// `Priority` of SendRoomMessage: 1 low, 2 medium, 3 high (required by the send-room-messages page).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MessagePriority {
    /// 1.
    Low,
    /// 2.
    #[default]
    Medium,
    /// 3.
    High,
}

impl Serialize for MessagePriority {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(match self {
            MessagePriority::Low => 1,
            MessagePriority::Medium => 2,
            MessagePriority::High => 3,
        })
    }
}

impl<'de> Deserialize<'de> for MessagePriority {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match lenient_i64(d)? {
            1 => Ok(MessagePriority::Low),
            2 => Ok(MessagePriority::Medium),
            3 => Ok(MessagePriority::High),
            other => Err(serde::de::Error::custom(format!("Priority must be 1, 2 or 3, got {other}"))),
        }
    }
}

/// The `MessageBody` of a text (also custom and pop-up) message, as "MessageBody introduction" defines it. The
/// other documented fields are left out on purpose: `OfflinePush` does not apply to room messages, and
/// `HasReceipt` must not be set on one (660300013: room messages do not support receipts).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct TextMessageBody {
    /// The text; not empty, at most 2 KB by default ([`super::limits::MAX_ROOM_MESSAGE_BYTES`]).
    pub message: String,
    /// Extra data for the receiving apps, at most 1 KB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_data: Option<String>,
}

/// SendRoomMessage body, for a text message (`MessageType` 1).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct SendRoomMessageRequest {
    /// The sender (the operator's user).
    pub from_user_id: String,
    /// The room.
    pub room_id: String,
    /// [`MESSAGE_TYPE_TEXT`].
    pub message_type: u32,
    /// Required by the page.
    pub priority: MessagePriority,
    /// The text and its extended data.
    pub message_body: TextMessageBody,
}

impl SendRoomMessageRequest {
    /// A text message from `from_user_id` to everyone in `room_id`, at medium priority.
    pub fn text(from_user_id: &str, room_id: &str, message: &str) -> Self {
        Self {
            from_user_id: from_user_id.to_owned(),
            room_id: room_id.to_owned(),
            message_type: MESSAGE_TYPE_TEXT,
            priority: MessagePriority::Medium,
            message_body: TextMessageBody { message: message.to_owned(), extended_data: None },
        }
    }
}

/// SendRoomMessage response. The page's example has only the common fields; the RevokeRoomMessage page says the
/// message's `MsgSeq` comes back in SendRoomMessage's response, so it is read when present (0 when not).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendRoomMessageResponse {
    /// Code, Message, RequestId.
    #[serde(flatten)]
    pub envelope: Envelope,
    /// The message's sequence number, when ZIM returns one.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub msg_seq: i64,
}

/// Responses expose their envelope so the client can check `Code` generically.
pub trait HasEnvelope {
    /// The common fields.
    fn envelope(&self) -> &Envelope;
}

macro_rules! has_envelope {
    ($($t:ty),*) => { $(impl HasEnvelope for $t { fn envelope(&self) -> &Envelope { &self.envelope } })* };
}
has_envelope!(
    UserRegisterResponse,
    RoomResponse,
    ModifyRoomAttributeResponse,
    QueryRoomAttributeResponse,
    QueryRoomUserListResponse,
    CommonResponse,
    SendRoomMessageResponse
);

pub use lenient::{lenient_i64, lenient_string, lenient_vec};

#[cfg(test)]
mod tests;
