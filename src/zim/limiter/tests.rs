use super::*;

fn tag(tenant: &str, priority: Priority) -> CallTag {
    CallTag { tenant: tenant.into(), priority }
}

/// 21 calls at 20/s take one second and a margin (even spacing, no burst), and keys do not share a budget.
/// Paused time: the clock moves only when every task waits, so the figures are exact, not a machine's speed.
#[tokio::test(start_paused = true)]
async fn spaces_calls_evenly_per_key() {
    let limiter = RateLimiter::new(20);
    let interval = Duration::from_secs_f64(SPACING_MARGIN / 20.0);
    let start = Instant::now();
    for _ in 0..21 {
        limiter.acquire(1, Action::CreateRoom).await;
    }
    assert_eq!(start.elapsed(), interval * 20, "20 intervals between 21 calls");
    let other = Instant::now();
    limiter.acquire(1, Action::QueryRoomUserList).await;
    limiter.acquire(2, Action::CreateRoom).await;
    assert_eq!(other.elapsed(), Duration::ZERO, "other keys do not wait");
    assert_eq!(limiter.total_waited(), interval * 20);
}

/// Lanes of apps that come and go are reclaimed once idle: 1 000 short-lived AppIds leave none behind, and
/// a reclaimed lane grants at once as before.
#[tokio::test(start_paused = true)]
async fn idle_lanes_are_reclaimed() {
    let limiter = RateLimiter::new(20);
    let interval = Duration::from_secs_f64(SPACING_MARGIN / 20.0);
    let mut most = 0;
    for app in 0..1_000 {
        limiter.acquire(app, Action::CreateRoom).await;
        limiter.acquire(app, Action::QueryRoomUserList).await;
        most = most.max(limiter.lanes());
        // The app goes away; its dispatchers stop one interval after their last grant.
        tokio::time::sleep(interval * 2).await;
    }
    assert!(most <= 64, "idle lanes are reclaimed as new ones are added: {most} at most");
    limiter.reclaim_idle();
    assert_eq!(limiter.lanes(), 0);
    let start = Instant::now();
    limiter.acquire(7, Action::CreateRoom).await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(limiter.lanes(), 1);
}

/// The order in which one lane serves queued waiters: `(tenant, priority)` per caller, queued in this order.
async fn service_order(callers: &[(&str, Priority)]) -> Vec<usize> {
    // 10/s: the callers below all queue well within the first interval.
    let limiter = Arc::new(RateLimiter::new(10));
    // Occupy the lane so every caller below queues before the first grant.
    limiter.acquire(1, Action::CreateRoom).await;
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (i, (tenant, priority)) in callers.iter().enumerate() {
        let (lim, order, t) = (limiter.clone(), order.clone(), tag(tenant, *priority));
        tasks.push(tokio::spawn(tagged(t, async move {
            lim.acquire(1, Action::CreateRoom).await;
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

/// A grantee that resumes late (a scheduling stall) pushes the next grant back: two sends are never closer
/// than the interval, however late the first one ran.
#[tokio::test]
async fn the_next_grant_waits_for_a_late_grantee() {
    let interval = Duration::from_millis(20);
    let lane = Arc::new(Lane { interval, queues: Mutex::default() });
    let (g1, first) = oneshot::channel();
    let (g2, second) = oneshot::channel();
    {
        let mut q = lock(&lane.queues);
        let tenant: Arc<str> = "t".into();
        q.waiting.entry(Priority::Interactive).or_default().entry(tenant).or_default().extend([g1, g2]);
        q.len = 2;
        q.dispatching = true;
    }
    tokio::spawn(dispatch(lane.clone()));
    let resumed = first.await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await; // granted, but running only now
    let sent = Instant::now();
    resumed.send(sent).unwrap();
    let next = second.await.unwrap();
    let gap = Instant::now() - sent;
    assert!(gap >= interval, "the next grant came {gap:?} after the late send");
    next.send(Instant::now()).unwrap();
}
