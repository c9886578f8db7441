//! Pure: the next step for an object, from its spec, its status and the facts gathered so far (the existence
//! probe, CreateRoom's answer). No I/O; the reconcile core ([`super::Reconciler`]) carries the steps out.
//!
//! The flow these functions describe:
//! 1. [`gate`]: paused, invalid or an immutable change → stop before any ZIM call.
//! 2. [`first_step`]: never created → create; converged for the declared attributes → probe existence;
//!    attributes changed since they were last applied → read them (which also probes).
//! 3. [`after_probe`] / [`after_read`]: a room that is gone is created again (Recreated).
//!
//! Ownership (an object owns a room only if it saw the room absent and then asked for it):
//! - [`app_check`]: the AppId is fixed once the object holds a room; credentials for another app stop it.
//! - [`winner`]: among objects claiming the same (AppId, roomId), who owns the room; the others are Conflict.
//! - [`first_creation`]: the existence probe before the first CreateRoom decides adoption; only a CreateRoom
//!   whose outcome is unknown leaves a pending creation that makes a later "already exists" the object's own.
//! - [`on_delete`] ([`delete`]): what deleting the object does to the room.
//!
//! Before all of it, [`leave_to_prober`]: a converged room seen at a start is the prober's, with no call; and
//! [`usable_credentials`]: the operator's default Secret only where the namespace may use it.
//!
//! The status contract: [`progress`] derives `Reconciling` and `Stalled` (kstatus) from the outcome, with the
//! Stalled reasons from the reason table ([`super::reasons`]). The table tests are in `tests.rs`.

pub mod callback;
pub mod delete;
pub mod occupied;
pub mod probe;
pub mod stale;
#[cfg(test)]
mod tests;

use crate::crd::{ZimRoom, ZimRoomStatus, condition, reason};

use super::conditions;
use super::types::{CredentialsError, Facts, ResolvedCredentials};
use super::validate::{self, FieldError};
use super::{plan, policy::Policy};

pub use delete::{OnDelete, on_delete};

/// Whether the prober owns this room: converged for its current generation, not paused, not deleting.
pub fn is_converged(room: &ZimRoom) -> bool {
    let Some(status) = room.status.as_ref() else { return false };
    room.metadata.deletion_timestamp.is_none()
        && !room.is_paused()
        && !room.is_observing()
        && status.observed_generation == room.metadata.generation
        && conditions::is_true(&status.conditions, condition::READY)
        && conditions::is_true(&status.conditions, condition::SYNCED)
}

/// Whether the declared attributes are the ones last applied in full (nothing to converge but existence).
pub fn attributes_applied(room: &ZimRoom) -> bool {
    let applied = room.status.as_ref().and_then(|s| s.applied.as_ref());
    applied.and_then(|a| a.attributes_hash.as_deref())
        == Some(plan::attributes_hash(&room.spec.enforced_attributes()).as_str())
}

/// Whether a reconcile leaves the object to the prober without any call: the first sight of a converged room
/// (a start), not asked to re-check, not known to be gone, still admitted by the namespace's policy as it is
/// declared — a policy an admin changed while the operator was down applies at the start (the reconcile then
/// refuses the object before any ZIM call) — and with credentials of the AppId its status records.
pub fn leave_to_prober<C>(room: &ZimRoom, facts: &Facts<C>) -> bool {
    facts.first_sight
        && !facts.recheck
        && !facts.known_absent
        && is_converged(room)
        && attributes_applied(room)
        && admitted(room, facts)
        && in_recorded_app(room, facts)
}

/// Whether the credentials (when they resolve) name the AppId the status records: credentials changed to another
/// app while the operator was down are reported at the start (`AppIdChanged`), not probed in the other app.
fn in_recorded_app<C>(room: &ZimRoom, facts: &Facts<C>) -> bool {
    let recorded = room.status.as_ref().and_then(|s| s.app_id);
    facts.credentials.as_ref().is_ok_and(|c| probe::may_probe(recorded, c.credentials.app_id))
        || facts.credentials.is_err()
}

