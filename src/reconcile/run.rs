//! The state of one reconcile run: the status being built, the events gathered, and the ways a run ends
//! (success, a failure mapped by [`super::failure`]).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::crd::{ZimRoom, ZimRoomStatus, condition, reason};
use crate::zim::ZimError;

use super::decide::{self, Progress};
use super::failure::{self, ErrorCategory, FailureMapping};
use super::{Note, Outcome, Requeue, conditions, plan};

/// One reconcile run.
pub(super) struct Run<'a> {
    room: &'a ZimRoom,
    pub(super) status: ZimRoomStatus,
    notes: Vec<Note>,
    now: Time,
    was_ready: bool,
    previous_ready_reason: Option<String>,
    /// ZIM refused declared attributes for good in this run (Stalled while the room stays Ready).
    pub(super) attributes_refused: bool,
}

impl<'a> Run<'a> {
    pub(super) fn new(room: &'a ZimRoom, now: Time) -> Self {
        let status = room.status.clone().unwrap_or_default();
        let was_ready = conditions::is_true(&status.conditions, condition::READY);
        let previous_ready_reason =
            status.conditions.iter().find(|c| c.type_ == condition::READY).map(|c| c.reason.clone());
        Self {
            room,
            status,
            notes: Vec::new(),
            now,
            was_ready,
            previous_ready_reason,
            attributes_refused: false,
        }
    }

    /// Records the room's member count (a probe's answer); a count that did not change changes nothing.
    pub(super) fn observe_members(&mut self, members: u64) {
        super::decide::occupied::observe(&mut self.status, members, &self.now);
    }

    /// The Synced reason the object had before this run.
    pub(super) fn previous_synced_reason(&self) -> Option<&str> {
        self.room.condition(condition::SYNCED).map(|c| c.reason.as_str())
    }

    /// The Ready reason the object had before this run.
    pub(super) fn previous_ready_reason(&self) -> Option<&str> {
        self.previous_ready_reason.as_deref()
    }

    pub(super) fn set(&mut self, type_: &str, ok: bool, reason: &str, message: impl Into<String>) {
        let generation = self.room.metadata.generation;
        conditions::set(&mut self.status.conditions, type_, ok, reason, message, generation, &self.now);
    }

    pub(super) fn note(&mut self, warning: bool, reason: &str, message: String) {
        self.notes.push(Note { warning, reason: reason.to_owned(), message });
    }

