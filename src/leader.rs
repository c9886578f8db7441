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

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

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

/// The version of the Lease this process last read or wrote.
struct Observed {
    resource_version: Option<String>,
    /// When this version was first seen (this process's clock).
    since: Instant,
}

/// Takes and renews the Lease through the API server.
pub struct Elector {
    api: Api<Lease>,
    config: Config,
    observed: Option<Observed>,
    /// The Lease as this replica last wrote it while holding it (the next renewal's base).
    mine: Option<Lease>,
}

impl Elector {
    /// An elector for `config`'s Lease (nothing is read yet).
    pub fn new(client: kube::Client, config: Config) -> Self {
        Self { api: Api::namespaced(client, &config.namespace), config, observed: None, mine: None }
    }

    /// Notes `lease` as read or written now, and returns since when this process has seen its record unchanged:
    /// the validity clock restarts only when the record changed.
    fn observe(&mut self, lease: &Lease) -> Instant {
        let resource_version = lease.metadata.resource_version.clone();
        let since = match &self.observed {
            Some(o) if o.resource_version == resource_version => o.since,
            _ => Instant::now(),
        };
        self.observed = Some(Observed { resource_version, since });
        since
    }

    async fn try_hold_inner(&mut self) -> Result<Hold, kube::Error> {
        let name = self.config.name.clone();
        // The holder renews from the record it wrote last: one request per renewal. A conflict means someone
        // else wrote the Lease: read it and decide below.
        if let Some(mut lease) = self.mine.take() {
            lease.spec.get_or_insert_default().renew_time = Some(MicroTime(jiff::Timestamp::now()));
            match self.api.replace(&name, &PostParams::default(), &lease).await {
                Ok(written) => {
                    self.observe(&written);
                    self.mine = Some(written);
                    return Ok(Hold::Held);
                }
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => {
                    self.mine = Some(lease);
                    return Err(e);
                }
            }
        }
        let Some(lease) = self.api.get_opt(&name).await? else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(name), ..Default::default() },
                spec: Some(claim(&LeaseSpec::default(), &self.config)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(written) => {
                    self.observe(&written);
                    self.mine = Some(written);
                    Ok(Hold::Held)
                }
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(Hold::Other(None)),
                Err(e) => Err(e),
            };
        };
        let since = self.observe(&lease);
        let current = lease.spec.clone().unwrap_or_default();
        let (identity, duration) = (&self.config.identity, self.config.lease_duration);
        if let Some(holder) = valid_other_holder(&current, identity, since, duration, Instant::now()) {
            return Ok(Hold::Other(Some(holder)));
        }
        let mut next = lease;
        next.spec = Some(claim(&current, &self.config));
        match self.api.replace(&name, &PostParams::default(), &next).await {
            Ok(written) => {
                self.observe(&written);
                self.mine = Some(written);
                Ok(Hold::Held)
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Hold::Other(None)),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up if this replica holds it (holder, times and duration cleared, as kube-lease-manager
    /// did): a standby takes it at its next attempt instead of waiting for the lease duration.
    async fn release(&mut self) -> Result<bool, kube::Error> {
        let Some(mut lease) = self.mine.take() else { return Ok(false) };
        for _ in 0..2 {
            let spec = lease.spec.get_or_insert_default();
            spec.holder_identity = None;
            spec.acquire_time = None;
            spec.renew_time = None;
            spec.lease_duration_seconds = None;
            match self.api.replace(&self.config.name, &PostParams::default(), &lease).await {
                Ok(_) => return Ok(true),
                // Written since (metadata only, or a take-over): release only a Lease that is still ours.
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    let Some(current) = self.api.get_opt(&self.config.name).await? else { return Ok(false) };
                    let holder = current.spec.as_ref().and_then(|s| s.holder_identity.as_deref());
                    if holder != Some(self.config.identity.as_str()) {
                        return Ok(false);
                    }
                    lease = current;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// Waits until this replica holds the Lease, retrying every retry period (jittered by up to 20 %); API errors
    /// are logged and retried. `health` is beaten on each attempt: the standby's loop is this one.
    pub async fn acquire(mut self, health: &crate::admin::Health) -> Leadership {
        let timing = self.config.timing();
        let mut last: Option<Result<Option<String>, String>> = None;
        let valid_until = loop {
            health.beat();
            let sent = Instant::now();
            let outcome = match tokio::time::timeout(timing.attempt_timeout, self.try_hold()).await {
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
        Leadership::start(self, timing, valid_until)
    }
}

impl Attempt for Elector {
    fn try_hold(&mut self) -> impl Future<Output = Result<Hold, String>> + Send {
        async move { self.try_hold_inner().await.map_err(|e| e.to_string()) }
    }
}

/// The holder of `spec` if it is another replica whose Lease is still valid: the record, unchanged since `since`
/// on this process's clock, lasts its `leaseDurationSeconds` (or `duration` when it has none).
fn valid_other_holder(
    spec: &LeaseSpec,
    identity: &str,
    since: Instant,
    duration: Duration,
    now: Instant,
) -> Option<String> {
    let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty() && *h != identity)?;
    let lasts =
        spec.lease_duration_seconds.and_then(|s| u64::try_from(s).ok()).map_or(duration, Duration::from_secs);
    (now < since + lasts).then(|| holder.to_owned())
}

/// The record this replica writes to hold the Lease after `current`: a renewal keeps the acquisition; taking it
/// from another holder, or after a release, starts a new one and counts a transition.
fn claim(current: &LeaseSpec, config: &Config) -> LeaseSpec {
    let now = MicroTime(jiff::Timestamp::now());
    let ours = current.holder_identity.as_deref() == Some(config.identity.as_str());
    LeaseSpec {
        holder_identity: Some(config.identity.clone()),
        lease_duration_seconds: Some(i32::try_from(config.lease_duration.as_secs()).unwrap_or(i32::MAX)),
        acquire_time: if ours {
            current.acquire_time.clone().or(Some(now.clone()))
        } else {
            Some(now.clone())
        },
        renew_time: Some(now),
        lease_transitions: Some(current.lease_transitions.unwrap_or(0).saturating_add(i32::from(!ours))),
        ..current.clone()
    }
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
        leadership = elector.acquire(health) => leadership,
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

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// What a scripted API server does with one attempt.
    #[derive(Clone)]
    enum Step {
        Renew,
        Fail,
        Hang,
        Taken,
    }

    /// Plays `steps` in order (then renews), noting when each attempt started.
    struct Script {
        steps: VecDeque<Step>,
        started: Arc<Mutex<Vec<Instant>>>,
    }

    impl Attempt for Script {
        fn try_hold(&mut self) -> impl Future<Output = Result<Hold, String>> + Send {
            self.started.lock().unwrap().push(Instant::now());
            let step = self.steps.pop_front().unwrap_or(Step::Renew);
            async move {
                match step {
                    Step::Renew => Ok(Hold::Held),
                    Step::Fail => Err("connection refused".to_owned()),
                    Step::Hang => std::future::pending().await,
                    Step::Taken => Ok(Hold::Other(Some("b".into()))),
                }
            }
        }
    }

    fn timing() -> Timing {
        Config {
            name: "l".into(),
            namespace: "n".into(),
            identity: "a".into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
        }
        .timing()
    }

    /// Runs `keep` on `steps` from a renewal at time zero: when leadership was lost (since the start) and why,
    /// or `None` if it lasted `horizon`.
    async fn play(steps: Vec<Step>, horizon: Duration) -> (Option<(Duration, Lost)>, Vec<Duration>) {
        let start = Instant::now();
        let started = Arc::new(Mutex::new(Vec::new()));
        let script = Script { steps: steps.into(), started: started.clone() };
        let t = timing();
        let (tx, mut rx) = watch::channel(None);
        let stop = CancellationToken::new();
        let task = tokio::spawn(keep(script, t, start + t.renew_deadline, stop.clone(), tx));
        let lost = tokio::select! {
            lost = rx.wait_for(Option::is_some) => {
                let why = lost.unwrap().clone().unwrap();
                Some((start.elapsed(), why))
            }
            _ = tokio::time::sleep(horizon) => None,
        };
        stop.cancel();
        let _ = task.await;
        let started = started.lock().unwrap().iter().map(|at| *at - start).collect();
        (lost, started)
    }

    #[test]
    fn timing_follows_the_renew_deadline() {
        let t = timing();
        assert_eq!(t.retry_period, Duration::from_secs(2), "client-go's retry period for 15 s / 10 s");
        assert_eq!(t.attempt_timeout, Duration::from_secs(5));
        assert_eq!(Config::default_renew_deadline(Duration::from_secs(15)), Duration::from_secs(10));
        let mut c = Config {
            name: "l".into(),
            namespace: "n".into(),
            identity: "a".into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(15),
        };
        assert!(c.check().unwrap_err().contains("shorter than the lease duration"));
        c.renew_deadline = Duration::from_millis(500);
        assert!(c.check().is_err());
        c.renew_deadline = Duration::from_secs(10);
        assert!(c.check().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_that_renews_keeps_leading() {
        let (lost, started) = play(vec![], Duration::from_secs(61)).await;
        assert_eq!(lost, None);
        assert_eq!(started.first(), Some(&Duration::from_secs(2)), "a renewal every retry period");
        assert_eq!(started.len(), 30);
    }

    #[tokio::test(start_paused = true)]
    async fn failing_renewals_end_leadership_at_the_deadline() {
        // Renewed at 2 s, then every attempt fails: lost 10 s after the last success began, not at the last
        // attempt and not at the lease duration.
        let (lost, started) =
            play(vec![Step::Renew, Step::Fail, Step::Fail, Step::Fail, Step::Fail], Duration::from_secs(60))
                .await;
        let (at, why) = lost.expect("lost");
        assert_eq!(at, Duration::from_secs(12));
        assert_eq!(why, Lost::Deadline { last_error: Some("connection refused".into()) });
        assert_eq!(started, [2, 4, 6, 8, 10].map(Duration::from_secs));
    }

    #[tokio::test(start_paused = true)]
    async fn an_api_server_that_never_answers_ends_leadership_at_the_deadline() {
        // Each hanging attempt is cut after half the deadline, so the next one is tried before the deadline.
        let (lost, started) = play(vec![Step::Hang, Step::Hang, Step::Hang], Duration::from_secs(60)).await;
        let (at, why) = lost.expect("lost");
        assert_eq!(at, Duration::from_secs(10), "the deadline counts from the last renewal that succeeded");
        assert_eq!(why, Lost::Deadline { last_error: Some("no answer within 5s".into()) });
        assert_eq!(started, [2, 9].map(Duration::from_secs));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_within_the_deadline_are_survived() {
        let (lost, started) = play(vec![Step::Fail, Step::Fail, Step::Fail], Duration::from_secs(61)).await;
        assert_eq!(lost, None, "renewed at 8 s, before the deadline at 10 s, which moved to 18 s");
        assert_eq!(started.len(), 30);
    }

    #[tokio::test(start_paused = true)]
    async fn another_holder_ends_leadership_at_once() {
        let (lost, _) = play(vec![Step::Renew, Step::Taken], Duration::from_secs(60)).await;
        assert_eq!(lost, Some((Duration::from_secs(4), Lost::TakenBy(Some("b".into())))));
    }

    #[test]
    fn a_standby_waits_for_an_unchanged_record_to_last_its_duration() {
        let spec = |holder: Option<&str>, secs: Option<i32>| LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            lease_duration_seconds: secs,
            ..Default::default()
        };
        let since = Instant::now();
        let d = Duration::from_secs(15);
        let at = |s: u64| since + Duration::from_secs(s);
        // Another holder: valid for its record's duration after this process first saw the record.
        assert_eq!(valid_other_holder(&spec(Some("b"), Some(4)), "a", since, d, at(3)), Some("b".into()));
        assert_eq!(valid_other_holder(&spec(Some("b"), Some(4)), "a", since, d, at(4)), None);
        // No duration in the record: ours.
        assert_eq!(valid_other_holder(&spec(Some("b"), None), "a", since, d, at(14)), Some("b".into()));
        // Released, never held, or held by this identity (a restarted container of the same pod): free.
        assert_eq!(valid_other_holder(&spec(None, Some(4)), "a", since, d, at(0)), None);
        assert_eq!(valid_other_holder(&spec(Some(""), Some(4)), "a", since, d, at(0)), None);
        assert_eq!(valid_other_holder(&spec(Some("a"), Some(4)), "a", since, d, at(0)), None);
    }

    #[test]
    fn a_renewal_keeps_the_acquisition_and_a_take_over_counts_a_transition() {
        let config = Config {
            name: "l".into(),
            namespace: "n".into(),
            identity: "a".into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
        };
        let then = MicroTime("2020-01-01T00:00:00Z".parse().unwrap());
        let held = |holder: Option<&str>| LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            acquire_time: Some(then.clone()),
            renew_time: Some(then.clone()),
            lease_transitions: Some(3),
            lease_duration_seconds: Some(4),
            ..Default::default()
        };
        let renewed = claim(&held(Some("a")), &config);
        assert_eq!(renewed.acquire_time, Some(then.clone()));
        assert_ne!(renewed.renew_time, Some(then.clone()));
        assert_eq!(renewed.lease_transitions, Some(3));
        assert_eq!(renewed.lease_duration_seconds, Some(15));
        let taken = claim(&held(Some("b")), &config);
        assert_eq!(taken.holder_identity.as_deref(), Some("a"));
        assert_ne!(taken.acquire_time, Some(then.clone()));
        assert_eq!(taken.lease_transitions, Some(4));
        // Taking a released Lease (no holder) is a transition too, as client-go counts it.
        assert_eq!(claim(&held(None), &config).lease_transitions, Some(4));
    }
}