/// Whether the namespace's policy admits `room` as declared (the checks made before any ZIM call).
fn admitted<C>(room: &ZimRoom, facts: &Facts<C>) -> bool {
    admitted_by(room, &facts.policy, facts.credentials.as_ref().ok())
}

/// Whether `policy` admits `room` as declared with `credentials` (the checks made before any ZIM call). The
/// Secret's own user matters only when the spec names one.
pub fn admitted_by(room: &ZimRoom, policy: &Policy, credentials: Option<&ResolvedCredentials>) -> bool {
    let spec_from_user = room.spec.from_user_id.as_deref();
    let secret_from_user = spec_from_user.and(credentials).and_then(|c| c.from_user_id.as_deref());
    let own_secret = room.spec.credentials_secret_ref.is_some();
    policy.refusal(&room.room_id(), own_secret, spec_from_user, secret_from_user).is_none()
}

/// Whether another object declaring the same room counts as a claimant of it: only one its namespace's policy
/// admits, and which holds the room (its status records it) or has credentials ZIM accepted for that app. A
/// refused object, or one whose Secret merely names the app, neither blocks nor inherits another's room.
pub fn counts_as_claimant(admitted: bool, holds: bool, proven: bool) -> bool {
    admitted && (holds || proven)
}

/// The credentials the object may use: the operator's default Secret (no `spec.credentialsSecretRef`) only where
/// the namespace's policy allows it.
pub fn usable_credentials<'a>(
    room: &ZimRoom,
    credentials: &'a Result<ResolvedCredentials, CredentialsError>,
    policy: &Policy,
) -> Result<&'a ResolvedCredentials, CredentialsError> {
    match (&room.spec.credentials_secret_ref, &policy.default_credentials) {
        (None, Err(why)) => Err(CredentialsError::Forbidden(why.clone())),
        _ => credentials.as_ref().map_err(Clone::clone),
    }
}

/// The app an object acts in: the one its status records, else the one its credentials resolve to.
pub fn app_of(status: Option<&ZimRoomStatus>, credentials: Option<&ResolvedCredentials>) -> Option<u32> {
    status.and_then(|s| s.app_id).or(credentials.map(|c| c.credentials.app_id))
}

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

/// What a status's ownership record is worth (see [`crate::reconcile::seal`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// The record holds no fact: nothing to prove.
    Empty,
    /// The operator's seal verifies.
    Sealed,
    /// No valid seal, on an object older than the key while the key's first sweep is running: trusted as before.
    Legacy,
    /// Facts without a valid seal: not the operator's record. No ZIM call, no destruction, no claim.
    Unverified,
}

impl Trust {
    /// Whether the operator may act on the record.
    pub fn trusted(self) -> bool {
        self != Trust::Unverified
    }
}

/// The trust of a record: `has_facts`, whether its seal verifies (asked only when it matters), and whether the
/// object is old enough for the legacy window.
pub fn trust(has_facts: bool, verifies: impl FnOnce() -> bool, legacy: bool) -> Trust {
    if !has_facts {
        Trust::Empty
    } else if verifies() {
        Trust::Sealed
    } else if legacy {
        Trust::Legacy
    } else {
        Trust::Unverified
    }
}

/// Whether the object holds a room in its recorded app: created or adopted (applied), adopted, or a creation is
/// pending. An object that only recorded an intent whose CreateRoom ZIM refused holds nothing.
pub fn holds_room(status: &ZimRoomStatus) -> bool {
    status.app_id.is_some()
        && (status.applied.is_some() || status.pending_creation || status.adopted == Some(true))
}

/// Whether a creation is pending: `status.pendingCreation`, or an intent recorded by a version of the operator
/// that did not keep that flag (room ID recorded, no AppId, nothing applied, Ready=False Creating) — its
/// CreateRoom may have reached ZIM.
pub fn creation_pending(status: &ZimRoomStatus) -> bool {
    let legacy_intent = status.room_id.is_some()
        && status.app_id.is_none()
        && status.applied.is_none()
        && status
            .conditions
            .iter()
            .any(|c| c.type_ == crate::crd::condition::READY && c.reason == crate::crd::reason::CREATING);
    status.pending_creation || legacy_intent
}

