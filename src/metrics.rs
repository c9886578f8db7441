//! Prometheus metrics (OpenMetrics text). Labels are fixed, small sets — action, code, error category, ready
//! state, not-Ready category, callback event and outcome — never per-object values, so the number of series stays
//! bounded however many rooms exist.
//!
//! The series the alert rules (`monitoring/zim-operator.rules.yaml`) and the dashboard
//! (`dashboards/zim-operator.json`) rely on exist from the start with value 0: every error category, the ZIM
//! throttling and quota codes of every action, every not-Ready category and every callback event and outcome. A
//! counter that first appears at 1 has no earlier sample, and Prometheus' `increase` and `rate` would miss it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::crd::{condition, reason};
use crate::lock;
use crate::reconcile::ErrorCategory;
use crate::zim::{Action, CallObserver};

/// ZIM codes whose series exist from the start for every action: the throttling codes (7 at the gateway, 660300005
/// per app, 660300006 per room, 660700001 for UserRegister) and the room quota (660300015), which the alert rules
/// watch with `increase`.
pub const PREINITIALISED_CODES: [&str; 5] = ["7", "660300005", "660300006", "660700001", "660300015"];

/// Labels: a reconcile's result (`success` or an error category).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `success`, or the error category.
    pub result: String,
}

/// Labels: an error category.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CategoryLabel {
    /// e.g. `transient`, `throttled`, `auth`, `invalid_spec`, `credentials`, `kubernetes`.
    pub category: String,
}

/// Labels: a ZIM action and the outcome code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabel {
    /// The action.
    pub action: String,
    /// ZIM's code, or `timeout`, `transport`, `decode`, `http_NNN`.
    pub code: String,
}

/// Labels: a ZIM action.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    /// The action.
    pub action: String,
}

/// Labels: a Ready state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadyLabel {
    /// `true`, `false`, or `unknown`.
    pub ready: String,
}

/// Labels: why rooms are not Ready.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotReadyLabel {
    /// A [`NotReadyCategory`].
    pub category: String,
}

/// Why a room is not Ready, in a small fixed set derived from its Ready reason (the metric label of
/// `zim_operator_rooms_not_ready` and `zim_operator_rooms_not_ready_oldest_seconds`).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum NotReadyCategory {
    /// `Creating`: the operator is on its way (CreateRoom's outcome not known yet).
    Progressing,
    /// `Throttled`: ZIM rate-limited the operator's calls.
    Throttled,
    /// `ApiUnavailable`: ZIM failed or could not be reached.
    Transient,
    /// `AuthFailed`: ZIM refused the signature, AppId or app configuration.
    Auth,
    /// `CredentialsNotFound`, `CredentialsInvalid`: the credentials Secret is missing or unusable.
    Credentials,
    /// `QuotaExceeded`: the app's room quota is used up.
    Quota,
    /// `InvalidSpec`, `ImmutableFieldChanged`: the spec needs a fix.
    InvalidSpec,
    /// `Conflict`, `AppIdChanged`: another object owns the room, or the credentials moved to another app.
    Conflict,
    /// `ForbiddenByPolicy`: the namespace's admin policy does not allow what the object asks.
    Policy,
    /// `Deleting`: deletion is blocked.
    Deleting,
    /// Reconciliation is paused by the `zim.zego.im/paused` annotation (whatever the Ready reason).
    Paused,
    /// No Ready condition yet, or a reason this version does not know.
    Other,
}

