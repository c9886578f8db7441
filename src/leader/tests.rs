//! The renewal deadline on a scripted API server (paused clock), and the Lease records.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

use super::lease::{claim, valid_other_holder};
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
