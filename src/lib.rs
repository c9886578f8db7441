//! zim-operator: a Kubernetes operator that makes ZEGO ZIM chat rooms declarative.
//!
//! A `ZimRoom` object declares a room and its attributes; the operator creates the room through the ZIM server
//! API (CreateRoom), treats "room already exists" (660300014) as converged, keeps the room and its attributes as
//! declared, and writes the outcome (RequestId, `Ready` and `Synced` conditions) back to the object's status.
//!
//! Data flows one way — manifest → validated spec → plan → ZIM calls → status — and each module owns one step:
//! - [`zim`]: the ZIM server-API client (signing, codes, rate limiting); knows nothing of Kubernetes;
//! - [`callback`]: the receiver of ZEGO's server callbacks, turning a verified `room_destroy` into a re-check;
//! - [`sim`]: a ZIM simulator written to ZEGO's documentation, for tests and the quick start.

pub(crate) mod backoff;
pub mod callback;
pub mod cmd_simulate;
pub mod sim;
pub mod telemetry;
#[doc(hidden)]
pub mod testing;
pub mod zim;

/// Locks `m`, recovering the data of a poisoned lock: every critical section here leaves its data consistent at
/// each step, so a panic elsewhere must not wedge the process.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The wall clock as a Kubernetes timestamp (condition transition times).
pub fn now() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now())
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
pub(crate) mod admin;
pub mod cmd_apply;
pub mod cmd_run;
pub(crate) mod controller;
pub mod crd;
pub(crate) mod kube_config;
pub(crate) mod leader;
pub mod manifest;
pub mod metrics;
pub mod reconcile;
pub mod yaml;
