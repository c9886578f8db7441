//! The client-side rate limiter: one lane per (AppId, Action), shared by every caller of one client.
//!
//! ZEGO publishes 20 calls/s per action without saying how it counts, so we assume the strictest reading — never
//! more than the limit in any one-second window — and space calls evenly (a burst of one) instead of letting a
//! bucket's burst through on top of the steady rate.
//!
//! **Where the margin comes from.** Two things put calls closer together at the server than we granted them:
//! network jitter, and scheduling stalls on a busy machine (measured: calls granted 51 ms apart reached the server
//! bunched after a stall, and 5 of 2 000 were answered 660300005). So (1) each interval is widened by 2 %
//! ([`SPACING_MARGIN`]) for jitter, and (2) the interval is measured from the moment the granted caller actually
//! resumes to send, not from the moment it was granted: a caller that is scheduled late pushes the next grant back
//! by as much, so a stall can never bunch two sends. The cost is the wake-up latency per call (microseconds on
//! an idle machine), a fraction of a per cent of the rate.
//!
//! **Who goes first.** Waiting callers are served by [`Priority`] (a call a person is waiting for — a new room,
//! a spec change, a callback's re-check — before the periodic re-check of converged rooms), then round-robin
//! across tenants (namespaces), so one namespace's backlog delays another's next call by at most one slot per
//! busy tenant. The caller's tenant and priority come from the task-local [`CallTag`] (see [`tagged`]); untagged
//! calls share one tenant at interactive priority.
//!
//! [`RateLimited`] is the decorator that puts a [`RateLimiter`] in front of any [`ZimApi`]: it waits for the
//! (AppId, Action) turn, reports the wait, then calls in. The HTTP client signs after the wait, so a long wait
//! never ages a signature.
//!
//! (The `governor` crate spaced calls here before; it has no notion of fairness between waiters, priorities, or
//! spacing measured from the send, which is why the lanes are our own: a deadline and a queue per lane.)

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::api::{CallObserver, ZimApi};
use super::error::ZimError;
use super::sign::Credentials;
use super::types::*;
use crate::lock;

/// Head-room applied to each interval (see the module docs).
pub const SPACING_MARGIN: f64 = 1.02;

/// The calls per second one lane actually grants with a limit of `per_second` (the margin taken off).
pub fn granted_per_second(per_second: u32) -> f64 {
    f64::from(per_second) / SPACING_MARGIN
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

/// A grant: the waiter answers with the moment it resumed, from which the next interval is measured.
type Grant = oneshot::Sender<oneshot::Sender<Instant>>;

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

/// One (AppId, Action): its interval, the earliest next grant, and the waiters.
struct Lane {
    interval: Duration,
    queues: Mutex<Queues>,
}

/// The lanes, and when to reclaim idle ones.
#[derive(Default)]
struct Lanes {
    by_key: HashMap<(u32, Action), Arc<Lane>>,
    /// Reclaim idle lanes when a new lane makes this many (twice the count after the last reclaim, at least 64).
    sweep_at: usize,
}

impl Lanes {
    /// Drops the lanes nobody waits on and whose dispatcher has stopped. A dispatcher stops only once its lane
    /// has been idle for a whole interval, and a fresh lane grants at once, so a reclaimed lane loses nothing:
    /// apps that come and go leave no lane behind.
    fn reclaim_idle(&mut self) {
        self.by_key.retain(|_, lane| {
            let q = lock(&lane.queues);
            q.dispatching || q.len > 0
        });
        self.sweep_at = (self.by_key.len() * 2).max(64);
    }
}

/// Spaces calls per (AppId, Action), fairly (see the module docs).
pub struct RateLimiter {
    interval: Option<Duration>,
    lanes: Mutex<Lanes>,
    waited_nanos: AtomicU64,
}

impl RateLimiter {
    /// A limiter allowing `per_second` calls per (AppId, Action); `0` disables limiting.
    pub fn new(per_second: u32) -> Self {
        let interval =
            (per_second > 0).then(|| Duration::from_secs_f64(SPACING_MARGIN / f64::from(per_second)));
        Self { interval, lanes: Mutex::default(), waited_nanos: AtomicU64::new(0) }
    }

    /// Waits for this caller's turn (tagged by the task's [`CallTag`]) and returns how long it waited.
    pub async fn acquire(&self, app_id: u32, action: Action) -> Duration {
        let Some(interval) = self.interval else { return Duration::ZERO };
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
                .or_insert_with(|| Arc::new(Lane { interval, queues: Mutex::default() }))
                .clone();
            let mut q = lock(&lane.queues);
            q.waiting.entry(tag.priority).or_default().entry(tag.tenant).or_default().push_back(grant);
            q.len += 1;
            let spawn = !std::mem::replace(&mut q.dispatching, true);
            drop(q);
            (lane, spawn)
        };
        if spawn {
            tokio::spawn(dispatch(lane));
        }
        // The dispatcher never drops a live grant, and it runs while anyone waits.
        if let Ok(resumed) = granted.await {
            let _ = resumed.send(Instant::now());
        }
        let waited = start.elapsed();
        self.waited_nanos.fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
        waited
    }

    /// Total time all callers have spent waiting.
    pub fn total_waited(&self) -> Duration {
        Duration::from_nanos(self.waited_nanos.load(Ordering::Relaxed))
    }

    /// Callers now waiting on (app, action)'s lane.
    pub fn waiting(&self, app_id: u32, action: Action) -> usize {
        lock(&self.lanes).by_key.get(&(app_id, action)).map_or(0, |l| lock(&l.queues).len)
    }

    /// How many lanes are held (busy or idle but not reclaimed yet).
    pub fn lanes(&self) -> usize {
        lock(&self.lanes).by_key.len()
    }

    /// Reclaims the idle lanes now (also done as lanes are added).
    pub fn reclaim_idle(&self) {
        lock(&self.lanes).reclaim_idle();
    }
}

