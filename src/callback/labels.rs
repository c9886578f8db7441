//! The closed sets a callback is counted by (`zim_operator_callbacks_total{event,outcome}`).

/// A callback's event, as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// `room_create`.
    RoomCreate,
    /// `room_destroy`.
    RoomDestroy,
    /// `room_exit` (members left or were removed): acted on only for a room whose deletion waits for it to empty.
    RoomExit,
    /// Any other event, or a body whose event could not be read.
    Other,
}

impl Event {
    /// Every value.
    pub const ALL: [Event; 4] = [Event::RoomCreate, Event::RoomDestroy, Event::RoomExit, Event::Other];

    /// The label: `room_create`, `room_destroy`, `room_exit` or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::RoomCreate => "room_create",
            Event::RoomDestroy => "room_destroy",
            Event::RoomExit => "room_exit",
            Event::Other => "other",
        }
    }

    /// The event named `name` in a callback body.
    pub(super) fn from_name(name: &str) -> Self {
        match name {
            "room_create" => Event::RoomCreate,
            "room_destroy" => Event::RoomDestroy,
            "room_exit" => Event::RoomExit,
            _ => Event::Other,
        }
    }
}

/// What became of one callback, as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A verified `room_destroy`, queued for the controller (200).
    Accepted,
    /// A verified `room_destroy` for a room whose event is still queued (200).
    Coalesced,
    /// A verified event the operator does not act on (200).
    Ignored,
    /// The signature did not match, or the AppId has no secret (401).
    BadSignature,
    /// Not a callback: unreadable, a field missing or invalid, or too large (400, 413).
    Malformed,
    /// A verified `room_destroy` dropped because the queue was full (200).
    Overflow,
    /// A verified callback outside the freshness window (401).
    Stale,
    /// A verified callback whose (AppId, timestamp, nonce) was seen within the window (200, not acted on).
    Replayed,
    /// A verified `room_destroy` over its app's callback re-check allowance: not queued (200).
    Throttled,
    /// A callback to a standby replica, which verifies nothing (503: ZEGO retries, and the Service may send the
    /// retry to the leader).
    Standby,
}

impl Outcome {
    /// Every value.
    pub const ALL: [Outcome; 10] = [
        Outcome::Accepted,
        Outcome::Coalesced,
        Outcome::Ignored,
        Outcome::BadSignature,
        Outcome::Malformed,
        Outcome::Overflow,
        Outcome::Stale,
        Outcome::Replayed,
        Outcome::Throttled,
        Outcome::Standby,
    ];

    /// The label: `accepted`, `coalesced`, `ignored`, `bad_signature`, `malformed`, `overflow`, `stale`,
    /// `replayed`, `throttled` or `standby`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Coalesced => "coalesced",
            Outcome::Ignored => "ignored",
            Outcome::BadSignature => "bad_signature",
            Outcome::Malformed => "malformed",
            Outcome::Overflow => "overflow",
            Outcome::Stale => "stale",
            Outcome::Replayed => "replayed",
            Outcome::Throttled => "throttled",
            Outcome::Standby => "standby",
        }
    }
}
