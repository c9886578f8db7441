//! The reconcile core: validate → resolve credentials → register the operator user → plan → ZIM calls → status.
//!
//! It knows no controller plumbing: the caller passes the object, the resolved credentials and a sink that
//! persists the creation intent, and gets back the new status, the events to emit and when to come back. The
//! same core runs in `zim-operator apply` (once, without a cluster) and in the controller.
//!
//! Steady state costs one existence probe (QueryRoomUserList) per resync and no status change. Attributes are
//! read (QueryRoomAttribute) and written (ModifyRoomAttribute) only when the declared attributes differ from what
//! was last applied in full, or the room was adopted or recreated.

pub mod conditions;
pub mod plan;
pub mod validate;

use std::collections::HashSet;
use std::future::Future;
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tracing::{debug, info, instrument};

use crate::crd::{AppliedState, DeletionPolicy, ZimRoom, ZimRoomStatus, condition, reason};
use crate::zim::codes;
use crate::zim::types::{CreateRoomAttribute, CreateRoomRequest, ModifyRoomAttributeRequest, UserInfo};
use crate::zim::{Class, Credentials, Terminal, ZimApi, ZimClient, ZimError};

/// The default operator user when neither the spec nor the credentials name one.
pub const DEFAULT_FROM_USER_ID: &str = "zim-operator";

/// Credentials resolved for one object.
#[derive(Clone, Debug)]
pub struct ResolvedCredentials {
    /// AppId and server secret.
    pub credentials: Credentials,
    /// The `fromUserId` the credentials carry, if any.
    pub from_user_id: Option<String>,
}

/// Why credentials could not be resolved.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialsError {
    /// The Secret (or other source) does not exist.
    #[error("credentials {0} not found")]
    NotFound(String),
    /// The source exists but is unusable.
    #[error("credentials {source_name} are invalid: {reason}")]
    Invalid {
        /// Where the credentials came from.
        source_name: String,
        /// What is wrong (never the secret).
        reason: String,
    },
}

/// Persists the creation intent before the first CreateRoom (the controller patches the status; `apply` keeps it
/// in memory).
pub trait IntentSink: Send + Sync {
    /// Writes `status`; an error stops the reconcile before any CreateRoom.
    fn persist_intent(&self, status: &ZimRoomStatus) -> impl Future<Output = Result<(), String>> + Send;
}

/// A sink that keeps nothing (for `apply`, where the status is printed at the end).
pub struct NoSink;

impl IntentSink for NoSink {
    async fn persist_intent(&self, _status: &ZimRoomStatus) -> Result<(), String> {
        Ok(())
    }
}

/// When to reconcile the object again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// Converged: after the resync period.
    Resync,
    /// A retryable failure: per-object exponential backoff (`slow` for unknown codes).
    Backoff {
        /// Use the slow backoff schedule.
        slow: bool,
    },
    /// A terminal failure: retry slowly (hours), or at once on a spec or Secret change.
    Slow,
    /// Nothing will change until the object does (invalid spec, paused).
    OnChange,
}

/// A Kubernetes event to emit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// Warning (true) or Normal.
    pub warning: bool,
    /// Event reason, e.g. `Created`.
    pub reason: String,
    /// Human-readable message (never a secret).
    pub message: String,
}

/// The result of one reconcile.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The new status.
    pub status: ZimRoomStatus,
    /// Events to emit.
    pub notes: Vec<Note>,
    /// When to come back.
    pub requeue: Requeue,
    /// A fixed error category for metrics (`None` on success).
    pub error_category: Option<&'static str>,
}

/// What deletion did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cleanup {
    /// DestroyRoom succeeded.
    Destroyed {
        /// Its RequestId.
        request_id: String,
    },
    /// The room did not exist any more (660300001).
    AlreadyGone,
    /// The room was left in ZIM (deletionPolicy Orphan, explicit or by adoption).
    Orphaned,
    /// No CreateRoom was ever attempted for this object: nothing to destroy.
    NeverCreated,
}

