//! The controller's own work: reconciles by result and failure category, their duration, status writes, and the
//! prober's existence probes and periods.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::latency_histogram;
use crate::reconcile::ErrorCategory;

/// A reconcile's result: `success`, or its error category.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ReconcileResult {
    /// It succeeded.
    Success,
    /// It failed in this category.
    Failed(ErrorCategory),
}

impl EncodeLabelValue for ReconcileResult {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        match self {
            ReconcileResult::Success => std::fmt::Write::write_str(encoder, "success"),
            ReconcileResult::Failed(category) => category.encode(encoder),
        }
    }
}

/// Labels: a reconcile's result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `success`, or the error category.
    pub result: ReconcileResult,
}

/// Labels: an error category.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CategoryLabel {
    /// e.g. `transient`, `throttled`, `auth`, `invalid_spec`, `credentials`, `kubernetes`.
    pub category: ErrorCategory,
}

/// Reconciles and status writes.
#[derive(Clone)]
pub struct ReconcileMetrics {
    /// Reconciles by result.
    pub reconciles: Family<ResultLabel, Counter>,
    /// Failed reconciles by error category.
    pub failures: Family<CategoryLabel, Counter>,
    /// Reconcile duration.
    pub duration: Histogram,
    /// Status writes to the API server.
    pub status_writes: Counter,
}

impl ReconcileMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let reconciles = Family::<ResultLabel, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by result (success or error category)",
            reconciles.clone(),
        );
        let failures = Family::<CategoryLabel, Counter>::default();
        registry.register("reconcile_failures", "Failed reconciles by error category", failures.clone());
        let duration = latency_histogram();
        registry.register("reconcile_duration_seconds", "Duration of one reconcile", duration.clone());
        let status_writes = Counter::default();
        registry.register("status_writes", "ZimRoom status writes", status_writes.clone());
        for category in ErrorCategory::ALL {
            failures.get_or_create(&CategoryLabel { category }).inc_by(0);
        }
        Self { reconciles, failures, duration, status_writes }
    }

    /// Records one reconcile.
    pub fn reconciled(&self, duration: Duration, error_category: Option<ErrorCategory>) {
        self.duration.observe(duration.as_secs_f64());
        let result = error_category.map_or(ReconcileResult::Success, ReconcileResult::Failed);
        self.reconciles.get_or_create(&ResultLabel { result }).inc();
        if let Some(category) = error_category {
            self.failures.get_or_create(&CategoryLabel { category }).inc();
        }
    }
}

/// What one existence probe found.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ProbeResult {
    /// The room exists.
    Exists,
    /// The room is gone.
    Gone,
    /// The probe failed.
    Error,
}

impl ProbeResult {
    const ALL: [ProbeResult; 3] = [ProbeResult::Exists, ProbeResult::Gone, ProbeResult::Error];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeResult::Exists => "exists",
            ProbeResult::Gone => "gone",
            ProbeResult::Error => "error",
        }
    }
}

/// Labels: a probe's result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabel {
    /// `exists`, `gone` or `error`.
    pub result: ProbeResult,
}

/// The prober's metrics.
#[derive(Clone)]
pub struct ProberMetrics {
    /// Periodic existence probes by result.
    pub probes: Family<ProbeLabel, Counter>,
    /// The configured existence-probe period (`--resync-period`), in seconds; 0 while the prober does not run
    /// (a standby).
    pub period: Gauge<f64, AtomicU64>,
    /// The period the prober actually achieves within its call budget, in seconds: equal to `period` while it
    /// keeps up, longer when there are more rooms than the budget covers in one period.
    pub effective_period: Gauge<f64, AtomicU64>,
}

impl ProberMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let probes = Family::<ProbeLabel, Counter>::default();
        registry.register("existence_probes", "Periodic room existence probes by result", probes.clone());
        let period = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "probe_period_seconds",
            "Configured period of the existence probe of each converged room (0 while the prober does not run)",
            period.clone(),
        );
        let effective_period = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "probe_effective_period_seconds",
            "Period of the existence probe the prober achieves within its call budget",
            effective_period.clone(),
        );
        for result in ProbeResult::ALL {
            probes.get_or_create(&ProbeLabel { result }).inc_by(0);
        }
        Self { probes, period, effective_period }
    }

    /// Counts one probe.
    pub fn probed(&self, result: ProbeResult) {
        self.probes.get_or_create(&ProbeLabel { result }).inc();
    }

    /// Sets the prober's configured and achieved periods.
    pub fn set_periods(&self, configured: Duration, effective: Duration) {
        self.period.set(configured.as_secs_f64());
        self.effective_period.set(effective.as_secs_f64());
    }
}
