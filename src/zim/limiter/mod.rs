//! The client-side rate limiter: one lane per (AppId, Action), shared by every caller of one client.
//!
//! ZEGO publishes 20 calls/s per action (10 for SendRoomMessage, whose lanes get half the configured rate) without
//! saying how it counts, so we hold the strictest reading: never more than the limit in any one-second window of
//! ZIM's clock — every sliding window, not only aligned seconds.
//!
//! **The window is kept at ZIM's side.** What ZIM counts is when requests arrive, and spacing grants evenly does
//! not space arrivals: after an idle period the first calls wait for new connections (DNS, TCP, TLS, a proxy
//! connecting upstream) while later ones find a freed connection at once. Calls granted 51 ms apart reached the
//! server bunched, 26 in one second behind a proxy adding 300 ms to each new connection, and 30 of 300 were
//! answered 660300005 (`wire_rate.rs` in the integration tests); a scheduling stall bunched them too. So a lane
//! keeps a sliding record of its calls ([`window`]): a call counts from its grant until its answer and for one
//! second after the answer, and a call is granted only while fewer than the limit count. ZIM counts each call
//! between those two instants, so no second of ZIM's clock holds more than the limit, however long a request took
//! to get out or a caller to run.
//!
//! **What it costs.** The record allows what ZIM's window allows, less the time from grant to answer, once per
//! window: a busy lane grants the limit per (1 s + answer time). On loopback 20 CreateRoom calls took 1.005 s at
//! the median (benchmark P1, beside two busy loops on a machine at load 18–20: 0.954–0.963 of the limit, where the
//! spacing measured from each grantee's wake-up, which lost the wake-up latency on every call, reached 0.876–0.878
//! under the same load and let 21 calls into one second). With answers in 50 ms a lane grants 95 % of the limit.
//! Counting from the moment the request is written would lose less, but the client cannot see when a proxy or a
//! new connection lets it through, and that is the failure above.
//!
//! **Spacing.** Within the window, grants are still spaced at 1/limit s, so a backlog goes out evenly rather than
//! as a burst of the limit. The schedule is kept from one grant to the next, so a late timer costs nothing, and a
//! stall of up to 200 ms (the process not scheduled on a busy machine) is caught up with grants back to back, as
//! far as the window allows; after an idle time, 200 ms worth of calls go at once.
//!
//! **Who goes first.** Waiting callers are served by [`Priority`] (a call a person is waiting for — a new room,
//! a spec change, a callback's re-check — before the periodic re-check of converged rooms), then round-robin
//! across tenants (namespaces), so one namespace's backlog delays another's next call by at most one slot per
//! busy tenant. The caller's tenant and priority come from the task-local [`CallTag`] (see [`tagged`]); untagged
//! calls share one tenant at interactive priority.
//!
//! [`RateLimited`] is the decorator that puts a [`RateLimiter`] in front of any [`ZimApi`](super::ZimApi): it
//! waits for the (AppId, Action) turn, reports the wait, calls in, and tells the lane whether an answer came
//! ([`Permit`]). The HTTP client signs after the wait, so a long wait never ages a signature.
//!
//! (The `governor` crate spaced calls here before; it has no notion of fairness between waiters, priorities, or
//! calls in flight, which is why the lanes are our own: a record, a schedule and a queue per lane.)

mod decorator;
pub mod window;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use super::error::ZimError;
use super::limits;
use super::types::Action;
use crate::lock;
pub use decorator::RateLimited;
use window::{Opens, UNANSWERED_GRACE, Window};

/// How far the spacing schedule may fall behind and still be caught up (grants back to back, within the window).
const CATCH_UP: Duration = Duration::from_millis(200);

/// The calls per second one busy lane grants with a limit of `per_second` when answers take 20 ms (a lane grants
/// `per_second` calls per one second and the time from grant to answer); the probe budget plans with it.
pub fn granted_per_second(per_second: u32) -> f64 {
    f64::from(per_second) / 1.02
}

/// Who waits first for a lane.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Someone is waiting for it: a new or changed room, a recreation, a callback's re-check.
    #[default]
    Interactive,
    /// The periodic re-check of converged rooms (the safety net).
    Background,
}