/// The result of comparing the credentials' AppId with the recorded one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppCheck {
    /// Go on in this app (record it if it is not recorded yet).
    Proceed,
    /// The object holds a room in `recorded`; the credentials resolve to another app.
    Changed {
        /// The app the room lives in.
        recorded: u32,
    },
}

/// Compares the credentials' AppId with the one on the status.
pub fn app_check(status: &ZimRoomStatus, app_id: u32) -> AppCheck {
    match status.app_id {
        Some(recorded) if recorded != app_id && holds_room(status) => AppCheck::Changed { recorded },
        _ => AppCheck::Proceed,
    }
}

/// One object claiming a room, as the controller's cache (or `apply`'s list of manifests) sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimant {
    /// `namespace/name`.
    pub key: String,
    /// Its status records this room (its intent or ownership): it keeps the room against new claimants.
    pub holds: bool,
    /// Creation time, Unix seconds (`apply`: the document's position).
    pub created: i64,
}

/// Among the claimants of one (AppId, roomId), the owner: a claimant that holds the room wins over new ones;
/// among equals the oldest, then the lowest `namespace/name`. The order is total, so every reconcile of every
/// claimant decides the same, whichever it runs first.
pub fn winner(claimants: &[Claimant]) -> Option<&Claimant> {
    claimants.iter().min_by(|a, b| (!a.holds, a.created, &a.key).cmp(&(!b.holds, b.created, &b.key)))
}

/// How a CreateRoom ended, as far as ownership cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Code 0: this call created the room.
    Created,
    /// 660300014: the room exists.
    Exists,
    /// ZIM answered another code: nothing was created.
    Refused,
    /// No ZIM answer (timeout, broken connection, HTTP 5xx, an undecodable body): it may have been created.
    Unknown,
}

/// What the first creation decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ownership {
    /// The new value of `status.adopted` (`None`: leave it).
    pub adopted: Option<bool>,
    /// The new value of `status.pendingCreation`.
    pub pending: bool,
    /// The event to emit, if any.
    pub event: Option<CreationEvent>,
    /// The room is someone else's and the namespace does not adopt: it is left alone (ForbiddenByPolicy).
    pub refused: Option<NotAdopted>,
}

/// The event that reports how the object came to hold its room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreationEvent {
    /// This object created the room.
    Created,
    /// The room is this object's own, from an earlier CreateRoom whose answer was lost.
    CreatedEarlier,
    /// The room existed before the object asked for it.
    Adopted,
}

/// Why a creation leaves a room alone: it exists, it is not this object's, and the namespace's policy does not
/// adopt rooms. Nothing is changed in ZIM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotAdopted {
    /// The ownership probe found it before the first CreateRoom (which is then not called).
    Existed,
    /// Someone else created it between the probe and CreateRoom.
    CreatedMeanwhile,
    /// It vanished, and someone else created it again before this object could.
    RecreatedByOther,
}

impl NotAdopted {
    /// The condition message, with the policy's reason `why`.
    pub fn message(self, room_id: &str, why: &str) -> String {
        match self {
            NotAdopted::Existed => format!(
                "ZIM room {room_id} already exists and is not adopted: {why}. Nothing was changed in ZIM"
            ),
            NotAdopted::CreatedMeanwhile => format!(
                "ZIM room {room_id} was created by someone else meanwhile and is not adopted: {why}. Nothing was changed in ZIM"
            ),
            NotAdopted::RecreatedByOther => format!(
                "ZIM room {room_id} vanished and was created again by someone else; it is not adopted: {why}. Its attributes are left alone"
            ),
        }
    }
}

/// Before the first CreateRoom: a room the ownership probe found (`probed`) is someone else's, and without
/// adoption nothing more is called.
pub fn before_first_create(probed: Option<bool>, adopt: bool) -> Option<NotAdopted> {
    (probed == Some(true) && !adopt).then_some(NotAdopted::Existed)
}

