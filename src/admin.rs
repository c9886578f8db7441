//! The admin HTTP server: `/healthz` (the process loop is alive), `/readyz` (every watch has synced and is
//! watching, or this replica is a standby waiting for the leader lease), `/metrics` (OpenMetrics).
//!
//! Probes and metrics can listen apart (`--metrics-addr`; by default `/metrics` is on the admin address), and
//! `/metrics` can require a Kubernetes bearer token allowed to `get` the non-resource URL `/metrics`
//! (`--metrics-auth kubernetes`, see [`auth`]). Both listeners defend themselves the same way ([`listener`]):
//! a header read timeout, a cap on open connections, a bounded header size and connection lifetime.

pub(crate) mod auth;
pub(crate) mod listener;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use self::auth::{Decision, MetricsAuth};
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
    auth: Option<Arc<MetricsAuth>>,
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

async fn metrics_handler(State(s): State<AdminState>, headers: HeaderMap) -> Response {
    if let Some(auth) = &s.auth {
        match auth.check(&headers).await {
            Decision::Allowed => {}
            Decision::Unauthenticated => {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Bearer")],
                    "a Kubernetes bearer token is required\n",
                )
                    .into_response();
            }
            Decision::Forbidden => {
                return (StatusCode::FORBIDDEN, "not allowed to get the non-resource URL /metrics\n")
                    .into_response();
            }
            Decision::Unavailable => {
                return (StatusCode::SERVICE_UNAVAILABLE, "cannot verify the token with the API server\n")
                    .into_response();
            }
        }
    }
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        s.metrics.encode(),
    )
        .into_response()
}

/// Where and how the admin server listens.
pub struct AdminConfig {
    /// Probes (and `/metrics` unless `metrics_addr` is set).
    pub addr: SocketAddr,
    /// `/metrics` on its own listener; `None` (or the same as `addr`) serves it on `addr`.
    pub metrics_addr: Option<SocketAddr>,
    /// Protection of `/metrics`; `None` serves it to anyone who can connect.
    pub metrics_auth: Option<Arc<MetricsAuth>>,
}

/// The bound addresses and the serving task.
pub struct Serving {
    /// The probes' address.
    pub addr: SocketAddr,
    /// `/metrics`' address (the same as `addr` unless separated).
    pub metrics_addr: SocketAddr,
    /// Completes once every listener has stopped, after `shutdown`.
    pub task: tokio::task::JoinHandle<()>,
}

