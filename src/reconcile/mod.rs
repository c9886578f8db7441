//! The reconcile core: validate → resolve credentials → register the operator user → plan → ZIM calls → status.
//!
//! It knows no controller plumbing: the caller passes the object, the resolved credentials and a sink that
//! persists the creation intent, and gets back the new status, the events to emit and when to come back. The
//! same core runs in `zim-operator apply` (once, without a cluster) and in the controller.
//!
//! Steady state costs one existence probe (QueryRoomUserList) per resync and no status change. Attributes are
//! read (QueryRoomAttribute) and written (ModifyRoomAttribute) only when the declared attributes differ from what
//! was last applied in full, or the room was adopted or recreated.

//!
//! The decisions are pure functions ([`decide`]: the next step; [`failure`]: a failure → reason, requeue,
//! category); this module carries them out against a [`ZimApi`].

pub mod conditions;
pub mod decide;
pub mod failure;
pub mod plan;
mod run;
mod types;
pub mod validate;

use std::collections::HashSet;
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tracing::{debug, info, instrument};

use crate::crd::{AppliedState, ZimRoom, condition, reason};
use crate::lock;
use crate::zim::codes;
use crate::zim::types::{CreateRoomAttribute, CreateRoomRequest, ModifyRoomAttributeRequest, UserInfo};
use crate::zim::{Class, Credentials, Terminal, ZimApi, ZimClient, ZimError};

use decide::{AppCheck, CreateOutcome, Creation, CreationEvent, Gate, Next, OnDelete, Step};
pub use failure::{CredentialsProblem, ErrorCategory};
use run::Run;
pub use types::{
    Claim, Cleanup, CleanupError, CredentialsError, IntentSink, NoSink, Note, Outcome, Requeue,
    ResolvedCredentials,
};

/// The default operator user when neither the spec nor the credentials name one.
pub const DEFAULT_FROM_USER_ID: &str = "zim-operator";

/// The reconcile core. One per process; it remembers which operator users are registered.
pub struct Reconciler<Z = ZimClient> {
    zim: Z,
    default_from_user_id: String,
    registered: Mutex<HashSet<(u32, String)>>,
}

impl<Z: ZimApi> Reconciler<Z> {
    /// A reconciler calling ZIM through `zim`, acting as `default_from_user_id` unless told otherwise.
    pub fn new(zim: Z, default_from_user_id: impl Into<String>) -> Self {
        Self {
            zim,
            default_from_user_id: default_from_user_id.into(),
            registered: Mutex::new(HashSet::new()),
        }
    }

    /// The ZIM client.
    pub fn zim(&self) -> &Z {
        &self.zim
    }

    /// Reconciles `room` once, with no other object claiming its room. `now` stamps condition transitions.
    pub async fn reconcile<S: IntentSink>(
        &self,
        room: &ZimRoom,
        credentials: Result<ResolvedCredentials, CredentialsError>,
        sink: &S,
        now: Time,
    ) -> Outcome {
        self.reconcile_claimed(room, credentials, &Claim::Owner, sink, now).await
    }

