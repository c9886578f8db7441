//! Leader election on a coordination.k8s.io Lease, with a renew deadline: only the holder reconciles, and a holder
//! that cannot renew stops before anyone else may take over.
//!
//! **The rule.** The holder renews the Lease every *retry period* (a fifth of the renew deadline). Leadership is
//! valid until the *renew deadline* after the start of the last renewal that succeeded — counted on this process's
//! monotonic clock, from before the request was sent, so a renewal the API server applied late never extends it.
//! A standby takes the Lease only when the record it reads has not changed for the *lease duration*, on its own
//! clock since it first saw that record (no clock is compared with another: `renewTime` is informative). So the
//! old holder stops at most `renew deadline` after its last successful renewal began, and the new one starts at
//! least `lease duration` after that renewal reached the API server: the difference (5 s with the defaults, 15 s
//! and 10 s as client-go's) covers the time a process takes to stop. Each attempt is bounded by half the renew
//! deadline, so a request to an API server that never answers cannot hold up the next one; the deadline itself
//! never waits for a request. A renewal that finds another holder ends leadership at once.
//!
//! The renew deadline must be shorter than the lease duration. kube-lease-manager, used before, had no deadline:
//! its holder renewed once, at two thirds of the duration, and on API errors kept retrying and kept leading, so an
//! API server that a leader could no longer reach gave two leaders once the Lease expired (issue 22, item 3).
//!
//! **Losing leadership ends the process** (exit code 1, at once: no grace for in-flight reconciles, no Lease
//! release). Kubernetes restarts the container, and the new process is a standby with empty caches that acts only
//! after it holds the Lease again. This is what client-go's users do (`OnStoppedLeading` exits). The alternative,
//! stopping every controller, ZIM client, prober and callback re-check in place and dropping the caches before
//! trying again, has to stop work spawned all over the controller (the prober's probes, re-checks scheduled for
//! later, reconciles with a ZIM request in flight) within the margin above, and start each term with a fresh
//! context that the callback receiver would have to follow; an exit stops all of it by construction. The cost: a
//! leader cut off from the API server for longer than the renew deadline restarts (the kubelet restarts it even
//! while the API server is unreachable; it then waits as a standby), and repeated losses within ten minutes meet
//! the kubelet's restart backoff, during which the other replica leads.
//!
//! The library does not exit: [`Leadership::lost`] completes, and `run` returns at once with code 1; the runtime
//! then drops every task when `main` returns.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use self::lease::Elector;

mod lease;
#[cfg(test)]
mod tests;

/// The Lease and its timing.
#[derive(Clone, Debug)]
pub struct Config {
    /// Name of the Lease.
    pub name: String,
    /// Namespace of the Lease.
    pub namespace: String,
    /// This replica's identity (the Lease's holderIdentity while it leads).
    pub identity: String,
    /// How long the Lease lasts without renewal, for a standby (whole seconds: leaseDurationSeconds).
    pub lease_duration: Duration,
    /// How long the leader leads without a successful renewal.
    pub renew_deadline: Duration,
}

impl Config {
    /// The renew deadline when none is given: two thirds of the lease duration (10 s for 15 s, as client-go).
    pub fn default_renew_deadline(lease_duration: Duration) -> Duration {
        lease_duration * 2 / 3
    }

    /// Checks the timing: a renew deadline of at least 1 s and shorter than the lease duration.
    pub fn check(&self) -> Result<(), String> {
        if self.renew_deadline < Duration::from_secs(1) || self.renew_deadline >= self.lease_duration {
            return Err(format!(
                "the Lease renew deadline ({:?}) must be at least 1s and shorter than the lease duration ({}s): the \
                 leader stops at the deadline, a standby takes over after the duration",
                self.renew_deadline,
                self.lease_duration.as_secs()
            ));
        }
        Ok(())
    }

