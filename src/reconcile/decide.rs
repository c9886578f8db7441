//! Pure: the next step for an object, from its spec, its status and the facts gathered so far (the existence
//! probe, CreateRoom's answer). No I/O; the reconcile core ([`super::Reconciler`]) carries the steps out.
//!
//! The flow these functions describe:
//! 1. [`gate`]: paused, invalid or an immutable change → stop before any ZIM call.
//! 2. [`first_step`]: never created → create; converged for the declared attributes → probe existence;
//!    attributes changed since they were last applied → read them (which also probes).
//! 3. [`after_probe`] / [`after_read`]: a room that is gone is created again (Recreated).
//! 4. [`on_room_exists`]: CreateRoom answered "already exists" → whose room it is, and which event says so.

use crate::crd::{ZimRoom, ZimRoomStatus};

use super::validate::{self, FieldError};

/// Why a reconcile stops before any ZIM call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    /// The paused annotation is set.
    Paused,
    /// The spec breaks rules the schema cannot express.
    Invalid(Vec<FieldError>),
    /// An immutable field differs from what was applied.
    Immutable(Vec<FieldError>),
}

/// Checks, in order, whether the object is paused, invalid or changes an immutable field.
pub fn gate(room: &ZimRoom) -> Option<Gate> {
    if room.is_paused() {
        return Some(Gate::Paused);
    }
    let name = room.metadata.name.as_deref().unwrap_or_default();
    let problems = validate::validate_spec(name, &room.spec);
    if !problems.is_empty() {
        return Some(Gate::Invalid(problems));
    }
    let changed = validate::immutable_changes(room);
    if !changed.is_empty() {
        return Some(Gate::Immutable(changed));
    }
    None
}

/// Whether a CreateRoom is the object's first or brings back a room that vanished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Creation {
    /// Nothing was applied yet.
    First,
    /// The room existed (applied) and is gone now.
    Recreate,
}

/// The first ZIM step for an object that passed the [`gate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Converged for the declared attributes: one existence probe (QueryRoomUserList).
    Probe,
    /// The declared attributes differ from what was last applied: read them (QueryRoomAttribute), which also
    /// tells whether the room exists.
    ReadAttributes,
    /// Create the room.
    Create(Creation),
}

/// The first ZIM step, from what the status says was applied and the fingerprint of the declared attributes.
pub fn first_step(status: &ZimRoomStatus, declared_hash: &str) -> Step {
    match &status.applied {
        None => Step::Create(Creation::First),
        Some(applied) if applied.attributes_hash.as_deref() == Some(declared_hash) => Step::Probe,
        Some(_) => Step::ReadAttributes,
    }
}

/// What follows a finding about the room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Nothing to do: the room is there as declared.
    Converged,
    /// Converge the attributes of the room that is there.
    SyncAttributes,
    /// Create the room again.
    Create(Creation),
}

/// After the existence probe of a converged room.
pub fn after_probe(exists: bool) -> Next {
    if exists { Next::Converged } else { Next::Create(Creation::Recreate) }
}

/// After reading the attributes of a room that was applied before: `found` is false when ZIM said the room does
/// not exist.
pub fn after_read(found: bool) -> Next {
    if found { Next::SyncAttributes } else { Next::Create(Creation::Recreate) }
}

/// Whether the creation intent must be recorded on the status before CreateRoom: it is already there when an
/// earlier reconcile recorded it for this room ID (and then any room under this ID may be our own creation whose
/// outcome was lost).
pub fn needs_intent(status: &ZimRoomStatus, room_id: &str) -> bool {
    status.room_id.as_deref() != Some(room_id)
}

/// The event that reports a room found to exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExistsEvent {
    /// The room existed before the object asked for it.
    Adopted,
    /// The room is the object's own, from an earlier attempt whose outcome was lost.
    CreatedEarlier,
}

/// The decision when CreateRoom answers "room already exists" (660300014).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomExists {
    /// The new value of `status.adopted` (`None`: leave it).
    pub adopted: Option<bool>,
    /// The event to emit, if any.
    pub event: Option<ExistsEvent>,
}

