//! ZIM calls: by action and result code, their latency, and the time they waited for the rate limiter. Told by
//! the client through [`CallObserver`].

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::latency_histogram;
use crate::zim::{Action, CallObserver};

/// ZIM codes whose series exist from the start for every action: the throttling codes (7 at the gateway, 660300005
/// per app, 660300006 per room, 660700001 for UserRegister) and the room quota (660300015), which the alert rules
/// watch with `increase`.
pub const PREINITIALISED_CODES: [&str; 5] = ["7", "660300005", "660300006", "660700001", "660300015"];

/// Labels: a ZIM action and the outcome code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabel {
    /// The action.
    pub action: Action,
    /// ZIM's code, or `timeout`, `transport`, `decode`, `http_NNN`.
    pub code: String,
}

/// Labels: a ZIM action.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    /// The action.
    pub action: Action,
}

type Histograms = Family<ActionLabel, Histogram, fn() -> Histogram>;

/// The ZIM client's metrics.
#[derive(Clone)]
pub struct ZimMetrics {
    /// ZIM calls by action and code.
    pub calls: Family<CallLabel, Counter>,
    /// ZIM call latency by action.
    pub latency: Histograms,
    /// Time spent waiting for the rate limiter, by action.
    pub limiter_wait: Histograms,
}

impl ZimMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let calls = Family::<CallLabel, Counter>::default();
        registry.register("zim_calls", "ZIM server-API calls by action and result code", calls.clone());
        let latency: Histograms = Family::new_with_constructor(latency_histogram);
        registry.register("zim_call_duration_seconds", "ZIM call latency by action", latency.clone());
        let limiter_wait: Histograms = Family::new_with_constructor(latency_histogram);
        registry.register(
            "zim_limiter_wait_seconds",
            "Time ZIM calls waited for the rate limiter",
            limiter_wait.clone(),
        );
        for action in Action::ALL {
            for code in PREINITIALISED_CODES {
                calls.get_or_create(&CallLabel { action, code: code.into() }).inc_by(0);
            }
        }
        Self { calls, latency, limiter_wait }
    }
}

impl CallObserver for ZimMetrics {
    fn observe(&self, action: Action, result: &str, latency: Duration) {
        self.calls.get_or_create(&CallLabel { action, code: result.to_owned() }).inc();
        self.latency.get_or_create(&ActionLabel { action }).observe(latency.as_secs_f64());
    }

    fn waited(&self, action: Action, wait: Duration) {
        self.limiter_wait.get_or_create(&ActionLabel { action }).observe(wait.as_secs_f64());
    }
}