    /// Reconciles `room` once. `claim` says whether another object owns the same (AppId, roomId) (see
    /// [`decide::winner`]); `now` stamps condition transitions.
    #[instrument(skip_all, fields(room = %room.metadata.name.as_deref().unwrap_or(""), ns = %room.metadata.namespace.as_deref().unwrap_or("")))]
    pub async fn reconcile_claimed<S: IntentSink>(
        &self,
        room: &ZimRoom,
        credentials: Result<ResolvedCredentials, CredentialsError>,
        claim: &Claim,
        sink: &S,
        now: Time,
    ) -> Outcome {
        let mut run = Run::new(room, now);
        match decide::gate(room) {
            Some(Gate::Paused) => {
                run.set(
                    condition::SYNCED,
                    false,
                    reason::RECONCILE_PAUSED,
                    "reconciliation is paused by the zim.zego.im/paused annotation",
                );
                return run.finish(Requeue::OnChange, None);
            }
            Some(Gate::Invalid(problems)) => {
                let category = ErrorCategory::InvalidSpec;
                return run.fail(reason::INVALID_SPEC, &join(&problems), Requeue::OnChange, category);
            }
            Some(Gate::Immutable(changed)) => {
                let (r, category) = (reason::IMMUTABLE_FIELD_CHANGED, ErrorCategory::ImmutableField);
                return run.fail(r, &join(&changed), Requeue::OnChange, category);
            }
            None => {}
        }
        let resolved = match credentials {
            Ok(c) => c,
            Err(e) => return run.mapped(failure::credentials_failure(e.problem()), &e.to_string()),
        };
        let creds = &resolved.credentials;
        if let AppCheck::Changed { recorded } = decide::app_check(&run.status, creds.app_id) {
            let message = format!(
                "the credentials now resolve to AppId {}, but this object's room lives in AppId {recorded}: no call is made to the other app. Restore the credentials of AppId {recorded}; or, to move the room, set spec.deletionPolicy: Orphan, delete this ZimRoom and create it again with the new credentials",
                creds.app_id
            );
            return run.fail(reason::APP_ID_CHANGED, &message, Requeue::OnChange, ErrorCategory::Credentials);
        }
        if let Claim::Conflict { owner } = claim {
            let message = format!(
                "ZIM room {} of AppId {} is owned by ZimRoom {owner}; this object makes no call for it until that one is deleted",
                room.room_id(),
                creds.app_id
            );
            return run.fail(reason::CONFLICT, &message, Requeue::OnChange, ErrorCategory::Conflict);
        }
        let from = room
            .spec
            .from_user_id
            .clone()
            .or_else(|| resolved.from_user_id.clone())
            .unwrap_or_else(|| self.default_from_user_id.clone());

        let room_id = room.room_id();
        let declared_hash = plan::attributes_hash(&room.spec.attributes);
        let mut current = Vec::new();
        let next = match decide::first_step(&run.status, &declared_hash) {
            Step::Create(creation) => Next::Create(creation),
            Step::Probe => match self.zim.room_exists(creds, &room_id).await {
                Ok(exists) => decide::after_probe(exists),
                Err(e) => return run.zim_failure(&e),
            },
            Step::ReadAttributes => {
                if let Err(e) = self.ensure_registered(creds, &from).await {
                    return run.zim_failure(&e);
                }
                match self.zim.query_room_attribute(creds, &room_id, &from).await {
                    Ok(resp) => {
                        current = resp.attributes;
                        decide::after_read(true)
                    }
                    Err(e) if e.class() == Class::NotFound => decide::after_read(false),
                    Err(e) => return run.zim_failure(&self.failed(creds, &from, e)),
                }
            }
        };
        match next {
            Next::Converged => run.succeed(),
            Next::Create(Creation::First) => self.create_first(&mut run, room, creds, &from, sink).await,
            Next::Create(Creation::Recreate) => self.recreate(&mut run, room, creds, &from).await,
            Next::SyncAttributes => self.sync_attributes(&mut run, room, creds, &from, &current).await,
        }
    }

    /// Probes whether the room this object manages still exists (the periodic re-check of a converged room). The
    /// room is the one recorded on the status, else the spec's.
    pub async fn probe(&self, room: &ZimRoom, credentials: &ResolvedCredentials) -> Result<bool, ZimError> {
        let room_id = room.status.as_ref().and_then(|s| s.room_id.clone()).unwrap_or_else(|| room.room_id());
        self.zim.room_exists(&credentials.credentials, &room_id).await
    }

