//! Readiness of the watches for `/readyz`: every watch has synced and is not failing, and the API server answers.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kube::Client;
use tracing::warn;

use crate::admin::Health;
use crate::lock;

/// How long after the last watch error the operator counts as watching again when no event has arrived since
/// (a resumed watch on a quiet namespace sends nothing). Longer than the watch's longest backoff, so a watch that
/// keeps failing never looks healthy.
pub(crate) const WATCH_ERROR_GRACE: Duration = Duration::from_secs(12);
/// The ZimRoom watch retries quickly, so an outage is noticed and left quickly.
pub(crate) const WATCH_BACKOFF_MAX: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Default)]
pub(crate) struct WatchState {
    synced: bool,
    last_error: Option<Instant>,
}

/// Tracks whether every watch has synced and is healthy, and whether the API server answers, for `/readyz`.
/// A watch cut by an API server that went away does not always report an error, so reachability is probed too.
pub(crate) struct WatchHealth {
    health: Arc<Health>,
    states: Mutex<Vec<WatchState>>,
    reachable: AtomicBool,
}

impl WatchHealth {
    /// Tracks `watches` watches for `health`.
    pub(crate) fn new(health: Arc<Health>, watches: usize) -> Self {
        Self {
            health,
            states: Mutex::new(vec![WatchState::default(); watches]),
            reachable: AtomicBool::new(true),
        }
    }

    /// Watch `i` delivered an event (`ok`), or an error; `init_done` when its initial listing completed.
    pub(crate) fn event(&self, i: usize, ok: bool, init_done: bool) {
        {
            let mut states = lock(&self.states);
            let s = &mut states[i];
            if ok {
                s.synced |= init_done;
                s.last_error = None;
            } else {
                s.last_error = Some(Instant::now());
            }
        }
        self.refresh();
    }

    /// Recomputes readiness.
    pub(crate) fn refresh(&self) {
        let watching = lock(&self.states)
            .iter()
            .all(|s| s.synced && s.last_error.is_none_or(|t| t.elapsed() > WATCH_ERROR_GRACE));
        let reachable = self.reachable.load(Ordering::Relaxed);
        self.health.set_watching(watching && reachable);
    }

    /// Asks the API server for its version (3 s at most) and recomputes readiness.
    pub(crate) async fn probe_api(&self, client: &Client) {
        let ok = matches!(
            tokio::time::timeout(Duration::from_secs(3), client.apiserver_version()).await,
            Ok(Ok(_))
        );
        if !ok {
            warn!("the Kubernetes API server does not answer");
        }
        self.reachable.store(ok, Ordering::Relaxed);
        self.refresh();
    }
}
