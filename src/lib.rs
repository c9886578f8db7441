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

/// Completes on SIGINT or SIGTERM. The handlers are installed when this is called, not when the future is first
/// polled: a signal that arrives in between (a script that stops `simulate` as soon as it says it listens) is
/// caught rather than killing the process with the default action. Call it inside the runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let int = signal(SignalKind::interrupt()).ok();
        let term = signal(SignalKind::terminate()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! { _ = wait(int) => {}, _ = wait(term) => {} }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
pub(crate) mod admin;
pub mod cmd_apply;
pub mod cmd_import;
pub mod cmd_plan;
pub mod cmd_run;
pub mod cmd_shared;
pub(crate) mod controller;
pub mod crd;
pub(crate) mod kube_config;
pub(crate) mod leader;
pub mod manifest;
pub mod metrics;
pub mod reconcile;
pub mod roomset;
pub mod yaml;
