//! Creation: the first CreateRoom of an object (the ownership probe, the recorded intent, the decision of
//! [`decide::first_creation`]), recreating a room that vanished, and converging a room found to exist.

use tracing::info;

use crate::crd::{AppliedState, ZimRoom, condition, reason};
use crate::zim::codes;
use crate::zim::types::{CreateRoomAttribute, CreateRoomRequest, RoomProbe};
use crate::zim::{Credentials, ZimApi};

use super::decide::{self, CreateOutcome, CreationEvent};
use super::failure::ErrorCategory;
use super::run::Run;
use super::{IntentSink, Outcome, Reconciler, Requeue, plan};

impl<Z: ZimApi> Reconciler<Z> {
    /// The first creation: the existence probe decides ownership (unless a creation is already pending), the
    /// intent is recorded before a CreateRoom that may create the room, then CreateRoom either way.
    pub(super) async fn create_first<S: IntentSink>(
        &self,
        run: &mut Run<'_>,
        room: &ZimRoom,
        creds: &Credentials,
        from: &str,
        adopt: &Result<(), String>,
        sink: &S,
    ) -> Outcome {
        let room_id = room.room_id();
        let pending_before = decide::creation_pending(&run.status);
        let handed_over = run.previous_ready_reason() == Some(reason::CONFLICT);
        let probed = if pending_before {
            None
        } else {
            match self.zim.probe_room(creds, &room_id).await {
                Ok(RoomProbe::Exists { members }) => {
                    run.observe_members(members);
                    Some(true)
                }
                Ok(RoomProbe::Missing) => Some(false),
                Err(e) => return run.zim_failure(&e),
            }
        };
        if let Some(refused) = decide::before_first_create(probed, adopt.is_ok()) {
            return run.refuse(reason::FORBIDDEN_BY_POLICY, &refused.message(&room_id, policy_why(adopt)));
        }
        run.status.room_id = Some(room_id.clone());
        run.status.app_id = Some(creds.app_id);
        if probed == Some(true) {
            // Someone else's room: adopted whatever CreateRoom says next, even if it fails.
            run.status.adopted = Some(true);
        }
        // CreateRoom, QueryRoomAttribute and ModifyRoomAttribute need a registered FromUserId; the existence probe
        // does not, so a converged room never costs a registration.
        if let Err(e) = self.ensure_registered(creds, from).await {
            return run.zim_failure(&e);
        }
        if probed == Some(false) {
            // From here on the room may be ours: record that before asking, so a crash cannot lose it.
            run.status.pending_creation = true;
            run.set(condition::READY, false, reason::CREATING, format!("creating ZIM room {room_id}"));
            if let Err(e) = sink.persist_intent(&run.status).await {
                run.status.pending_creation = false;
                return run.fail_keep_ready(
                    &format!("could not record the creation intent: {e}"),
                    Requeue::Backoff { slow: false },
                    ErrorCategory::Status,
                );
            }
        }
        let result = self.zim.create_room(creds, &create_request(room, from)).await;
        let outcome = match &result {
            Ok(_) => CreateOutcome::Created,
            Err(e) if e.code() == Some(codes::ROOM_EXISTS) => CreateOutcome::Exists,
            Err(e) if e.outcome_known() => CreateOutcome::Refused,
            Err(_) => CreateOutcome::Unknown,
        };
        let decision = decide::first_creation(probed, pending_before, outcome, adopt.is_ok());
        if let Some(refused) = decision.refused {
            // Created by someone else between the probe and CreateRoom: not ours, and not adopted.
            run.status.pending_creation = false;
            run.status.adopted = None;
            return run.refuse(reason::FORBIDDEN_BY_POLICY, &refused.message(&room_id, policy_why(adopt)));
        }
        if let Some(adopted) = decision.adopted {
            run.status.adopted = Some(adopted);
        }
        run.status.pending_creation = decision.pending;
        if result.is_ok() {
            // A room CreateRoom just made is empty.
            run.observe_members(0);
        }
        let request_id = match &result {
            Ok(resp) => Some(resp.envelope.request_id.clone()),
            Err(e) => e.request_id().map(str::to_owned),
        };
        if let Some(id) = &request_id {
            run.status.request_id = Some(id.clone());
        }
        let id = request_id.unwrap_or_default();
        match decision.event {
            Some(CreationEvent::Created) => {
                info!(room_id, "room created");
                run.note(false, "Created", format!("created ZIM room {room_id} (request id {id})"));
            }
            Some(CreationEvent::CreatedEarlier) => run.note(
                false,
                "Created",
                format!("ZIM room {room_id} exists from an earlier attempt of this object (request id {id})"),
            ),
            Some(CreationEvent::Adopted) if handed_over => run.note(
                false,
                "Adopted",
                format!("ZIM room {room_id} was handed over by the ZimRoom that owned it; adopted it (deletionPolicy defaults to Orphan)"),
            ),
            Some(CreationEvent::Adopted) => run.note(
                false,
                "Adopted",
                format!("ZIM room {room_id} already existed; adopted it (deletionPolicy defaults to Orphan)"),
            ),
            None => {}
        }
        match (result, outcome) {
            (Ok(_), _) => {
                run.status.applied =
                    Some(applied_state(room, Some(plan::attributes_hash(&room.spec.enforced_attributes()))));
                run.status.managed_attribute_keys = plan::declared_keys(&room.spec.enforced_attributes());
                run.succeed()
            }
            (Err(_), CreateOutcome::Exists) => self.converge_existing(run, room, creds, from).await,
            (Err(e), _) => run.zim_failure(&self.failed(creds, from, e)),
        }
    }

