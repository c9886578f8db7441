//! Pure: what deleting an object does to its room, from its spec, its status and the facts gathered for the
//! deletion (the namespace's policy, another claimant, whether the CRD itself is being deleted).

use crate::crd::{DeletionPolicy, ZimRoom};
use crate::reconcile::DeleteFacts;

use super::holds_room;

/// What deleting the object does to its room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnDelete {
    /// Nothing was ever created or adopted: nothing to do.
    Nothing,
    /// Leave the room; `why` says why (for the event).
    Orphan {
        /// Why the room stays.
        why: String,
    },
    /// DestroyRoom `room_id` in the recorded app.
    Destroy {
        /// The room.
        room_id: String,
    },
}

/// Why an uninstall leaves every room.
pub const CRD_DELETING: &str = "the ZimRoom CRD is being deleted (an uninstall), so no room is destroyed; to destroy rooms, delete the ZimRooms and wait for them to go before deleting the CRD";

/// Decides deletion. In order: an uninstall (the CRD being deleted) leaves every room; only the room the spec
/// names, and the status agrees with, is ever destroyed; never one the namespace may not manage, another object
/// still declares, the deletion policy keeps, or that would take the operator's default credentials where the
/// namespace may not use them.
pub fn on_delete(room: &ZimRoom, facts: &DeleteFacts) -> OnDelete {
    if facts.crd_deleting {
        return OnDelete::Orphan { why: CRD_DELETING.into() };
    }
    if room.is_observing() {
        return OnDelete::Orphan {
            why: "managementPolicy Observe: the operator only reads this room".into(),
        };
    }
    let decision = by_spec_and_status(room, facts);
    if let (OnDelete::Destroy { .. }, Some(policy)) = (&decision, &facts.policy)
        && room.spec.credentials_secret_ref.is_none()
        && let Err(why) = &policy.default_credentials
    {
        return OnDelete::Orphan {
            why: format!("the operator's default credentials are not available here: {why}"),
        };
    }
    decision
}

fn by_spec_and_status(room: &ZimRoom, facts: &DeleteFacts) -> OnDelete {
    let status = room.status.clone().unwrap_or_default();
    let spec_room = room.room_id();
    let Some(room_id) = status.room_id.clone() else { return OnDelete::Nothing };
    if !holds_room(&status) && status.applied.is_none() {
        return OnDelete::Nothing;
    }
    if room_id != spec_room {
        return OnDelete::Orphan {
            why: format!(
                "the status names room {room_id} but the spec names {spec_room}; neither is destroyed"
            ),
        };
    }
    let Some(policy) = &facts.policy else {
        return OnDelete::Orphan { why: "the namespace's policy was not read".into() };
    };
    if let Err(why) = policy.check_room_id(&room_id) {
        return OnDelete::Orphan { why: format!("the namespace may not manage it: {why}") };
    }
    if let Some(other) = &facts.successor {
        return OnDelete::Orphan { why: format!("{other} still declares it and takes it over") };
    }
    let adopted = status.adopted == Some(true);
    match (room.spec.deletion_policy, adopted) {
        (Some(DeletionPolicy::Orphan), _) => OnDelete::Orphan { why: "deletionPolicy Orphan".into() },
        (None, true) => {
            OnDelete::Orphan { why: "deletionPolicy Orphan, the default for an adopted room".into() }
        }
        (Some(DeletionPolicy::Delete), true) => match &policy.destroy_adopted {
            Ok(()) => OnDelete::Destroy { room_id },
            Err(why) => OnDelete::Orphan {
                why: format!("the room was adopted, not created by this object, and {why}"),
            },
        },
        _ => OnDelete::Destroy { room_id },
    }
}
