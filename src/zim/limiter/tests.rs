//! The limiter on paused time: the clock moves only when every task waits, so the instants are exact, not a
//! machine's speed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::window::WINDOW;
use super::*;
use crate::zim::api::{Transport, ZimApi};
use crate::zim::sign::Credentials;
use crate::zim::types::HasEnvelope;

fn tag(tenant: &str, priority: Priority) -> CallTag {
    CallTag { tenant: tenant.into(), priority }
}

const MS: Duration = Duration::from_millis(1);

/// The most of `sorted` in any window of `span` (sliding), as ZIM counts "one second before now".
fn most_in_any_window(sorted: &[Instant], span: Duration) -> usize {
    let mut first = 0;
    let mut most = 0;
    for (last, t) in sorted.iter().enumerate() {
        while *t - sorted[first] >= span {
            first += 1;
        }
        most = most.max(last + 1 - first);
    }
    most
}

/// 20 calls at 20/s answered at once are granted 50 ms apart within the first second, and the 21st one window
/// after the first's answer; other keys do not share the budget.
#[tokio::test(start_paused = true)]
async fn a_lane_grants_the_limit_per_window_spaced_evenly() {
    let limiter = RateLimiter::new(20);
    let start = Instant::now();
    let mut granted = Vec::new();
    for _ in 0..21 {
        let permit = limiter.acquire(1, Action::CreateRoom).await;
        granted.push(Instant::now() - start);
        permit.answered();
    }
    let expected: Vec<Duration> = (0..20).map(|i| 50 * MS * i).chain([WINDOW]).collect();
    assert_eq!(granted, expected);
    let other = Instant::now();
    limiter.acquire(1, Action::QueryRoomUserList).await.answered();
    limiter.acquire(2, Action::CreateRoom).await.answered();
    assert_eq!(other.elapsed(), Duration::ZERO, "other keys do not wait");
    assert_eq!(limiter.total_waited(), WINDOW, "each call waited from the previous grant");
}

/// The instants (from `start`) at which `n` callers queued at once are granted.
async fn granted_at_once(limiter: &Arc<RateLimiter>, n: usize, start: Instant) -> Vec<Duration> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let permit = limiter.acquire(1, Action::CreateRoom).await;
                let at = Instant::now() - start;
                permit.answered();
                at
            })
        })
        .collect();
    let mut granted = Vec::new();
    for t in tasks {
        granted.push(t.await.unwrap());
    }
    granted.sort();
    granted
}

/// Callers late to queue (a stall of the process) are caught up within the window, back to back until the
/// schedule is met; after an idle time at most 200 ms worth of calls go at once.
#[tokio::test(start_paused = true)]
async fn a_stall_is_caught_up_and_an_idle_lane_bursts_at_most_200_ms_worth() {
    let limiter = Arc::new(RateLimiter::new(20));
    let start = Instant::now();
    limiter.acquire(1, Action::CreateRoom).await.answered();
    limiter.acquire(1, Action::CreateRoom).await.answered();
    // Due at 100 ms and 150 ms, the next callers come at 200 ms.
    tokio::time::sleep(150 * MS).await;
    let late = granted_at_once(&limiter, 5, start).await;
    assert_eq!(late, [200 * MS, 200 * MS, 200 * MS, 250 * MS, 300 * MS]);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle = Instant::now();
    let after_idle = granted_at_once(&limiter, 7, idle).await;
    assert_eq!(after_idle, [Duration::ZERO; 5].into_iter().chain([50 * MS, 100 * MS]).collect::<Vec<_>>());
}