/// The first creation's ownership decision. `probed`: the existence probe's answer before CreateRoom (`None`
/// when it was skipped because a creation was already pending); `pending_before`: a creation was pending when
/// this reconcile began; `adopt`: the namespace's policy adopts rooms that are not the object's own.
pub fn first_creation(
    probed: Option<bool>,
    pending_before: bool,
    outcome: CreateOutcome,
    adopt: bool,
) -> Ownership {
    use CreateOutcome::*;
    let own = |event| Ownership { adopted: Some(false), pending: false, event: Some(event), refused: None };
    let adopted = |meanwhile: bool| match adopt {
        true => Ownership {
            adopted: Some(true),
            pending: false,
            event: Some(CreationEvent::Adopted),
            refused: None,
        },
        false => Ownership {
            adopted: None,
            pending: false,
            event: None,
            refused: Some(if meanwhile { NotAdopted::CreatedMeanwhile } else { NotAdopted::Existed }),
        },
    };
    let none = |pending| Ownership { adopted: None, pending, event: None, refused: None };
    match (probed, outcome) {
        // This call created it, whatever anyone thought before.
        (_, Created) => own(CreationEvent::Created),
        // The probe saw it before we asked: someone else's room, whatever CreateRoom then said.
        (Some(true), _) => adopted(false),
        // An earlier CreateRoom of ours may have created it.
        (_, Exists) if pending_before => own(CreationEvent::CreatedEarlier),
        // Absent at the probe, present now, and nothing of ours pending: someone created it in between.
        (_, Exists) => adopted(true),
        // A definite answer: nothing was created; the next attempt starts again from the probe.
        (_, Refused) => none(false),
        // Unknown: it may exist now, and if so it is ours.
        (_, Unknown) => none(true),
    }
}

/// A recreation found the room there again ("already exists" after the probe found it gone): somebody else
/// created it, so it is theirs; without adoption it is left alone.
pub fn recreated_by_other(adopt: bool) -> Option<NotAdopted> {
    (!adopt).then_some(NotAdopted::RecreatedByOther)
}

/// Where a reconcile leaves the object, for the kstatus conditions `Reconciling` and `Stalled`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The current generation is fully applied and the room is there (or reconciliation is paused): both False.
    Done,
    /// Still working toward the current generation and expecting to get there: Reconciling=True.
    Working {
        /// The reason (a Ready reason, or `AttributesPending`).
        reason: String,
    },
    /// Progress needs a person: Stalled=True.
    Stuck {
        /// The reason (a Ready reason, or `AttributesRefused`).
        reason: String,
    },
}

/// Derives the progress from the status a reconcile produced. `declared_hash`: the fingerprint of the declared
/// attributes; `attributes_refused`: ZIM refused some declared attributes for good in this reconcile.
pub fn progress(
    status: &ZimRoomStatus,
    declared_hash: &str,
    attributes_refused: bool,
    paused: bool,
) -> Progress {
    let find = |t: &str| status.conditions.iter().find(|c| c.type_ == t);
    if paused {
        return Progress::Done;
    }
    let Some(ready) = find(crate::crd::condition::READY) else {
        return Progress::Working { reason: reason::CREATING.into() };
    };
    if ready.status != "True" {
        let stuck = super::reasons::is_stalled(&ready.reason);
        return if stuck {
            Progress::Stuck { reason: ready.reason.clone() }
        } else {
            Progress::Working { reason: ready.reason.clone() }
        };
    }
    if attributes_refused {
        return Progress::Stuck { reason: reason::ATTRIBUTES_REFUSED.into() };
    }
    // The room exists. The generation is applied when the declared attributes were applied in full; a failed
    // re-check of a converged room does not undo that.
    let applied = status.applied.as_ref().and_then(|a| a.attributes_hash.as_deref()) == Some(declared_hash);
    if applied { Progress::Done } else { Progress::Working { reason: reason::ATTRIBUTES_PENDING.into() } }
}
