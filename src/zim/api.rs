//! The ZIM operations the operator uses, as a trait.
//!
//! [`ZimApi`] is implemented by the HTTP client ([`super::client::HttpClient`]), by the rate-limiting decorator
//! ([`super::limiter::RateLimited`]) around any implementation, and by the simulator's in-memory backend
//! (`crate::sim::InMemoryZim`), which applies the simulator's room rules without HTTP so the reconcile core's
//! decisions can be unit-tested call by call. The reconcile core only ever sees this trait.

use std::future::Future;

use super::codes::{self, Class};
use super::error::ZimError;
use super::sign::Credentials;
use super::types::{
    CreateRoomRequest, ModifyRoomAttributeRequest, QueryRoomAttributeResponse, QueryRoomUserListResponse,
    RoomResponse, UserInfo, UserRegisterResponse,
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
    ) -> impl Future<Output = Result<super::types::ModifyRoomAttributeResponse, ZimError>> + Send;

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
