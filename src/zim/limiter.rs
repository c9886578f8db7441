//! The client-side rate limiter: one limiter per (AppId, Action), shared by every caller of one client.
//!
//! ZEGO publishes 20 calls/s per action without saying how it counts, so we assume the strictest reading — never
//! more than the limit in any one-second window — and space calls evenly (GCRA with a burst of one, from
//! `governor`) instead of letting a bucket's burst through on top of the steady rate. Each interval is widened by
//! 2 % so that network jitter between our clock and the server's never puts 21 calls in one server-side window.
//! Callers wait rather than fail; the total time spent waiting is reported.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::{Quota, RateLimiter as Gcra};

use super::types::Action;

/// Head-room applied to each interval (see the module docs).
const SPACING_MARGIN: f64 = 1.02;

type Keyed = governor::DefaultKeyedRateLimiter<(u32, Action)>;

/// Spaces calls per (AppId, Action).
pub struct RateLimiter {
    per_second: Option<NonZeroU32>,
    limiter: Option<Keyed>,
    waited_nanos: AtomicU64,
}

impl RateLimiter {
    /// A limiter allowing `per_second` calls per (AppId, Action); `0` disables limiting.
    pub fn new(per_second: u32) -> Self {
        let per_second = NonZeroU32::new(per_second);
        let limiter = per_second.map(|n| {
            let period = Duration::from_secs_f64(SPACING_MARGIN / f64::from(n.get()));
            let quota = Quota::with_period(period).expect("a non-zero period").allow_burst(NonZeroU32::MIN);
            Gcra::keyed(quota)
        });
        Self { per_second, limiter, waited_nanos: AtomicU64::new(0) }
    }

    /// The configured calls per second, if limited.
    pub fn per_second(&self) -> Option<u32> {
        self.per_second.map(NonZeroU32::get)
    }

    /// Waits for this caller's turn and returns how long it waited.
    pub async fn acquire(&self, app_id: u32, action: Action) -> Duration {
        let Some(limiter) = &self.limiter else { return Duration::ZERO };
        let start = Instant::now();
        limiter.until_key_ready(&(app_id, action)).await;
        let waited = start.elapsed();
        self.waited_nanos.fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
        waited
    }

    /// Total time all callers have spent waiting.
    pub fn total_waited(&self) -> Duration {
        Duration::from_nanos(self.waited_nanos.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 21 calls at 20/s take about one second (even spacing, no burst), and keys do not share a budget.
    #[tokio::test]
    async fn spaces_calls_evenly_per_key() {
        let limiter = RateLimiter::new(20);
        let start = Instant::now();
        for _ in 0..21 {
            limiter.acquire(1, Action::CreateRoom).await;
        }
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(1000), "21 calls took only {elapsed:?}");
        let other = Instant::now();
        limiter.acquire(1, Action::QueryRoomUserList).await;
        limiter.acquire(2, Action::CreateRoom).await;
        assert!(other.elapsed() < Duration::from_millis(40), "other keys should not wait");
        assert!(limiter.total_waited() >= Duration::from_millis(900));
    }
}
