//! The eight actions, with the codes ZEGO documents for each (its room API pages and their OpenAPI files):
//! UserRegister, CreateRoom, DestroyRoom, ModifyRoomAttribute, QueryRoomAttribute, QueryRoomUserList,
//! KickoutRoomUser and SendRoomMessage. They receive their business parameters as the gateway admitted them ([`Params`]: the query
//! of a GET, the JSON body of a POST) and never see HTTP, so the HTTP server and the in-memory backend apply the
//! same rules.

use serde_json::{Value, json};

use super::failure::{Failure, fail, invalid};
use super::rooms::{Effect, ExitType, Room, RoomMessage, Rooms};
use crate::zim::codes;
use crate::zim::limits::{self, check_id};
use crate::zim::types::Action;

fn not_found() -> Failure {
    fail(codes::ROOM_NOT_FOUND, "room does not exist")
}

/// The business parameters of one admitted request: the query (GET) and the JSON body (POST).
pub(crate) struct Params<'a> {
    /// Query pairs (all of them, public ones included).
    pub query: &'a [(String, String)],
    /// The JSON body of a POST; `Value::Null` for a GET.
    pub body: &'a Value,
}

impl Params<'_> {
    fn query(&self, key: &str) -> Option<&str> {
        super::gateway::query_value(self.query, key)
    }

    fn body_str(&self, key: &str) -> Option<&str> {
        self.body.get(key).and_then(Value::as_str)
    }

    /// Every value of a repeated query key, in order.
    fn query_all(&self, key: &str) -> Vec<&str> {
        self.query.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }
}

/// A required RoomId: present, at most 32 bytes, in the documented charset.
fn room_id(raw: Option<&str>) -> Result<&str, Failure> {
    let id = raw.ok_or_else(|| invalid("RoomId is required"))?;
    check_id(id).map_err(|e| invalid(&format!("RoomId {e}")))?;
    Ok(id)
}

impl Rooms {
    /// Performs one admitted action. Returns the response fields beyond Code/Message/RequestId, or the failure.
    pub(crate) fn perform(&mut self, app_id: u32, action: Action, p: &Params<'_>) -> Result<Value, Failure> {
        match action {
            Action::UserRegister => self.user_register(app_id, p.body),
            Action::CreateRoom => self.create_room(app_id, p),
            Action::DestroyRoom => self.destroy_room(app_id, p),
            Action::ModifyRoomAttribute => self.modify_room_attribute(app_id, p),
            Action::QueryRoomAttribute => self.query_room_attribute(app_id, p),
            Action::QueryRoomUserList => self.query_room_user_list(app_id, p),
            Action::KickoutRoomUser => self.kickout_room_user(app_id, p),
            Action::SendRoomMessage => self.send_room_message(app_id, p),
        }
    }

    /// The operator of an action (FromUserId): required (optional only on DestroyRoom, checked when given),
    /// an ID of the documented charset and length, and registered.
    ///
    /// Every room page says FromUserId "must be in registered status" but lists only 660000002 ("Parameter
    /// error") among its codes, adding that it lists "only the return codes related to the API business logic"
    /// and referring to the global table (create-a-room.yaml, destroy-the-room.yaml, update-room-attributes.yaml,
    /// query-room-attributes.yaml). That table ("Return codes", return-codes.mdx) has the specific code:
    /// 660500002 "Operator user not registered. — Please let the operator register ZIM service first." So a
    /// missing or malformed FromUserId is a parameter error (660000002), and a well-formed one that is not
    /// registered answers 660500002. Which of the two the live service answers is UNCONFIRMED.
    fn check_operator(&self, app_id: u32, from: Option<&str>) -> Result<(), Failure> {
        let from = from.ok_or_else(|| invalid("FromUserId is required"))?;
        check_id(from).map_err(|e| invalid(&format!("FromUserId {e}")))?;
        if !self.apps.get(&app_id).is_some_and(|a| a.users.contains(from)) {
            return Err(fail(codes::OPERATOR_NOT_REGISTERED, "operator user not registered"));
        }
        Ok(())
    }

