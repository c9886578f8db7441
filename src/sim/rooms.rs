//! The room model and the six actions, with the codes ZEGO documents for each (its room API pages and "Return codes" page).
//!
//! [`Rooms`] holds every app's registered users and rooms and the room clock. An empty room lives until its
//! `DestroyDelayTime` has passed on the room clock (wall time plus whatever tests advanced it by); every removal
//! of an expired room, whichever path notices it first, is reported once as an [`Effect::Destroyed`] with no
//! operator, so automatic destruction can be announced by a callback. Members enter and leave (the admin API
//! stands in for client SDKs); each entry and exit is an effect too ([`Effect::Entered`], [`Effect::Left`]), for
//! the `room_enter` and `room_exit` callbacks. Room messages are recorded per (app, room) and outlive the room,
//! so tests can read what was said before a room was destroyed. The actions themselves are in `actions.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A room as the simulator holds it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RoomView {
    /// Room ID.
    pub room_id: String,
    /// Room name.
    pub room_name: String,
    /// DestroyDelayTime, seconds.
    pub destroy_delay_time: u32,
    /// Attribute values by key.
    pub attributes: BTreeMap<String, String>,
    /// AttributeSeq.
    pub attribute_seq: i64,
    /// Users in the room.
    pub users: BTreeSet<String>,
}

/// A message sent to a room with SendRoomMessage, as recorded (read with `GET /_sim/rooms/{app}/{room}/messages`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RoomMessage {
    /// 1, 2, 3, … per room, in the order accepted.
    pub seq: u64,
    /// The sender (FromUserId).
    pub from_user_id: String,
    /// MessageType (1 text, 200 custom, 20 pop-up, …).
    pub message_type: i64,
    /// Priority (1 low, 2 medium, 3 high).
    pub priority: i64,
    /// `MessageBody.Message`.
    pub message: String,
    /// `MessageBody.ExtendedData` ("" when absent).
    pub extended_data: String,
    /// The users in the room when it was sent (who would have received it).
    pub recipients: Vec<String>,
}

/// Messages remembered per room at most (the oldest go first).
pub(crate) const MAX_MESSAGES_PER_ROOM: usize = 1000;

/// How a member left a room (`exit_type` of the `room_exit` callback).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExitType {
    /// The user left.
    Quit,
    /// KickoutRoomUser removed the user.
    Kickout,
}

impl ExitType {
    /// The documented `exit_type` value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ExitType::Quit => "Quit",
            ExitType::Kickout => "Kickout",
        }
    }
}

/// Something an action (or the room clock) did that ZEGO announces by a server callback.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Effect {
    /// CreateRoom succeeded.
    Created {
        /// The app.
        app_id: u32,
        /// The room.
        room_id: String,
        /// FromUserId.
        operator: String,
        /// RoomName ("" when not given).
        name: String,
        /// The initial attributes: key, value, AutoDelete.
        attributes: Vec<(String, String, u8)>,
    },
    /// A room was destroyed: by DestroyRoom, or automatically (empty `operator` and `user_ids`).
    Destroyed {
        /// The app.
        app_id: u32,
        /// The room.
        room_id: String,
        /// FromUserId of DestroyRoom; empty for automatic destruction or a DestroyRoom without it.
        operator: String,
        /// The room's users at destruction.
        user_ids: Vec<String>,
    },
    /// A user entered a room.
    Entered {
        /// The app.
        app_id: u32,
        /// The room.
        room_id: String,
        /// The user.
        user_id: String,
    },
    /// Users left a room: one user by `Quit`, or the users one KickoutRoomUser removed.
    Left {
        /// The app.
        app_id: u32,
        /// The room.
        room_id: String,
        /// Quit or Kickout.
        exit_type: ExitType,
        /// Quit: the user who left; Kickout: KickoutRoomUser's FromUserId ("" without one).
        operator: String,
        /// The users who left.
        user_ids: Vec<String>,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Attr {
    pub value: String,
    pub seq: i64,
    pub auto_delete: u8,
}

#[derive(Clone, Debug)]
pub(crate) struct Room {
    pub name: String,
    pub delay: u32,
    pub empty_since: f64,
    pub attributes: BTreeMap<String, Attr>,
    pub seq: i64,
    /// The users in the room, in the order they entered (QueryRoomUserList's `Mode` 0).
    pub users: Vec<String>,
}

impl Room {
    pub(crate) fn new(name: &str, delay: u32, now: f64, attributes: Vec<(String, String, u8)>) -> Self {
        let mut room = Room {
            name: name.to_owned(),
            delay,
            empty_since: now,
            attributes: BTreeMap::new(),
            seq: 0,
            users: Vec::new(),
        };
        for (key, value, auto_delete) in attributes {
            room.seq += 1;
            room.attributes.insert(key, Attr { value, seq: room.seq, auto_delete });
        }
        room
    }

    fn live(&self, now: f64) -> bool {
        !self.users.is_empty() || now < self.empty_since + f64::from(self.delay)
    }

    fn view(&self, room_id: &str) -> RoomView {
        RoomView {
            room_id: room_id.to_owned(),
            room_name: self.name.clone(),
            destroy_delay_time: self.delay,
            attributes: self.attributes.iter().map(|(k, a)| (k.clone(), a.value.clone())).collect(),
            attribute_seq: self.seq,
            users: self.users.iter().cloned().collect(),
        }
    }

    /// Adds `user` (last in entry order); false when already in.
    pub(crate) fn enter(&mut self, user: &str) -> bool {
        if self.users.iter().any(|u| u == user) {
            return false;
        }
        self.users.push(user.to_owned());
        true
    }

    /// Removes `user`; false when not in. A room that becomes empty starts its delay at `now`.
    pub(crate) fn leave(&mut self, user: &str, now: f64) -> bool {
        let before = self.users.len();
        self.users.retain(|u| u != user);
        if self.users.is_empty() && before > 0 {
            self.empty_since = now;
        }
        self.users.len() < before
    }

    /// Whether `user` is in the room.
    pub(crate) fn has(&self, user: &str) -> bool {
        self.users.iter().any(|u| u == user)
    }
}

#[derive(Default)]
pub(crate) struct App {
    pub users: HashSet<String>,
    pub rooms: HashMap<String, Room>,
}

fn wall_seconds() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}

