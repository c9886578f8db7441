//! Observing a room (`spec.managementPolicy: Observe`): read calls only — whether the room exists and how many
//! members it has (QueryRoomUserList), and its attributes (QueryRoomAttribute, which needs the operator's user
//! registered: UserRegister is the one other call, and it changes no room) — shown on the status.
//!
//! | the room | Ready | Synced | kstatus / Argo CD |
//! |---|---|---|---|
//! | exists, declared attributes as in the room | True `Available` | True `Observed` | Current / Healthy |
//! | exists, some declared attributes differ or are missing | True `Available` | False `Drifted`, naming the keys | Current / Healthy (the message names the keys) |
//! | does not exist | False `RoomNotFound` (Stalled) | True `Observed` | Failed / Degraded: the operator will not create it |
//!
//! Nothing is ever created, changed, emptied or destroyed, whatever the other fields say. An object that held a
//! room (it was `Manage` before) releases it: its ownership record is cleared (a `Released` event), so deleting
//! it, or switching back to `Manage`, treats the room as someone else's (adopted under the namespace's policy).
//! An observing object claims no room against other objects. It is looked at again every resync period (not by
//! the existence prober: the attributes are read too).

use tracing::debug;

use crate::crd::{ObservedAttribute, ObservedRoom, ZimRoom, condition, reason};
use crate::zim::types::RoomProbe;
use crate::zim::{Class, Credentials, ZimApi};

use super::run::Run;
use super::{Outcome, Reconciler, Requeue, decide};

/// At most this many attributes are shown (ZIM keeps at most 20 per room).
const MAX_SHOWN: usize = 20;
/// Each shown value is cut to this many bytes (ZIM allows 1024).
const MAX_SHOWN_VALUE: usize = 1024;

impl<Z: ZimApi> Reconciler<Z> {
    pub(super) async fn observe(
        &self,
        run: &mut Run<'_>,
        room: &ZimRoom,
        creds: &Credentials,
        from: &str,
    ) -> Outcome {
        let room_id = room.room_id();
        if decide::holds_room(&run.status) {
            run.note(
                false,
                "Released",
                format!(
                    "managementPolicy Observe: ZIM room {room_id} is no longer managed by this object (it stays as it is; deleting the object leaves it)"
                ),
            );
        }
        release(&mut run.status);
        run.status.room_id = Some(room_id.clone());
        let members = match self.zim.probe_room(creds, &room_id).await {
            Ok(RoomProbe::Exists { members }) => members,
            Ok(RoomProbe::Missing) => return not_found(run, &room_id),
            Err(e) => return run.zim_failure(&e),
        };
        run.observe_members(members);
        if let Err(e) = self.ensure_registered(creds, from).await {
            return run.zim_failure(&e);
        }
        let current = match self.zim.query_room_attribute(creds, &room_id, from).await {
            Ok(resp) => resp.attributes,
            Err(e) if e.class() == Class::NotFound => return not_found(run, &room_id),
            Err(e) => return run.zim_failure(&self.failed(creds, from, e)),
        };
        let observed = observed_room(room, &current);
        debug!(room_id, drifted = observed.drifted_keys.len(), "observed");
        run.set(condition::READY, true, reason::AVAILABLE, format!("ZIM room {room_id} exists (observed)"));
        if observed.drifted_keys.is_empty() {
            run.set(
                condition::SYNCED,
                true,
                reason::OBSERVED,
                "observed: the room's attributes are as declared (nothing is written)",
            );
        } else {
            let keys = observed.drifted_keys.join(", ");
            if run.previous_synced_reason() != Some(reason::DRIFTED) {
                run.note(
                    false,
                    reason::DRIFTED,
                    format!("ZIM room {room_id}: attributes differ from the declared values: {keys}"),
                );
            }
            run.set(
                condition::SYNCED,
                false,
                reason::DRIFTED,
                format!(
                    "observed: the room's attributes differ from the declared values: {keys} (managementPolicy Observe writes nothing; switch to Manage to have them set)"
                ),
            );
        }
        run.status.observed = Some(observed);
        run.finish(Requeue::Period, None)
    }
}