/// Grants a lane's waiters one at a time, each at least one interval after the previous grantee resumed; exits
/// when nobody waits (the next caller starts it again). A lane idle for longer than one interval grants at once.
async fn dispatch(lane: Arc<Lane>) {
    let mut next = Instant::now();
    loop {
        tokio::time::sleep_until(next).await;
        let grant = {
            let mut q = lock(&lane.queues);
            match q.pop() {
                Some(g) => g,
                None => {
                    q.dispatching = false;
                    return;
                }
            }
        };
        let (resumed_tx, resumed) = oneshot::channel();
        if grant.send(resumed_tx).is_err() {
            continue; // The waiter went away between the check and the grant: the slot is still free.
        }
        // Measured from the moment the grantee runs again (a late wake-up pushes the next grant back); a
        // grantee that vanished counts from now.
        let from = resumed.await.unwrap_or_else(|_| Instant::now());
        next = from + lane.interval;
    }
}

/// A [`ZimApi`] whose every call first waits for its (AppId, Action) turn on a shared [`RateLimiter`].
#[derive(Clone)]
pub struct RateLimited<Z> {
    inner: Z,
    limiter: Arc<RateLimiter>,
    observer: Option<Arc<dyn CallObserver>>,
}

impl<Z> RateLimited<Z> {
    /// Wraps `inner`; every clone shares `limiter`.
    pub fn wrap(inner: Z, limiter: Arc<RateLimiter>) -> Self {
        Self { inner, limiter, observer: None }
    }

    /// Reports each wait to `observer`.
    pub fn with_wait_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The wrapped implementation.
    pub fn inner(&self) -> &Z {
        &self.inner
    }

    /// Replaces the wrapped implementation, keeping the limiter.
    pub fn map_inner(self, f: impl FnOnce(Z) -> Z) -> Self {
        Self { inner: f(self.inner), limiter: self.limiter, observer: self.observer }
    }

    /// The shared limiter.
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    async fn turn(&self, app_id: u32, action: Action) {
        let waited = self.limiter.acquire(app_id, action).await;
        if let Some(o) = &self.observer {
            o.waited(action, waited);
        }
    }
}

impl<Z> std::fmt::Debug for RateLimited<Z>
where
    Z: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimited").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl<Z: ZimApi> ZimApi for RateLimited<Z> {
    async fn user_register(
        &self,
        credentials: &Credentials,
        users: &[UserInfo],
    ) -> Result<UserRegisterResponse, ZimError> {
        self.turn(credentials.app_id, Action::UserRegister).await;
        self.inner.user_register(credentials, users).await
    }

    async fn create_room(
        &self,
        credentials: &Credentials,
        request: &CreateRoomRequest,
    ) -> Result<RoomResponse, ZimError> {
        self.turn(credentials.app_id, Action::CreateRoom).await;
        self.inner.create_room(credentials, request).await
    }

    async fn destroy_room(
        &self,
        credentials: &Credentials,
        room_id: &str,
        from_user_id: Option<&str>,
    ) -> Result<RoomResponse, ZimError> {
        self.turn(credentials.app_id, Action::DestroyRoom).await;
        self.inner.destroy_room(credentials, room_id, from_user_id).await
    }

    async fn modify_room_attribute(
        &self,
        credentials: &Credentials,
        request: &ModifyRoomAttributeRequest,
    ) -> Result<ModifyRoomAttributeResponse, ZimError> {
        self.turn(credentials.app_id, Action::ModifyRoomAttribute).await;
        self.inner.modify_room_attribute(credentials, request).await
    }

    async fn query_room_attribute(
        &self,
        credentials: &Credentials,
        room_id: &str,
        from_user_id: &str,
    ) -> Result<QueryRoomAttributeResponse, ZimError> {
        self.turn(credentials.app_id, Action::QueryRoomAttribute).await;
        self.inner.query_room_attribute(credentials, room_id, from_user_id).await
    }

    async fn query_room_user_list(
        &self,
        credentials: &Credentials,
        room_id: &str,
        next_flag: &str,
        limit: u32,
    ) -> Result<QueryRoomUserListResponse, ZimError> {
        self.turn(credentials.app_id, Action::QueryRoomUserList).await;
        self.inner.query_room_user_list(credentials, room_id, next_flag, limit).await
    }
}

#[cfg(test)]
mod tests;
