//! Prometheus metrics (OpenMetrics text). Labels are fixed, small sets — action, code, error category, ready
//! state — never per-object values, so the number of series stays bounded however many rooms exist.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::lock;
use crate::reconcile::ErrorCategory;
use crate::zim::{Action, CallObserver};

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
    /// Rooms by Ready status.
    pub rooms: Family<ReadyLabel, Gauge>,
    /// Status writes to the API server.
    pub status_writes: Counter,
    /// Periodic existence probes by result (`exists`, `gone`, `error`).
    pub probes: Family<ResultLabel, Counter>,
    /// 1 while this replica holds the leader lease.
    pub leader: Gauge,
    ready_counts: Mutex<std::collections::HashMap<String, String>>,
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
        registry.register("leader", "1 while this replica holds the leader lease", leader.clone());
        for ready in ["true", "false", "unknown"] {
            rooms.get_or_create(&ReadyLabel { ready: ready.into() }).set(0);
        }
        for result in ["exists", "gone", "error"] {
            probes.get_or_create(&ResultLabel { result: result.into() }).inc_by(0);
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
            ready_counts: Mutex::new(Default::default()),
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

    /// Sets the Ready state of one object (`None` when it is gone) and updates the per-state gauge.
    pub fn set_ready(&self, key: &str, ready: Option<&str>) {
        let mut states = lock(&self.ready_counts);
        match ready {
            Some(r) => {
                states.insert(key.to_owned(), r.to_owned());
            }
            None => {
                states.remove(key);
            }
        }
        for state in ["true", "false", "unknown"] {
            let n = states.values().filter(|v| v.as_str() == state).count();
            self.rooms.get_or_create(&ReadyLabel { ready: state.into() }).set(n as i64);
        }
    }

    /// The OpenMetrics text.
    pub fn encode(&self) -> String {
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
    use super::*;

    #[test]
    fn encodes_openmetrics_without_object_labels() {
        let m = Metrics::new();
        m.reconciled(Duration::from_millis(5), None);
        m.reconciled(Duration::from_millis(5), Some(ErrorCategory::Transient));
        m.observe(Action::CreateRoom, "0", Duration::from_millis(3));
        m.waited(Action::CreateRoom, Duration::ZERO);
        m.set_ready("chat/lobby", Some("true"));
        m.set_ready("chat/other", Some("false"));
        m.set_ready("chat/other", None);
        let text = m.encode();
        assert!(text.contains("zim_operator_reconciles_total{result=\"success\"} 1"), "{text}");
        assert!(text.contains("zim_operator_reconcile_failures_total{category=\"transient\"} 1"));
        assert!(text.contains("zim_operator_zim_calls_total{action=\"CreateRoom\",code=\"0\"} 1"));
        assert!(text.contains("zim_operator_rooms{ready=\"true\"} 1"));
        assert!(text.contains("zim_operator_rooms{ready=\"false\"} 0"));
        assert!(text.ends_with("# EOF\n"));
        assert!(!text.contains("lobby"));
    }
}
