//! Pure: a failure → the Ready reason, when to retry, the metrics category and a hint for the user.
//!
//! Every failure a reconcile can meet lands here — a ZIM outcome (by its [`Class`] and code), unusable
//! credentials, a status write that did not happen — so the mapping can be read, and tested, as one table.

use crate::crd::reason;
use crate::zim::codes;
use crate::zim::{Class, Terminal};

use super::Requeue;
use super::reasons::row;
pub use super::reasons::{ErrorCategory, HINT_AUTH, HINT_CLOCK, HINT_QUOTA};

/// How one failure shows on the object and when the operator comes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureMapping {
    /// The Ready reason, unless `keep_ready`.
    pub ready_reason: &'static str,
    /// When to reconcile again.
    pub requeue: Requeue,
    /// The metrics category.
    pub category: ErrorCategory,
    /// What the user should check, appended to the message.
    pub hint: Option<&'static str>,
    /// Whether a Ready=True condition stays as it is (a room already known to exist, through a retryable
    /// failure): the failure shows on Synced only.
    pub keep_ready: bool,
}

/// Maps a failed ZIM call (its class and code) to conditions and a requeue. `was_ready`: the object's Ready
/// condition was True before this reconcile.
pub fn zim_failure(class: Class, code: Option<i64>, was_ready: bool) -> FailureMapping {
    // The reason decides the rest (see `reasons::READY_REASONS`), with two exceptions: a code the table does not
    // know backs off on the slow schedule, and parameters ZIM refuses are retried slowly (a re-send of the same
    // spec would be refused again, but ZIM's rules may change), under their own error category.
    let (ready_reason, requeue, category) = match class {
        Class::Throttled => (reason::THROTTLED, None, None),
        Class::Unknown => {
            (reason::API_UNAVAILABLE, Some(Requeue::Backoff { slow: true }), Some(ErrorCategory::Unknown))
        }
        // Ok, Exists and NotFound reach here only when a room changed between two calls (e.g. it vanished
        // between CreateRoom's "already exists" and the attribute read): retry soon.
        Class::Transient | Class::NotFound | Class::Exists | Class::Ok => {
            (reason::API_UNAVAILABLE, None, None)
        }
        Class::Terminal(Terminal::Auth) => (reason::AUTH_FAILED, None, None),
        Class::Terminal(Terminal::Quota) => (reason::QUOTA_EXCEEDED, None, None),
        Class::Terminal(Terminal::InvalidParams) => {
            (reason::INVALID_SPEC, Some(Requeue::Slow), Some(ErrorCategory::InvalidParams))
        }
    };
    let row = row(ready_reason);
    let hint = if code == Some(codes::SIGNATURE_EXPIRED) { Some(HINT_CLOCK) } else { row.hint };
    FailureMapping {
        ready_reason,
        requeue: requeue.unwrap_or(row.requeue),
        category: category.unwrap_or(row.error),
        hint,
        keep_ready: was_ready && class.is_retryable(),
    }
}

/// What went wrong resolving credentials, as far as the mapping cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialsProblem {
    /// The Secret does not exist (or no Secret is configured).
    NotFound,
    /// The Secret exists but lacks or mangles its keys.
    Invalid,
    /// The Secret could not be read (forbidden, timeout, API server trouble).
    Unreadable,
    /// The namespace's policy does not allow these credentials (the operator's default Secret).
    Forbidden,
}