/// Every app's users and rooms, the room quota and the room clock.
pub(crate) struct Rooms {
    pub(crate) apps: HashMap<u32, App>,
    pub(crate) room_quota: usize,
    clock_offset: f64,
    pub(crate) effects: Vec<Effect>,
    /// Room messages by (app, room), kept after the room is gone.
    pub(crate) messages: HashMap<(u32, String), Vec<RoomMessage>>,
}

impl Rooms {
    /// No apps yet; `room_quota` live rooms allowed per app.
    pub(crate) fn new(room_quota: usize) -> Self {
        Self {
            apps: HashMap::new(),
            room_quota,
            clock_offset: 0.0,
            effects: Vec::new(),
            messages: HashMap::new(),
        }
    }

    /// The room clock: wall time plus everything tests advanced it by.
    pub(crate) fn now(&self) -> f64 {
        wall_seconds() + self.clock_offset
    }

    /// Moves the room clock forward (signatures keep using the wall clock).
    pub(crate) fn advance_clock(&mut self, seconds: f64) {
        self.clock_offset += seconds.max(0.0);
    }

    /// The effects since the last call, in order.
    pub(crate) fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// Removes every expired room now, reporting each as automatically destroyed.
    pub(crate) fn sweep(&mut self) {
        let now = self.now();
        let app_ids: Vec<u32> = self.apps.keys().copied().collect();
        for app_id in app_ids {
            self.expire_app(app_id, now);
        }
    }

    /// Removes `app_id`'s expired rooms, reporting each as automatically destroyed.
    pub(crate) fn expire_app(&mut self, app_id: u32, now: f64) {
        let Some(app) = self.apps.get_mut(&app_id) else { return };
        let mut gone: Vec<String> =
            app.rooms.iter().filter(|(_, r)| !r.live(now)).map(|(id, _)| id.clone()).collect();
        gone.sort();
        for room_id in gone {
            app.rooms.remove(&room_id);
            self.effects.push(auto_destroyed(app_id, room_id));
        }
    }

    /// The live room `room_id` of `app_id`; an expired one is removed (and reported) on the way.
    pub(crate) fn live_room_mut(&mut self, app_id: u32, room_id: &str, now: f64) -> Option<&mut Room> {
        let app = self.apps.get_mut(&app_id)?;
        if app.rooms.get(room_id).is_some_and(|r| !r.live(now)) {
            app.rooms.remove(room_id);
            self.effects.push(auto_destroyed(app_id, room_id.to_owned()));
            return None;
        }
        app.rooms.get_mut(room_id)
    }

