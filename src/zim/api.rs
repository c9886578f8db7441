//! The ZIM operations the operator uses, as a trait.
//!
//! [`ZimApi`] is implemented by the HTTP client ([`super::client::HttpClient`]), by the rate-limiting decorator
//! ([`super::limiter::RateLimited`]) around any implementation, and by the simulator's in-memory backend
//! (`crate::sim::InMemoryZim`), which applies the simulator's room rules without HTTP so the reconcile core's
//! decisions can be unit-tested call by call. The reconcile core only ever sees this trait.

use std::time::Duration;

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::instrument;

use super::codes::{self, Class};
use super::error::ZimError;
use super::sign::Credentials;
use super::types::{
    Action, CreateRoomRequest, HasEnvelope, ModifyRoomAttributeRequest, ModifyRoomAttributeResponse,
    QueryRoomAttributeRequest, QueryRoomAttributeResponse, QueryRoomUserListResponse, RoomResponse, UserInfo,
    UserRegisterRequest, UserRegisterResponse,
};

/// The ZIM room operations, with ZEGO's documented request and response types.
///
/// Every method returns `Err(ZimError::Api { .. })` when ZIM answers a non-zero `Code`, except where noted.
pub trait ZimApi: Send + Sync {
    /// Registers users. A user that is already registered (660700002) counts as success: `Ok` is returned when
    /// every user is registered now; users that failed otherwise are in the response's `error_list`.
    fn user_register(
        &self,
        credentials: &Credentials,
        users: &[UserInfo],
    ) -> impl Future<Output = Result<UserRegisterResponse, ZimError>> + Send;

    /// Creates a room. "Room already exists" comes back as `Err` with class [`Class::Exists`].
    fn create_room(
        &self,
        credentials: &Credentials,
        request: &CreateRoomRequest,
    ) -> impl Future<Output = Result<RoomResponse, ZimError>> + Send;

    /// Destroys a room. "No such room" comes back as `Err` with class [`Class::NotFound`].
    fn destroy_room(
        &self,
        credentials: &Credentials,
        room_id: &str,
        from_user_id: Option<&str>,
    ) -> impl Future<Output = Result<RoomResponse, ZimError>> + Send;

    /// Sets and deletes room attributes. The call can partly succeed: check `err_key_list`.
    fn modify_room_attribute(
        &self,
        credentials: &Credentials,
        request: &ModifyRoomAttributeRequest,
    ) -> impl Future<Output = Result<ModifyRoomAttributeResponse, ZimError>> + Send;

    /// Reads a room's attributes.
    fn query_room_attribute(
        &self,
        credentials: &Credentials,
        room_id: &str,
        from_user_id: &str,
    ) -> impl Future<Output = Result<QueryRoomAttributeResponse, ZimError>> + Send;

    /// Lists one page of a room's users. 660300008 (empty room in delayed destruction) is `Err` with class
    /// [`Class::Exists`]; 660300001 is [`Class::NotFound`].
    fn query_room_user_list(
        &self,
        credentials: &Credentials,
        room_id: &str,
        next_flag: &str,
        limit: u32,
    ) -> impl Future<Output = Result<QueryRoomUserListResponse, ZimError>> + Send;

    /// Whether a room exists, by QueryRoomUserList: `0` and `660300008` mean yes, `660300001` means no.
    fn room_exists(
        &self,
        credentials: &Credentials,
        room_id: &str,
    ) -> impl Future<Output = Result<bool, ZimError>> + Send {
        async move { existence(self.query_room_user_list(credentials, room_id, "", 1).await) }
    }
}

/// How a request reaches a ZIM implementation: one call of `action` with the query pairs of a GET and the JSON
/// body of a POST. The HTTP client signs and sends it; the in-memory backend hands it to the simulator's rules.
pub trait Transport: Send + Sync {
    /// Makes one call and decodes its answer (a non-zero `Code` is [`ZimError::Api`]).
    fn call<B, R>(
        &self,
        credentials: &Credentials,
        action: Action,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> impl Future<Output = Result<R, ZimError>> + Send
    where
        B: Serialize + Sync + ?Sized,
        R: DeserializeOwned + HasEnvelope + Send;
}

/// Every [`Transport`] is a [`ZimApi`]: each operation is one request, built here once — the action, the query
/// pairs of a GET, the JSON body of a POST — so the HTTP client and the simulator's in-memory backend send the same.
impl<T: Transport> ZimApi for T {
    #[instrument(skip_all, fields(app_id = credentials.app_id, users = users.len()))]
    async fn user_register(
        &self,
        credentials: &Credentials,
        users: &[UserInfo],
    ) -> Result<UserRegisterResponse, ZimError> {
        let body = UserRegisterRequest { user_info: users.to_vec() };
        let result: Result<UserRegisterResponse, ZimError> =
            self.call(credentials, Action::UserRegister, &[], Some(&body)).await;
        registered(result)
    }

