//! Pure: every Ready=False reason, declared once, with everything derived from it — whether it stalls the object
//! (kstatus `Failed`, Argo CD `Degraded`) or leaves it in progress, the not-Ready category of the room gauges and
//! alerts, the error category of the failure metrics, when the operator comes back, and the hint shown to the user.
//!
//! A new reason is one row in [`READY_REASONS`] (and its constant in [`crate::crd::reason`]); the table test below
//! fails while a reason the code can set has no row. The exceptions the failure mapping makes are named in
//! [`super::failure`] (an unknown ZIM code backs off slowly; parameters ZIM refuses are retried slowly).

use crate::crd::reason;

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
}

impl std::fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a room is not Ready, in a small fixed set derived from its Ready reason (the metric label of
/// `zim_operator_rooms_not_ready` and `zim_operator_rooms_not_ready_oldest_seconds`, which the alerts read).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum NotReadyCategory {
    /// The operator is on its way (CreateRoom's outcome not known yet).
    Progressing,
    /// ZIM rate-limited the operator's calls.
    Throttled,
    /// ZIM failed or could not be reached.
    Transient,
    /// ZIM refused the signature, AppId or app configuration.
    Auth,
    /// The credentials Secret is missing or unusable.
    Credentials,
    /// The app's room quota is used up.
    Quota,
    /// The spec needs a fix.
    InvalidSpec,
    /// Another object owns the room, the credentials moved to another app, or the status's ownership record is
    /// not the operator's (UnverifiedStatus).
    Conflict,
    /// The namespace's admin policy does not allow what the object asks.
    Policy,
    /// Deletion is blocked.
    Deleting,
    /// Deletion waits for an occupied room to empty, or drains it (`spec.whenOccupied`): on purpose, the
    /// tenant's to resolve (wait, drain, or force).
    Occupied,
    /// An observed room (`managementPolicy: Observe`) does not exist; the operator does not create it.
    Missing,
    /// Reconciliation is paused by the `zim.zego.im/paused` annotation (whatever the Ready reason).
    Paused,
    /// No Ready condition yet, or a reason this version does not know.
    Other,
}

impl NotReadyCategory {
    /// Every category, for pre-registering metric series.
    pub const ALL: [NotReadyCategory; 14] = [
        NotReadyCategory::Progressing,
        NotReadyCategory::Throttled,
        NotReadyCategory::Transient,
        NotReadyCategory::Auth,
        NotReadyCategory::Credentials,
        NotReadyCategory::Quota,
        NotReadyCategory::InvalidSpec,
        NotReadyCategory::Conflict,
        NotReadyCategory::Policy,
        NotReadyCategory::Deleting,
        NotReadyCategory::Occupied,
        NotReadyCategory::Missing,
        NotReadyCategory::Paused,
        NotReadyCategory::Other,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            NotReadyCategory::Progressing => "progressing",
            NotReadyCategory::Throttled => "throttled",
            NotReadyCategory::Transient => "transient",
            NotReadyCategory::Auth => "auth",
            NotReadyCategory::Credentials => "credentials",
            NotReadyCategory::Quota => "quota",
            NotReadyCategory::InvalidSpec => "invalid_spec",
            NotReadyCategory::Conflict => "conflict",
            NotReadyCategory::Policy => "policy",
            NotReadyCategory::Deleting => "deleting",
            NotReadyCategory::Occupied => "occupied",
            NotReadyCategory::Missing => "missing",
            NotReadyCategory::Paused => "paused",
            NotReadyCategory::Other => "other",
        }
    }

    /// The category of a Ready=False reason (a reason this version does not know is `Other`).
    pub fn of_reason(ready_reason: &str) -> Self {
        ready_reason_row(ready_reason).map_or(NotReadyCategory::Other, |r| r.not_ready)
    }
}

/// Whose fix a not-Ready room needs: the platform team that runs the operator, or the team that owns the room's
/// namespace. The alerts are split along it (docs/monitoring.md, "Platform and tenant failures").
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Owner {
    /// The operator, its default credentials, ZIM or the network: the platform team's alerts.
    Platform,
    /// The room's own spec, Secret or namespace policy: routed to the room's namespace.
    Tenant,
}

impl Owner {
    /// Both owners, for pre-registering metric series.
    pub const ALL: [Owner; 2] = [Owner::Platform, Owner::Tenant];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::Platform => "platform",
            Owner::Tenant => "tenant",
        }
    }
}