impl NotReadyCategory {
    /// Every category, for pre-registering metric series.
    pub const ALL: [NotReadyCategory; 12] = [
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
            NotReadyCategory::Paused => "paused",
            NotReadyCategory::Other => "other",
        }
    }

    /// The category of a Ready=False reason.
    pub fn of_reason(ready_reason: &str) -> Self {
        match ready_reason {
            reason::CREATING => NotReadyCategory::Progressing,
            reason::THROTTLED => NotReadyCategory::Throttled,
            reason::API_UNAVAILABLE => NotReadyCategory::Transient,
            reason::AUTH_FAILED => NotReadyCategory::Auth,
            reason::CREDENTIALS_NOT_FOUND | reason::CREDENTIALS_INVALID => NotReadyCategory::Credentials,
            reason::QUOTA_EXCEEDED => NotReadyCategory::Quota,
            reason::INVALID_SPEC | reason::IMMUTABLE_FIELD_CHANGED => NotReadyCategory::InvalidSpec,
            reason::CONFLICT | reason::APP_ID_CHANGED => NotReadyCategory::Conflict,
            reason::FORBIDDEN_BY_POLICY => NotReadyCategory::Policy,
            reason::DELETING => NotReadyCategory::Deleting,
            _ => NotReadyCategory::Other,
        }
    }
}

/// One object's Ready state as the metrics see it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Readiness {
    /// `Some(true)` for Ready=True, `Some(false)` for Ready=False, `None` without a Ready condition.
    pub ready: Option<bool>,
    /// Why it is not Ready (`None` when it is).
    pub category: Option<NotReadyCategory>,
    /// Since when it has not been Ready: the Ready condition's lastTransitionTime (else the Synced condition's,
    /// else when the operator first saw it so).
    pub since: jiff::Timestamp,
}

impl Readiness {
    /// The readiness an object's conditions describe; `now` stands in for a missing transition time.
    pub fn of_conditions(conditions: &[Condition], now: jiff::Timestamp) -> Self {
        let find = |t: &str| conditions.iter().find(|c| c.type_ == t);
        let ready = find(condition::READY);
        let synced = find(condition::SYNCED);
        let paused = synced.is_some_and(|c| c.reason == reason::RECONCILE_PAUSED);
        let state = ready.map(|c| c.status == "True");
        if state == Some(true) {
            return Readiness { ready: state, category: None, since: now };
        }
        let category = if paused {
            NotReadyCategory::Paused
        } else {
            ready.map_or(NotReadyCategory::Other, |c| NotReadyCategory::of_reason(&c.reason))
        };
        let since = ready.or(synced).map_or(now, |c| c.last_transition_time.0);
        Readiness { ready: state, category: Some(category), since }
    }

    fn ready_label(&self) -> &'static str {
        match self.ready {
            Some(true) => "true",
            Some(false) => "false",
            None => "unknown",
        }
    }
}

/// Labels: a server callback's event and what the operator did with it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallbackLabel {
    /// A [`CallbackEvent`].
    pub event: String,
    /// A [`CallbackOutcome`].
    pub outcome: String,
}

/// The event of a ZEGO server callback, as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallbackEvent {
    /// `room_create`.
    RoomCreate,
    /// `room_destroy`.
    RoomDestroy,
    /// Any other event, or none that could be read.
    Other,
}

impl CallbackEvent {
    /// Every event label.
    pub const ALL: [CallbackEvent; 3] =
        [CallbackEvent::RoomCreate, CallbackEvent::RoomDestroy, CallbackEvent::Other];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackEvent::RoomCreate => "room_create",
            CallbackEvent::RoomDestroy => "room_destroy",
            CallbackEvent::Other => "other",
        }
    }
}

/// What the operator did with a server callback, as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// Verified and acted upon (a re-check of the room queued).
    Accepted,
    /// Verified; a re-check of the same room was already queued.
    Coalesced,
    /// Verified, but about nothing the operator manages (another app, an unknown room, an event it does not use).
    Ignored,
    /// Refused: the signature did not verify.
    BadSignature,
    /// Refused: not a callback the operator can read.
    Malformed,
    /// Verified, but dropped because the re-check queue was full (the periodic probe still covers the room).
    Overflow,
}