/// Why deletion could not finish yet.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// No usable credentials: not in the object's Secret, and none remembered.
    #[error(
        "cannot destroy room {room_id}: no credentials ({reason}); restore the credentials Secret, or set spec.deletionPolicy: Orphan to leave the room and finish deletion"
    )]
    NoCredentials {
        /// The room.
        room_id: String,
        /// Why the credentials are missing.
        reason: String,
    },
    /// DestroyRoom failed.
    #[error("DestroyRoom for room {room_id} failed: {source}")]
    Zim {
        /// The room.
        room_id: String,
        /// The failure.
        source: ZimError,
    },
}

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
        if room.is_paused() {
            run.set(
                condition::SYNCED,
                false,
                reason::RECONCILE_PAUSED,
                "reconciliation is paused by the zim.zego.im/paused annotation",
            );
            return run.finish(Requeue::OnChange, None);
        }
        let name = room.metadata.name.as_deref().unwrap_or_default();
        let problems = validate::validate_spec(name, &room.spec);
        if !problems.is_empty() {
            return run.fail(reason::INVALID_SPEC, &join(&problems), Requeue::OnChange, "invalid_spec");
        }
        let changed = validate::immutable_changes(room);
        if !changed.is_empty() {
            return run.fail(
                reason::IMMUTABLE_FIELD_CHANGED,
                &join(&changed),
                Requeue::OnChange,
                "immutable_field",
            );
        }
        let resolved = match credentials {
            Ok(c) => c,
            Err(e) => {
                let r = match e {
                    CredentialsError::NotFound(_) => reason::CREDENTIALS_NOT_FOUND,
                    CredentialsError::Invalid { .. } => reason::CREDENTIALS_INVALID,
                };
                return run.fail(r, &e.to_string(), Requeue::Backoff { slow: false }, "credentials");
            }
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
        let applied = run.status.applied.clone();
        match applied {
            Some(applied) if applied.attributes_hash.as_deref() == Some(declared_hash.as_str()) => {
                // Converged before: one existence probe.
                match self.zim.room_exists(creds, &room_id).await {
                    Ok(true) => run.succeed(),
                    Ok(false) => self.create(&mut run, room, creds, &from, sink, Creation::Recreate).await,
                    Err(e) => run.zim_failure(&e),
                }
            }
            Some(_) => {
                // The declared attributes changed since they were last applied: read them (this also probes).
                if let Err(e) = self.ensure_registered(creds, &from).await {
                    return run.zim_failure(&e);
                }
                match self.zim.query_room_attribute(creds, &room_id, &from).await {
                    Ok(resp) => self.sync_attributes(&mut run, room, creds, &from, &resp.attributes).await,
                    Err(e) if e.class() == Class::NotFound => {
                        self.create(&mut run, room, creds, &from, sink, Creation::Recreate).await
                    }
                    Err(e) => run.zim_failure(&e),
                }
            }
            None => self.create(&mut run, room, creds, &from, sink, Creation::First).await,
        }
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
        // An intent recorded by an earlier reconcile means any room under this ID may be our own creation whose
        // outcome was lost (a crash between the call and the status write).
        let intent_before = run.status.room_id.as_deref() == Some(room_id.as_str());
        if !intent_before {
            run.status.room_id = Some(room_id.clone());
            run.set(condition::READY, false, reason::CREATING, format!("creating ZIM room {room_id}"));
            if let Err(e) = sink.persist_intent(&run.status).await {
                return run.fail_keep_ready(
                    &format!("could not record the creation intent: {e}"),
                    Requeue::Backoff { slow: false },
                    "status",
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
                let adopted = matches!(creation, Creation::First) && !intent_before;
                if run.status.adopted.is_none() || adopted {
                    run.status.adopted = Some(adopted);
                }
                if adopted {
                    run.note(false, "Adopted", format!("ZIM room {room_id} already existed; adopted it (deletionPolicy defaults to Orphan)"));
                } else if matches!(creation, Creation::First) {
                    run.note(
                        false,
                        "Created",
                        format!("ZIM room {room_id} exists from an earlier attempt of this object"),
                    );
                }
                run.status.applied = Some(applied(None));
                // Its attributes are unknown: read and converge them.
                match self.zim.query_room_attribute(creds, &room_id, from).await {
                    Ok(resp) => self.sync_attributes(run, room, creds, from, &resp.attributes).await,
                    Err(e) => run.zim_failure(&e),
                }
            }
            Err(e) => {
                if matches!(e.code(), Some(codes::OPERATOR_NOT_REGISTERED | 660200001 | 51102)) {
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
            "attributes",
        )
    }

    async fn ensure_registered(&self, creds: &Credentials, user: &str) -> Result<(), ZimError> {
        let key = (creds.app_id, user.to_owned());
        if self.registered.lock().unwrap_or_else(|p| p.into_inner()).contains(&key) {
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
        self.registered.lock().unwrap_or_else(|p| p.into_inner()).insert(key);
        Ok(())
    }

    fn forget_registration(&self, app_id: u32, user: &str) {
        self.registered.lock().unwrap_or_else(|p| p.into_inner()).remove(&(app_id, user.to_owned()));
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

#[derive(Clone, Copy)]
enum Creation {
    First,
    Recreate,
}

fn join(errors: &[validate::FieldError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// The state of one reconcile run: the status being built and the events gathered.
struct Run<'a> {
    room: &'a ZimRoom,
    status: ZimRoomStatus,
    notes: Vec<Note>,
    now: Time,
    was_ready: bool,
}

impl<'a> Run<'a> {
    fn new(room: &'a ZimRoom, now: Time) -> Self {
        let status = room.status.clone().unwrap_or_default();
        let was_ready = conditions::is_true(&status.conditions, condition::READY);
        Self { room, status, notes: Vec::new(), now, was_ready }
    }

    fn set(&mut self, type_: &str, ok: bool, reason: &str, message: impl Into<String>) {
        let generation = self.room.metadata.generation;
        conditions::set(&mut self.status.conditions, type_, ok, reason, message, generation, &self.now);
    }

    fn note(&mut self, warning: bool, reason: &str, message: String) {
        self.notes.push(Note { warning, reason: reason.to_owned(), message });
    }

    /// The outcome of the run; the status and events move out of it.
    fn finish(&mut self, requeue: Requeue, error_category: Option<&'static str>) -> Outcome {
        self.status.observed_generation = self.room.metadata.generation;
        Outcome {
            status: std::mem::take(&mut self.status),
            notes: std::mem::take(&mut self.notes),
            requeue,
            error_category,
        }
    }

    fn mark_attributes_applied(&mut self, declared: &[crate::crd::RoomAttribute], hash: String) {
        self.status.managed_attribute_keys = plan::declared_keys(declared);
        if let Some(applied) = self.status.applied.as_mut() {
            applied.attributes_hash = Some(hash);
        }
    }

    fn succeed(&mut self) -> Outcome {
        // Messages are never empty: Kubernetes 1.20's server-side apply turns "" into null, which the schema refuses.
        let room_id = self.status.room_id.clone().unwrap_or_else(|| self.room.room_id());
        self.set(condition::READY, true, reason::AVAILABLE, format!("ZIM room {room_id} exists"));
        self.set(
            condition::SYNCED,
            true,
            reason::RECONCILE_SUCCESS,
            "the room and its attributes are as declared",
        );
        self.finish(Requeue::Resync, None)
    }

    /// Ready=False with `reason`, Synced=False, a Warning event.
    fn fail(
        &mut self,
        ready_reason: &str,
        message: &str,
        requeue: Requeue,
        category: &'static str,
    ) -> Outcome {
        self.set(condition::READY, false, ready_reason, message);
        self.set(condition::SYNCED, false, reason::RECONCILE_ERROR, message);
        self.note(true, ready_reason, message.to_owned());
        self.finish(requeue, Some(category))
    }

    /// Synced=False; Ready untouched (the room's existence is not in question).
    fn fail_keep_ready(&mut self, message: &str, requeue: Requeue, category: &'static str) -> Outcome {
        self.set(condition::SYNCED, false, reason::RECONCILE_ERROR, message);
        self.note(true, reason::RECONCILE_ERROR, message.to_owned());
        self.finish(requeue, Some(category))
    }

    /// Maps a ZIM failure to conditions and a requeue, by its class.
    fn zim_failure(&mut self, e: &ZimError) -> Outcome {
        let message = e.to_string();
        let class = e.class();
        let (ready_reason, requeue) = match class {
            Class::Throttled => (reason::THROTTLED, Requeue::Backoff { slow: false }),
            Class::Unknown => (reason::API_UNAVAILABLE, Requeue::Backoff { slow: true }),
            Class::Transient | Class::NotFound | Class::Exists | Class::Ok => {
                (reason::API_UNAVAILABLE, Requeue::Backoff { slow: false })
            }
            Class::Terminal(Terminal::Auth) => (reason::AUTH_FAILED, Requeue::Slow),
            Class::Terminal(Terminal::Quota) => (reason::QUOTA_EXCEEDED, Requeue::Slow),
            Class::Terminal(Terminal::InvalidParams) => (reason::INVALID_SPEC, Requeue::Slow),
        };
        let message = match class {
            Class::Terminal(Terminal::Auth) if e.code() == Some(codes::SIGNATURE_EXPIRED) => {
                format!(
                    "{message}; the operator's clock differs from ZEGO's by more than 10 minutes: check NTP"
                )
            }
            Class::Terminal(Terminal::Auth) => {
                format!("{message}; check the AppId and server secret, and that ZIM is enabled for the app")
            }
            Class::Terminal(Terminal::Quota) => {
                format!("{message}; the app's room quota is used up: destroy rooms or raise the plan's limit")
            }
            _ => message,
        };
        // A room already known to exist stays Ready through transient trouble; terminal problems are shown.
        let keep_ready = self.was_ready && class.is_retryable();
        if !keep_ready {
            self.set(condition::READY, false, ready_reason, message.clone());
        }
        self.set(condition::SYNCED, false, reason::RECONCILE_ERROR, message.clone());
        self.note(true, if keep_ready { reason::RECONCILE_ERROR } else { ready_reason }, message);
        self.finish(requeue, Some(class.label()))
    }
}
