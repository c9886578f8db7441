//! The client-side rate limiter: one limiter per (AppId, Action), shared by every caller of one client.
//!
//! ZEGO publishes 20 calls/s per action without saying how it counts, so we assume the strictest reading — never
//! more than the limit in any one-second window — and space calls evenly (GCRA with a burst of one, from
//! `governor`) instead of letting a bucket's burst through on top of the steady rate. Each interval is widened by
//! 2 % so that network jitter between our clock and the server's never puts 21 calls in one server-side window.
//! Callers wait rather than fail; the total time spent waiting is reported.
//!
//! [`RateLimited`] is the decorator that puts a [`RateLimiter`] in front of any [`ZimApi`]: it waits for the
//! (AppId, Action) turn, reports the wait, then calls in. The HTTP client signs after the wait, so a long wait
//! never ages a signature.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::{Quota, RateLimiter as Gcra};

use super::api::ZimApi;
use super::client::CallObserver;
use super::error::ZimError;
use super::sign::Credentials;
use super::types::*;

/// Head-room applied to each interval (see the module docs).
const SPACING_MARGIN: f64 = 1.02;

type Keyed = governor::DefaultKeyedRateLimiter<(u32, Action)>;

/// Spaces calls per (AppId, Action).
pub struct RateLimiter {
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
        Self { limiter, waited_nanos: AtomicU64::new(0) }
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