/// Maps a credentials problem. All are retried with backoff (a Secret change also re-queues the object).
pub fn credentials_failure(problem: CredentialsProblem) -> FailureMapping {
    let (ready_reason, category) = match problem {
        CredentialsProblem::NotFound => (reason::CREDENTIALS_NOT_FOUND, None),
        CredentialsProblem::Invalid => (reason::CREDENTIALS_INVALID, None),
        // Not the user's Secret that is wrong but reading it: the operator's RBAC or the API server.
        CredentialsProblem::Unreadable => (reason::CREDENTIALS_NOT_FOUND, Some(ErrorCategory::Kubernetes)),
        // An admin's decision: retried when the Namespace's annotations (or the object) change.
        CredentialsProblem::Forbidden => (reason::FORBIDDEN_BY_POLICY, None),
    };
    let row = row(ready_reason);
    FailureMapping {
        ready_reason,
        requeue: row.requeue,
        category: category.unwrap_or(row.error),
        hint: None,
        keep_ready: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Requeue = Requeue::Backoff { slow: false };
    const SLOW_BACKOFF: Requeue = Requeue::Backoff { slow: true };

    /// Every class, before and after the room was Ready: reason, requeue, category, hint, whether Ready stays.
    #[test]
    fn zim_failures_map_by_class() {
        use Terminal::*;
        type Row = (Class, Option<i64>, &'static str, Requeue, ErrorCategory, Option<&'static str>, bool);
        #[rustfmt::skip]
        let table: [Row; 9] = [
            (Class::Throttled, Some(660300005), reason::THROTTLED, FAST, ErrorCategory::Throttled, None, true),
            (Class::Unknown, Some(999), reason::API_UNAVAILABLE, SLOW_BACKOFF, ErrorCategory::Unknown, None, true),
            (Class::Transient, None, reason::API_UNAVAILABLE, FAST, ErrorCategory::Transient, None, true),
            (Class::NotFound, Some(660300001), reason::API_UNAVAILABLE, FAST, ErrorCategory::Transient, None, false),
            (Class::Exists, Some(660300014), reason::API_UNAVAILABLE, FAST, ErrorCategory::Transient, None, false),
            (Class::Terminal(Auth), Some(100000005), reason::AUTH_FAILED, Requeue::Slow, ErrorCategory::Auth, Some(HINT_AUTH), false),
            (Class::Terminal(Auth), Some(100000004), reason::AUTH_FAILED, Requeue::Slow, ErrorCategory::Auth, Some(HINT_CLOCK), false),
            (Class::Terminal(Quota), Some(660300015), reason::QUOTA_EXCEEDED, Requeue::Slow, ErrorCategory::Quota, Some(HINT_QUOTA), false),
            (Class::Terminal(InvalidParams), Some(660000002), reason::INVALID_SPEC, Requeue::Slow, ErrorCategory::InvalidParams, None, false),
        ];
        for (class, code, ready_reason, requeue, category, hint, keeps) in table {
            let m = zim_failure(class, code, true);
            assert_eq!(
                (m.ready_reason, m.requeue, m.category, m.hint, m.keep_ready),
                (ready_reason, requeue, category, hint, keeps),
                "{class:?} {code:?}"
            );
            // A room not yet known to exist never keeps Ready.
            assert!(!zim_failure(class, code, false).keep_ready, "{class:?}");
        }
    }

    #[test]
    fn ok_class_maps_like_a_transient_failure() {
        let m = zim_failure(Class::Ok, Some(0), false);
        assert_eq!(
            (m.ready_reason, m.category, m.requeue),
            (reason::API_UNAVAILABLE, ErrorCategory::Transient, FAST)
        );
    }

    #[test]
    fn credentials_problems_map_to_their_reason_and_category() {
        let table = [
            (CredentialsProblem::NotFound, reason::CREDENTIALS_NOT_FOUND, ErrorCategory::Credentials, FAST),
            (CredentialsProblem::Invalid, reason::CREDENTIALS_INVALID, ErrorCategory::Credentials, FAST),
            (CredentialsProblem::Unreadable, reason::CREDENTIALS_NOT_FOUND, ErrorCategory::Kubernetes, FAST),
            (
                CredentialsProblem::Forbidden,
                reason::FORBIDDEN_BY_POLICY,
                ErrorCategory::Policy,
                Requeue::OnChange,
            ),
        ];
        for (problem, ready_reason, category, requeue) in table {
            let m = credentials_failure(problem);
            assert_eq!(
                (m.ready_reason, m.category, m.requeue, m.keep_ready),
                (ready_reason, category, requeue, false)
            );
        }
    }
}
