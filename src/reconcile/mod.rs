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

use crate::crd::{AppliedState, DeletionPolicy, ZimRoom, condition, reason};
use crate::lock;
use crate::zim::codes;
use crate::zim::types::{CreateRoomAttribute, CreateRoomRequest, ModifyRoomAttributeRequest, UserInfo};
use crate::zim::{Class, Credentials, Terminal, ZimApi, ZimClient, ZimError};

use decide::{Creation, ExistsEvent, Gate, Next, Step};
pub use failure::{CredentialsProblem, ErrorCategory};
use run::Run;
pub use types::{
    Cleanup, CleanupError, CredentialsError, IntentSink, NoSink, Note, Outcome, Requeue, ResolvedCredentials,
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

    /// Reconciles `room` once. `now` stamps condition transitions.
    #[instrument(skip_all, fields(room = %room.metadata.name.as_deref().unwrap_or(""), ns = %room.metadata.namespace.as_deref().unwrap_or("")))]
    pub async fn reconcile<S: IntentSink>(
        &self,
        room: &ZimRoom,
        credentials: Result<ResolvedCredentials, CredentialsError>,
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
                    Err(e) => return run.zim_failure(&e),
                }
            }
        };
        match next {
            Next::Converged => run.succeed(),
            Next::Create(creation) => self.create(&mut run, room, creds, &from, sink, creation).await,
            Next::SyncAttributes => self.sync_attributes(&mut run, room, creds, &from, &current).await,
        }
    }

    /// Probes whether the room this object manages still exists (the periodic re-check of a converged room). The
    /// room is the one recorded on the status, else the spec's.
    pub async fn probe(&self, room: &ZimRoom, credentials: &ResolvedCredentials) -> Result<bool, ZimError> {
        let room_id = room.status.as_ref().and_then(|s| s.room_id.clone()).unwrap_or_else(|| room.room_id());
        self.zim.room_exists(&credentials.credentials, &room_id).await
    }

    async fn create<S: IntentSink>(
        &self,
        run: &mut Run<'_>,
        room: &ZimRoom,
        creds: &Credentials,
        from: &str,
        sink: &S,
        creation: Creation,
    ) -> Outcome {
        let room_id = room.room_id();
        // CreateRoom, QueryRoomAttribute and ModifyRoomAttribute need a registered FromUserId; the existence probe
        // does not, so a converged room never costs a registration.
        if let Err(e) = self.ensure_registered(creds, from).await {
            return run.zim_failure(&e);
        }
        let intent_before = !decide::needs_intent(&run.status, &room_id);
        if !intent_before {
            run.status.room_id = Some(room_id.clone());
            run.set(condition::READY, false, reason::CREATING, format!("creating ZIM room {room_id}"));
            if let Err(e) = sink.persist_intent(&run.status).await {
                return run.fail_keep_ready(
                    &format!("could not record the creation intent: {e}"),
                    Requeue::Backoff { slow: false },
                    ErrorCategory::Status,
                );
            }
        }
        let request = CreateRoomRequest {
            from_user_id: from.to_owned(),
            room_id: room_id.clone(),
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
        };
        let applied = |hash: Option<String>| AppliedState {
            room_id: room_id.clone(),
            room_name: room.spec.room_name.clone(),
            destroy_delay_time: room.spec.destroy_delay_time,
            attributes_hash: hash,
        };
        match self.zim.create_room(creds, &request).await {
            Ok(resp) => {
                run.status.request_id = Some(resp.envelope.request_id.clone());
                run.status.applied = Some(applied(Some(plan::attributes_hash(&room.spec.attributes))));
                run.status.managed_attribute_keys = plan::declared_keys(&room.spec.attributes);
                if run.status.adopted.is_none() {
                    run.status.adopted = Some(false);
                }
                let (event, message) = match creation {
                    Creation::First => (
                        "Created",
                        format!("created ZIM room {room_id} (request id {})", resp.envelope.request_id),
                    ),
                    Creation::Recreate => (
                        "Recreated",
                        format!(
                            "ZIM room {room_id} had been destroyed (empty past its destroyDelayTime); created it again (request id {})",
                            resp.envelope.request_id
                        ),
                    ),
                };
                info!(room_id, event, "room created");
                run.note(false, event, message);
                run.succeed()
            }
            Err(e) if e.code() == Some(codes::ROOM_EXISTS) => {
                if let Some(id) = e.request_id() {
                    run.status.request_id = Some(id.to_owned());
                }
                let decision = decide::on_room_exists(creation, intent_before, run.status.adopted);
                if let Some(adopted) = decision.adopted {
                    run.status.adopted = Some(adopted);
                }
                match decision.event {
                    Some(ExistsEvent::Adopted) => run.note(
                        false,
                        "Adopted",
                        format!("ZIM room {room_id} already existed; adopted it (deletionPolicy defaults to Orphan)"),
                    ),
                    Some(ExistsEvent::CreatedEarlier) => run.note(
                        false,
                        "Created",
                        format!("ZIM room {room_id} exists from an earlier attempt of this object"),
                    ),
                    None => {}
                }
                run.status.applied = Some(applied(None));
                // Its attributes are unknown: read and converge them.
                match self.zim.query_room_attribute(creds, &room_id, from).await {
                    Ok(resp) => self.sync_attributes(run, room, creds, from, &resp.attributes).await,
                    Err(e) => run.zim_failure(&e),
                }
            }
            Err(e) => {
                if e.code().is_some_and(codes::is_unregistered_operator) {
                    self.forget_registration(creds.app_id, from);
                }
                run.zim_failure(&e)
            }
        }
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
        // Partial failure: keep owning the keys whose deletion failed, leave the fingerprint unapplied so the next
        // attempt retries, and say which keys failed.
        let mut owned = plan::declared_keys(declared);
        owned.extend(failed.iter().filter(|(k, _)| planned.delete.contains(k)).map(|(k, _)| k.clone()));
        owned.sort();
        owned.dedup();
        run.status.managed_attribute_keys = owned;
        let list: Vec<String> = failed.iter().map(|(k, c)| format!("{k} (code {c})")).collect();
        run.fail_keep_ready(
            &format!(
                "ModifyRoomAttribute did not apply {} of {} attribute changes: {}",
                failed.len(),
                planned.to_items().len(),
                list.join(", ")
            ),
            Requeue::Backoff { slow: false },
            ErrorCategory::Attributes,
        )
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

    /// Deletion: destroys the room (deletionPolicy Delete) or leaves it (Orphan; the default for adopted rooms).
    /// "No such room" is success. `credentials` may be the last good ones remembered by the caller.
    #[instrument(skip_all, fields(room = %room.metadata.name.as_deref().unwrap_or("")))]
    pub async fn cleanup(
        &self,
        room: &ZimRoom,
        credentials: Result<&ResolvedCredentials, String>,
    ) -> Result<Cleanup, CleanupError> {
        let status = room.status.clone().unwrap_or_default();
        let policy = room.spec.deletion_policy.unwrap_or(if status.adopted == Some(true) {
            DeletionPolicy::Orphan
        } else {
            DeletionPolicy::Delete
        });
        if policy == DeletionPolicy::Orphan {
            return Ok(Cleanup::Orphaned);
        }
        let Some(room_id) = status.room_id.clone() else { return Ok(Cleanup::NeverCreated) };
        let creds =
            credentials.map_err(|reason| CleanupError::NoCredentials { room_id: room_id.clone(), reason })?;
        match self.zim.destroy_room(&creds.credentials, &room_id, None).await {
            Ok(resp) => Ok(Cleanup::Destroyed { request_id: resp.envelope.request_id }),
            Err(e) if e.class() == Class::NotFound => Ok(Cleanup::AlreadyGone),
            Err(source) => Err(CleanupError::Zim { room_id, source }),
        }
    }
}

fn join(errors: &[validate::FieldError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}