    /// The first creation: the existence probe decides ownership (unless a creation is already pending), the
    /// intent is recorded before a CreateRoom that may create the room, then CreateRoom either way.
    async fn create_first<S: IntentSink>(
        &self,
        run: &mut Run<'_>,
        room: &ZimRoom,
        creds: &Credentials,
        from: &str,
        sink: &S,
    ) -> Outcome {
        let room_id = room.room_id();
        let pending_before = decide::creation_pending(&run.status);
        let handed_over = run.previous_ready_reason() == Some(reason::CONFLICT);
        let probed = if pending_before {
            None
        } else {
            match self.zim.room_exists(creds, &room_id).await {
                Ok(exists) => Some(exists),
                Err(e) => return run.zim_failure(&e),
            }
        };
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
        let decision = decide::first_creation(probed, pending_before, outcome);
        if let Some(adopted) = decision.adopted {
            run.status.adopted = Some(adopted);
        }
        run.status.pending_creation = decision.pending;
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
                    Some(applied_state(room, Some(plan::attributes_hash(&room.spec.attributes))));
                run.status.managed_attribute_keys = plan::declared_keys(&room.spec.attributes);
                run.succeed()
            }
            (Err(_), CreateOutcome::Exists) => self.converge_existing(run, room, creds, from).await,
            (Err(e), _) => run.zim_failure(&self.failed(creds, from, e)),
        }
    }

    /// Creates again a room that was applied before and has vanished (ZEGO destroys empty rooms).
    async fn recreate(&self, run: &mut Run<'_>, room: &ZimRoom, creds: &Credentials, from: &str) -> Outcome {
        let room_id = room.room_id();
        if let Err(e) = self.ensure_registered(creds, from).await {
            return run.zim_failure(&e);
        }
        // Rooms recorded before the AppId was kept on the status live in the app of the current credentials.
        run.status.app_id.get_or_insert(creds.app_id);
        match self.zim.create_room(creds, &create_request(room, from)).await {
            Ok(resp) => {
                let id = resp.envelope.request_id;
                run.status.request_id = Some(id.clone());
                run.status.applied =
                    Some(applied_state(room, Some(plan::attributes_hash(&room.spec.attributes))));
                run.status.managed_attribute_keys = plan::declared_keys(&room.spec.attributes);
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
                run.status.adopted.get_or_insert(false);
                self.converge_existing(run, room, creds, from).await
            }
            Err(e) => run.zim_failure(&self.failed(creds, from, e)),
        }
    }

    /// The room exists but its attributes are unknown: mark it available, then read and converge them.
    async fn converge_existing(
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

    /// A failed call that acted as `from`: a code saying `from` is not registered makes the next attempt
    /// register it again.
    fn failed(&self, creds: &Credentials, from: &str, e: ZimError) -> ZimError {
        if e.code().is_some_and(codes::is_unregistered_operator) {
            self.forget_registration(creds.app_id, from);
        }
        e
    }

    async fn sync_attributes(
        &self,
        run: &mut Run<'_>,
        room: &ZimRoom,
        creds: &Credentials,
        from: &str,
        current: &[crate::zim::types::RoomAttribute],
    ) -> Outcome {
        let declared = &room.spec.attributes;
        let planned = plan::plan_attributes(declared, &run.status.managed_attribute_keys, current);
        let hash = plan::attributes_hash(declared);
        if planned.is_empty() {
            debug!("attributes already as declared");
            run.mark_attributes_applied(declared, hash);
            return run.succeed();
        }
        let request = ModifyRoomAttributeRequest {
            from_user_id: from.to_owned(),
            room_id: room.room_id(),
            attributes: planned.to_items(),
        };
        let failed: Vec<(String, i64)> = match self.zim.modify_room_attribute(creds, &request).await {
            Ok(resp) => {
                run.status.request_id = Some(resp.envelope.request_id.clone());
                resp.err_key_list.iter().map(|e| (e.key.clone(), e.sub_code)).collect()
            }
            // Every key failed: ZIM answers the code with the per-key list.
            Err(e @ ZimError::Api { .. }) if e.class() == Class::Terminal(Terminal::InvalidParams) => {
                if let Some(id) = e.request_id() {
                    run.status.request_id = Some(id.to_owned());
                }
                planned.to_items().into_iter().map(|i| (i.key, e.code().unwrap_or_default())).collect()
            }
            Err(e) => return run.zim_failure(&e),
        };
        if failed.is_empty() {
            run.mark_attributes_applied(declared, hash);
            return run.succeed();
        }
        // Partial failure. Owned are only the keys actually written: a declared key whose write failed is not
        // owned unless it was before, and a key whose deletion failed stays owned. The fingerprint stays unapplied
        // so a later attempt retries; refusals for good retry slowly.
        let previously: HashSet<&str> =
            run.status.managed_attribute_keys.iter().map(String::as_str).collect();
        let failed_keys: HashSet<&str> = failed.iter().map(|(k, _)| k.as_str()).collect();
        let mut owned: Vec<String> = plan::declared_keys(declared)
            .into_iter()
            .filter(|k| !failed_keys.contains(k.as_str()) || previously.contains(k.as_str()))
            .collect();
        owned.extend(failed.iter().filter(|(k, _)| planned.delete.contains(k)).map(|(k, _)| k.clone()));
        owned.sort();
        owned.dedup();
        run.status.managed_attribute_keys = owned;
        let refused = failed.iter().all(|(_, code)| matches!(codes::classify(*code), Class::Terminal(_)));
        let list: Vec<String> = failed.iter().map(|(k, c)| format!("{k} (code {c})")).collect();
        let mut message = format!(
            "ModifyRoomAttribute did not apply {} of {} attribute changes: {}",
            failed.len(),
            planned.to_items().len(),
            list.join(", ")
        );
        let requeue = if refused {
            message.push_str(
                "; ZIM refuses them (a room holds at most 20 attributes, clients' keys included, and 5120 bytes of values): change spec.attributes or free keys in the room",
            );
            Requeue::Slow
        } else {
            Requeue::Backoff { slow: false }
        };
        run.fail_keep_ready(&message, requeue, ErrorCategory::Attributes)
    }

    async fn ensure_registered(&self, creds: &Credentials, user: &str) -> Result<(), ZimError> {
        let key = (creds.app_id, user.to_owned());
        if lock(&self.registered).contains(&key) {
            return Ok(());
        }
        let resp = self
            .zim
            .user_register(creds, &[UserInfo { user_id: user.to_owned(), ..Default::default() }])
            .await?;
        if let Some(e) = resp.error_list.first() {
            return Err(ZimError::Api {
                action: crate::zim::Action::UserRegister,
                code: e.sub_code,
                message: format!("registering {}: {}", e.user_id, e.sub_message),
                request_id: resp.envelope.request_id.clone(),
            });
        }
        lock(&self.registered).insert(key);
        Ok(())
    }

    fn forget_registration(&self, app_id: u32, user: &str) {
        lock(&self.registered).remove(&(app_id, user.to_owned()));
    }

    /// Deletion, with no other object claiming the room: see [`Reconciler::cleanup_claimed`].
    pub async fn cleanup(
        &self,
        room: &ZimRoom,
        credentials: Result<&ResolvedCredentials, String>,
    ) -> Result<Cleanup, CleanupError> {
        self.cleanup_claimed(room, credentials, None).await
    }

    /// Deletion: destroys the room the object owns and the spec names (deletionPolicy Delete, the default for a
    /// room it created) or leaves it (Orphan; the default for adopted rooms; always when `other`, another object,
    /// still declares the room). "No such room" is success. `credentials` are those of the app the room lives in
    /// (the caller may pass the last good ones it remembers).
    #[instrument(skip_all, fields(room = %room.metadata.name.as_deref().unwrap_or("")))]
    pub async fn cleanup_claimed(
        &self,
        room: &ZimRoom,
        credentials: Result<&ResolvedCredentials, String>,
        other: Option<&str>,
    ) -> Result<Cleanup, CleanupError> {
        let room_id = match decide::on_delete(room, other) {
            OnDelete::Nothing => return Ok(Cleanup::NeverCreated),
            OnDelete::Orphan { why } => return Ok(Cleanup::Orphaned { why }),
            OnDelete::Destroy { room_id } => room_id,
        };
        let creds =
            credentials.map_err(|reason| CleanupError::NoCredentials { room_id: room_id.clone(), reason })?;
        match self.zim.destroy_room(&creds.credentials, &room_id, None).await {
            Ok(resp) => Ok(Cleanup::Destroyed { request_id: resp.envelope.request_id }),
            Err(e) if e.class() == Class::NotFound => Ok(Cleanup::AlreadyGone),
            Err(source) => Err(CleanupError::Zim { room_id, source }),
        }
    }
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

fn join(errors: &[validate::FieldError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}