    fn timing(&self) -> Timing {
        Timing {
            renew_deadline: self.renew_deadline,
            retry_period: self.renew_deadline / 5,
            attempt_timeout: self.renew_deadline / 2,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Timing {
    renew_deadline: Duration,
    retry_period: Duration,
    attempt_timeout: Duration,
}

/// What one attempt to take or renew the Lease found.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Hold {
    /// This replica holds the Lease now.
    Held,
    /// Another holder's Lease is valid, or another replica wrote the Lease first (`None`: holder unknown).
    Other(Option<String>),
}

/// Why leadership ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lost {
    /// No renewal succeeded within the renew deadline.
    Deadline {
        /// The last failure, if an attempt ended before the deadline.
        last_error: Option<String>,
    },
    /// Another replica holds the Lease.
    TakenBy(Option<String>),
}

impl fmt::Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lost::Deadline { last_error: Some(e) } => {
                write!(f, "no renewal of the Lease succeeded within the renew deadline (last error: {e})")
            }
            Lost::Deadline { last_error: None } => {
                write!(f, "no renewal of the Lease succeeded within the renew deadline (no answer)")
            }
            Lost::TakenBy(Some(holder)) => write!(f, "the Lease is held by {holder}"),
            Lost::TakenBy(None) => write!(f, "another replica wrote the Lease"),
        }
    }
}

/// One attempt to take or keep the Lease (the API server in production, a script in the tests).
trait Attempt: Send + 'static {
    fn try_hold(&mut self) -> impl Future<Output = Result<Hold, String>> + Send;
}

/// Waits until `elector` holds the Lease, retrying every retry period (jittered by up to 20 %); API errors
/// are logged and retried. `health` is beaten on each attempt: the standby's loop is this one.
async fn acquire(mut elector: Elector, health: &crate::admin::Health) -> Leadership {
    let timing = elector.config.timing();
    let mut last: Option<Result<Option<String>, String>> = None;
    let valid_until = loop {
        health.beat();
        let sent = Instant::now();
        let outcome = match tokio::time::timeout(timing.attempt_timeout, elector.try_hold()).await {
            Ok(Ok(Hold::Held)) => break sent + timing.renew_deadline,
            Ok(Ok(Hold::Other(holder))) => Ok(holder),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("no answer within {:?}", timing.attempt_timeout)),
        };
        // Said once per change, not at every attempt.
        if last.as_ref() != Some(&outcome) {
            match &outcome {
                Ok(Some(holder)) => info!(holder, "the leader lease is held by another replica"),
                Ok(None) => debug!("another replica wrote the leader lease first"),
                Err(e) => warn!(error = %e, "cannot read or take the leader lease; retrying"),
            }
            last = Some(outcome);
        }
        let jitter = timing.retry_period.mul_f64(rand::random::<f64>() * 0.2);
        tokio::time::sleep(timing.retry_period + jitter).await;
    };
    Leadership::start(elector, timing, valid_until)
}

/// Holding the Lease: a task renews it until [`Leadership::release`], or until leadership is lost.
pub struct Leadership {
    lost: watch::Receiver<Option<Lost>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Elector>,
}

impl Leadership {
    fn start(elector: Elector, timing: Timing, valid_until: Instant) -> Self {
        let (lost_tx, lost) = watch::channel(None);
        let stop = CancellationToken::new();
        let task = tokio::spawn(keep(elector, timing, valid_until, stop.clone(), lost_tx));
        Self { lost, stop, task }
    }

    /// Completes when leadership is lost, with why.
    pub async fn lost(&mut self) -> Lost {
        let lost = self.lost.wait_for(Option::is_some).await.ok().and_then(|l| (*l).clone());
        // Without a reason the renewing task ended (it panicked): nothing renews any more.
        lost.unwrap_or(Lost::Deadline { last_error: Some("the renewing task ended".into()) })
    }

    /// Stops renewing and gives the Lease up.
    pub async fn release(self) -> Result<bool, String> {
        self.stop.cancel();
        let mut elector = self.task.await.map_err(|e| e.to_string())?;
        elector.release().await.map_err(|e| e.to_string())
    }
}

