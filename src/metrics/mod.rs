//! Prometheus metrics (OpenMetrics text). Labels are fixed, small sets — action, code, error category, ready
//! state, not-Ready category, callback event and outcome — never per-object values, so the number of series stays
//! bounded however many rooms exist. Each label is an enum of the module that owns the concept
//! ([`ErrorCategory`] and [`NotReadyCategory`] of the reconcile core's reason table, [`Action`] of the ZIM client,
//! the callback receiver's [`Event`] and [`Outcome`]); this module only says how each is written.
//!
//! One component per part of the operator, each registering its own families: [`ReconcileMetrics`] (reconciles,
//! failures, status writes), [`ZimMetrics`] (calls, latency, limiter waits), [`RoomMetrics`] (rooms by readiness,
//! from each object's Ready condition), [`ProberMetrics`] (existence probes and periods), [`CallbackMetrics`]
//! (ZEGO's server callbacks), plus the leader gauge, `zim_operator_build_info` (the version) and the process's own
//! CPU, memory and file descriptors ([`ProcessCollector`], under the usual `process_` names).
//!
//! The series the alert rules (`monitoring/zim-operator.rules.yaml`) and the dashboard
//! (`dashboards/zim-operator.json`) rely on exist from the start with value 0: every error category, the ZIM
//! throttling and quota codes of every action, every not-Ready category and every callback event and outcome. A
//! counter that first appears at 1 has no earlier sample, and Prometheus' `increase` and `rate` would miss it.

mod callbacks;
mod controller;
mod process;
mod rooms;
mod zim;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::callback::{Event, Outcome};
use crate::reconcile::{ErrorCategory, NotReadyCategory, Owner};
use crate::zim::Action;

pub use callbacks::{CallbackLabel, CallbackMetrics};
pub use controller::{
    CategoryLabel, ProbeLabel, ProbeResult, ProberMetrics, ReconcileMetrics, ReconcileResult, ResultLabel,
};
pub use process::{ProcessCollector, Sample as ProcessSample};
pub use rooms::{NotReadyLabel, Readiness, ReadyLabel, ReadyState, RoomMetrics, TenantLabel, room_key};
pub use zim::{ActionLabel, CallLabel, PREINITIALISED_CODES, ZimMetrics};

/// Writes each label enum as its `as_str`.
macro_rules! label_values {
    ($($t:ty),* $(,)?) => {$(
        impl EncodeLabelValue for $t {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                std::fmt::Write::write_str(encoder, self.as_str())
            }
        }
    )*};
}
label_values!(ErrorCategory, NotReadyCategory, Owner, Action, Event, Outcome, ProbeResult, ReadyState);