    #[instrument(skip_all, fields(app_id = credentials.app_id, room_id = %request.room_id))]
    async fn create_room(
        &self,
        credentials: &Credentials,
        request: &CreateRoomRequest,
    ) -> Result<RoomResponse, ZimError> {
        self.call(credentials, Action::CreateRoom, &[], Some(request)).await
    }

    #[instrument(skip_all, fields(app_id = credentials.app_id, room_id = %room_id))]
    async fn destroy_room(
        &self,
        credentials: &Credentials,
        room_id: &str,
        from_user_id: Option<&str>,
    ) -> Result<RoomResponse, ZimError> {
        let mut query = vec![("RoomId", room_id.to_owned())];
        if let Some(from) = from_user_id {
            query.push(("FromUserId", from.to_owned()));
        }
        self.call(credentials, Action::DestroyRoom, &query, None::<&()>).await
    }

    #[instrument(skip_all, fields(app_id = credentials.app_id, room_id = %request.room_id, changes = request.attributes.len()))]
    async fn modify_room_attribute(
        &self,
        credentials: &Credentials,
        request: &ModifyRoomAttributeRequest,
    ) -> Result<ModifyRoomAttributeResponse, ZimError> {
        self.call(credentials, Action::ModifyRoomAttribute, &[], Some(request)).await
    }

    #[instrument(skip_all, fields(app_id = credentials.app_id, room_id = %room_id))]
    async fn query_room_attribute(
        &self,
        credentials: &Credentials,
        room_id: &str,
        from_user_id: &str,
    ) -> Result<QueryRoomAttributeResponse, ZimError> {
        let body =
            QueryRoomAttributeRequest { from_user_id: from_user_id.to_owned(), room_id: room_id.to_owned() };
        self.call(credentials, Action::QueryRoomAttribute, &[], Some(&body)).await
    }

    #[instrument(skip_all, fields(app_id = credentials.app_id, room_id = %room_id))]
    async fn query_room_user_list(
        &self,
        credentials: &Credentials,
        room_id: &str,
        next_flag: &str,
        limit: u32,
    ) -> Result<QueryRoomUserListResponse, ZimError> {
        let query = [
            ("RoomId", room_id.to_owned()),
            ("Mode", "0".to_owned()),
            ("NextFlag", next_flag.to_owned()),
            ("Limit", limit.min(500).to_string()),
        ];
        self.call(credentials, Action::QueryRoomUserList, &query, None::<&()>).await
    }
}

/// Reads a UserRegister outcome: a user that is already registered (660700002) counts as registered, whether
/// some users (`ErrorList`) or all of them (the call's code) already existed.
pub fn registered(result: Result<UserRegisterResponse, ZimError>) -> Result<UserRegisterResponse, ZimError> {
    match result {
        Ok(mut resp) => {
            resp.error_list.retain(|e| e.sub_code != codes::USER_EXISTS);
            Ok(resp)
        }
        Err(ZimError::Api { code: codes::USER_EXISTS, message, request_id, .. }) => {
            Ok(UserRegisterResponse {
                envelope: super::types::Envelope { code: codes::USER_EXISTS, message, request_id },
                error_list: Vec::new(),
            })
        }
        Err(e) => Err(e),
    }
}

/// Reads a QueryRoomUserList outcome as an existence answer.
pub fn existence<T>(result: Result<T, ZimError>) -> Result<bool, ZimError> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some(codes::ROOM_EMPTY) => Ok(true),
        Err(e) if e.class() == Class::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Sees every call's outcome (the operator's metrics implement it).
pub trait CallObserver: Send + Sync {
    /// One call finished. `result` is the code, or the failure kind (`timeout`, `transport`, `http_503`, …).
    fn observe(&self, action: Action, result: &str, latency: Duration);
    /// One call waited `wait` for the rate limiter before it was sent.
    fn waited(&self, action: Action, wait: Duration);
}