/// Whose room it is when CreateRoom says it exists. `intent_before`: the creation intent was on the status before
/// this reconcile; `adopted_before`: `status.adopted` before this reconcile.
pub fn on_room_exists(creation: Creation, intent_before: bool, adopted_before: Option<bool>) -> RoomExists {
    let adopted = creation == Creation::First && !intent_before;
    let new_value = (adopted_before.is_none() || adopted).then_some(adopted);
    let event = match creation {
        Creation::First if adopted => Some(ExistsEvent::Adopted),
        Creation::First => Some(ExistsEvent::CreatedEarlier),
        Creation::Recreate => None,
    };
    RoomExists { adopted: new_value, event }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{AppliedState, PAUSED_ANNOTATION, ZimRoomSpec};

    fn room(name: &str, spec: ZimRoomSpec, applied: Option<AppliedState>) -> ZimRoom {
        let mut r = ZimRoom::new(name, spec);
        r.metadata.generation = Some(1);
        r.status = Some(ZimRoomStatus { applied, ..Default::default() });
        r
    }

    fn spec() -> ZimRoomSpec {
        ZimRoomSpec { destroy_delay_time: 600, ..Default::default() }
    }

    fn applied(hash: Option<&str>) -> AppliedState {
        AppliedState {
            room_id: "lobby".into(),
            room_name: None,
            destroy_delay_time: 600,
            attributes_hash: hash.map(Into::into),
        }
    }

    #[test]
    fn gate_stops_paused_before_invalid() {
        let mut r = room("bad/name", spec(), None);
        r.metadata.annotations = Some([(PAUSED_ANNOTATION.to_string(), "true".to_string())].into());
        assert_eq!(gate(&r), Some(Gate::Paused));
        r.metadata.annotations = None;
        assert!(matches!(gate(&r), Some(Gate::Invalid(p)) if p[0].path == "metadata.name"));
    }

    #[test]
    fn gate_reports_immutable_changes_of_a_valid_spec() {
        let r =
            room("lobby", ZimRoomSpec { destroy_delay_time: 60, ..Default::default() }, Some(applied(None)));
        assert!(matches!(gate(&r), Some(Gate::Immutable(p)) if p[0].path == "spec.destroyDelayTime"));
        assert_eq!(gate(&room("lobby", spec(), Some(applied(None)))), None);
    }

    #[test]
    fn first_step_by_applied_state() {
        let status = |a| ZimRoomStatus { applied: a, ..Default::default() };
        assert_eq!(first_step(&status(None), "h"), Step::Create(Creation::First));
        assert_eq!(first_step(&status(Some(applied(Some("h")))), "h"), Step::Probe);
        assert_eq!(first_step(&status(Some(applied(Some("old")))), "h"), Step::ReadAttributes);
        assert_eq!(first_step(&status(Some(applied(None))), "h"), Step::ReadAttributes);
    }

    #[test]
    fn findings_lead_to_recreation_when_the_room_is_gone() {
        assert_eq!(after_probe(true), Next::Converged);
        assert_eq!(after_probe(false), Next::Create(Creation::Recreate));
        assert_eq!(after_read(true), Next::SyncAttributes);
        assert_eq!(after_read(false), Next::Create(Creation::Recreate));
    }

    #[test]
    fn intent_is_recorded_once_per_room_id() {
        let mut status = ZimRoomStatus::default();
        assert!(needs_intent(&status, "lobby"));
        status.room_id = Some("lobby".into());
        assert!(!needs_intent(&status, "lobby"));
        assert!(needs_intent(&status, "other"));
    }

    /// creation × intent before × adopted before → new adopted value and event.
    #[test]
    fn room_exists_table() {
        use Creation::*;
        use ExistsEvent::*;
        let table = [
            (First, false, None, Some(true), Some(Adopted)),
            (First, false, Some(false), Some(true), Some(Adopted)),
            (First, true, None, Some(false), Some(CreatedEarlier)),
            (First, true, Some(true), None, Some(CreatedEarlier)),
            (Recreate, false, Some(false), None, None),
            (Recreate, true, None, Some(false), None),
            (Recreate, true, Some(true), None, None),
        ];
        for (creation, intent, before, adopted, event) in table {
            assert_eq!(
                on_room_exists(creation, intent, before),
                RoomExists { adopted, event },
                "{creation:?} intent={intent} before={before:?}"
            );
        }
    }
}