/// Labels of `zim_operator_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabel {
    /// The operator's version (Cargo.toml's, as the chart's appVersion).
    pub version: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    /// Reconciles and status writes.
    pub reconcile: ReconcileMetrics,
    /// ZIM calls and the rate limiter.
    pub zim: ZimMetrics,
    /// Rooms by Ready state.
    pub rooms: RoomMetrics,
    /// The periodic existence probes.
    pub prober: ProberMetrics,
    /// ZEGO's server callbacks.
    pub callbacks: CallbackMetrics,
    /// 1 while this replica holds the leader lease (or reconciles without leader election).
    pub leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `zim_operator` prefix, and the process's own under `process_`.
    pub fn new() -> Self {
        let mut root = Registry::default();
        root.register_collector(Box::new(ProcessCollector));
        let registry = root.sub_registry_with_prefix("zim_operator");
        let build = Family::<BuildLabel, Gauge>::default();
        build.get_or_create(&BuildLabel { version: env!("CARGO_PKG_VERSION") }).set(1);
        registry.register("build_info", "The operator's version, as a label; the value is always 1", build);
        let reconcile = ReconcileMetrics::register(registry);
        let zim = ZimMetrics::register(registry);
        let rooms = RoomMetrics::register(registry);
        let prober = ProberMetrics::register(registry);
        let callbacks = CallbackMetrics::register(registry);
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader lease (or reconciles without leader election)",
            leader.clone(),
        );
        Self { registry: root, reconcile, zim, rooms, prober, callbacks, leader }
    }

    /// The OpenMetrics text.
    pub fn encode(&self) -> String {
        self.rooms.refresh(jiff::Timestamp::now());
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::zim::CallObserver;

    /// The value of the first line starting with `prefix`.
    pub(super) fn line(text: &str, prefix: &str) -> f64 {
        let l = text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("{prefix} in\n{text}"));
        l.rsplit(' ').next().unwrap().parse().unwrap()
    }

    #[test]
    fn encodes_openmetrics_without_object_labels() {
        let m = Metrics::new();
        m.reconcile.reconciled(Duration::from_millis(5), None);
        m.reconcile.reconciled(Duration::from_millis(5), Some(ErrorCategory::Transient));
        m.zim.observe(Action::CreateRoom, "0", Duration::from_millis(3));
        m.zim.waited(Action::CreateRoom, Duration::ZERO);
        let ready = [rooms::tests::cond("Ready", "True", "Available", 100)];
        m.rooms.set_ready("chat/lobby", Some(Readiness::of_conditions(&ready, false, rooms::tests::ts(100))));
        let not_ready = [rooms::tests::cond("Ready", "False", "Creating", 100)];
        m.rooms.set_ready(
            "chat/other",
            Some(Readiness::of_conditions(&not_ready, false, rooms::tests::ts(100))),
        );
        m.rooms.set_ready("chat/other", None);
        let text = m.encode();
        assert!(text.contains("zim_operator_reconciles_total{result=\"success\"} 1"), "{text}");
        assert!(text.contains("zim_operator_reconcile_failures_total{category=\"transient\"} 1"));
        assert!(text.contains("zim_operator_zim_calls_total{action=\"CreateRoom\",code=\"0\"} 1"));
        assert!(text.contains("zim_operator_rooms{ready=\"true\"} 1"));
        assert!(text.contains("zim_operator_rooms{ready=\"false\"} 0"));
        assert!(text.contains("zim_operator_rooms_not_ready{category=\"progressing\",owner=\"platform\"} 0"));
        assert!(
            text.contains(&format!("zim_operator_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION")))
        );
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
            for owner in ["platform", "tenant"] {
                let labels = format!("{{category=\"{}\",owner=\"{owner}\"}}", category.as_str());
                assert!(text.contains(&format!("zim_operator_rooms_not_ready{labels} 0\n")), "{labels}");
                assert!(text.contains(&format!("zim_operator_rooms_not_ready_oldest_seconds{labels} 0.0\n")));
            }
        }
        // The per-namespace gauge has series only for namespaces with such rooms (and, without any, no family).
        assert!(!text.contains("zim_operator_tenant_rooms_not_ready"));
        let callbacks = text.lines().filter(|l| l.starts_with("zim_operator_callbacks_total{")).count();
        assert_eq!(callbacks, Event::ALL.len() * Outcome::ALL.len());
        assert!(
            text.contains("zim_operator_callbacks_total{event=\"room_destroy\",outcome=\"bad_signature\"} 0")
        );
        for result in ["exists", "gone", "error"] {
            assert!(
                text.contains(&format!("zim_operator_existence_probes_total{{result=\"{result}\"}} 0\n"))
            );
        }
        assert_eq!(line(&text, "zim_operator_probe_period_seconds "), 0.0);
        assert_eq!(line(&text, "zim_operator_probe_effective_period_seconds "), 0.0);
    }

    #[test]
    fn probe_periods_and_callbacks() {
        use crate::callback::CallbackObserver;
        let m = Metrics::new();
        m.prober.set_periods(Duration::from_secs(600), Duration::from_secs(900));
        m.callbacks.observed(Event::RoomDestroy, Outcome::Accepted);
        m.callbacks.observed(Event::RoomDestroy, Outcome::Accepted);
        m.prober.probed(ProbeResult::Gone);
        let text = m.encode();
        assert_eq!(line(&text, "zim_operator_probe_period_seconds "), 600.0);
        assert_eq!(line(&text, "zim_operator_probe_effective_period_seconds "), 900.0);
        assert_eq!(
            line(&text, "zim_operator_callbacks_total{event=\"room_destroy\",outcome=\"accepted\"}"),
            2.0
        );
        assert_eq!(line(&text, "zim_operator_existence_probes_total{result=\"gone\"}"), 1.0);
    }
}
