//! The admin HTTP server: `/healthz` (the process loop is alive), `/readyz` (every watch has synced and is
//! watching, or this replica is a standby waiting for the leader lease), `/metrics` (OpenMetrics).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;

/// Liveness and readiness, shared between the controller and the admin server.
#[derive(Default)]
pub struct Health {
    heartbeat_ms: AtomicU64,
    watching: AtomicBool,
    ever_watched: AtomicBool,
    standby: AtomicBool,
}

/// How long the loop may be silent before `/healthz` fails.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(60);

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

impl Health {
    /// Marks the loop alive now.
    pub fn beat(&self) {
        self.heartbeat_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Sets whether the watches are synced and healthy.
    pub fn set_watching(&self, ok: bool) {
        self.watching.store(ok, Ordering::Relaxed);
        if ok {
            self.ever_watched.store(true, Ordering::Relaxed);
        }
    }

    /// Whether the watches have ever been synced. Until then kube-runtime starts no reconcile, so nothing can be
    /// in flight.
    pub fn ever_watched(&self) -> bool {
        self.ever_watched.load(Ordering::Relaxed)
    }

    /// Sets whether this replica is a standby (not the leader).
    pub fn set_standby(&self, standby: bool) {
        self.standby.store(standby, Ordering::Relaxed);
    }

    /// Whether the loop beat recently.
    pub fn alive(&self) -> bool {
        now_ms().saturating_sub(self.heartbeat_ms.load(Ordering::Relaxed))
            < HEARTBEAT_TIMEOUT.as_millis() as u64
    }

    /// Readiness and its reason.
    pub fn ready(&self) -> (bool, &'static str) {
        if self.standby.load(Ordering::Relaxed) {
            (true, "standby: waiting for the leader lease")
        } else if self.watching.load(Ordering::Relaxed) {
            (true, "ok")
        } else {
            (false, "not ready: ZimRoom watch not synced or failing")
        }
    }
}

#[derive(Clone)]
struct AdminState {
    health: Arc<Health>,
    metrics: Arc<Metrics>,
}

async fn healthz(State(s): State<AdminState>) -> impl IntoResponse {
    if s.health.alive() { (StatusCode::OK, "ok") } else { (StatusCode::SERVICE_UNAVAILABLE, "loop stalled") }
}

async fn readyz(State(s): State<AdminState>) -> impl IntoResponse {
    match s.health.ready() {
        (true, why) => (StatusCode::OK, why),
        (false, why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

async fn metrics_handler(State(s): State<AdminState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        s.metrics.encode(),
    )
}

/// Serves the admin endpoints on `addr` until `shutdown` completes; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_handler))
        .with_state(AdminState { health, metrics });
    let handle =
        tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(shutdown).await });
    Ok((local, handle))
}
