//! Pure: a failure → the Ready reason, when to retry, the metrics category and a hint for the user.
//!
//! Every failure a reconcile can meet lands here — a ZIM outcome (by its [`Class`] and code), unusable
//! credentials, a status write that did not happen — so the mapping can be read, and tested, as one table.

use crate::crd::reason;
use crate::zim::codes;
use crate::zim::{Class, Terminal};

use super::Requeue;

/// A fixed error category: the `category` label of the failure metrics and the shape of a Warning event. The set
/// is closed so metric series stay bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    /// ZIM was busy or failed internally, or the call failed in transport (retried with backoff).
    Transient,
    /// ZIM answered a code the table does not know (retried slowly).
    Unknown,
    /// ZIM rate-limited the call.
    Throttled,
    /// ZIM refused the signature, AppId or app configuration.
    Auth,
    /// The app's room quota is used up.
    Quota,
    /// ZIM refused the request's parameters.
    InvalidParams,
    /// The spec breaks a rule the schema cannot express.
    InvalidSpec,
    /// An immutable field changed after the room was created.
    ImmutableField,
    /// The credentials Secret is missing or unusable.
    Credentials,
    /// Some attribute changes were not applied.
    Attributes,
    /// Another object owns the room.
    Conflict,
    /// The namespace's admin policy does not allow what the object asks.
    Policy,
    /// The creation intent could not be recorded on the status.
    Status,
    /// A Kubernetes API call (status write, finalizer, Secret read) failed.
    Kubernetes,
}

impl ErrorCategory {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::Transient => "transient",
            ErrorCategory::Unknown => "unknown",
            ErrorCategory::Throttled => "throttled",
            ErrorCategory::Auth => "auth",
            ErrorCategory::Quota => "quota",
            ErrorCategory::InvalidParams => "invalid_params",
            ErrorCategory::InvalidSpec => "invalid_spec",
            ErrorCategory::ImmutableField => "immutable_field",
            ErrorCategory::Credentials => "credentials",
            ErrorCategory::Attributes => "attributes",
            ErrorCategory::Conflict => "conflict",
            ErrorCategory::Policy => "policy",
            ErrorCategory::Status => "status",
            ErrorCategory::Kubernetes => "kubernetes",
        }
    }

    /// Every category, for pre-registering metric series.
    pub const ALL: [ErrorCategory; 14] = [
        ErrorCategory::Transient,
        ErrorCategory::Unknown,
        ErrorCategory::Throttled,
        ErrorCategory::Auth,
        ErrorCategory::Quota,
        ErrorCategory::InvalidParams,
        ErrorCategory::InvalidSpec,
        ErrorCategory::ImmutableField,
        ErrorCategory::Credentials,
        ErrorCategory::Attributes,
        ErrorCategory::Conflict,
        ErrorCategory::Policy,
        ErrorCategory::Status,
        ErrorCategory::Kubernetes,
    ];
}

impl std::fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// The hint for a clock more than ten minutes off.
pub const HINT_CLOCK: &str = "the operator's clock differs from ZEGO's by more than 10 minutes: check NTP";
/// The hint for refused credentials.
pub const HINT_AUTH: &str = "check the AppId and server secret, and that ZIM is enabled for the app";
/// The hint for a used-up room quota.
pub const HINT_QUOTA: &str = "the app's room quota is used up: destroy rooms or raise the plan's limit";

/// Maps a failed ZIM call (its class and code) to conditions and a requeue. `was_ready`: the object's Ready
/// condition was True before this reconcile.
pub fn zim_failure(class: Class, code: Option<i64>, was_ready: bool) -> FailureMapping {
    let fast = Requeue::Backoff { slow: false };
    let (ready_reason, requeue, category, hint) = match class {
        Class::Throttled => (reason::THROTTLED, fast, ErrorCategory::Throttled, None),
        Class::Unknown => {
            (reason::API_UNAVAILABLE, Requeue::Backoff { slow: true }, ErrorCategory::Unknown, None)
        }
        // Ok, Exists and NotFound reach here only when a room changed between two calls (e.g. it vanished
        // between CreateRoom's "already exists" and the attribute read): retry soon.
        Class::Transient | Class::NotFound | Class::Exists | Class::Ok => {
            (reason::API_UNAVAILABLE, fast, ErrorCategory::Transient, None)
        }
        Class::Terminal(Terminal::Auth) => {
            let hint = if code == Some(codes::SIGNATURE_EXPIRED) { HINT_CLOCK } else { HINT_AUTH };
            (reason::AUTH_FAILED, Requeue::Slow, ErrorCategory::Auth, Some(hint))
        }
        Class::Terminal(Terminal::Quota) => {
            (reason::QUOTA_EXCEEDED, Requeue::Slow, ErrorCategory::Quota, Some(HINT_QUOTA))
        }
        Class::Terminal(Terminal::InvalidParams) => {
            (reason::INVALID_SPEC, Requeue::Slow, ErrorCategory::InvalidParams, None)
        }
    };
    FailureMapping { ready_reason, requeue, category, hint, keep_ready: was_ready && class.is_retryable() }
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
        CredentialsProblem::NotFound => (reason::CREDENTIALS_NOT_FOUND, ErrorCategory::Credentials),
        CredentialsProblem::Invalid => (reason::CREDENTIALS_INVALID, ErrorCategory::Credentials),
        // Not the user's Secret that is wrong but reading it: the operator's RBAC or the API server.
        CredentialsProblem::Unreadable => (reason::CREDENTIALS_NOT_FOUND, ErrorCategory::Kubernetes),
        // An admin's decision: retried when the Namespace's annotations (or the object) change.
        CredentialsProblem::Forbidden => (reason::FORBIDDEN_BY_POLICY, ErrorCategory::Policy),
    };
    let requeue = match problem {
        CredentialsProblem::Forbidden => Requeue::OnChange,
        _ => Requeue::Backoff { slow: false },
    };
    FailureMapping { ready_reason, requeue, category, hint: None, keep_ready: false }
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

    #[test]
    fn category_labels_are_unique() {
        let labels: std::collections::HashSet<&str> = ErrorCategory::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(labels.len(), ErrorCategory::ALL.len());
    }
}
