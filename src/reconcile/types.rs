//! What goes into the reconcile core and what comes out: the facts the caller gathered (credentials or why there
//! are none, the namespace's policy, what the prober or a callback found, whether this process has seen the object
//! before), the claim lookup and the sink the core asks when it needs them, and the outcome of a reconcile or a
//! deletion.

use std::future::Future;

use crate::crd::{ZimRoom, ZimRoomStatus};
use crate::zim::{Credentials, ZimError};

use super::policy::Policy;

use super::failure::{CredentialsProblem, ErrorCategory};

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
    /// The source could not be read (forbidden, timeout, API server trouble); says nothing about the Secret.
    #[error("credentials {source_name} could not be read: {reason}")]
    Unreadable {
        /// Where the credentials come from.
        source_name: String,
        /// What happened.
        reason: String,
    },
    /// The namespace's policy does not allow the credentials (the operator's default Secret).
    #[error(
        "the operator's default credentials are not available here: {0}. Set spec.credentialsSecretRef to a Secret in this namespace, or ask a cluster admin"
    )]
    Forbidden(String),
}

impl CredentialsError {
    /// The kind of problem, for the failure mapping.
    pub fn problem(&self) -> CredentialsProblem {
        match self {
            CredentialsError::NotFound(_) => CredentialsProblem::NotFound,
            CredentialsError::Invalid { .. } => CredentialsProblem::Invalid,
            CredentialsError::Unreadable { .. } => CredentialsProblem::Unreadable,
            CredentialsError::Forbidden(_) => CredentialsProblem::Forbidden,
        }
    }
}

/// Everything the caller gathered about one object before a reconcile: the controller from its caches, `apply`
/// from the manifests. The core decides from these alone (and from what ZIM answers).
#[derive(Clone, Debug)]
pub struct Facts<C = Claim> {
    /// The credentials the object's Secret (or the operator's default Secret) resolves to, or why there are none.
    /// Whether the object may use the default Secret at all is the core's decision (from `policy`).
    pub credentials: Result<ResolvedCredentials, CredentialsError>,
    /// What the namespace's admin allows.
    pub policy: Policy,
    /// Who else claims the room: asked only once the object could act on it (see [`ClaimSource`]).
    pub claims: C,
    /// The prober has just found the room gone: it is created again without a second existence probe.
    pub known_absent: bool,
    /// This process reconciles the object for the first time (a start, or a new object).
    pub first_sight: bool,
    /// A re-check was asked for (a callback said the room was destroyed): probe now, whatever the state.
    pub recheck: bool,
    /// The resourceVersion this process's last status write for the object returned: a copy older than it is
    /// stale ([`super::decide::stale`]) and is not acted on.
    pub written: Option<u64>,
}

impl Facts<Claim> {
    /// The facts of an object nobody else claims, in a namespace without restrictions, seen before: `apply`'s and
    /// the tests' usual case.
    pub fn owner(credentials: Result<ResolvedCredentials, CredentialsError>) -> Self {
        Facts {
            credentials,
            policy: Policy::unrestricted(),
            claims: Claim::Owner,
            known_absent: false,
            first_sight: false,
            recheck: false,
            written: None,
        }
    }
}

/// Who owns the room an object declares when others declare it too. The core asks only when the object could act
/// on the room (past the gate, the policy and the credentials), with the AppId it would act in: the controller
/// scans its cache then, not for every object a start hands to the prober.
pub trait ClaimSource: Send + Sync {
    /// The claim of `room` on its room in `app_id`.
    fn claim(&self, room: &ZimRoom, app_id: u32) -> impl Future<Output = Claim> + Send;

    /// An object of another namespace (`namespace/name`) that holds `room`'s room in `app_id`, if any: an observer
    /// may not read a room another namespace manages. Decided without claiming anything.
    fn held_elsewhere(&self, room: &ZimRoom, app_id: u32) -> impl Future<Output = Option<String>> + Send {
        let _ = (room, app_id);
        async { None }
    }
}

/// A claim known in advance (`apply` decides them from the list of manifests).
impl ClaimSource for Claim {
    async fn claim(&self, _room: &ZimRoom, _app_id: u32) -> Claim {
        self.clone()
    }
}