/// Renews through `attempt` every retry period until `stop`; when no renewal has succeeded by the deadline, or
/// another replica holds the Lease, sends why on `lost` and returns. Returns `attempt` for the release.
async fn keep<A: Attempt>(
    mut attempt: A,
    timing: Timing,
    mut valid_until: Instant,
    stop: CancellationToken,
    lost: watch::Sender<Option<Lost>>,
) -> A {
    let mut last_error = None;
    loop {
        let step = async {
            tokio::time::sleep(timing.retry_period).await;
            let sent = Instant::now();
            (sent, tokio::time::timeout(timing.attempt_timeout, attempt.try_hold()).await)
        };
        // The deadline goes first: an attempt that ends at the deadline does not extend it.
        let (sent, result) = tokio::select! {
            biased;
            _ = stop.cancelled() => return attempt,
            _ = tokio::time::sleep_until(valid_until) => {
                let why = Lost::Deadline { last_error };
                error!(reason = %why, "lost the leader lease");
                let _ = lost.send(Some(why));
                return attempt;
            }
            done = step => done,
        };
        match result {
            Ok(Ok(Hold::Held)) => {
                valid_until = sent + timing.renew_deadline;
                if last_error.take().is_some() {
                    info!("renewed the leader lease again");
                }
            }
            Ok(Ok(Hold::Other(holder))) => {
                let why = Lost::TakenBy(holder);
                error!(reason = %why, "lost the leader lease");
                let _ = lost.send(Some(why));
                return attempt;
            }
            Ok(Err(e)) => {
                warn!(error = %e, left_ms = valid_until.saturating_duration_since(Instant::now()).as_millis() as u64, "cannot renew the leader lease");
                last_error = Some(e);
            }
            Err(_) => {
                let e = format!("no answer within {:?}", timing.attempt_timeout);
                warn!(error = %e, left_ms = valid_until.saturating_duration_since(Instant::now()).as_millis() as u64, "cannot renew the leader lease");
                last_error = Some(e);
            }
        }
    }
}

/// Stands by until this replica holds the Lease (or `shutdown`), then runs `work`, which ends some time after
/// `shutdown`, and gives the Lease up. Returns the exit code: 0, or 1 as soon as leadership is lost, with `work`
/// dropped where it stands (see the module docs).
pub(crate) async fn run<T>(
    client: kube::Client,
    config: Config,
    health: &crate::admin::Health,
    metrics: &crate::metrics::Metrics,
    leading: &watch::Sender<bool>,
    shutdown: &CancellationToken,
    work: impl Future<Output = T>,
) -> std::process::ExitCode {
    health.set_standby(true);
    info!(
        lease = %config.name,
        lease_duration_s = config.lease_duration.as_secs(),
        renew_deadline_ms = config.renew_deadline.as_millis() as u64,
        "waiting for the leader lease"
    );
    let elector = Elector::new(client, config);
    // The API server may not answer: SIGTERM must not wait for it.
    let mut leadership = tokio::select! {
        leadership = acquire(elector, health) => leadership,
        _ = shutdown.cancelled() => {
            info!("stopped before acquiring the leader lease");
            return std::process::ExitCode::SUCCESS;
        }
    };
    info!("acquired the leader lease; reconciling");
    health.set_standby(false);
    metrics.leader.set(1);
    let _ = leading.send(true);
    tokio::select! {
        biased;
        lost = leadership.lost() => {
            error!(reason = %lost, "stopping at once so that this replica restarts as a standby with empty caches");
            metrics.leader.set(0);
            return std::process::ExitCode::from(1);
        }
        _ = work => {}
    }
    metrics.leader.set(0);
    match tokio::time::timeout(Duration::from_secs(5), leadership.release()).await {
        Ok(Ok(true)) => info!("released the leader lease"),
        Ok(Ok(false)) => info!("the leader lease was no longer ours to release"),
        Ok(Err(e)) => error!(error = %e, "could not release the leader lease"),
        Err(_) => error!("could not release the leader lease within 5 s"),
    }
    std::process::ExitCode::SUCCESS
}
