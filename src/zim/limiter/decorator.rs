//! [`RateLimited`]: a [`ZimApi`] whose every call first waits for its (AppId, Action) turn on a shared
//! [`RateLimiter`], and then tells the lane how the call ended.

use std::sync::Arc;

use super::{Permit, RateLimiter};
use crate::zim::api::{CallObserver, ZimApi, check_kickout, check_room_message};
use crate::zim::error::ZimError;
use crate::zim::sign::Credentials;
use crate::zim::types::*;

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

    async fn turn(&self, app_id: u32, action: Action) -> Permit {
        let permit = self.limiter.acquire(app_id, action).await;
        if let Some(o) = &self.observer {
            o.waited(action, permit.waited());
        }
        permit
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
        let permit = self.turn(credentials.app_id, Action::UserRegister).await;
        let result = self.inner.user_register(credentials, users).await;
        permit.finish(&result);
        result
    }

    async fn create_room(
        &self,
        credentials: &Credentials,
        request: &CreateRoomRequest,
    ) -> Result<RoomResponse, ZimError> {
        let permit = self.turn(credentials.app_id, Action::CreateRoom).await;
        let result = self.inner.create_room(credentials, request).await;
        permit.finish(&result);
        result
    }

    async fn destroy_room(
        &self,
        credentials: &Credentials,
        room_id: &str,
        from_user_id: Option<&str>,
    ) -> Result<RoomResponse, ZimError> {
        let permit = self.turn(credentials.app_id, Action::DestroyRoom).await;
        let result = self.inner.destroy_room(credentials, room_id, from_user_id).await;
        permit.finish(&result);
        result
    }

    async fn modify_room_attribute(
        &self,
        credentials: &Credentials,
        request: &ModifyRoomAttributeRequest,
    ) -> Result<ModifyRoomAttributeResponse, ZimError> {
        let permit = self.turn(credentials.app_id, Action::ModifyRoomAttribute).await;
        let result = self.inner.modify_room_attribute(credentials, request).await;
        permit.finish(&result);
        result
    }

    async fn query_room_attribute(
        &self,
        credentials: &Credentials,
        room_id: &str,
        from_user_id: &str,
    ) -> Result<QueryRoomAttributeResponse, ZimError> {
        let permit = self.turn(credentials.app_id, Action::QueryRoomAttribute).await;
        let result = self.inner.query_room_attribute(credentials, room_id, from_user_id).await;
        permit.finish(&result);
        result
    }

    async fn query_room_user_list(
        &self,
        credentials: &Credentials,
        room_id: &str,
        next_flag: &str,
        limit: u32,
    ) -> Result<QueryRoomUserListResponse, ZimError> {
        let permit = self.turn(credentials.app_id, Action::QueryRoomUserList).await;
        let result = self.inner.query_room_user_list(credentials, room_id, next_flag, limit).await;
        permit.finish(&result);
        result
    }

    async fn kickout_room_users(
        &self,
        credentials: &Credentials,
        room_id: &str,
        user_ids: &[String],
        custom_reason: Option<&str>,
        from_user_id: Option<&str>,
    ) -> Result<CommonResponse, ZimError> {
        // A request that breaks a documented limit is refused before it takes a turn.
        check_kickout(user_ids, custom_reason)?;
        let permit = self.turn(credentials.app_id, Action::KickoutRoomUser).await;
        let result =
            self.inner.kickout_room_users(credentials, room_id, user_ids, custom_reason, from_user_id).await;
        permit.finish(&result);
        result
    }

    async fn send_room_message(
        &self,
        credentials: &Credentials,
        request: &SendRoomMessageRequest,
    ) -> Result<SendRoomMessageResponse, ZimError> {
        check_room_message(request)?;
        let permit = self.turn(credentials.app_id, Action::SendRoomMessage).await;
        let result = self.inner.send_room_message(credentials, request).await;
        permit.finish(&result);
        result
    }
}