/// The facts gathered before deleting an object.
#[derive(Clone, Debug)]
pub struct DeleteFacts {
    /// The credentials of the app the room lives in (the caller may pass the last good ones it remembers), or
    /// why there are none.
    pub credentials: Result<ResolvedCredentials, String>,
    /// What the namespace's admin allows; `None` when it was not read because the CRD is being deleted.
    pub policy: Option<Policy>,
    /// The ZimRoom CRD is being deleted (an uninstall): every room is left in place.
    pub crd_deleting: bool,
    /// Another object (`namespace/name`) that declares the same room and takes it over.
    pub successor: Option<String>,
}

impl DeleteFacts {
    /// Deletion with `credentials`, nobody else claiming the room, no restrictions.
    pub fn owner(credentials: Result<ResolvedCredentials, String>) -> Self {
        DeleteFacts {
            credentials,
            policy: Some(Policy::unrestricted()),
            crd_deleting: false,
            successor: None,
        }
    }
}

/// Persists the creation intent before the first CreateRoom (the controller patches the status; `apply` keeps it
/// in memory).
pub trait IntentSink: Send + Sync {
    /// Why persisting failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Writes `status`; an error stops the reconcile before any CreateRoom.
    fn persist_intent(&self, status: &ZimRoomStatus) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// A sink that keeps nothing (for `apply`, where the status is printed at the end).
pub struct NoSink;

impl IntentSink for NoSink {
    type Error = std::convert::Infallible;

    async fn persist_intent(&self, _status: &ZimRoomStatus) -> Result<(), Self::Error> {
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
    /// Look again after one resync period (an observed room: its attributes are read again).
    Period,
    /// A converged room seen at a start: the prober takes it (its first probe spread over one period); nothing was
    /// called and the status is as it was.
    Prober,
    /// The copy is older than this process's last status write (the cache lags): nothing was called, the status
    /// is as it was; again shortly, from the newer copy.
    StaleCopy,
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
    /// The error category for metrics and events (`None` on success).
    pub error_category: Option<ErrorCategory>,
}

/// Whether another object owns the room this object declares (same AppId and room ID).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This object owns the room (or nobody else claims it).
    Owner,
    /// `owner` (`namespace/name`) owns it: this object makes no call for it.
    Conflict {
        /// The owning object.
        owner: String,
    },
}

/// What deletion did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cleanup {
    /// DestroyRoom succeeded.
    Destroyed {
        /// Its RequestId.
        request_id: String,
        /// The members a drain removed (KickoutRoomUser) just before.
        removed: usize,
    },
    /// The room did not exist any more (660300001).
    AlreadyGone,
    /// The room was left in ZIM: deletionPolicy Orphan (explicit, or the default for an adopted room), another
    /// object still declares it, or the status and the spec disagree about which room it is.
    Orphaned {
        /// Why (for the event).
        why: String,
    },
    /// No CreateRoom was ever attempted for this object: nothing to destroy.
    NeverCreated,
    /// The room has members and `spec.whenOccupied` waits or drains: nothing is destroyed yet.
    Occupied {
        /// The members counted.
        members: u64,
        /// The phase to record on the status.
        progress: crate::crd::DeletionProgress,
        /// The Ready message: how many members, until when, how to proceed.
        message: String,
        /// The drain's message was sent in this step (its RequestId).
        notified: Option<String>,
    },
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
    /// A call before DestroyRoom failed: counting the members, telling them, or removing them.
    #[error(
        "{action} for room {room_id} failed before the room could be destroyed: {source}; the operator keeps retrying — fix the cause, or set spec.whenOccupied.policy: Destroy (destroy without looking) or spec.deletionPolicy: Orphan (leave the room) to finish deletion"
    )]
    Occupancy {
        /// The room.
        room_id: String,
        /// The ZIM action that failed.
        action: crate::zim::Action,
        /// The failure.
        source: ZimError,
    },
    /// DestroyRoom failed.
    #[error(
        "DestroyRoom for room {room_id} failed: {source}; the operator keeps retrying — fix the cause, or set spec.deletionPolicy: Orphan to leave the room and finish deletion"
    )]
    Zim {
        /// The room.
        room_id: String,
        /// The failure.
        source: ZimError,
    },
}
