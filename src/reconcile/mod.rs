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

mod attributes;
pub mod conditions;
mod create;
pub mod decide;
pub mod failure;
mod observe;
pub mod plan;
pub mod policy;
pub mod proven;
pub mod reasons;
mod run;
pub mod seal;
#[cfg(test)]
mod tests;
mod types;
pub mod validate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tracing::instrument;

use crate::crd::{ZimRoom, ZimRoomStatus, condition, reason};
use crate::lock;
use crate::zim::codes;
use crate::zim::types::{RoomProbe, SendRoomMessageRequest, UserInfo};
use crate::zim::{Action, Class, Credentials, ZimApi, ZimClient, ZimError};

use decide::occupied::{self, DEFAULT_DRAIN_MESSAGE, DeleteStep};
use decide::{AppCheck, Creation, Gate, Next, OnDelete, Step};

/// User IDs per KickoutRoomUser call: ZEGO's limit.
const KICKOUT_BATCH: usize = 50;
/// The `CustomReason` of a drain's KickoutRoomUser calls (what the removed clients are told).
const KICKOUT_REASON: &str = "the room is closing";
pub use failure::CredentialsProblem;
pub use policy::{DefaultCredentialsScope, Policy};
pub use reasons::{Blame, ErrorCategory, NotReadyCategory, Owner};
use run::Run;
pub use types::{
    Claim, ClaimSource, Cleanup, CleanupError, CredentialsError, DeleteFacts, Facts, IntentSink, NoSink,
    Note, Outcome, Requeue, ResolvedCredentials,
};

/// One registration in flight (see [`Reconciler::ensure_registered`]).
type Flight = Arc<tokio::sync::Mutex<()>>;

/// The default operator user when neither the spec nor the credentials name one.
pub const DEFAULT_FROM_USER_ID: &str = "zim-operator";

/// The reason of the warning event sent at each reconcile of a ZimRoom whose Namespace has a policy switch that
/// is neither `allow` nor `deny` (it counts as `deny`; see [`policy`]).
pub const INVALID_POLICY_EVENT: &str = "InvalidPolicy";

/// How long a registration is remembered after its last use. Forgetting one costs one more UserRegister, which
/// ZIM answers "already exists" (treated as success); remembering every (AppId, user) forever would let apps that
/// come and go grow the set without bound.
pub const REGISTRATION_MEMORY: Duration = Duration::from_secs(3600);

/// The operator users known to be registered, per (AppId, user), with when each was last used; and the
/// registrations in flight.
#[derive(Default)]
struct Registrations {
    known: HashMap<(u32, String), Instant>,
    /// Sweep the known ones when there are this many (twice the count after the last sweep, at least 64).
    sweep_at: usize,
    in_flight: HashMap<(u32, String), Flight>,
}

impl Registrations {
    fn contains(&mut self, key: &(u32, String), now: Instant) -> bool {
        match self.known.get_mut(key) {
            Some(at) => {
                *at = now;
                true
            }
            None => false,
        }
    }

    fn insert(&mut self, key: (u32, String), now: Instant) {
        self.known.insert(key, now);
        if self.known.len() >= self.sweep_at {
            self.sweep(now);
        }
    }

    fn sweep(&mut self, now: Instant) {
        self.known.retain(|_, at| now.duration_since(*at) < REGISTRATION_MEMORY);
        self.sweep_at = (self.known.len() * 2).max(64);
    }
}

/// The reconcile core. One per process; it remembers which operator users are registered.
pub struct Reconciler<Z = ZimClient> {
    zim: proven::Proving<Z>,
    default_from_user_id: String,
    registrations: Mutex<Registrations>,
    sealer: Arc<seal::Sealer>,
}

impl<Z: ZimApi> Reconciler<Z> {
    /// A reconciler calling ZIM through `zim`, acting as `default_from_user_id` unless told otherwise.
    pub fn new(zim: Z, default_from_user_id: impl Into<String>) -> Self {
        Self {
            zim: proven::Proving::new(zim),
            default_from_user_id: default_from_user_id.into(),
            registrations: Mutex::default(),
            sealer: Arc::new(seal::Sealer::ephemeral()),
        }
    }