/// The tenant and priority of the calls a task makes (task-local; see [`tagged`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallTag {
    /// The tenant (the namespace of the ZimRoom); round-robin unit among waiters.
    pub tenant: Arc<str>,
    /// The priority.
    pub priority: Priority,
}

tokio::task_local! {
    static CALL_TAG: CallTag;
}

/// Runs `f` with its ZIM calls tagged `tag`.
pub async fn tagged<F: Future>(tag: CallTag, f: F) -> F::Output {
    CALL_TAG.scope(tag, f).await
}

fn current_tag() -> CallTag {
    CALL_TAG.try_with(Clone::clone).unwrap_or_default()
}

/// The right to make one call, handed to a waiter by its lane. The call counts in the lane's window from the
/// grant; say how it ended with [`Permit::finish`] (or [`Permit::answered`]). Dropped unfinished (the caller went
/// away mid-call), it counts as a call without an answer.
#[must_use = "a permit counts until it is finished or dropped"]
pub struct Permit {
    lane: Option<Arc<Lane>>,
    waited: Duration,
}

impl Permit {
    /// A permit of a limiter that does not limit.
    fn free() -> Self {
        Self { lane: None, waited: Duration::ZERO }
    }

    /// How long the caller waited for it.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// The call was answered (by ZIM or anything else that answered HTTP): it counts for one window from now.
    pub fn answered(mut self) {
        self.end(Some(Instant::now()));
    }

    /// The call ended without an answer: it may still reach ZIM, so it counts until a grace period after now.
    pub fn unanswered(mut self) {
        self.end(Some(Instant::now() + UNANSWERED_GRACE));
    }

    /// Ends the call by its result: a timeout or a transport failure may have left a request on its way.
    pub fn finish<T>(self, result: &Result<T, ZimError>) {
        match result {
            Err(ZimError::Timeout { .. } | ZimError::Transport { .. }) => self.unanswered(),
            _ => self.answered(),
        }
    }

    /// The permit was never used (its waiter was gone): nothing was sent.
    fn unused(mut self) {
        self.end(None);
    }

    fn end(&mut self, counted_from: Option<Instant>) {
        let Some(lane) = self.lane.take() else { return };
        {
            let mut state = lock(&lane.state);
            match counted_from {
                Some(from) => state.window.end(from),
                None => state.window.cancel(),
            }
        }
        lane.ended.notify_one();
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.end(Some(Instant::now() + UNANSWERED_GRACE));
    }
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit").field("waited", &self.waited).finish_non_exhaustive()
    }
}

/// A waiter's end of its grant.
type Grant = oneshot::Sender<Permit>;

#[derive(Default)]
struct Queues {
    /// Per priority, per tenant, the waiters in arrival order.
    waiting: BTreeMap<Priority, BTreeMap<Arc<str>, VecDeque<Grant>>>,
    /// Per priority, the tenant served last (round-robin cursor).
    last: HashMap<Priority, Arc<str>>,
    /// Whether the lane's dispatcher task runs.
    dispatching: bool,
    /// Waiters now queued.
    len: usize,
}

impl Queues {
    /// The next live waiter: the highest priority, then the tenant after the last one served.
    fn pop(&mut self) -> Option<Grant> {
        loop {
            let (&priority, tenants) = self.waiting.iter_mut().find(|(_, t)| !t.is_empty())?;
            let tenant = next_in_turn(tenants, self.last.get(&priority))?;
            let queue = tenants.get_mut(&tenant).expect("tenant present");
            let grant = queue.pop_front();
            if queue.is_empty() {
                tenants.remove(&tenant);
            }
            if tenants.is_empty() {
                self.waiting.remove(&priority);
            }
            self.last.insert(priority, tenant);
            let grant = grant?;
            self.len -= 1;
            if !grant.is_closed() {
                return Some(grant);
            }
        }
    }
}