    /// Creates again a room that was applied before and has vanished (ZEGO destroys empty rooms).
    pub(super) async fn recreate(
        &self,
        run: &mut Run<'_>,
        room: &ZimRoom,
        creds: &Credentials,
        from: &str,
        adopt: &Result<(), String>,
    ) -> Outcome {
        let room_id = room.room_id();
        if let Err(e) = self.ensure_registered(creds, from).await {
            return run.zim_failure(&e);
        }
        // Rooms recorded before the AppId was kept on the status live in the app of the current credentials.
        run.status.app_id.get_or_insert(creds.app_id);
        match self.zim.create_room(creds, &create_request(room, from)).await {
            Ok(resp) => {
                let id = resp.envelope.request_id;
                run.observe_members(0);
                run.status.request_id = Some(id.clone());
                run.status.applied =
                    Some(applied_state(room, Some(plan::attributes_hash(&room.spec.enforced_attributes()))));
                run.status.managed_attribute_keys = plan::declared_keys(&room.spec.enforced_attributes());
                run.status.adopted.get_or_insert(false);
                info!(room_id, "room recreated");
                run.note(
                    false,
                    "Recreated",
                    format!("ZIM room {room_id} had been destroyed (empty past its destroyDelayTime); created it again (request id {id})"),
                );
                run.succeed()
            }
            Err(e) if e.code() == Some(codes::ROOM_EXISTS) => {
                if let Some(id) = e.request_id() {
                    run.status.request_id = Some(id.to_owned());
                }
                // Gone at the probe, there now: somebody else created it in between. It is theirs.
                run.status.adopted = Some(true);
                if let Some(refused) = decide::recreated_by_other(adopt.is_ok()) {
                    return run
                        .refuse(reason::FORBIDDEN_BY_POLICY, &refused.message(&room_id, policy_why(adopt)));
                }
                run.note(
                    false,
                    "Adopted",
                    format!("ZIM room {room_id} was created by someone else after it vanished; adopted it (deletionPolicy defaults to Orphan)"),
                );
                self.converge_existing(run, room, creds, from).await
            }
            Err(e) => run.zim_failure(&self.failed(creds, from, e)),
        }
    }

    /// The room exists but its attributes are unknown: mark it available, then read and converge them.
    pub(super) async fn converge_existing(
        &self,
        run: &mut Run<'_>,
        room: &ZimRoom,
        creds: &Credentials,
        from: &str,
    ) -> Outcome {
        run.status.applied = Some(applied_state(room, None));
        run.available();
        match self.zim.query_room_attribute(creds, &room.room_id(), from).await {
            Ok(resp) => self.sync_attributes(run, room, creds, from, &resp.attributes).await,
            Err(e) => run.zim_failure(&self.failed(creds, from, e)),
        }
    }
}

/// Why the policy refuses (empty when it allows).
fn policy_why(rule: &Result<(), String>) -> &str {
    rule.as_ref().err().map_or("", String::as_str)
}

/// The CreateRoom request for `room`, acting as `from`.
fn create_request(room: &ZimRoom, from: &str) -> CreateRoomRequest {
    CreateRoomRequest {
        from_user_id: from.to_owned(),
        room_id: room.room_id(),
        room_name: room.spec.room_name.clone(),
        destroy_delay_time: Some(room.spec.destroy_delay_time),
        attributes: room
            .spec
            .attributes
            .iter()
            .map(|a| CreateRoomAttribute {
                key: a.key.clone(),
                value: a.value.clone(),
                auto_delete: u8::from(a.auto_delete),
            })
            .collect(),
    }
}

/// What was applied to ZIM for `room`, with the attributes' fingerprint when they were applied in full.
fn applied_state(room: &ZimRoom, attributes_hash: Option<String>) -> AppliedState {
    AppliedState {
        room_id: room.room_id(),
        room_name: room.spec.room_name.clone(),
        destroy_delay_time: room.spec.destroy_delay_time,
        attributes_hash,
    }
}