/// Who a Ready=False reason is for, in the reason table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blame {
    /// Always the platform (ZIM unreachable, the operator's own progress).
    Platform,
    /// Always the room's namespace (its spec, its ownership claims, its policy).
    Tenant,
    /// Whoever owns the credentials the room uses: the platform for the default credentials Secret, the tenant for
    /// a Secret the room names (`credentialsSecretRef`): a failing app, its quota and its budget are the app's.
    Credentials,
}

impl Blame {
    /// The owner of a room with this reason; `own_credentials` when the room names its own Secret.
    pub fn owner(self, own_credentials: bool) -> Owner {
        match self {
            Blame::Platform => Owner::Platform,
            Blame::Tenant => Owner::Tenant,
            Blame::Credentials if own_credentials => Owner::Tenant,
            Blame::Credentials => Owner::Platform,
        }
    }
}

/// The hint for a clock more than ten minutes off.
pub const HINT_CLOCK: &str = "the operator's clock differs from ZEGO's by more than 10 minutes: check NTP";
/// The hint for refused credentials.
pub const HINT_AUTH: &str = "check the AppId and server secret, and that ZIM is enabled for the app";
/// The hint for a used-up room quota.
pub const HINT_QUOTA: &str = "the app's room quota is used up: destroy rooms or raise the plan's limit";

/// One Ready=False reason and everything derived from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadyReason {
    /// The reason, as on the condition.
    pub name: &'static str,
    /// Progress needs a person: `Stalled=True` (kstatus `Failed`, Argo CD `Degraded`); otherwise the object is
    /// `Reconciling=True` (kstatus `InProgress`, Argo CD `Progressing`).
    pub stalled: bool,
    /// The not-Ready category (room gauges, alerts, dashboard).
    pub not_ready: NotReadyCategory,
    /// The failure metrics' category when a reconcile ends with this reason.
    pub error: ErrorCategory,
    /// Whose fix it needs (the split of the alerts).
    pub blame: Blame,
    /// When the operator comes back (the failure mapping's exceptions aside).
    pub requeue: Requeue,
    /// What the user should check, appended to the message.
    pub hint: Option<&'static str>,
}

impl ReadyReason {
    /// The kstatus result of an object whose Ready condition is False with this reason.
    pub fn kstatus(&self) -> &'static str {
        if self.stalled { "Failed" } else { "InProgress" }
    }
}

const FAST: Requeue = Requeue::Backoff { slow: false };

/// Every reason a Ready=False condition can carry.
#[rustfmt::skip]
pub const READY_REASONS: [ReadyReason; 17] = {
    use ErrorCategory as E;
    use NotReadyCategory as N;
    use Blame as B;
    const fn row(name: &'static str, stalled: bool, not_ready: N, error: E, blame: Blame, requeue: Requeue, hint: Option<&'static str>) -> ReadyReason {
        ReadyReason { name, stalled, not_ready, error, blame, requeue, hint }
    }
    [
        //  reason                           stalled not-Ready      error              blame           requeue            hint
        row(reason::CREATING,                false, N::Progressing, E::Transient,      B::Platform,    FAST,              None),
        row(reason::THROTTLED,               false, N::Throttled,   E::Throttled,      B::Credentials, FAST,              None),
        row(reason::API_UNAVAILABLE,         false, N::Transient,   E::Transient,      B::Platform,    FAST,              None),
        row(reason::CREDENTIALS_NOT_FOUND,   false, N::Credentials, E::Credentials,    B::Credentials, FAST,              None),
        row(reason::DELETING,                false, N::Deleting,    E::Transient,      B::Platform,    FAST,              None),
        row(reason::WAITING_FOR_EMPTY_ROOM,  false, N::Occupied,    E::Transient,      B::Tenant,      Requeue::Slow,     None),
        row(reason::DRAINING,                false, N::Occupied,    E::Transient,      B::Tenant,      Requeue::Slow,     None),
        row(reason::CREDENTIALS_INVALID,     true,  N::Credentials, E::Credentials,    B::Credentials, FAST,              None),
        row(reason::AUTH_FAILED,             true,  N::Auth,        E::Auth,           B::Credentials, Requeue::Slow,     Some(HINT_AUTH)),
        row(reason::QUOTA_EXCEEDED,          true,  N::Quota,       E::Quota,          B::Credentials, Requeue::Slow,     Some(HINT_QUOTA)),
        row(reason::INVALID_SPEC,            true,  N::InvalidSpec, E::InvalidSpec,    B::Tenant,      Requeue::OnChange, None),
        row(reason::IMMUTABLE_FIELD_CHANGED, true,  N::InvalidSpec, E::ImmutableField, B::Tenant,      Requeue::OnChange, None),
        row(reason::CONFLICT,                true,  N::Conflict,    E::Conflict,       B::Tenant,      Requeue::OnChange, None),
        row(reason::UNVERIFIED_STATUS,       true,  N::Conflict,    E::Conflict,       B::Tenant,      Requeue::OnChange, None),
        row(reason::APP_ID_CHANGED,          true,  N::Conflict,    E::Credentials,    B::Credentials, Requeue::OnChange, None),
        row(reason::ROOM_NOT_FOUND,          true,  N::Missing,     E::InvalidSpec,    B::Tenant,      Requeue::Period,   None),
        row(reason::FORBIDDEN_BY_POLICY,     true,  N::Policy,      E::Policy,         B::Tenant,      Requeue::OnChange, None),
    ]
};