/// Round-robin: the first tenant of `queues` after `last` (wrapping around), if any waits.
pub(crate) fn next_in_turn<V>(queues: &BTreeMap<Arc<str>, V>, last: Option<&Arc<str>>) -> Option<Arc<str>> {
    use std::ops::Bound::{Excluded, Unbounded};
    last.and_then(|l| queues.range::<Arc<str>, _>((Excluded(l), Unbounded)).next())
        .or_else(|| queues.iter().next())
        .map(|(tenant, _)| tenant.clone())
}

/// One (AppId, Action): its waiters, its window, and its spacing schedule.
struct Lane {
    /// The spacing between grants: 1/limit s.
    interval: Duration,
    state: Mutex<LaneState>,
    /// Signalled when a call of the lane ends (the window may open).
    ended: Notify,
}

struct LaneState {
    queues: Queues,
    window: Window,
    /// The earliest next grant by the spacing schedule.
    paced_until: Option<Instant>,
}

impl Lane {
    fn new(limit: u32) -> Self {
        Lane {
            interval: Duration::from_secs(1) / limit.max(1),
            state: Mutex::new(LaneState {
                queues: Queues::default(),
                window: Window::new(limit as usize),
                paced_until: None,
            }),
            ended: Notify::new(),
        }
    }
}

/// The lanes, and when to reclaim idle ones.
#[derive(Default)]
struct Lanes {
    by_key: HashMap<(u32, Action), Arc<Lane>>,
    /// Reclaim idle lanes when a new lane makes this many (twice the count after the last reclaim, at least 64).
    sweep_at: usize,
}

impl Lanes {
    /// Drops the lanes nobody waits on, whose dispatcher has stopped and whose window is clear (no call in flight,
    /// none answered within the window), so a reclaimed lane loses nothing: a fresh lane grants at once, as the old
    /// one would have. Apps that come and go leave no lane behind.
    fn reclaim_idle(&mut self) {
        let now = Instant::now();
        self.by_key.retain(|_, lane| {
            let mut s = lock(&lane.state);
            s.queues.dispatching || s.queues.len > 0 || !s.window.is_clear(now)
        });
        self.sweep_at = (self.by_key.len() * 2).max(64);
    }
}

/// Keeps calls per (AppId, Action) within the window, fairly (see the module docs).
pub struct RateLimiter {
    per_second: u32,
    lanes: Mutex<Lanes>,
    waited_nanos: AtomicU64,
}

impl RateLimiter {
    /// A limiter allowing `per_second` calls per (AppId, Action) in any second — scaled down for the actions ZEGO
    /// documents at less than 20/s ([`limits::calls_per_second`]: SendRoomMessage gets half); `0` disables
    /// limiting.
    pub fn new(per_second: u32) -> Self {
        Self { per_second, lanes: Mutex::default(), waited_nanos: AtomicU64::new(0) }
    }

    /// Waits for this caller's turn (tagged by the task's [`CallTag`]) and returns the permit for one call.
    pub async fn acquire(&self, app_id: u32, action: Action) -> Permit {
        if self.per_second == 0 {
            return Permit::free();
        }
        let start = Instant::now();
        let tag = current_tag();
        let (grant, granted) = oneshot::channel();
        // Queued while the lanes are locked, so a reclaim never drops a lane someone is about to wait on.
        let (lane, spawn) = {
            let mut lanes = lock(&self.lanes);
            if !lanes.by_key.contains_key(&(app_id, action)) && lanes.by_key.len() + 1 >= lanes.sweep_at {
                lanes.reclaim_idle();
            }
            let lane = lanes
                .by_key
                .entry((app_id, action))
                .or_insert_with(|| Arc::new(Lane::new(limits::calls_per_second(action, self.per_second))))
                .clone();
            let mut s = lock(&lane.state);
            let q = &mut s.queues;
            q.waiting.entry(tag.priority).or_default().entry(tag.tenant).or_default().push_back(grant);
            q.len += 1;
            let spawn = !std::mem::replace(&mut q.dispatching, true);
            drop(s);
            (lane, spawn)
        };
        if spawn {
            tokio::spawn(dispatch(lane));
        }
        // The dispatcher never drops a live grant, and it runs while anyone waits (only a runtime shutting down
        // drops it: the call then goes unlimited, as it would be refused or never made anyway).
        let mut permit = granted.await.unwrap_or_else(|_| Permit::free());
        permit.waited = start.elapsed();
        self.waited_nanos.fetch_add(permit.waited.as_nanos() as u64, Ordering::Relaxed);
        permit
    }

