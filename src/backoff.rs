//! The one retry schedule: exponential backoff with jitter, used by the controller (per object) and by
//! `zim-operator apply` (per room, a bounded number of attempts).
//!
//! Retryable failures start at 1 s and double up to 5 min; unknown ZIM codes start at 30 s and double up to
//! 30 min. Each delay is jittered by ±20 % so that rooms that failed together do not retry together.

use std::time::Duration;

use rand::Rng;

/// An exponential schedule: `base × 2^(n-1)`, capped at `max`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// The first delay.
    pub base: Duration,
    /// The longest delay.
    pub max: Duration,
}

/// Retryable failures: 1 s doubling to 5 min.
pub const FAST: Schedule = Schedule { base: Duration::from_secs(1), max: Duration::from_secs(300) };
/// Unknown codes: 30 s doubling to 30 min.
pub const SLOW: Schedule = Schedule { base: Duration::from_secs(30), max: Duration::from_secs(1800) };

/// The fraction by which each delay is jittered.
pub const JITTER: f64 = 0.2;

impl Schedule {
    /// The delay before retry number `failures` (1 for the first failure), without jitter.
    pub fn nominal(self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20) as i32;
        self.base.mul_f64(2f64.powi(doublings)).min(self.max)
    }

    /// The delay before retry number `failures`, jittered by ±[`JITTER`].
    pub fn delay(self, failures: u32) -> Duration {
        jitter(self.nominal(failures), JITTER)
    }
}

/// `d` scaled by a random factor in `1 ± fraction`.
pub fn jitter(d: Duration, fraction: f64) -> Duration {
    let f = rand::rng().random_range((1.0 - fraction)..=(1.0 + fraction));
    d.mul_f64(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_base_to_max() {
        let secs: Vec<u64> = (1..=11).map(|n| FAST.nominal(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(SLOW.nominal(1), Duration::from_secs(30));
        assert_eq!(SLOW.nominal(100), Duration::from_secs(1800));
    }

    #[test]
    fn jitter_stays_within_bounds() {
        for n in 1..10 {
            let d = FAST.delay(n).as_secs_f64();
            let nominal = FAST.nominal(n).as_secs_f64();
            assert!(d >= nominal * 0.8 - 1e-9 && d <= nominal * 1.2 + 1e-9, "{d} vs {nominal}");
        }
    }
}