    /// Seals and checks status records with `sealer` (the controller's key, shared by its replicas) instead of a
    /// key of this process's own.
    pub fn with_sealer(mut self, sealer: Arc<seal::Sealer>) -> Self {
        self.sealer = sealer;
        self
    }

    /// The sealer of status records (see [`seal`]).
    pub fn sealer(&self) -> &Arc<seal::Sealer> {
        &self.sealer
    }

    /// Which credentials ZIM has accepted (see [`proven`]).
    pub fn proven(&self) -> &proven::Proven {
        self.zim.proven()
    }

    /// How many (AppId, user) registrations are remembered, and how many are in flight.
    pub fn registrations(&self) -> (usize, usize) {
        let r = lock(&self.registrations);
        (r.known.len(), r.in_flight.len())
    }

    /// Forgets the registrations unused for [`REGISTRATION_MEMORY`] (also done as the set grows), and the proofs
    /// not renewed within `proof_memory` (at least [`proven::PROOF_MEMORY`]).
    pub fn sweep_registrations(&self, proof_memory: Duration) {
        lock(&self.registrations).sweep(Instant::now());
        self.zim.proven().sweep_older_than(proof_memory.max(proven::PROOF_MEMORY));
    }

    /// The ZIM client.
    pub fn zim(&self) -> &Z {
        self.zim.inner()
    }

    /// Reconciles `room` once from the `facts` the caller gathered; `sink` persists the creation intent before a
    /// first CreateRoom; `now` stamps condition transitions. In order: a copy older than the last status this
    /// process wrote is not acted on ([`Requeue::StaleCopy`]); a converged room seen at a start is left to
    /// the prober ([`decide::leave_to_prober`], no call); the gate (paused, invalid, immutable); the namespace's
    /// policy (roomId, default credentials); the credentials; the AppId; the claim (asked of `facts.claims` only
    /// here); the operator user; then probe, read, create and attributes.
    ///
    /// First of all, the status's ownership record must be the operator's ([`seal`]): an unverified one makes no
    /// call (Ready=False `UnverifiedStatus`). The status of a trusted record comes back sealed, and so does the
    /// intent `sink` gets.
    #[instrument(skip_all, fields(room = %room.metadata.name.as_deref().unwrap_or(""), ns = %room.metadata.namespace.as_deref().unwrap_or("")))]
    pub async fn reconcile<C: ClaimSource, S: IntentSink>(
        &self,
        room: &ZimRoom,
        facts: &Facts<C>,
        sink: &S,
        now: Time,
    ) -> Outcome {
        if decide::stale::stale_copy(room.metadata.resource_version.as_deref(), facts.written) {
            // Deciding from it could undo what this process has just recorded (say, an adoption).
            return Outcome {
                status: room.status.clone().unwrap_or_default(),
                notes: Vec::new(),
                requeue: Requeue::StaleCopy,
                error_category: None,
            };
        }
        let trust = self.sealer.trust(room);
        if !trust.trusted() && !room.is_paused() {
            let name = room.metadata.name.as_deref().unwrap_or_default();
            let ns = room.metadata.namespace.as_deref().unwrap_or_default();
            let message = format!(
                "the status's ownership record (roomId, appId, pendingCreation, adopted, managedAttributeKeys, applied) does not carry the operator's seal, so the operator did not write it: no ZIM call is made for this object, and deleting it leaves the room in ZIM. To have the room examined afresh under the namespace's adoption policy, remove the status: kubectl patch zimroom {name} -n {ns} --subresource=status --type=merge -p '{{\"status\":null}}'"
            );
            return Run::new(room, now).refuse(reason::UNVERIFIED_STATUS, &message);
        }
        let uid = room.metadata.uid.as_deref().unwrap_or_default();
        let sealing = SealingSink { inner: sink, sealer: &self.sealer, uid };
        let mut outcome = self.reconcile_trusted(room, facts, &sealing, now).await;
        if trust.trusted() {
            self.sealer.seal_into(uid, &mut outcome.status);
        }
        outcome
    }

