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
use super::limits::{
    MAX_CUSTOM_REASON_BYTES, MAX_EXTENDED_DATA_BYTES, MAX_KICKOUT_USERS, MAX_LISTED_MEMBERS,
    MAX_ROOM_MESSAGE_BYTES, MAX_ROOM_USER_PAGE,
};
use super::sign::Credentials;
use super::types::{
    Action, CommonResponse, CreateRoomRequest, HasEnvelope, ModifyRoomAttributeRequest,
    ModifyRoomAttributeResponse, QueryRoomAttributeRequest, QueryRoomAttributeResponse,
    QueryRoomUserListResponse, RoomProbe, RoomResponse, SendRoomMessageRequest, SendRoomMessageResponse,
    UserInfo, UserRegisterRequest, UserRegisterResponse,
};

/// The most QueryRoomUserList pages [`ZimApi::room_member_ids`] reads: enough for [`MAX_LISTED_MEMBERS`] in full
/// pages of [`MAX_ROOM_USER_PAGE`], whatever page size the server actually answers.
pub const MAX_MEMBER_PAGES: usize = MAX_LISTED_MEMBERS.div_ceil(MAX_ROOM_USER_PAGE as usize);

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

    /// Removes users from a room (KickoutRoomUser, a GET with `UserId[]` repeated). ZIM then announces a
    /// `room_exit` callback with `exit_type` Kickout.
    ///
    /// Refused without a call ([`ZimError::Refused`]) when `user_ids` is empty or holds more than
    /// [`MAX_KICKOUT_USERS`], or `custom_reason` is over [`MAX_CUSTOM_REASON_BYTES`]. ZIM's own codes: 660000011
    /// too many users, 660300001 no such room ([`Class::NotFound`]), 660300002 a user not in the room (class
    /// invalid params: list the room again and kick who is still there; whether ZIM removes the others in that
    /// case is not documented).
    fn kickout_room_users(
        &self,
        credentials: &Credentials,
        room_id: &str,
        user_ids: &[String],
        custom_reason: Option<&str>,
        from_user_id: Option<&str>,
    ) -> impl Future<Output = Result<CommonResponse, ZimError>> + Send;

    /// Sends a message to everyone online in a room (SendRoomMessage, POST; 10 calls/s per app). Refused without
    /// a call when the text is empty or over [`MAX_ROOM_MESSAGE_BYTES`], or its extended data over
    /// [`MAX_EXTENDED_DATA_BYTES`]. 660300001: no such room.
    fn send_room_message(
        &self,
        credentials: &Credentials,
        request: &SendRoomMessageRequest,
    ) -> impl Future<Output = Result<SendRoomMessageResponse, ZimError>> + Send;

    /// Whether a room exists and how many users it has, by one QueryRoomUserList with `Limit` 1: `0` is
    /// [`RoomProbe::Exists`] with the answer's `Count`, `660300008` (an empty room in its delayed-destruction
    /// period) is `Exists { members: 0 }`, `660300001` is [`RoomProbe::Missing`]; anything else is the error.
    fn probe_room(
        &self,
        credentials: &Credentials,
        room_id: &str,
    ) -> impl Future<Output = Result<RoomProbe, ZimError>> + Send {
        async move { probe(self.query_room_user_list(credentials, room_id, "", 1).await) }
    }

    /// Whether a room exists, by [`ZimApi::probe_room`].
    fn room_exists(
        &self,
        credentials: &Credentials,
        room_id: &str,
    ) -> impl Future<Output = Result<bool, ZimError>> + Send {
        async move { Ok(matches!(self.probe_room(credentials, room_id).await?, RoomProbe::Exists { .. })) }
    }

    /// The IDs of a room's users, oldest entry first, following QueryRoomUserList's pages (`Limit` 500, the
    /// documented maximum, kept the same on every page as the page asks; `NextFlag` until it comes back empty or
    /// `"0"`).
    ///
    /// Bounded: at most [`MAX_LISTED_MEMBERS`] IDs from at most [`MAX_MEMBER_PAGES`] pages; a larger room is
    /// listed in part, so act on those and list again. Users who enter or leave while the pages are read may be
    /// missed or seen twice (each ID is returned once). An empty room (660300008, on any page) ends the list;
    /// 660300001 is the error with class [`Class::NotFound`].
    fn room_member_ids(
        &self,
        credentials: &Credentials,
        room_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, ZimError>> + Send {
        async move {
            let mut ids: Vec<String> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            let mut next_flag = String::new();
            for _ in 0..MAX_MEMBER_PAGES {
                let page = match self
                    .query_room_user_list(credentials, room_id, &next_flag, MAX_ROOM_USER_PAGE)
                    .await
                {
                    Ok(page) => page,
                    Err(e) if e.code() == Some(codes::ROOM_EMPTY) => break,
                    Err(e) => return Err(e),
                };
                for user in page.user_list {
                    if ids.len() >= MAX_LISTED_MEMBERS {
                        return Ok(ids);
                    }
                    if !user.user_id.is_empty() && seen.insert(user.user_id.clone()) {
                        ids.push(user.user_id);
                    }
                }
                // Done at "0" (the parameter's text and example) or empty (the response field's text); a flag
                // that does not move would loop.
                if is_last_page(&page.next_flag) || page.next_flag == next_flag {
                    break;
                }
                next_flag = page.next_flag;
            }
            Ok(ids)
        }
    }
}