impl CallbackOutcome {
    /// Every outcome label.
    pub const ALL: [CallbackOutcome; 6] = [
        CallbackOutcome::Accepted,
        CallbackOutcome::Coalesced,
        CallbackOutcome::Ignored,
        CallbackOutcome::BadSignature,
        CallbackOutcome::Malformed,
        CallbackOutcome::Overflow,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackOutcome::Accepted => "accepted",
            CallbackOutcome::Coalesced => "coalesced",
            CallbackOutcome::Ignored => "ignored",
            CallbackOutcome::BadSignature => "bad_signature",
            CallbackOutcome::Malformed => "malformed",
            CallbackOutcome::Overflow => "overflow",
        }
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    /// Reconciles by result.
    pub reconciles: Family<ResultLabel, Counter>,
    /// Failed reconciles by error category.
    pub reconcile_failures: Family<CategoryLabel, Counter>,
    /// Reconcile duration.
    pub reconcile_duration: Histogram,
    /// ZIM calls by action and code.
    pub zim_calls: Family<CallLabel, Counter>,
    /// ZIM call latency by action.
    pub zim_latency: Family<ActionLabel, Histogram, fn() -> Histogram>,
    /// Time spent waiting for the rate limiter, by action.
    pub limiter_wait: Family<ActionLabel, Histogram, fn() -> Histogram>,
    /// Rooms by Ready status (set from [`Metrics::set_ready`] at each scrape).
    pub rooms: Family<ReadyLabel, Gauge>,
    /// Rooms not Ready, by [`NotReadyCategory`] (set from [`Metrics::set_ready`] at each scrape).
    pub rooms_not_ready: Family<NotReadyLabel, Gauge>,
    /// Per [`NotReadyCategory`], seconds since the longest-waiting room of the category stopped being Ready (0
    /// when none; computed at each scrape).
    pub rooms_not_ready_oldest: Family<NotReadyLabel, Gauge<f64, AtomicU64>>,
    /// Status writes to the API server.
    pub status_writes: Counter,
    /// Periodic existence probes by result (`exists`, `gone`, `error`).
    pub probes: Family<ResultLabel, Counter>,
    /// 1 while this replica holds the leader lease (or reconciles without leader election).
    pub leader: Gauge,
    /// The configured existence-probe period (`--resync-period`), in seconds; 0 while the prober does not run
    /// (a standby).
    pub probe_period: Gauge<f64, AtomicU64>,
    /// The period the prober actually achieves within its call budget, in seconds: equal to `probe_period` while
    /// it keeps up, longer when there are more rooms than the budget covers in one period.
    pub probe_effective_period: Gauge<f64, AtomicU64>,
    /// ZEGO server callbacks by [`CallbackEvent`] and [`CallbackOutcome`] (see [`Metrics::callback`]).
    pub callbacks: Family<CallbackLabel, Counter>,
    readiness: Mutex<HashMap<String, Readiness>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `zim_operator` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("zim_operator");
        let reconciles = Family::<ResultLabel, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by result (success or error category)",
            reconciles.clone(),
        );
        let reconcile_failures = Family::<CategoryLabel, Counter>::default();
        registry.register(
            "reconcile_failures",
            "Failed reconciles by error category",
            reconcile_failures.clone(),
        );
        let reconcile_duration = latency_histogram();
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one reconcile",
            reconcile_duration.clone(),
        );
        let zim_calls = Family::<CallLabel, Counter>::default();
        registry.register("zim_calls", "ZIM server-API calls by action and result code", zim_calls.clone());
        let zim_latency: Family<ActionLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register("zim_call_duration_seconds", "ZIM call latency by action", zim_latency.clone());
        let limiter_wait: Family<ActionLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "zim_limiter_wait_seconds",
            "Time ZIM calls waited for the rate limiter",
            limiter_wait.clone(),
        );
        let rooms = Family::<ReadyLabel, Gauge>::default();
        registry.register("rooms", "ZimRooms by Ready condition status", rooms.clone());
        let status_writes = Counter::default();
        registry.register("status_writes", "ZimRoom status writes", status_writes.clone());
        let probes = Family::<ResultLabel, Counter>::default();
        registry.register("existence_probes", "Periodic room existence probes by result", probes.clone());
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader lease (or reconciles without leader election)",
            leader.clone(),
        );
        let rooms_not_ready = Family::<NotReadyLabel, Gauge>::default();
        registry.register(
            "rooms_not_ready",
            "ZimRooms not Ready, by category of their Ready reason",
            rooms_not_ready.clone(),
        );
        let rooms_not_ready_oldest = Family::<NotReadyLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "rooms_not_ready_oldest_seconds",
            "Seconds since the longest-waiting not-Ready ZimRoom of each category stopped being Ready (0 when none)",
            rooms_not_ready_oldest.clone(),
        );
        let probe_period = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "probe_period_seconds",
            "Configured period of the existence probe of each converged room (0 while the prober does not run)",
            probe_period.clone(),
        );
        let probe_effective_period = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "probe_effective_period_seconds",
            "Period of the existence probe the prober achieves within its call budget",
            probe_effective_period.clone(),
        );
        let callbacks = Family::<CallbackLabel, Counter>::default();
        registry.register("callbacks", "ZEGO server callbacks by event and outcome", callbacks.clone());
        for ready in ["true", "false", "unknown"] {
            rooms.get_or_create(&ReadyLabel { ready: ready.into() }).set(0);
        }
        for category in NotReadyCategory::ALL {
            let label = NotReadyLabel { category: category.as_str().into() };
            rooms_not_ready.get_or_create(&label).set(0);
            rooms_not_ready_oldest.get_or_create(&label).set(0.0);
        }
        for result in ["exists", "gone", "error"] {
            probes.get_or_create(&ResultLabel { result: result.into() }).inc_by(0);
        }
        for category in ErrorCategory::ALL {
            reconcile_failures.get_or_create(&CategoryLabel { category: category.as_str().into() }).inc_by(0);
        }
        for action in Action::ALL {
            for code in PREINITIALISED_CODES {
                let label = CallLabel { action: action.as_str().into(), code: code.into() };
                zim_calls.get_or_create(&label).inc_by(0);
            }
        }
        for event in CallbackEvent::ALL {
            for outcome in CallbackOutcome::ALL {
                let label = CallbackLabel { event: event.as_str().into(), outcome: outcome.as_str().into() };
                callbacks.get_or_create(&label).inc_by(0);
            }
        }
        Self {
            registry,
            reconciles,
            reconcile_failures,
            reconcile_duration,
            zim_calls,
            zim_latency,
            limiter_wait,
            rooms,
            status_writes,
            probes,
            leader,
            rooms_not_ready,
            rooms_not_ready_oldest,
            probe_period,
            probe_effective_period,
            callbacks,
            readiness: Mutex::new(Default::default()),
        }
    }

    /// Records one reconcile.
    pub fn reconciled(&self, duration: Duration, error_category: Option<ErrorCategory>) {
        self.reconcile_duration.observe(duration.as_secs_f64());
        let result = error_category.map_or("success", ErrorCategory::as_str).to_owned();
        self.reconciles.get_or_create(&ResultLabel { result }).inc();
        if let Some(category) = error_category {
            self.reconcile_failures
                .get_or_create(&CategoryLabel { category: category.as_str().to_owned() })
                .inc();
        }
    }

    /// Records the Ready state of one object (`None` when it is gone); the room gauges follow at the next scrape.
    /// An object that stays not Ready in the same category keeps the earliest `since` seen (a missing transition
    /// time does not restart its clock).
    pub fn set_ready(&self, key: &str, readiness: Option<Readiness>) {
        let mut states = lock(&self.readiness);
        match readiness {
            Some(mut r) => {
                if let Some(old) = states.get(key)
                    && r.category.is_some()
                    && old.category == r.category
                {
                    r.since = r.since.min(old.since);
                }
                states.insert(key.to_owned(), r);
            }
            None => {
                states.remove(key);
            }
        }
    }

    /// Forgets every object for which `keep` is false (objects gone without passing through the operator's
    /// cleanup, e.g. their finalizer removed by hand).
    pub fn retain_rooms(&self, mut keep: impl FnMut(&str) -> bool) {
        lock(&self.readiness).retain(|k, _| keep(k));
    }

    /// Sets the room gauges from the recorded Ready states, with ages as of `now`.
    fn refresh_rooms(&self, now: jiff::Timestamp) {
        let states = lock(&self.readiness);
        let mut by_ready: HashMap<&str, i64> = HashMap::new();
        let mut by_category: HashMap<NotReadyCategory, (i64, jiff::Timestamp)> = HashMap::new();
        for r in states.values() {
            *by_ready.entry(r.ready_label()).or_default() += 1;
            if let Some(category) = r.category {
                let entry = by_category.entry(category).or_insert((0, r.since));
                entry.0 += 1;
                entry.1 = entry.1.min(r.since);
            }
        }
        drop(states);
        for state in ["true", "false", "unknown"] {
            let n = by_ready.get(state).copied().unwrap_or(0);
            self.rooms.get_or_create(&ReadyLabel { ready: state.into() }).set(n);
        }
        for category in NotReadyCategory::ALL {
            let label = NotReadyLabel { category: category.as_str().into() };
            let (n, age) = match by_category.get(&category) {
                Some((n, since)) => {
                    let age = now.duration_since(*since).as_secs_f64().max(0.0);
                    (*n, age)
                }
                None => (0, 0.0),
            };
            self.rooms_not_ready.get_or_create(&label).set(n);
            self.rooms_not_ready_oldest.get_or_create(&label).set(age);
        }
    }

    /// Sets the prober's configured and achieved periods.
    pub fn set_probe_periods(&self, configured: Duration, effective: Duration) {
        self.probe_period.set(configured.as_secs_f64());
        self.probe_effective_period.set(effective.as_secs_f64());
    }

    /// Counts one server callback.
    pub fn callback(&self, event: CallbackEvent, outcome: CallbackOutcome) {
        let label = CallbackLabel { event: event.as_str().into(), outcome: outcome.as_str().into() };
        self.callbacks.get_or_create(&label).inc();
    }

    /// The OpenMetrics text.
    pub fn encode(&self) -> String {
        self.refresh_rooms(jiff::Timestamp::now());
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl CallObserver for Metrics {
    fn observe(&self, action: Action, result: &str, latency: Duration) {
        let a = action.as_str().to_owned();
        self.zim_calls.get_or_create(&CallLabel { action: a.clone(), code: result.to_owned() }).inc();
        self.zim_latency.get_or_create(&ActionLabel { action: a }).observe(latency.as_secs_f64());
    }

    fn waited(&self, action: Action, wait: Duration) {
        let a = action.as_str().to_owned();
        self.limiter_wait.get_or_create(&ActionLabel { action: a }).observe(wait.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn cond(type_: &str, status: &str, reason: &str, at: i64) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: Time(jiff::Timestamp::from_second(at).unwrap()),
        }
    }

    fn ts(at: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(at).unwrap()
    }

    fn line(text: &str, prefix: &str) -> f64 {
        let l = text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("{prefix} in\n{text}"));
        l.rsplit(' ').next().unwrap().parse().unwrap()
    }

    #[test]
    fn encodes_openmetrics_without_object_labels() {
        let m = Metrics::new();
        m.reconciled(Duration::from_millis(5), None);
        m.reconciled(Duration::from_millis(5), Some(ErrorCategory::Transient));
        m.observe(Action::CreateRoom, "0", Duration::from_millis(3));
        m.waited(Action::CreateRoom, Duration::ZERO);
        let ready = [cond("Ready", "True", "Available", 100)];
        m.set_ready("chat/lobby", Some(Readiness::of_conditions(&ready, ts(100))));
        let not_ready = [cond("Ready", "False", "Creating", 100)];
        m.set_ready("chat/other", Some(Readiness::of_conditions(&not_ready, ts(100))));
        m.set_ready("chat/other", None);
        let text = m.encode();
        assert!(text.contains("zim_operator_reconciles_total{result=\"success\"} 1"), "{text}");
        assert!(text.contains("zim_operator_reconcile_failures_total{category=\"transient\"} 1"));
        assert!(text.contains("zim_operator_zim_calls_total{action=\"CreateRoom\",code=\"0\"} 1"));
        assert!(text.contains("zim_operator_rooms{ready=\"true\"} 1"));
        assert!(text.contains("zim_operator_rooms{ready=\"false\"} 0"));
        assert!(text.contains("zim_operator_rooms_not_ready{category=\"progressing\"} 0"));
        assert!(text.ends_with("# EOF\n"));
        assert!(!text.contains("lobby"));
    }

    /// The series alerts rely on exist at 0 before anything happened.
    #[test]
    fn alerting_series_start_at_zero() {
        let text = Metrics::new().encode();
        for category in ErrorCategory::ALL {
            let series =
                format!("zim_operator_reconcile_failures_total{{category=\"{}\"}} 0", category.as_str());
            assert!(text.contains(&series), "{series}");
        }
        for action in Action::ALL {
            for code in PREINITIALISED_CODES {
                let series = format!(
                    "zim_operator_zim_calls_total{{action=\"{}\",code=\"{code}\"}} 0",
                    action.as_str()
                );
                assert!(text.contains(&series), "{series}");
            }
        }
        for category in NotReadyCategory::ALL {
            let c = category.as_str();
            assert!(text.contains(&format!("zim_operator_rooms_not_ready{{category=\"{c}\"}} 0\n")), "{c}");
            assert!(
                text.contains(&format!(
                    "zim_operator_rooms_not_ready_oldest_seconds{{category=\"{c}\"}} 0.0\n"
                ))
            );
        }
        let callbacks = text.lines().filter(|l| l.starts_with("zim_operator_callbacks_total{")).count();
        assert_eq!(callbacks, CallbackEvent::ALL.len() * CallbackOutcome::ALL.len());
        assert!(
            text.contains("zim_operator_callbacks_total{event=\"room_destroy\",outcome=\"bad_signature\"} 0")
        );
        assert_eq!(line(&text, "zim_operator_probe_period_seconds "), 0.0);
        assert_eq!(line(&text, "zim_operator_probe_effective_period_seconds "), 0.0);
    }

    /// Every Ready reason maps to a category, and the category names stay distinct.
    #[test]
    fn ready_reasons_map_to_categories() {
        let cases = [
            (reason::CREATING, "progressing"),
            (reason::THROTTLED, "throttled"),
            (reason::API_UNAVAILABLE, "transient"),
            (reason::AUTH_FAILED, "auth"),
            (reason::CREDENTIALS_NOT_FOUND, "credentials"),
            (reason::CREDENTIALS_INVALID, "credentials"),
            (reason::QUOTA_EXCEEDED, "quota"),
            (reason::INVALID_SPEC, "invalid_spec"),
            (reason::IMMUTABLE_FIELD_CHANGED, "invalid_spec"),
            (reason::CONFLICT, "conflict"),
            (reason::APP_ID_CHANGED, "conflict"),
            (reason::FORBIDDEN_BY_POLICY, "policy"),
            (reason::DELETING, "deleting"),
            ("SomethingNew", "other"),
        ];
        for (r, want) in cases {
            assert_eq!(NotReadyCategory::of_reason(r).as_str(), want, "{r}");
        }
        let labels: std::collections::HashSet<_> = NotReadyCategory::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(labels.len(), NotReadyCategory::ALL.len());
    }

    /// Counts and the oldest age per category, from the Ready condition's transition time; a paused room counts as
    /// paused whatever its reason; a room without conditions keeps the time it was first seen so.
    #[test]
    fn not_ready_gauges_count_and_age_by_category() {
        let m = Metrics::new();
        let quota = |at| [cond("Ready", "False", reason::QUOTA_EXCEEDED, at)];
        m.set_ready("a/q1", Some(Readiness::of_conditions(&quota(1000), ts(1500))));
        m.set_ready("b/q2", Some(Readiness::of_conditions(&quota(1200), ts(1500))));
        let paused = [
            cond("Ready", "False", reason::INVALID_SPEC, 1100),
            cond("Synced", "False", reason::RECONCILE_PAUSED, 1300),
        ];
        m.set_ready("a/p", Some(Readiness::of_conditions(&paused, ts(1500))));
        m.set_ready("a/new", Some(Readiness::of_conditions(&[], ts(1400))));
        // Seen again later, still without conditions: its clock does not restart.
        m.set_ready("a/new", Some(Readiness::of_conditions(&[], ts(1450))));
        m.set_ready(
            "a/ok",
            Some(Readiness::of_conditions(&[cond("Ready", "True", reason::AVAILABLE, 900)], ts(1500))),
        );
        m.refresh_rooms(ts(2000));
        let text = {
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, &m.registry).unwrap();
            out
        };
        assert_eq!(line(&text, "zim_operator_rooms_not_ready{category=\"quota\"}"), 2.0);
        assert_eq!(line(&text, "zim_operator_rooms_not_ready_oldest_seconds{category=\"quota\"}"), 1000.0);
        assert_eq!(line(&text, "zim_operator_rooms_not_ready{category=\"paused\"}"), 1.0);
        assert_eq!(line(&text, "zim_operator_rooms_not_ready_oldest_seconds{category=\"paused\"}"), 900.0);
        assert_eq!(line(&text, "zim_operator_rooms_not_ready{category=\"invalid_spec\"}"), 0.0);
        assert_eq!(line(&text, "zim_operator_rooms_not_ready{category=\"other\"}"), 1.0);
        assert_eq!(line(&text, "zim_operator_rooms_not_ready_oldest_seconds{category=\"other\"}"), 600.0);
        assert_eq!(line(&text, "zim_operator_rooms{ready=\"false\"}"), 3.0);
        assert_eq!(line(&text, "zim_operator_rooms{ready=\"unknown\"}"), 1.0);
        assert_eq!(line(&text, "zim_operator_rooms{ready=\"true\"}"), 1.0);
        // Gone objects leave the gauges, including through retain_rooms.
        m.set_ready("a/q1", None);
        m.retain_rooms(|k| k != "a/new");
        m.refresh_rooms(ts(2000));
        assert_eq!(m.rooms_not_ready.get_or_create(&NotReadyLabel { category: "quota".into() }).get(), 1);
        let oldest =
            m.rooms_not_ready_oldest.get_or_create(&NotReadyLabel { category: "quota".into() }).get();
        assert_eq!(oldest, 800.0);
        assert_eq!(m.rooms_not_ready.get_or_create(&NotReadyLabel { category: "other".into() }).get(), 0);
    }

    #[test]
    fn probe_periods_and_callbacks() {
        let m = Metrics::new();
        m.set_probe_periods(Duration::from_secs(600), Duration::from_secs(900));
        m.callback(CallbackEvent::RoomDestroy, CallbackOutcome::Accepted);
        m.callback(CallbackEvent::RoomDestroy, CallbackOutcome::Accepted);
        let text = m.encode();
        assert_eq!(line(&text, "zim_operator_probe_period_seconds "), 600.0);
        assert_eq!(line(&text, "zim_operator_probe_effective_period_seconds "), 900.0);
        assert_eq!(
            line(&text, "zim_operator_callbacks_total{event=\"room_destroy\",outcome=\"accepted\"}"),
            2.0
        );
    }
}