    async fn reconcile_trusted<C: ClaimSource, S: IntentSink>(
        &self,
        room: &ZimRoom,
        facts: &Facts<C>,
        sink: &S,
        now: Time,
    ) -> Outcome {
        if decide::leave_to_prober(room, facts) {
            return Outcome {
                status: room.status.clone().unwrap_or_default(),
                notes: Vec::new(),
                requeue: Requeue::Prober,
                error_category: None,
            };
        }
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
            Some(Gate::Invalid(problems)) => return run.refuse(reason::INVALID_SPEC, &join(&problems)),
            Some(Gate::Immutable(changed)) => {
                return run.refuse(reason::IMMUTABLE_FIELD_CHANGED, &join(&changed));
            }
            None => {}
        }
        let policy = &facts.policy;
        for why in &policy.invalid {
            run.note(true, INVALID_POLICY_EVENT, why.clone());
        }
        if let Err(why) = policy.check_room_id(&room.room_id()) {
            return run.refuse(reason::FORBIDDEN_BY_POLICY, &why);
        }
        let resolved = match decide::usable_credentials(room, &facts.credentials, policy) {
            Ok(c) => c,
            Err(e) => return run.mapped(failure::credentials_failure(e.problem()), &e.to_string()),
        };
        let creds = &resolved.credentials;
        if let AppCheck::Changed { recorded } = decide::app_check(&run.status, creds.app_id) {
            let message = format!(
                "the credentials now resolve to AppId {}, but this object's room lives in AppId {recorded}: no call is made to the other app. Restore the credentials of AppId {recorded}; or, to move the room, set spec.deletionPolicy: Orphan, delete this ZimRoom and create it again with the new credentials",
                creds.app_id
            );
            return run.refuse(reason::APP_ID_CHANGED, &message);
        }
        if room.is_observing() {
            // Reads only, and no claim: an observer never competes with the room's manager.
            let from = match policy.from_user_id(
                room.spec.from_user_id.as_deref(),
                resolved.from_user_id.as_deref(),
                &self.default_from_user_id,
            ) {
                Ok(from) => from,
                Err(why) => return run.refuse(reason::FORBIDDEN_BY_POLICY, &why),
            };
            let app = decide::app_of(None, Some(resolved)).unwrap_or(creds.app_id);
            if let Some(owner) = facts.claims.held_elsewhere(room, app).await {
                let message = format!(
                    "ZIM room {} of AppId {app} is managed by ZimRoom {owner} in another namespace: an object may observe only rooms no other namespace manages, so no call is made",
                    room.room_id()
                );
                return run.refuse(reason::CONFLICT, &message);
            }
            return self.observe(&mut run, room, creds, &from).await;
        }
        let app = decide::app_of(room.status.as_ref(), Some(resolved)).unwrap_or(creds.app_id);
        if let Claim::Conflict { owner } = facts.claims.claim(room, app).await {
            let message = format!(
                "ZIM room {} of AppId {} is owned by ZimRoom {owner}; this object makes no call for it until that one is deleted",
                room.room_id(),
                creds.app_id
            );
            return run.refuse(reason::CONFLICT, &message);
        }
        let from = match policy.from_user_id(
            room.spec.from_user_id.as_deref(),
            resolved.from_user_id.as_deref(),
            &self.default_from_user_id,
        ) {
            Ok(from) => from,
            Err(why) => return run.refuse(reason::FORBIDDEN_BY_POLICY, &why),
        };