/// Serves the admin endpoints until `shutdown` is cancelled; returns the bound addresses.
pub async fn serve(
    config: AdminConfig,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> std::io::Result<Serving> {
    let state = AdminState { health, metrics, auth: config.metrics_auth };
    let probes = Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz));
    let metrics_route = Router::new().route("/metrics", get(metrics_handler));
    // The same address twice means one listener (port 0 always means a listener of its own).
    let separate = config.metrics_addr.filter(|m| *m != config.addr || m.port() == 0);
    let admin_listener = tokio::net::TcpListener::bind(config.addr).await?;
    let addr = admin_listener.local_addr()?;
    match separate {
        None => {
            let app = probes.merge(metrics_route).with_state(state);
            let task =
                tokio::spawn(listener::serve(admin_listener, app, listener::Limits::default(), shutdown));
            Ok(Serving { addr, metrics_addr: addr, task })
        }
        Some(metrics_addr) => {
            let metrics_listener = tokio::net::TcpListener::bind(metrics_addr).await?;
            let metrics_addr = metrics_listener.local_addr()?;
            let admin = listener::serve(
                admin_listener,
                probes.with_state(state.clone()),
                listener::Limits::default(),
                shutdown.clone(),
            );
            let metrics = listener::serve(
                metrics_listener,
                metrics_route.with_state(state),
                listener::Limits::default(),
                shutdown,
            );
            let task = tokio::spawn(async move {
                futures::future::join(admin, metrics).await;
            });
            Ok(Serving { addr, metrics_addr, task })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start(metrics_addr: Option<SocketAddr>) -> (Serving, CancellationToken) {
        let health = Arc::new(Health::default());
        health.beat();
        let shutdown = CancellationToken::new();
        let config = AdminConfig { addr: "127.0.0.1:0".parse().unwrap(), metrics_addr, metrics_auth: None };
        let serving = serve(config, health, Arc::new(Metrics::new()), shutdown.clone()).await.unwrap();
        (serving, shutdown)
    }

    /// A GET on a fresh connection: the status code, or None when the connection is refused or closed first.
    async fn get(addr: SocketAddr, path: &str) -> Option<u16> {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf)).await.ok()?.ok()?;
        String::from_utf8_lossy(&buf).split_whitespace().nth(1)?.parse().ok()
    }

    /// 2 000 idle connections are all closed or refused within seconds, and /healthz answers during the flood.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_connections_are_shed_and_probes_still_answer() {
        let (serving, shutdown) = start(None).await;
        let addr = serving.addr;
        let flood_start = Instant::now();
        let mut idle = Vec::new();
        for _ in 0..2000 {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            idle.push(tokio::spawn(async move {
                let mut byte = [0u8; 1];
                // Ends when the server closes (EOF) or resets the connection.
                let _ = tokio::time::timeout(Duration::from_secs(60), s.read(&mut byte)).await;
                flood_start.elapsed()
            }));
        }
        let opened = flood_start.elapsed();
        // Probes every 100 ms while the flood is shed.
        let mut answered = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            answered.push((flood_start.elapsed(), get(addr, "/healthz").await));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut closed_after = Duration::ZERO;
        for task in idle {
            closed_after = closed_after.max(task.await.unwrap());
        }
        let first_ok = answered.iter().find(|(_, code)| *code == Some(200)).map(|(t, _)| *t);
        let failed = answered.iter().filter(|(_, code)| *code != Some(200)).count();
        eprintln!(
            "2000 idle connections opened in {opened:?}, all closed after {closed_after:?}; /healthz first \
             answered after {first_ok:?}, {failed} of {} probes failed",
            answered.len()
        );
        assert!(closed_after < Duration::from_secs(8), "idle connections held for {closed_after:?}");
        let first_ok = first_ok.expect("/healthz never answered during the flood");
        assert!(first_ok < opened + Duration::from_secs(2), "/healthz first answered after {first_ok:?}");
        assert_eq!(get(addr, "/healthz").await, Some(200));
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), serving.task).await.unwrap().unwrap();
    }

    /// With --metrics-addr, /metrics is only on the metrics listener and the probes only on the admin one.
    #[tokio::test]
    async fn metrics_can_listen_apart_from_probes() {
        let (serving, shutdown) = start(Some("127.0.0.1:0".parse().unwrap())).await;
        assert_ne!(serving.addr, serving.metrics_addr);
        assert_eq!(get(serving.addr, "/healthz").await, Some(200));
        assert_eq!(get(serving.addr, "/metrics").await, Some(404));
        assert_eq!(get(serving.metrics_addr, "/metrics").await, Some(200));
        assert_eq!(get(serving.metrics_addr, "/healthz").await, Some(404));
        shutdown.cancel();
        // By default everything is on one address.
        let (serving, shutdown) = start(None).await;
        assert_eq!(serving.addr, serving.metrics_addr);
        assert_eq!(get(serving.addr, "/metrics").await, Some(200));
        assert_eq!(get(serving.addr, "/readyz").await, Some(503));
        shutdown.cancel();
    }

    /// A client that sends half a request head and stops is disconnected after the header timeout.
    #[tokio::test]
    async fn a_slow_request_head_is_cut() {
        let (serving, shutdown) = start(None).await;
        let mut s = tokio::net::TcpStream::connect(serving.addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let start = Instant::now();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf)).await.expect("closed");
        let took = start.elapsed();
        assert!(took < Duration::from_secs(7), "{took:?}");
        shutdown.cancel();
    }
}