    /// The outcome of the run; the status and events move out of it. The kstatus conditions are derived here
    /// (see [`decide::progress`]), and every condition is marked as describing the generation just handled.
    pub(super) fn finish(&mut self, requeue: Requeue, error_category: Option<ErrorCategory>) -> Outcome {
        let generation = self.room.metadata.generation;
        let declared_hash = plan::attributes_hash(&self.room.spec.enforced_attributes());
        let progress =
            decide::progress(&self.status, &declared_hash, self.attributes_refused, self.room.is_paused());
        // An observer applies nothing: a room that exists is done (drift is Synced's to show, not progress).
        let progress = match progress {
            Progress::Working { reason: r }
                if self.room.is_observing() && r == reason::ATTRIBUTES_PENDING =>
            {
                Progress::Done
            }
            other => other,
        };
        let synced_message = self
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == condition::SYNCED)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        let (reconciling, stalled) = match &progress {
            Progress::Done => (None, None),
            Progress::Working { reason } => (Some(reason.clone()), None),
            Progress::Stuck { reason } => (None, Some(reason.clone())),
        };
        let done_reason = if self.room.is_paused() { reason::RECONCILE_PAUSED } else { reason::CONVERGED };
        let explain = |r: &Option<String>, what: &str| match r {
            Some(_) if !synced_message.is_empty() => synced_message.clone(),
            Some(r) => format!("{what}: {r}"),
            None => "no".into(),
        };
        let reconciling_message = explain(&reconciling, "working toward the current generation");
        let stalled_message = explain(&stalled, "waiting for a person");
        self.set(
            condition::RECONCILING,
            reconciling.is_some(),
            reconciling.as_deref().or(stalled.as_deref()).unwrap_or(done_reason),
            if reconciling.is_some() { reconciling_message } else { "not reconciling".into() },
        );
        self.set(
            condition::STALLED,
            stalled.is_some(),
            stalled.as_deref().or(reconciling.as_deref()).unwrap_or(done_reason),
            if stalled.is_some() { stalled_message } else { "not stalled".into() },
        );
        for c in &mut self.status.conditions {
            c.observed_generation = generation;
        }
        self.status.observed_generation = generation;
        Outcome {
            status: std::mem::take(&mut self.status),
            notes: std::mem::take(&mut self.notes),
            requeue,
            error_category,
        }
    }

    pub(super) fn mark_attributes_applied(&mut self, declared: &[crate::crd::RoomAttribute], hash: String) {
        self.status.managed_attribute_keys = plan::declared_keys(declared);
        if let Some(applied) = self.status.applied.as_mut() {
            applied.attributes_hash = Some(hash);
        }
    }

    /// Ready=True: the room exists (whatever happens to its attributes next). From here on a retryable failure
    /// keeps Ready.
    pub(super) fn available(&mut self) {
        // Messages are never empty: Kubernetes 1.20's server-side apply turns "" into null, which the schema refuses.
        let room_id = self.status.room_id.clone().unwrap_or_else(|| self.room.room_id());
        self.set(condition::READY, true, reason::AVAILABLE, format!("ZIM room {room_id} exists"));
        self.was_ready = true;
    }

    pub(super) fn succeed(&mut self) -> Outcome {
        self.available();
        self.set(
            condition::SYNCED,
            true,
            reason::RECONCILE_SUCCESS,
            "the room and its attributes are as declared",
        );
        self.finish(Requeue::Resync, None)
    }

    /// Ready=False with `reason`, Synced=False, a Warning event.
    pub(super) fn fail(
        &mut self,
        ready_reason: &str,
        message: &str,
        requeue: Requeue,
        category: ErrorCategory,
    ) -> Outcome {
        self.set(condition::READY, false, ready_reason, message);
        self.set(condition::SYNCED, false, reason::RECONCILE_ERROR, message);
        self.note(true, ready_reason, message.to_owned());
        self.finish(requeue, Some(category))
    }

    /// Ready=False with a reason whose requeue and error category the reason table gives (a refusal before any
    /// ZIM call, or one the policy makes).
    pub(super) fn refuse(&mut self, ready_reason: &'static str, message: &str) -> Outcome {
        let row = super::reasons::row(ready_reason);
        self.fail(ready_reason, message, row.requeue, row.error)
    }

    /// Synced=False; Ready untouched (the room's existence is not in question).
    pub(super) fn fail_keep_ready(
        &mut self,
        message: &str,
        requeue: Requeue,
        category: ErrorCategory,
    ) -> Outcome {
        self.set(condition::SYNCED, false, reason::RECONCILE_ERROR, message);
        self.note(true, reason::RECONCILE_ERROR, message.to_owned());
        self.finish(requeue, Some(category))
    }

    /// Shows a mapped failure: Ready (unless kept), Synced, a Warning event.
    pub(super) fn mapped(&mut self, m: FailureMapping, message: &str) -> Outcome {
        let message = match m.hint {
            Some(hint) => format!("{message}; {hint}"),
            None => message.to_owned(),
        };
        if m.keep_ready {
            return self.fail_keep_ready(&message, m.requeue, m.category);
        }
        self.fail(m.ready_reason, &message, m.requeue, m.category)
    }

    /// A failed ZIM call, mapped by its class (see [`failure::zim_failure`]). A room already known to exist
    /// stays Ready through transient trouble; terminal problems are shown.
    pub(super) fn zim_failure(&mut self, e: &ZimError) -> Outcome {
        let m = failure::zim_failure(e.class(), e.code(), self.was_ready);
        self.mapped(m, &e.to_string())
    }
}