/// A call counts while it is in flight, however long: with the limit in flight nothing more is granted, and a
/// call answered late counts for one window from its answer.
#[tokio::test(start_paused = true)]
async fn calls_in_flight_hold_their_place_until_answered() {
    let limiter = Arc::new(RateLimiter::new(20));
    let mut permits = Vec::new();
    for _ in 0..20 {
        permits.push(limiter.acquire(1, Action::CreateRoom).await);
    }
    assert_eq!(limiter.in_flight(1, Action::CreateRoom), 20);
    let start = Instant::now();
    let next = tokio::spawn({
        let limiter = limiter.clone();
        async move {
            let permit = limiter.acquire(1, Action::CreateRoom).await;
            (Instant::now(), permit)
        }
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!next.is_finished(), "granted while the limit was in flight");
    let answered = Instant::now();
    permits.pop().unwrap().answered();
    let (granted, _permit) = next.await.unwrap();
    assert_eq!(granted - answered, WINDOW, "the 21st waits one window after the first answer");
    assert_eq!(answered - start, Duration::from_secs(5));
}

/// A call that ends without an answer (a timeout, a broken connection, a dropped caller) counts for a grace period
/// longer than an answered one: its request may still be on its way.
#[tokio::test(start_paused = true)]
async fn unanswered_calls_count_for_longer() {
    let limiter = RateLimiter::new(1);
    let start = Instant::now();
    limiter.acquire(1, Action::CreateRoom).await.answered();
    limiter.acquire(1, Action::CreateRoom).await.unanswered();
    assert_eq!(start.elapsed(), WINDOW);
    drop(limiter.acquire(1, Action::CreateRoom).await);
    assert_eq!(start.elapsed(), WINDOW * 2 + window::UNANSWERED_GRACE);
    limiter.acquire(1, Action::CreateRoom).await.answered();
    assert_eq!(start.elapsed(), WINDOW * 3 + window::UNANSWERED_GRACE * 2);
}

/// A transport that answers after a set time, with a timeout or a success.
struct Slow {
    takes: Duration,
    times_out: bool,
}

impl Transport for Slow {
    async fn call<B, R>(
        &self,
        _: &Credentials,
        action: Action,
        _: &[(&str, String)],
        _: Option<&B>,
    ) -> Result<R, ZimError>
    where
        B: serde::Serialize + Sync + ?Sized,
        R: serde::de::DeserializeOwned + HasEnvelope + Send,
    {
        tokio::time::sleep(self.takes).await;
        if self.times_out {
            return Err(ZimError::Timeout { action, timeout_ms: self.takes.as_millis() as u64 });
        }
        crate::zim::client::decode_answer(action, br#"{"Code":0,"Message":"ok","RequestId":"1"}"#)
    }
}

/// The decorator counts each call from its grant to its answer, and a timed-out call for the grace period more.
#[tokio::test(start_paused = true)]
async fn the_decorator_reports_how_each_call_ended() {
    let creds = Credentials::new(1, "s");
    for (times_out, expected) in
        [(false, 2 * WINDOW + 600 * MS), (true, 2 * WINDOW + 600 * MS + window::UNANSWERED_GRACE)]
    {
        let api = RateLimited::wrap(Slow { takes: 300 * MS, times_out }, Arc::new(RateLimiter::new(1)));
        let start = Instant::now();
        for _ in 0..3 {
            let _ = api.destroy_room(&creds, "r", None).await;
        }
        // Grants at 0, 300 ms + W, 600 ms + 2 W (+ the grace twice when the calls time out).
        let grace = if times_out { window::UNANSWERED_GRACE } else { Duration::ZERO };
        assert_eq!(start.elapsed() - 300 * MS, expected + grace, "times out: {times_out}");
    }
}

/// The item's failure, on paused time: 300 callers at once, each call's request held back for a random time up to
/// 400 ms (a new connection) and counted by ZIM at any instant between the grant and the answer — here the worst
/// one: at the answer for some, at the grant for others. No sliding second of ZIM's counts exceeds the limit, and
/// the lane still grants close to the limit.
#[tokio::test(start_paused = true)]
async fn no_second_of_zim_s_counts_exceeds_the_limit_whatever_the_delays() {
    let limiter = Arc::new(RateLimiter::new(20));
    let counted = Arc::new(Mutex::new(Vec::new()));
    let mut rng = StdRng::seed_from_u64(12);
    let start = Instant::now();
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let (limiter, counted) = (limiter.clone(), counted.clone());
            // The first calls of the burst wait for new connections; later ones mostly find one.
            let held = if i < 40 || rng.random_bool(0.1) { rng.random_range(50..400) } else { 1 };
            let late = rng.random_bool(0.5);
            tokio::spawn(async move {
                let permit = limiter.acquire(7, Action::CreateRoom).await;
                let granted = Instant::now();
                tokio::time::sleep(held * MS).await;
                lock(&counted).push(if late { Instant::now() } else { granted });
                permit.answered();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut counted = Arc::try_unwrap(counted).unwrap().into_inner().unwrap();
    counted.sort();
    let most = most_in_any_window(&counted, Duration::from_secs(1));
    assert_eq!(counted.len(), 300);
    assert!(most <= 20, "{most} calls counted within one second");
    assert_eq!(most, 20, "the window is used to the limit");
    let rate = 300.0 / elapsed;
    assert!(rate > 18.0, "{rate:.2}/s");
}

/// Lanes of apps that come and go are reclaimed once idle and their window clear: 1 000 short-lived AppIds leave
/// none behind, a lane whose window still holds a call is kept, and a reclaimed lane grants at once as before.
#[tokio::test(start_paused = true)]
async fn idle_lanes_are_reclaimed() {
    let limiter = RateLimiter::new(20);
    let mut most = 0;
    for app in 0..1_000 {
        limiter.acquire(app, Action::CreateRoom).await.answered();
        limiter.acquire(app, Action::QueryRoomUserList).await.answered();
        most = most.max(limiter.lanes());
        // The app goes away.
        tokio::time::sleep(100 * MS).await;
    }
    assert!(most <= 64, "idle lanes are reclaimed as new ones are added: {most} at most");
    limiter.reclaim_idle();
    assert!(limiter.lanes() > 0, "lanes whose window still holds a call are kept");
    tokio::time::sleep(WINDOW).await;
    limiter.reclaim_idle();
    assert_eq!(limiter.lanes(), 0);
    let start = Instant::now();
    limiter.acquire(7, Action::CreateRoom).await.answered();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(limiter.lanes(), 1);
}

/// A lane holds at most the limit's worth of instants, however many calls went through it.
#[tokio::test(start_paused = true)]
async fn a_lane_s_memory_is_bounded_by_the_limit() {
    let limiter = RateLimiter::new(5);
    for i in 0..200 {
        let permit = limiter.acquire(1, Action::CreateRoom).await;
        if i % 3 == 0 {
            permit.unanswered()
        } else {
            permit.answered()
        }
        let lane = limiter.lane(1, Action::CreateRoom).unwrap();
        let held = lock(&lane.state).window.held();
        assert!(held <= 5, "{held} instants held");
    }
}

/// The order in which one lane serves queued waiters: `(tenant, priority)` per caller, queued in this order.
async fn service_order(callers: &[(&str, Priority)]) -> Vec<usize> {
    // 10/s: the callers below all queue well within the first interval.
    let limiter = Arc::new(RateLimiter::new(10));
    // Occupy the lane so every caller below queues before the first grant.
    limiter.acquire(1, Action::CreateRoom).await.answered();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (i, (tenant, priority)) in callers.iter().enumerate() {
        let (lim, order, t) = (limiter.clone(), order.clone(), tag(tenant, *priority));
        tasks.push(tokio::spawn(tagged(t, async move {
            lim.acquire(1, Action::CreateRoom).await.answered();
            lock(&order).push(i);
        })));
        // Queue them in order (each registers before the next is spawned).
        while limiter.waiting(1, Action::CreateRoom) < i + 1 {
            tokio::task::yield_now().await;
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    Arc::try_unwrap(order).unwrap().into_inner().unwrap()
}

/// A backlog of one tenant does not hold up another's call: tenants take turns.
#[tokio::test]
async fn tenants_take_turns() {
    use Priority::Interactive as I;
    let callers = [("a", I), ("a", I), ("a", I), ("a", I), ("b", I), ("a", I)];
    let order = service_order(&callers).await;
    let b = order.iter().position(|&i| i == 4).unwrap();
    assert!(b <= 1, "tenant b's call was served after {b} of a's: {order:?}");
}

/// Interactive calls go before queued background ones.
#[tokio::test]
async fn interactive_calls_go_first() {
    use Priority::{Background as B, Interactive as I};
    let order = service_order(&[("a", B), ("a", B), ("a", B), ("b", I), ("a", I)]).await;
    let mut first = order[..2].to_vec();
    first.sort();
    assert_eq!(first, [3, 4], "{order:?}");
}

/// A waiter that goes away before its grant costs no place in the window.
#[tokio::test(start_paused = true)]
async fn a_waiter_that_went_away_takes_no_place() {
    let limiter = Arc::new(RateLimiter::new(2));
    limiter.acquire(1, Action::CreateRoom).await.answered();
    let gone = tokio::spawn({
        let limiter = limiter.clone();
        async move { limiter.acquire(1, Action::CreateRoom).await.answered() }
    });
    while limiter.waiting(1, Action::CreateRoom) < 1 {
        tokio::task::yield_now().await;
    }
    gone.abort();
    let start = Instant::now();
    limiter.acquire(1, Action::CreateRoom).await.answered();
    assert_eq!(start.elapsed(), 500 * MS, "the second call takes the place the aborted one left");
    assert_eq!(limiter.in_flight(1, Action::CreateRoom), 0);
}

/// SendRoomMessage (10/s documented) gets half the configured rate: at 20/s, ten messages go in the first window
/// (100 ms apart) and the eleventh one window after the first's answer. A KickoutRoomUser that breaks a limit is
/// refused before it takes a turn: no lane is made.
#[tokio::test(start_paused = true)]
async fn room_messages_take_half_the_rate_and_refusals_no_turn() {
    use crate::zim::types::SendRoomMessageRequest;
    let creds = Credentials::new(1, "s");
    let api =
        RateLimited::wrap(Slow { takes: Duration::ZERO, times_out: false }, Arc::new(RateLimiter::new(20)));
    let message = SendRoomMessageRequest::text("ops", "r", "closing");
    let start = Instant::now();
    let mut sent = Vec::new();
    for _ in 0..11 {
        api.send_room_message(&creds, &message).await.unwrap();
        sent.push(start.elapsed());
    }
    assert_eq!(sent[9], 900 * MS, "{sent:?}");
    assert_eq!(sent[10], WINDOW, "{sent:?}");
    let too_many: Vec<String> = (0..51).map(|i| i.to_string()).collect();
    let lanes = api.limiter().lanes();
    let err = api.kickout_room_users(&creds, "r", &too_many, None, None).await.unwrap_err();
    assert!(matches!(err, ZimError::Refused { .. }), "{err:?}");
    assert_eq!(api.limiter().lanes(), lanes);
    assert_eq!(start.elapsed(), WINDOW, "the refusal waited for nothing");
}
