//! Pure: which callback secrets authenticate a callback, and how many callback re-checks an app gets.
//!
//! **Which secrets.** A Secret's `callbackSecret` verifies callbacks for the AppId it claims only when
//!
//! | this replica | the Secret's (AppId, server secret) | verifies |
//! |---|---|---|
//! | leads | proven: ZIM accepted a request signed with it (`reconcile::proven`) | yes |
//! | leads | not proven (a wrong server secret, or not used yet since the start) | no |
//! | stands by | any | no: a standby makes no ZIM call, so it holds no proof; it answers 503 and ZEGO's retry, which the Service may send to the leader, is verified there |
//!
//! Anyone who may write a Secret can claim any AppId and any callbackSecret; only the server secret is checked by
//! ZIM, so a callback secret counts only beside a server secret ZIM has accepted. The proof is by the pair
//! (AppId, server secret): a Secret whose server secret changes is proven again by its next accepted call.
//!
//! **How many re-checks.** Each verified `room_destroy` that is not coalesced into a queued one costs a
//! re-check (an existence probe at interactive priority). Per app they are bounded by a token bucket of
//! [`CALLBACK_SHARE`] of the app's probe budget per second (a burst of one second's worth, at least one); the
//! rest are dropped (`outcome="throttled"`, answered 200: the periodic poll finds those rooms). Every admitted
//! re-check is charged to the app's periodic prober, so callbacks and the poll together stay within the app's
//! probe budget, and the poll keeps at least `1 - CALLBACK_SHARE` of it for every namespace on the app. Per room,
//! a queued re-check absorbs further callbacks for it (`coalesced`, no token).

/// The share of an app's probe budget callback re-checks may use.
pub const CALLBACK_SHARE: f64 = 0.25;

/// Callback re-checks per second per app when the operator has no probe budget (ZIM calls not rate limited).
pub const UNBUDGETED_RECHECKS: f64 = 4.0;

/// Whether a `callbackSecret` of a Secret claiming `claimed` verifies a callback for `app_id`.
pub fn verifies(leading: bool, claimed: u32, app_id: u32, proven: bool) -> bool {
    leading && claimed == app_id && proven
}

/// Callback re-checks per second for one app, from the prober's budget per app (`None`: unlimited).
pub fn recheck_rate(probe_budget: Option<f64>) -> f64 {
    match probe_budget {
        Some(b) if b > 0.0 => b * CALLBACK_SHARE,
        _ => UNBUDGETED_RECHECKS,
    }
}

/// One app's callback re-check allowance: a token bucket holding at most one second's worth (at least 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Allowance {
    /// Re-checks that may start now (fractions accumulate).
    pub tokens: f64,
}

impl Allowance {
    /// A full allowance at `rate` per second.
    pub fn full(rate: f64) -> Self {
        Self { tokens: burst(rate) }
    }

    /// Refills for `elapsed_secs` at `rate`, then takes one re-check if there is one. Returns whether it was
    /// taken.
    pub fn take(&mut self, elapsed_secs: f64, rate: f64) -> bool {
        self.tokens = (self.tokens + elapsed_secs.max(0.0) * rate).min(burst(rate));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn burst(rate: f64) -> f64 {
    rate.max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// leading × claimed app × proven: only the leader, for the claimed app, with a proven server secret.
    #[test]
    fn only_a_proven_secret_of_the_app_verifies_on_the_leader() {
        let rows = [
            // leading, claimed, callback's app, proven, verifies
            (true, 7, 7, true, true),
            (true, 7, 7, false, false),
            (true, 8, 7, true, false),
            (false, 7, 7, true, false),
            (false, 7, 7, false, false),
        ];
        for (leading, claimed, app, proven, want) in rows {
            assert_eq!(verifies(leading, claimed, app, proven), want, "{leading} {claimed} {app} {proven}");
        }
    }

    #[test]
    fn the_rate_is_a_share_of_the_probe_budget() {
        assert_eq!(recheck_rate(Some(16.0)), 4.0);
        assert_eq!(recheck_rate(Some(2.0)), 0.5);
        assert_eq!(recheck_rate(None), UNBUDGETED_RECHECKS);
        assert_eq!(recheck_rate(Some(0.0)), UNBUDGETED_RECHECKS);
    }

    /// (rate, seconds between attempts, attempts) → re-checks admitted: a burst of one second's worth, then the
    /// rate.
    #[test]
    fn the_allowance_admits_a_burst_then_the_rate() {
        let rows: [(f64, f64, usize, usize); 6] = [
            // A flood (1 000 per second for 10 s) at 4/s: the burst of 4, then 4 per second.
            (4.0, 0.001, 10_000, 4 + 40),
            // Slower than the rate: every one.
            (4.0, 0.5, 20, 20),
            // A rate under one per second: a burst of one, then one every 2 s.
            (0.5, 0.1, 100, 1 + 5),
            // At exactly the rate.
            (2.0, 0.5, 10, 10),
            // Simultaneous attempts: the burst only.
            (3.8, 0.0, 50, 3),
            (1.0, 0.0, 5, 1),
        ];
        for (rate, gap, attempts, want) in rows {
            let mut a = Allowance::full(rate);
            let taken = (0..attempts).filter(|i| a.take(if *i == 0 { 0.0 } else { gap }, rate)).count();
            assert!(
                taken.abs_diff(want) <= 1,
                "rate {rate}, every {gap} s, {attempts} attempts: {taken} taken, want {want}"
            );
            assert!(taken <= want, "never over the bound: rate {rate}, gap {gap}: {taken} > {want}");
        }
    }

    #[test]
    fn unused_allowance_does_not_pile_up() {
        let mut a = Allowance::full(4.0);
        assert!(a.take(3600.0, 4.0));
        assert!(a.tokens <= 3.0, "an hour idle still allows one second's worth: {}", a.tokens);
    }
}
