//! ZEGO's server callbacks: `zim_operator_callbacks_total{event, outcome}`, labelled with the receiver's own
//! [`Event`] and [`Outcome`].

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::callback::{CallbackObserver, Event, Outcome};

/// Labels: a server callback's event and what the operator did with it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallbackLabel {
    /// The event.
    pub event: Event,
    /// What became of it.
    pub outcome: Outcome,
}

/// The callback counters.
#[derive(Clone)]
pub struct CallbackMetrics {
    /// Callbacks by event and outcome.
    pub callbacks: Family<CallbackLabel, Counter>,
}

impl CallbackMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let callbacks = Family::<CallbackLabel, Counter>::default();
        registry.register("callbacks", "ZEGO server callbacks by event and outcome", callbacks.clone());
        for event in Event::ALL {
            for outcome in Outcome::ALL {
                callbacks.get_or_create(&CallbackLabel { event, outcome }).inc_by(0);
            }
        }
        Self { callbacks }
    }
}

impl CallbackObserver for CallbackMetrics {
    fn observed(&self, event: Event, outcome: Outcome) {
        self.callbacks.get_or_create(&CallbackLabel { event, outcome }).inc();
    }
}