    /// Total time all callers have spent waiting.
    pub fn total_waited(&self) -> Duration {
        Duration::from_nanos(self.waited_nanos.load(Ordering::Relaxed))
    }

    /// Callers now waiting on (app, action)'s lane.
    pub fn waiting(&self, app_id: u32, action: Action) -> usize {
        self.lane(app_id, action).map_or(0, |l| lock(&l.state).queues.len)
    }

    /// Calls of (app, action) granted and not finished yet.
    pub fn in_flight(&self, app_id: u32, action: Action) -> usize {
        self.lane(app_id, action).map_or(0, |l| lock(&l.state).window.in_flight())
    }

    /// How many lanes are held (busy or idle but not reclaimed yet).
    pub fn lanes(&self) -> usize {
        lock(&self.lanes).by_key.len()
    }

    /// Reclaims the idle lanes now (also done as lanes are added).
    pub fn reclaim_idle(&self) {
        lock(&self.lanes).reclaim_idle();
    }

    fn lane(&self, app_id: u32, action: Action) -> Option<Arc<Lane>> {
        lock(&self.lanes).by_key.get(&(app_id, action)).cloned()
    }
}

/// What the dispatcher does next.
enum Step {
    /// Hand this waiter its permit.
    Grant(Grant),
    /// Nothing before this instant (or a call's end).
    Sleep(Instant),
    /// Nothing before a call's end: the limit is in flight.
    AwaitEnd,
    /// Nobody waits: stop (the window and the schedule stay with the lane).
    Stop,
}

impl LaneState {
    /// The dispatcher's next step at `now`, given the spacing `interval`.
    fn step(&mut self, now: Instant, interval: Duration) -> Step {
        if self.queues.len == 0 {
            return Step::Stop;
        }
        let open = match self.window.opens(now) {
            Opens::WhenOneEnds => return Step::AwaitEnd,
            Opens::Now => None,
            Opens::At(t) => Some(t),
        };
        let at = match (self.paced_until, open) {
            (Some(paced), Some(open)) => paced.max(open),
            (paced, open) => paced.or(open).unwrap_or(now),
        };
        if at > now {
            return Step::Sleep(at);
        }
        let Some(grant) = self.queues.pop() else { return Step::Stop };
        self.window.start();
        // From the planned instant, so a timer that fires late does not push the schedule back, and a stall (the
        // process not scheduled, callers late to queue) is caught up as far as the window allows, up to
        // [`CATCH_UP`]: after an idle time, 200 ms worth of calls (5 at 20/s) go at once.
        self.paced_until = Some((at + interval).max((now + interval).checked_sub(CATCH_UP).unwrap_or(now)));
        Step::Grant(grant)
    }
}

/// Grants a lane's waiters one at a time, each when the window has room and the spacing schedule allows; exits
/// when nobody waits (the next caller starts it again).
async fn dispatch(lane: Arc<Lane>) {
    loop {
        let step = {
            let mut s = lock(&lane.state);
            let step = s.step(Instant::now(), lane.interval);
            if matches!(step, Step::Stop) {
                s.queues.dispatching = false;
            }
            step
        };
        match step {
            Step::Grant(grant) => {
                let permit = Permit { lane: Some(lane.clone()), waited: Duration::ZERO };
                if let Err(permit) = grant.send(permit) {
                    permit.unused(); // The waiter went away between the check and the grant: nothing was sent.
                }
            }
            Step::Sleep(at) => {
                // A call's end can open the window earlier (an answer recorded before an unanswered call's grace).
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = lane.ended.notified() => {}
                }
            }
            Step::AwaitEnd => lane.ended.notified().await,
            Step::Stop => return,
        }
    }
}

#[cfg(test)]
mod tests;