        let room_id = room.room_id();
        let declared_hash = plan::attributes_hash(&room.spec.enforced_attributes());
        let mut current = Vec::new();
        let next = match decide::first_step(&run.status, &declared_hash) {
            Step::Create(creation) => Next::Create(creation),
            Step::Probe if facts.known_absent => decide::after_probe(false),
            Step::Probe => match self.zim.probe_room(creds, &room_id).await {
                Ok(RoomProbe::Exists { members }) => {
                    run.observe_members(members);
                    decide::after_probe(true)
                }
                Ok(RoomProbe::Missing) => decide::after_probe(false),
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
        let adopt = &policy.adopt;
        match next {
            Next::Converged => run.succeed(),
            Next::Create(Creation::First) => {
                self.create_first(&mut run, room, creds, &from, adopt, sink).await
            }
            Next::Create(Creation::Recreate) => self.recreate(&mut run, room, creds, &from, adopt).await,
            Next::SyncAttributes => self.sync_attributes(&mut run, room, creds, &from, &current).await,
        }
    }

    /// Probes whether the room this object manages still exists (the periodic re-check of a converged room). The
    /// room is the one recorded on the status, else the spec's.
    pub async fn probe(
        &self,
        room: &ZimRoom,
        credentials: &ResolvedCredentials,
    ) -> Result<RoomProbe, ZimError> {
        let room_id = room.status.as_ref().and_then(|s| s.room_id.clone()).unwrap_or_else(|| room.room_id());
        self.zim.probe_room(&credentials.credentials, &room_id).await
    }

    /// A failed call that acted as `from`: a code saying `from` is not registered makes the next attempt
    /// register it again.
    pub(super) fn failed(&self, creds: &Credentials, from: &str, e: ZimError) -> ZimError {
        if e.code().is_some_and(codes::is_unregistered_operator) {
            self.forget_registration(creds.app_id, from);
        }
        e
    }

    pub(super) async fn ensure_registered(&self, creds: &Credentials, user: &str) -> Result<(), ZimError> {
        let key = (creds.app_id, user.to_owned());
        if lock(&self.registrations).contains(&key, Instant::now()) {
            return Ok(());
        }
        // Single flight: the first caller registers; the ones that queued meanwhile find it registered.
        let flight = lock(&self.registrations).in_flight.entry(key.clone()).or_default().clone();
        let result = {
            let _turn = flight.lock().await;
            if lock(&self.registrations).contains(&key, Instant::now()) {
                Ok(())
            } else {
                self.register(creds, user).await
            }
        };
        let mut registrations = lock(&self.registrations);
        if result.is_ok() {
            registrations.insert(key.clone(), Instant::now());
        }
        // The last one out of the flight removes it (the others held a clone of it).
        if Arc::strong_count(&flight) <= 2 {
            registrations.in_flight.remove(&key);
        }
        result
    }

    async fn register(&self, creds: &Credentials, user: &str) -> Result<(), ZimError> {
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
        Ok(())
    }

    fn forget_registration(&self, app_id: u32, user: &str) {
        lock(&self.registrations).known.remove(&(app_id, user.to_owned()));
    }

    /// Deletion, from the `facts` gathered for it: destroys the room the object owns and the spec names
    /// (deletionPolicy Delete, the default for a room it created) or leaves it — see [`decide::on_delete`] for
    /// every rule. "No such room" is success. The credentials are those of the app the room lives in.
    #[instrument(skip_all, fields(room = %room.metadata.name.as_deref().unwrap_or("")))]
    ///
    /// A status whose ownership record is unverified ([`seal`]) never destroys the room: it is left in ZIM.
    pub async fn cleanup(&self, room: &ZimRoom, facts: &DeleteFacts) -> Result<Cleanup, CleanupError> {
        if !self.sealer.trust(room).trusted() {
            let why = "the status's ownership record does not carry the operator's seal (someone else wrote it), so this object is not proven to own the room".to_owned();
            return Ok(Cleanup::Orphaned { why });
        }
        let room_id = match decide::on_delete(room, facts) {
            OnDelete::Nothing => return Ok(Cleanup::NeverCreated),
            OnDelete::Orphan { why } => return Ok(Cleanup::Orphaned { why }),
            OnDelete::Destroy { room_id } => room_id,
        };
        let creds = facts.credentials.as_ref().map_err(|reason| CleanupError::NoCredentials {
            room_id: room_id.clone(),
            reason: reason.clone(),
        })?;
        let mut removed = 0;
        let when = room.spec.when_occupied.as_ref();
        if occupied::counts_members(when) {
            let occupancy =
                |action, source| CleanupError::Occupancy { room_id: room_id.clone(), action, source };
            let members = match self.zim.probe_room(&creds.credentials, &room_id).await {
                Ok(RoomProbe::Missing) => return Ok(Cleanup::AlreadyGone),
                Ok(RoomProbe::Exists { members }) => members,
                Err(e) => return Err(occupancy(Action::QueryRoomUserList, e)),
            };
            let recorded = room.status.as_ref().and_then(|s| s.deletion.as_ref());
            let from = || {
                let policy = facts.policy.clone().unwrap_or_else(Policy::unrestricted);
                policy
                    .from_user_id(
                        room.spec.from_user_id.as_deref(),
                        creds.from_user_id.as_deref(),
                        &self.default_from_user_id,
                    )
                    .unwrap_or_else(|_| {
                        creds.from_user_id.clone().unwrap_or(self.default_from_user_id.clone())
                    })
            };
            let name = room.metadata.name.as_deref().unwrap_or_default();
            let ns = room.metadata.namespace.as_deref().unwrap_or_default();
            match occupied::next_step(when, recorded, members, &Time(jiff::Timestamp::now())) {
                DeleteStep::Destroy => {}
                DeleteStep::Wait { progress } | DeleteStep::Grace { progress } => {
                    let message = occupied::message(&room_id, members, &progress, name, ns);
                    return Ok(Cleanup::Occupied { members, progress, message, notified: None });
                }
                DeleteStep::Notify { progress } => {
                    let from = from();
                    let text = when.and_then(|w| w.drain_message.as_deref()).unwrap_or(DEFAULT_DRAIN_MESSAGE);
                    let sent = async {
                        self.ensure_registered(&creds.credentials, &from).await?;
                        let request = SendRoomMessageRequest::text(&from, &room_id, text);
                        self.zim.send_room_message(&creds.credentials, &request).await
                    };
                    let id = match sent.await {
                        Ok(resp) => resp.envelope.request_id,
                        Err(e) if e.class() == Class::NotFound => return Ok(Cleanup::AlreadyGone),
                        Err(e) => {
                            return Err(occupancy(
                                Action::SendRoomMessage,
                                self.failed(&creds.credentials, &from, e),
                            ));
                        }
                    };
                    let message = occupied::message(&room_id, members, &progress, name, ns);
                    return Ok(Cleanup::Occupied { members, progress, message, notified: Some(id) });
                }
                DeleteStep::Remove => {
                    let from = from();
                    let ids = match self.zim.room_member_ids(&creds.credentials, &room_id).await {
                        Ok(ids) => ids,
                        Err(e) if e.class() == Class::NotFound => return Ok(Cleanup::AlreadyGone),
                        Err(e) => return Err(occupancy(Action::QueryRoomUserList, e)),
                    };
                    if let Err(e) = self.ensure_registered(&creds.credentials, &from).await {
                        return Err(occupancy(Action::KickoutRoomUser, e));
                    }
                    for chunk in ids.chunks(KICKOUT_BATCH) {
                        match self
                            .zim
                            .kickout_room_users(
                                &creds.credentials,
                                &room_id,
                                chunk,
                                Some(KICKOUT_REASON),
                                Some(&from),
                            )
                            .await
                        {
                            Ok(_) => removed += chunk.len(),
                            Err(e) if e.class() == Class::NotFound => return Ok(Cleanup::AlreadyGone),
                            Err(e) => {
                                let e = self.failed(&creds.credentials, &from, e);
                                return Err(occupancy(Action::KickoutRoomUser, e));
                            }
                        }
                    }
                }
            }
        }
        match self.zim.destroy_room(&creds.credentials, &room_id, None).await {
            Ok(resp) => Ok(Cleanup::Destroyed { request_id: resp.envelope.request_id, removed }),
            Err(e) if e.class() == Class::NotFound => Ok(Cleanup::AlreadyGone),
            Err(source) => Err(CleanupError::Zim { room_id, source }),
        }
    }
}

/// The status of an object whose deletion is blocked by `error`: Ready=False `Deleting` with the error's message
/// (which says how to unblock it), Reconciling=True `Deleting` (the operator keeps retrying), Stalled=False,
/// Synced=False `ReconcileError`; every condition and `observedGeneration` describe the generation being deleted
/// (the status contract: no condition may describe an older generation than `observedGeneration`).
pub fn deletion_blocked(room: &ZimRoom, error: &CleanupError, now: &Time) -> ZimRoomStatus {
    let mut status = room.status.clone().unwrap_or_default();
    let generation = room.metadata.generation;
    let message = error.to_string();
    let set = |status: &mut ZimRoomStatus, type_: &str, value: bool, reason: &str, message: &str| {
        conditions::set(&mut status.conditions, type_, value, reason, message, generation, now);
    };
    set(&mut status, condition::READY, false, reason::DELETING, &message);
    set(&mut status, condition::RECONCILING, true, reason::DELETING, &format!("deleting: {message}"));
    set(&mut status, condition::STALLED, false, reason::DELETING, "not stalled");
    set(&mut status, condition::SYNCED, false, reason::RECONCILE_ERROR, &message);
    for c in &mut status.conditions {
        c.observed_generation = generation;
    }
    status.observed_generation = generation;
    status
}

/// The status of an object whose deletion waits for its occupied room or drains it (`spec.whenOccupied`):
/// Ready=False `WaitingForEmptyRoom` (phase `Waiting`) or `Draining` with `message` (how many members, until when,
/// how to proceed), Reconciling=True with the same reason (kstatus: the object is Terminating anyway), Stalled=False,
/// Synced untouched; `status.deletion` records the phase and `status.occupancy` the count.
pub fn deletion_occupied(
    room: &ZimRoom,
    members: u64,
    progress: &crate::crd::DeletionProgress,
    message: &str,
    now: &Time,
) -> ZimRoomStatus {
    let mut status = room.status.clone().unwrap_or_default();
    let generation = room.metadata.generation;
    let why = match progress.phase {
        crate::crd::DeletionPhase::Waiting => reason::WAITING_FOR_EMPTY_ROOM,
        _ => reason::DRAINING,
    };
    let set = |status: &mut ZimRoomStatus, type_: &str, value: bool, reason: &str, message: &str| {
        conditions::set(&mut status.conditions, type_, value, reason, message, generation, now);
    };
    set(&mut status, condition::READY, false, why, message);
    set(&mut status, condition::RECONCILING, true, why, &format!("deleting: {message}"));
    set(&mut status, condition::STALLED, false, why, "not stalled");
    decide::occupied::observe(&mut status, members, now);
    status.deletion = Some(progress.clone());
    for c in &mut status.conditions {
        c.observed_generation = generation;
    }
    status.observed_generation = generation;
    status
}

fn join(errors: &[validate::FieldError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Seals the intent before the inner sink persists it, so a crash after CreateRoom leaves a sealed record.
struct SealingSink<'a, S> {
    inner: &'a S,
    sealer: &'a seal::Sealer,
    uid: &'a str,
}

impl<S: IntentSink> IntentSink for SealingSink<'_, S> {
    type Error = S::Error;

    async fn persist_intent(&self, status: &ZimRoomStatus) -> Result<(), S::Error> {
        let mut sealed = status.clone();
        self.sealer.seal_into(self.uid, &mut sealed);
        self.inner.persist_intent(&sealed).await
    }
}