/// The row of `name`, if it is a Ready=False reason this version knows.
pub fn ready_reason_row(name: &str) -> Option<&'static ReadyReason> {
    READY_REASONS.iter().find(|r| r.name == name)
}

/// The row of a reason the code itself sets (a missing row is a programming error the table test catches).
pub(super) fn row(name: &'static str) -> &'static ReadyReason {
    ready_reason_row(name).unwrap_or_else(|| panic!("Ready reason {name} has no row in READY_REASONS"))
}

/// Whether a Ready=False `reason` needs a person (Stalled).
pub fn is_stalled(ready_reason: &str) -> bool {
    ready_reason_row(ready_reason).is_some_and(|r| r.stalled)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reason constant in `crd::reason` that can stand on Ready=False has exactly one row; the other
    /// constants are Ready=True, Synced or kstatus reasons.
    #[test]
    fn every_ready_reason_has_one_row() {
        let not_ready_false = [
            reason::AVAILABLE,
            reason::ATTRIBUTES_PENDING,
            reason::ATTRIBUTES_REFUSED,
            reason::CONVERGED,
            reason::RECONCILE_SUCCESS,
            reason::RECONCILE_ERROR,
            reason::RECONCILE_PAUSED,
            reason::OBSERVED,
            reason::DRIFTED,
        ];
        let source = include_str!("../crd.rs");
        let declared: Vec<&str> = source
            .lines()
            .filter_map(|l| l.trim().strip_prefix("pub const "))
            .filter_map(|l| l.split_once(": &str = \""))
            .map(|(_, v)| v.trim_end_matches("\";"))
            .filter(|v| v.chars().next().is_some_and(char::is_uppercase) && !v.contains('/'))
            .filter(|v| !["Ready", "Synced", "Reconciling", "Stalled"].contains(v))
            .collect();
        for name in &declared {
            let rows = READY_REASONS.iter().filter(|r| r.name == *name).count();
            let want = usize::from(!not_ready_false.contains(name));
            assert_eq!(rows, want, "{name}");
        }
        assert_eq!(READY_REASONS.len() + not_ready_false.len(), declared.len());
    }

    /// The derived views agree with the rows: categories, Stalled, kstatus.
    #[test]
    fn derived_views_follow_the_table() {
        for r in READY_REASONS {
            assert_eq!(NotReadyCategory::of_reason(r.name), r.not_ready, "{}", r.name);
            assert_eq!(is_stalled(r.name), r.stalled, "{}", r.name);
            // What the object then says to kstatus: Stalled=True (Failed) or Reconciling=True (InProgress).
            let mut status = crate::crd::ZimRoomStatus::default();
            let at = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH);
            crate::reconcile::conditions::set(
                &mut status.conditions,
                "Ready",
                false,
                r.name,
                "m",
                Some(1),
                &at,
            );
            let stuck = matches!(
                crate::reconcile::decide::progress(&status, "h", false, false),
                crate::reconcile::decide::Progress::Stuck { .. }
            );
            assert_eq!(stuck, r.stalled, "{}", r.name);
            assert_eq!(r.kstatus(), if stuck { "Failed" } else { "InProgress" });
            // A reason that needs a person is never retried on the fast schedule alone, except credentials
            // (a Secret change re-queues the object at once anyway).
            if r.stalled && r.requeue == FAST {
                assert_eq!(r.not_ready, NotReadyCategory::Credentials, "{}", r.name);
            }
        }
        assert_eq!(NotReadyCategory::of_reason("SomethingNew"), NotReadyCategory::Other);
        assert!(!is_stalled("SomethingNew"));
        let labels: std::collections::HashSet<_> = NotReadyCategory::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(labels.len(), NotReadyCategory::ALL.len());
        let labels: std::collections::HashSet<&str> = ErrorCategory::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(labels.len(), ErrorCategory::ALL.len());
    }
}
