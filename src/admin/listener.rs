//! One HTTP/1.1 listener of the admin server, defended against clients that hold connections open.
//!
//! - Every connection must send a complete request head within [`Limits::header_timeout`] (5 s), and within
//!   [`Limits::busy_header_timeout`] (500 ms) once more than [`Limits::busy_above`] connections are open, so a
//!   flood of idle connections is shed within a second while a probe, which sends its request at once, is served.
//! - At most [`Limits::max_connections`] connections are open; one more is closed as soon as it is accepted.
//! - Request heads are limited to 16 KiB, and a connection lives at most [`Limits::max_lifetime`].
//!
//! Measured (tests in `admin.rs`): 2 000 idle connections are all closed or refused within about a second, and
//! `/healthz` answers throughout.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// The defences of one listener.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections open at once; more are closed when accepted.
    pub max_connections: usize,
    /// Above this many open connections, new ones get `busy_header_timeout`.
    pub busy_above: usize,
    /// Time to send a complete request head (each request of a kept-alive connection included).
    pub header_timeout: Duration,
    /// The same, once more than `busy_above` connections are open.
    pub busy_header_timeout: Duration,
    /// A connection is closed after this long, whatever it does.
    pub max_lifetime: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            busy_above: 64,
            header_timeout: Duration::from_secs(5),
            busy_header_timeout: Duration::from_millis(500),
            max_lifetime: Duration::from_secs(60),
        }
    }
}

/// Largest request head read (hyper's minimum buffer is 8 KiB).
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Serves `app` on `listener` within `limits` until `shutdown` is cancelled; connections still open then get one
/// second to finish.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, shutdown: CancellationToken) {
    let open = Arc::new(AtomicUsize::new(0));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => break,
        };
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                warn!(error = %e, "admin server: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let now_open = open.fetch_add(1, Ordering::AcqRel) + 1;
        if now_open > limits.max_connections {
            open.fetch_sub(1, Ordering::AcqRel);
            debug!(%peer, "admin server: connection limit reached; closing a new connection");
            drop(stream);
            continue;
        }
        let header_timeout =
            if now_open > limits.busy_above { limits.busy_header_timeout } else { limits.header_timeout };
        let service = TowerToHyperService::new(app.clone());
        let open = open.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(header_timeout).max_buf_size(MAX_HEAD_BYTES);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = tokio::time::sleep(limits.max_lifetime) => {}
                _ = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), connection.as_mut()).await;
                }
            }
            open.fetch_sub(1, Ordering::AcqRel);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
}
