//! The closed sets a callback is counted by (`zim_operator_callbacks_total{event,outcome}`).

/// A callback's event, as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// `room_create`.
    RoomCreate,
    /// `room_destroy`.
    RoomDestroy,
    /// Any other event, or a body whose event could not be read.
    Other,
}

impl Event {
    /// Every value.
    pub const ALL: [Event; 3] = [Event::RoomCreate, Event::RoomDestroy, Event::Other];

    /// The label: `room_create`, `room_destroy` or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::RoomCreate => "room_create",
            Event::RoomDestroy => "room_destroy",
            Event::Other => "other",
        }
    }

    /// The event named `name` in a callback body.
    pub(super) fn from_name(name: &str) -> Self {
        match name {
            "room_create" => Event::RoomCreate,
            "room_destroy" => Event::RoomDestroy,
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
}

impl Outcome {
    /// Every value.
    pub const ALL: [Outcome; 8] = [
        Outcome::Accepted,
        Outcome::Coalesced,
        Outcome::Ignored,
        Outcome::BadSignature,
        Outcome::Malformed,
        Outcome::Overflow,
        Outcome::Stale,
        Outcome::Replayed,
    ];

    /// The label: `accepted`, `coalesced`, `ignored`, `bad_signature`, `malformed`, `overflow`, `stale` or
    /// `replayed`.
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
        }
    }
}
