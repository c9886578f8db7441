//! The sliding record of one lane: which calls may still count in ZIM's one-second window.
//!
//! ZIM counts a call at some instant between our grant and its answer; the client cannot see which (a new
//! connection, a proxy or a retransmission can hold a request back for any time after we wrote it). So a call
//! counts from its grant until it ends (it is *in flight*), and then for one [`WINDOW`] after its answer (it is
//! *recorded*). A call is granted only while fewer than the limit are in flight or recorded.
//!
//! That holds at ZIM's side, whatever the network does. Take any second of ZIM's clock and, of the calls ZIM
//! counted in it, the one granted last. Its grant came before the end of that second (its call was counted in
//! it), so every other call of that second was counted less than a second before that grant, or after it. At that
//! grant each was granted already, and either still in flight, or answered — after being counted, so less than a
//! second before — and recorded. The grant saw them all and went ahead only with fewer than the limit: the second
//! holds at most the limit.
//!
//! The price is the time from grant to answer, once per window rather than once per call: with answers in L, a
//! busy lane grants `limit` calls per (1 s + L).
//!
//! A call that ends without an answer (a timeout, a broken connection, a caller that went away) may still reach
//! ZIM after we gave up on it; it is recorded [`UNANSWERED_GRACE`] after its end.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// How long an answered call counts after its answer: ZEGO's one second, and 1 ms for the drift between our clock
/// and ZIM's.
pub const WINDOW: Duration = Duration::from_millis(1001);

/// How much later than its end a call without an answer is taken to have reached ZIM, at the latest.
pub const UNANSWERED_GRACE: Duration = Duration::from_secs(1);

/// The calls of one lane that may still count in ZIM's window.
#[derive(Debug)]
pub(crate) struct Window {
    limit: usize,
    /// The instants from which recorded calls count, ascending; each counts until `WINDOW` after it.
    recorded: VecDeque<Instant>,
    /// Calls granted and not ended yet.
    in_flight: usize,
}

/// When the next call may start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Opens {
    /// Now: fewer than the limit count.
    Now,
    /// At this instant, when enough recorded calls have expired.
    At(Instant),
    /// When a call in flight ends: the limit is in flight.
    WhenOneEnds,
}

impl Window {
    /// A window allowing `limit` calls (at least 1).
    pub(crate) fn new(limit: usize) -> Self {
        Self { limit: limit.max(1), recorded: VecDeque::new(), in_flight: 0 }
    }

    /// Forgets the calls that no longer count at `now`.
    fn expire(&mut self, now: Instant) {
        while self.recorded.front().is_some_and(|t| *t + WINDOW <= now) {
            self.recorded.pop_front();
        }
    }

    /// When the next call may start, seen at `now`.
    pub(crate) fn opens(&mut self, now: Instant) -> Opens {
        self.expire(now);
        let used = self.recorded.len() + self.in_flight;
        if used < self.limit {
            return Opens::Now;
        }
        // This many recorded calls must expire first; if fewer are recorded, a call in flight has to end.
        let expiring = used + 1 - self.limit;
        match self.recorded.get(expiring - 1) {
            Some(t) => Opens::At(*t + WINDOW),
            None => Opens::WhenOneEnds,
        }
    }

    /// A call starts (call only when [`Window::opens`] said so).
    pub(crate) fn start(&mut self) {
        self.in_flight += 1;
    }

    /// A call that started ends; it counts from `counted_from` for one [`WINDOW`].
    pub(crate) fn end(&mut self, counted_from: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let at = self.recorded.partition_point(|t| *t <= counted_from);
        self.recorded.insert(at, counted_from);
    }

    /// A call that started was never sent: it does not count.
    pub(crate) fn cancel(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Whether nothing counts any more at `now` (the lane may be dropped without losing anything).
    pub(crate) fn is_clear(&mut self, now: Instant) -> bool {
        self.expire(now);
        self.in_flight == 0 && self.recorded.is_empty()
    }

    /// Calls in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Calls held (in flight or recorded, expired or not): never more than the limit.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.in_flight + self.recorded.len()
    }
}