/// Whether a QueryRoomUserList `NextFlag` says there is no further page: `"0"` or empty.
pub fn is_last_page(next_flag: &str) -> bool {
    matches!(next_flag.trim(), "" | "0")
}

/// Checks a KickoutRoomUser request against the documented limits before anything is sent.
pub fn check_kickout(user_ids: &[String], custom_reason: Option<&str>) -> Result<(), ZimError> {
    let refuse = |reason: String| Err(ZimError::refused(Action::KickoutRoomUser, &reason));
    if user_ids.is_empty() {
        return refuse("no user to remove".into());
    }
    if user_ids.len() > MAX_KICKOUT_USERS {
        return refuse(format!("{} users; at most {MAX_KICKOUT_USERS} per call", user_ids.len()));
    }
    if let Some(reason) = custom_reason.filter(|r| r.len() > MAX_CUSTOM_REASON_BYTES) {
        return refuse(format!("CustomReason is {} bytes; at most {MAX_CUSTOM_REASON_BYTES}", reason.len()));
    }
    Ok(())
}

/// Checks a SendRoomMessage request against the documented sizes before anything is sent.
pub fn check_room_message(request: &SendRoomMessageRequest) -> Result<(), ZimError> {
    let refuse = |reason: String| Err(ZimError::refused(Action::SendRoomMessage, &reason));
    let body = &request.message_body;
    if body.message.is_empty() {
        return refuse("the message is empty".into());
    }
    if body.message.len() > MAX_ROOM_MESSAGE_BYTES {
        return refuse(format!(
            "the message is {} bytes; at most {MAX_ROOM_MESSAGE_BYTES}",
            body.message.len()
        ));
    }
    if let Some(extended) = body.extended_data.as_ref().filter(|e| e.len() > MAX_EXTENDED_DATA_BYTES) {
        return refuse(format!(
            "ExtendedData is {} bytes; at most {MAX_EXTENDED_DATA_BYTES}",
            extended.len()
        ));
    }
    Ok(())
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

    #[instrument(skip_all, fields(app_id = credentials.app_id, room_id = %room_id, users = user_ids.len()))]
    async fn kickout_room_users(
        &self,
        credentials: &Credentials,
        room_id: &str,
        user_ids: &[String],
        custom_reason: Option<&str>,
        from_user_id: Option<&str>,
    ) -> Result<CommonResponse, ZimError> {
        check_kickout(user_ids, custom_reason)?;
        let mut query = vec![("RoomId", room_id.to_owned())];
        query.extend(user_ids.iter().map(|u| ("UserId[]", u.clone())));
        if let Some(reason) = custom_reason {
            query.push(("CustomReason", reason.to_owned()));
        }
        if let Some(from) = from_user_id {
            query.push(("FromUserId", from.to_owned()));
        }
        self.call(credentials, Action::KickoutRoomUser, &query, None::<&()>).await
    }

    #[instrument(skip_all, fields(app_id = credentials.app_id, room_id = %request.room_id))]
    async fn send_room_message(
        &self,
        credentials: &Credentials,
        request: &SendRoomMessageRequest,
    ) -> Result<SendRoomMessageResponse, ZimError> {
        check_room_message(request)?;
        self.call(credentials, Action::SendRoomMessage, &[], Some(request)).await
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

/// Reads a QueryRoomUserList outcome as a [`RoomProbe`] (see [`ZimApi::probe_room`]). A negative `Count`
/// reads as 0.
pub fn probe(result: Result<QueryRoomUserListResponse, ZimError>) -> Result<RoomProbe, ZimError> {
    match result {
        Ok(page) => Ok(RoomProbe::Exists { members: u64::try_from(page.count).unwrap_or(0) }),
        Err(e) if e.code() == Some(codes::ROOM_EMPTY) => Ok(RoomProbe::Exists { members: 0 }),
        Err(e) if e.class() == Class::NotFound => Ok(RoomProbe::Missing),
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

#[cfg(test)]
mod tests;