/// Clears the ownership record: an observing object holds no room.
fn release(status: &mut crate::crd::ZimRoomStatus) {
    status.app_id = None;
    status.pending_creation = false;
    status.adopted = None;
    status.managed_attribute_keys.clear();
    status.applied = None;
    status.deletion = None;
}

fn not_found(run: &mut Run<'_>, room_id: &str) -> Outcome {
    let message = format!(
        "ZIM room {room_id} does not exist; managementPolicy Observe never creates it (switch to Manage to have it created)"
    );
    if run.previous_ready_reason() != Some(reason::ROOM_NOT_FOUND) {
        run.note(true, reason::ROOM_NOT_FOUND, message.clone());
    }
    run.status.occupancy = None;
    run.status.observed = Some(ObservedRoom { exists: false, ..ObservedRoom::default() });
    run.set(condition::READY, false, reason::ROOM_NOT_FOUND, message);
    run.set(
        condition::SYNCED,
        true,
        reason::OBSERVED,
        "observed: the room does not exist (nothing is written)",
    );
    run.finish(Requeue::Period, None)
}

/// What an observing object shows: the room's attributes (sorted, bounded) and the declared keys whose value
/// differs or that the room lacks.
pub fn observed_room(room: &ZimRoom, current: &[crate::zim::types::RoomAttribute]) -> ObservedRoom {
    let mut attributes: Vec<ObservedAttribute> = current
        .iter()
        .map(|a| ObservedAttribute { key: a.key.clone(), value: cut(&a.value, MAX_SHOWN_VALUE) })
        .collect();
    attributes.sort_by(|a, b| a.key.cmp(&b.key));
    attributes.truncate(MAX_SHOWN);
    let mut drifted_keys: Vec<String> = room
        .spec
        .attributes
        .iter()
        .filter(|d| !current.iter().any(|c| c.key == d.key && c.value == d.value))
        .map(|d| d.key.clone())
        .collect();
    drifted_keys.sort();
    ObservedRoom { exists: true, attributes, drifted_keys }
}

fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::room;
    use crate::zim::types::RoomAttribute as Zim;

    fn zim(k: &str, v: &str) -> Zim {
        Zim { key: k.into(), value: v.into(), ..Zim::default() }
    }

    #[test]
    fn drift_names_the_declared_keys_that_differ_or_are_missing() {
        let r =
            room("x").attribute("topic", "a").attribute("mode", "m").attribute_on_create("host", "h").build();
        let seen = observed_room(&r, &[zim("topic", "b"), zim("mode", "m"), zim("score", "9")]);
        assert_eq!(seen.drifted_keys, ["host", "topic"], "host is missing, topic differs");
        let keys: Vec<_> = seen.attributes.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys, ["mode", "score", "topic"], "every attribute of the room, sorted");
        let same = observed_room(&r, &[zim("topic", "a"), zim("mode", "m"), zim("host", "h")]);
        assert!(same.drifted_keys.is_empty());
    }

    #[test]
    fn what_is_shown_is_bounded() {
        let many: Vec<Zim> = (0..30).map(|i| zim(&format!("k{i:02}"), &"é".repeat(600))).collect();
        let seen = observed_room(&room("x").build(), &many);
        assert_eq!(seen.attributes.len(), MAX_SHOWN);
        assert!(seen.attributes.iter().all(|a| a.value.len() <= MAX_SHOWN_VALUE && a.value.len() >= 1022));
    }

    #[test]
    fn releasing_clears_the_ownership_record() {
        let mut status = crate::crd::ZimRoomStatus {
            room_id: Some("r".into()),
            app_id: Some(7),
            adopted: Some(false),
            managed_attribute_keys: vec!["topic".into()],
            applied: Some(crate::crd::AppliedState::default()),
            ..Default::default()
        };
        assert!(decide::holds_room(&status));
        release(&mut status);
        assert!(!decide::holds_room(&status));
        assert_eq!(status.room_id.as_deref(), Some("r"), "the room ID stays for display");
    }
}