    fn create_room(&mut self, app_id: u32, p: &Params<'_>) -> Result<Value, Failure> {
        let operator = p.body_str("FromUserId");
        self.check_operator(app_id, operator)?;
        let room_id = room_id(p.body_str("RoomId"))?;
        let name = match p.body.get("RoomName") {
            None | Some(Value::Null) => "",
            Some(Value::String(s)) if s.len() <= limits::MAX_ROOM_NAME_BYTES => s.as_str(),
            Some(_) => return Err(invalid("RoomName must be a string of at most 64 bytes")),
        };
        let delay = match p.body.get("DestroyDelayTime") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_f64()
                .filter(|f| f.fract() == 0.0 && (0.0..=f64::from(limits::MAX_DESTROY_DELAY_SECS)).contains(f))
                .map(|f| f as u32)
                .ok_or_else(|| invalid("DestroyDelayTime must be a whole number from 0 to 10800"))?,
        };
        let attrs = super::attributes::parse_create(p.body.get("Attributes"))?;
        let now = self.now();
        // Expired rooms do not count against the quota, and a RoomId whose room expired is free again.
        self.expire_app(app_id, now);
        let quota = self.room_quota;
        let app = self.apps.entry(app_id).or_default();
        if app.rooms.contains_key(room_id) {
            return Err(fail(codes::ROOM_EXISTS, "room already exists"));
        }
        if app.rooms.len() >= quota {
            return Err(fail(codes::ROOM_QUOTA, "room count exceeds the limit"));
        }
        let room = Room::new(name, delay, now, attrs.clone());
        let seq = room.seq;
        app.rooms.insert(room_id.to_owned(), room);
        self.effects.push(Effect::Created {
            app_id,
            room_id: room_id.to_owned(),
            operator: operator.unwrap_or_default().to_owned(),
            name: name.to_owned(),
            attributes: attrs,
        });
        Ok(json!({ "AttributeSeq": seq }))
    }

    fn destroy_room(&mut self, app_id: u32, p: &Params<'_>) -> Result<Value, Failure> {
        let room_id = room_id(p.query("RoomId"))?;
        // FromUserId is optional on DestroyRoom (destroy-the-room.yaml: `required: false`); when given, it must
        // be a registered user like on the other actions.
        let operator = p.query("FromUserId");
        if operator.is_some() {
            self.check_operator(app_id, operator)?;
        }
        let now = self.now();
        let Some(room) = self.live_room_mut(app_id, room_id, now) else { return Err(not_found()) };
        let user_ids = room.users.clone();
        self.apps.get_mut(&app_id).map(|a| a.rooms.remove(room_id));
        self.effects.push(Effect::Destroyed {
            app_id,
            room_id: room_id.to_owned(),
            operator: operator.unwrap_or_default().to_owned(),
            user_ids,
        });
        Ok(json!({}))
    }

    fn modify_room_attribute(&mut self, app_id: u32, p: &Params<'_>) -> Result<Value, Failure> {
        self.check_operator(app_id, p.body_str("FromUserId"))?;
        let room_id = room_id(p.body_str("RoomId"))?;
        let items = p
            .body
            .get("Attributes")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| invalid("Attributes is required"))?;
        let now = self.now();
        let room = self.live_room_mut(app_id, room_id, now).ok_or_else(not_found)?;
        let extra = super::attributes::modify(room, items);
        if extra["SuccKeyList"].as_array().is_none_or(Vec::is_empty) {
            return Err(Failure {
                code: codes::INVALID_PARAMS,
                message: "no attribute could be changed".into(),
                extra,
            });
        }
        Ok(extra)
    }

    fn query_room_attribute(&mut self, app_id: u32, p: &Params<'_>) -> Result<Value, Failure> {
        self.check_operator(app_id, p.body_str("FromUserId"))?;
        let room_id = room_id(p.body_str("RoomId"))?;
        let now = self.now();
        let room = self.live_room_mut(app_id, room_id, now).ok_or_else(not_found)?;
        let attrs: Vec<Value> = room
            .attributes
            .iter()
            .map(|(k, a)| json!({"Key": k, "Value": a.value, "Seq": a.seq, "AutoDelete": a.auto_delete}))
            .collect();
        Ok(json!({"AttributeSeq": room.seq, "Attributes": attrs}))
    }

    /// QueryRoomUserList pages as the `NextFlag` parameter's example shows: with `Limit` 100 and 250 users, the
    /// first call (no flag) answers users 1–100 and `NextFlag` "1", flag 1 answers 101–200 and "2", flag 2
    /// answers 201–250 and "0". So a flag is a page number, and "0" (never empty) marks the last page. Users are
    /// in entry order (`Mode` 0, the default) or the reverse (`Mode` 1). `Count` is every user in the room.
    fn query_room_user_list(&mut self, app_id: u32, p: &Params<'_>) -> Result<Value, Failure> {
        let room_id = room_id(p.query("RoomId"))?;
        let limit = match p.query("Limit").filter(|s| !s.is_empty()).map(str::parse::<u64>) {
            None => 500,
            Some(Ok(n)) if n == 0 || n > 500 => 500,
            Some(Ok(n)) => n as usize,
            Some(Err(_)) => return Err(invalid("Limit must be a number")),
        };
        let page = match p.query("NextFlag").filter(|s| !s.is_empty()).map(str::parse::<usize>) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(_)) => return Err(invalid("NextFlag is not valid")),
        };
        let newest_first = match p.query("Mode").filter(|s| !s.is_empty()) {
            None | Some("0") => false,
            Some("1") => true,
            Some(_) => return Err(invalid("Mode must be 0 or 1")),
        };
        let now = self.now();
        let room = self.live_room_mut(app_id, room_id, now).ok_or_else(not_found)?;
        if room.users.is_empty() {
            return Err(fail(codes::ROOM_EMPTY, "room user list is empty"));
        }
        let ordered: Vec<&String> =
            if newest_first { room.users.iter().rev().collect() } else { room.users.iter().collect() };
        let offset = page.saturating_mul(limit);
        let users: Vec<Value> =
            ordered.iter().skip(offset).take(limit).map(|u| json!({"UserId": u, "UserName": u})).collect();
        let next_flag = if offset.saturating_add(limit) < ordered.len() {
            (page + 1).to_string()
        } else {
            "0".to_owned()
        };
        Ok(json!({"Count": room.users.len(), "NextFlag": next_flag, "UserList": users}))
    }

    /// KickoutRoomUser (remove-user-from-the-room.yaml): `RoomId`, `UserId[]` (1 to 50, each a valid ID),
    /// optional `CustomReason` (≤32 bytes) and `FromUserId` (registered, when given). 660000011 above 50 users,
    /// 660000012 for a UserId over 32 bytes, 660300001 for no such room, 660300002 when a user named is not in the
    /// room. The page does not say what happens to the others then; the simulator removes nobody (the strict
    /// reading: the caller lists the room again). The removed users leave at once, and one `room_exit` with
    /// `exit_type` Kickout names them all, with FromUserId as `operator_account`.
    fn kickout_room_user(&mut self, app_id: u32, p: &Params<'_>) -> Result<Value, Failure> {
        let room_id = room_id(p.query("RoomId"))?;
        let users = p.query_all("UserId[]");
        if users.is_empty() {
            return Err(invalid("UserId[] is required"));
        }
        if users.len() > limits::MAX_KICKOUT_USERS {
            return Err(fail(codes::TOO_MANY_USERS, "user count exceeds the limit"));
        }
        for user in &users {
            if user.len() > limits::MAX_ID_BYTES {
                return Err(fail(codes::USER_ID_TOO_LONG, "UserId too long"));
            }
            check_id(user).map_err(|e| invalid(&format!("UserId {e}")))?;
        }
        if p.query("CustomReason").is_some_and(|r| r.len() > limits::MAX_CUSTOM_REASON_BYTES) {
            return Err(invalid("CustomReason must be at most 32 bytes"));
        }
        let operator = p.query("FromUserId");
        if operator.is_some() {
            self.check_operator(app_id, operator)?;
        }
        let now = self.now();
        let room = self.live_room_mut(app_id, room_id, now).ok_or_else(not_found)?;
        if users.iter().any(|u| !room.has(u)) {
            return Err(fail(codes::USER_NOT_IN_ROOM, "user is not in this room"));
        }
        let mut removed = Vec::new();
        for user in users {
            if room.leave(user, now) {
                removed.push(user.to_owned());
            }
        }
        self.effects.push(Effect::Left {
            app_id,
            room_id: room_id.to_owned(),
            exit_type: ExitType::Kickout,
            operator: operator.unwrap_or_default().to_owned(),
            user_ids: removed,
        });
        Ok(json!({}))
    }

    /// SendRoomMessage (the send-room-messages page and "MessageBody introduction"): `FromUserId` and `RoomId`
    /// (valid IDs), `MessageType` (a number; 1 text, 2 command, 20 pop-up, 200 custom are the room kinds),
    /// `Priority` 1–3, and `MessageBody` with `Message` (not empty, ≤2 KB: 660400001 beyond) and optional
    /// `ExtendedData` (≤1 KB). `HasReceipt` 1 is 660300013 (room messages have no receipts). 660300001 for no such
    /// room. The page does not require the sender to be registered or in the room, so neither is checked. The
    /// message is recorded with the users in the room at that moment; an empty room (in its delay) takes it too.
    fn send_room_message(&mut self, app_id: u32, p: &Params<'_>) -> Result<Value, Failure> {
        let from = p.body_str("FromUserId").ok_or_else(|| invalid("FromUserId is required"))?;
        check_id(from).map_err(|e| invalid(&format!("FromUserId {e}")))?;
        let room_id = room_id(p.body_str("RoomId"))?;
        let message_type = p
            .body
            .get("MessageType")
            .and_then(Value::as_i64)
            .filter(|t| [1, 2, 20, 200].contains(t))
            .ok_or_else(|| invalid("MessageType must be 1, 2, 20 or 200 for a room"))?;
        let priority = p
            .body
            .get("Priority")
            .and_then(Value::as_i64)
            .filter(|n| (1..=3).contains(n))
            .ok_or_else(|| invalid("Priority must be 1, 2 or 3"))?;
        let body = p
            .body
            .get("MessageBody")
            .filter(|b| b.is_object())
            .ok_or_else(|| invalid("MessageBody is required"))?;
        let message = body.get("Message").and_then(Value::as_str).unwrap_or("");
        if message.is_empty() {
            return Err(invalid("MessageBody.Message must not be empty"));
        }
        if message.len() > limits::MAX_ROOM_MESSAGE_BYTES {
            return Err(fail(codes::MESSAGE_TOO_LARGE, "message size exceeds the limit"));
        }
        let extended = match body.get("ExtendedData") {
            None | Some(Value::Null) => "",
            Some(Value::String(e)) if e.len() <= limits::MAX_EXTENDED_DATA_BYTES => e.as_str(),
            Some(_) => return Err(invalid("MessageBody.ExtendedData must be a string of at most 1 KB")),
        };
        if body.get("HasReceipt").and_then(Value::as_i64).is_some_and(|r| r != 0) {
            return Err(fail(codes::ROOM_MESSAGE_NO_RECEIPT, "room messages do not support receipts"));
        }
        let now = self.now();
        let room = self.live_room_mut(app_id, room_id, now).ok_or_else(not_found)?;
        let recipients = room.users.clone();
        let record = RoomMessage {
            seq: 0,
            from_user_id: from.to_owned(),
            message_type,
            priority,
            message: message.to_owned(),
            extended_data: extended.to_owned(),
            recipients,
        };
        let seq = self.record_message(app_id, room_id, record);
        Ok(json!({ "MsgSeq": seq }))
    }

    fn user_register(&mut self, app_id: u32, body: &Value) -> Result<Value, Failure> {
        let users =
            body.get("UserInfo").and_then(Value::as_array).ok_or_else(|| invalid("UserInfo is required"))?;
        if users.is_empty() || users.len() > 100 {
            return Err(invalid("UserInfo must hold 1 to 100 users"));
        }
        let app = self.apps.entry(app_id).or_default();
        let mut errors = Vec::new();
        let mut ok = 0;
        for u in users {
            let id = u.get("UserId").and_then(Value::as_str).unwrap_or("");
            let name_len = u.get("UserName").and_then(Value::as_str).map_or(0, str::len);
            let avatar_len = u.get("UserAvatar").and_then(Value::as_str).map_or(0, str::len);
            let sub = if id.len() > limits::MAX_ID_BYTES {
                Some((660000012, "UserId too long"))
            } else if check_id(id).is_err() || name_len > 256 || avatar_len > 500 {
                Some((codes::INVALID_PARAMS, "invalid user"))
            } else if !app.users.insert(id.to_owned()) {
                Some((codes::USER_EXISTS, "user already exists"))
            } else {
                None
            };
            match sub {
                Some((code, msg)) => errors.push(json!({"UserId": id, "SubCode": code, "SubMessage": msg})),
                None => ok += 1,
            }
        }
        if ok == 0 {
            let code = errors[0]["SubCode"].as_i64().unwrap_or(codes::INVALID_PARAMS);
            return Err(Failure {
                code,
                message: "register failed".into(),
                extra: json!({ "ErrorList": errors }),
            });
        }
        Ok(json!({ "ErrorList": errors }))
    }
}