    /// Creates a room directly, as if someone else had created it (no effect is reported).
    pub(crate) fn seed_room(
        &mut self,
        app_id: u32,
        room_id: &str,
        name: &str,
        delay: u32,
        attributes: &[(String, String)],
    ) {
        let now = self.now();
        let attrs = attributes.iter().map(|(k, v)| (k.clone(), v.clone(), 0)).collect();
        self.apps
            .entry(app_id)
            .or_default()
            .rooms
            .insert(room_id.to_owned(), Room::new(name, delay, now, attrs));
    }

    /// Destroys a room directly, without a callback (a destruction whose callback was lost); returns whether it
    /// was live.
    pub(crate) fn remove_room(&mut self, app_id: u32, room_id: &str) -> bool {
        let now = self.now();
        if self.live_room_mut(app_id, room_id, now).is_none() {
            return false;
        }
        self.apps.get_mut(&app_id).is_some_and(|app| app.rooms.remove(room_id).is_some())
    }

    /// Sets the users in a room, without callbacks (as if their `room_enter`/`room_exit` were lost): users kept
    /// keep their entry order, new ones come after them. A room that becomes empty starts its delay now.
    pub(crate) fn set_room_users(&mut self, app_id: u32, room_id: &str, users: BTreeSet<String>) -> bool {
        let now = self.now();
        let Some(room) = self.live_room_mut(app_id, room_id, now) else { return false };
        if users.is_empty() && !room.users.is_empty() {
            room.empty_since = now;
        }
        room.users.retain(|u| users.contains(u));
        for user in users {
            room.enter(&user);
        }
        true
    }

    /// Users enter a live room, in the order given; each new one is an [`Effect::Entered`] (one already in is
    /// skipped). `None` when there is no such room.
    pub(crate) fn enter_room(&mut self, app_id: u32, room_id: &str, users: &[String]) -> Option<Vec<String>> {
        let now = self.now();
        let room = self.live_room_mut(app_id, room_id, now)?;
        let entered: Vec<String> = users.iter().filter(|u| room.enter(u)).cloned().collect();
        for user_id in &entered {
            self.effects.push(Effect::Entered {
                app_id,
                room_id: room_id.to_owned(),
                user_id: user_id.clone(),
            });
        }
        Some(entered)
    }

    /// Users leave a live room (Quit), each its own [`Effect::Left`] (one not in the room is skipped). The room
    /// starts its delay when the last one leaves. `None` when there is no such room.
    pub(crate) fn leave_room(&mut self, app_id: u32, room_id: &str, users: &[String]) -> Option<Vec<String>> {
        let now = self.now();
        let room = self.live_room_mut(app_id, room_id, now)?;
        let left: Vec<String> = users.iter().filter(|u| room.leave(u, now)).cloned().collect();
        for user_id in &left {
            self.effects.push(Effect::Left {
                app_id,
                room_id: room_id.to_owned(),
                exit_type: ExitType::Quit,
                operator: user_id.clone(),
                user_ids: vec![user_id.clone()],
            });
        }
        Some(left)
    }

    /// The messages sent to a room (also after it is gone), oldest first.
    pub(crate) fn room_messages(&self, app_id: u32, room_id: &str) -> Vec<RoomMessage> {
        self.messages.get(&(app_id, room_id.to_owned())).cloned().unwrap_or_default()
    }

    /// Records a message sent to a room; returns its sequence number in the room.
    pub(crate) fn record_message(&mut self, app_id: u32, room_id: &str, mut message: RoomMessage) -> u64 {
        let log = self.messages.entry((app_id, room_id.to_owned())).or_default();
        message.seq = log.last().map_or(1, |m| m.seq + 1);
        if log.len() >= MAX_MESSAGES_PER_ROOM {
            log.remove(0);
        }
        let seq = message.seq;
        log.push(message);
        seq
    }

    /// A live room's view.
    pub(crate) fn room(&self, app_id: u32, room_id: &str) -> Option<RoomView> {
        let now = self.now();
        let room = self.apps.get(&app_id)?.rooms.get(room_id)?;
        room.live(now).then(|| room.view(room_id))
    }

    /// Every live room of an app, by RoomId.
    pub(crate) fn rooms(&self, app_id: u32) -> Vec<RoomView> {
        let now = self.now();
        let mut rooms: Vec<RoomView> = self
            .apps
            .get(&app_id)
            .map(|a| a.rooms.iter().filter(|(_, r)| r.live(now)).map(|(id, r)| r.view(id)).collect())
            .unwrap_or_default();
        rooms.sort_by(|a, b| a.room_id.cmp(&b.room_id));
        rooms
    }
}

fn auto_destroyed(app_id: u32, room_id: String) -> Effect {
    Effect::Destroyed { app_id, room_id, operator: String::new(), user_ids: Vec::new() }
}
