//! A dry run of ZIM (`zim-operator plan`): a [`ZimApi`] decorator that sends the reads and records the writes.
//!
//! Reads go to the inner implementation: QueryRoomUserList (and what is built on it: the existence probe, the
//! member list) and QueryRoomAttribute. UserRegister goes too: it changes no room, and QueryRoomAttribute needs
//! the operator's user registered to answer at all (ZIM answers "already registered" from then on).
//!
//! The writes — CreateRoom, ModifyRoomAttribute, DestroyRoom, KickoutRoomUser, SendRoomMessage — are never sent.
//! Each is recorded ([`Write`]), under the key of the task that made it ([`DryRun::scoped`]), and answered as ZIM
//! would answer it: CreateRoom of a room that exists (asked of ZIM for real, by the existence probe) is 660300014
//! "room already exists", so the reconcile core goes on as it does for an adoption and reads the attributes;
//! CreateRoom of a missing room succeeds; ModifyRoomAttribute succeeds with no key refused; the others succeed.
//! The request IDs of these answers are empty: no request was made.

use std::sync::Mutex;

use super::api::ZimApi;
use super::codes;
use super::error::ZimError;
use super::sign::Credentials;
use super::types::{
    Action, AttributeAction, CommonResponse, CreateRoomRequest, Envelope, ModifyRoomAttributeRequest,
    ModifyRoomAttributeResponse, QueryRoomAttributeResponse, QueryRoomUserListResponse, RoomProbe,
    RoomResponse, SendRoomMessageRequest, SendRoomMessageResponse, UserInfo, UserRegisterResponse,
};
use crate::lock;

/// The message of the answers made up for writes that were not sent.
const NOT_SENT: &str = "dry run: not sent";

tokio::task_local! {
    static KEY: usize;
}

/// A write the dry run did not send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// CreateRoom. `exists`: the room exists, so it was answered "room already exists".
    CreateRoom {
        /// The room.
        room_id: String,
        /// Whether the room exists (ZIM would refuse to create it).
        exists: bool,
        /// The keys of the attributes the request sets, in request order.
        attribute_keys: Vec<String>,
    },
    /// ModifyRoomAttribute.
    ModifyRoomAttribute {
        /// The room.
        room_id: String,
        /// The keys set, in request order.
        set: Vec<String>,
        /// The keys deleted, in request order.
        delete: Vec<String>,
    },
    /// DestroyRoom.
    DestroyRoom {
        /// The room.
        room_id: String,
    },
    /// KickoutRoomUser.
    KickoutRoomUsers {
        /// The room.
        room_id: String,
        /// How many users.
        users: usize,
    },
    /// SendRoomMessage.
    SendRoomMessage {
        /// The room.
        room_id: String,
    },
}

/// Reads through to `Z`; writes recorded and answered, never sent (see the module's documentation).
pub struct DryRun<Z> {
    inner: Z,
    writes: Mutex<Vec<(usize, Write)>>,
}

impl<Z> DryRun<Z> {
    /// A dry run over `inner`.
    pub fn new(inner: Z) -> Self {
        Self { inner, writes: Mutex::default() }
    }

    /// The implementation the reads go to.
    pub fn inner(&self) -> &Z {
        &self.inner
    }

    /// Removes and returns the writes recorded under `key`, in the order they were made.
    pub fn take(&self, key: usize) -> Vec<Write> {
        let mut writes = lock(&self.writes);
        let (taken, kept): (Vec<_>, Vec<_>) = writes.drain(..).partition(|(k, _)| *k == key);
        *writes = kept;
        taken.into_iter().map(|(_, w)| w).collect()
    }

    /// How many writes are recorded (under every key).
    pub fn recorded(&self) -> usize {
        lock(&self.writes).len()
    }

    fn record(&self, write: Write) {
        let key = KEY.try_with(|k| *k).unwrap_or(usize::MAX);
        lock(&self.writes).push((key, write));
    }
}

/// Runs `f` with the writes it makes through any [`DryRun`] recorded under `key` (writes made outside any scope go
/// under `usize::MAX`).
pub async fn scoped<F: std::future::Future>(key: usize, f: F) -> F::Output {
    KEY.scope(key, f).await
}

fn envelope() -> Envelope {
    Envelope { code: codes::OK, message: NOT_SENT.into(), request_id: String::new() }
}

impl<Z: ZimApi> ZimApi for DryRun<Z> {
    async fn user_register(
        &self,
        credentials: &Credentials,
        users: &[UserInfo],
    ) -> Result<UserRegisterResponse, ZimError> {
        self.inner.user_register(credentials, users).await
    }

    async fn create_room(
        &self,
        credentials: &Credentials,
        request: &CreateRoomRequest,
    ) -> Result<RoomResponse, ZimError> {
        let exists =
            matches!(self.inner.probe_room(credentials, &request.room_id).await?, RoomProbe::Exists { .. });
        self.record(Write::CreateRoom {
            room_id: request.room_id.clone(),
            exists,
            attribute_keys: request.attributes.iter().map(|a| a.key.clone()).collect(),
        });
        if exists {
            return Err(ZimError::Api {
                action: Action::CreateRoom,
                code: codes::ROOM_EXISTS,
                message: format!("room already exists ({NOT_SENT})"),
                request_id: String::new(),
            });
        }
        Ok(RoomResponse { envelope: envelope(), ..Default::default() })
    }

    async fn destroy_room(
        &self,
        _credentials: &Credentials,
        room_id: &str,
        _from_user_id: Option<&str>,
    ) -> Result<RoomResponse, ZimError> {
        self.record(Write::DestroyRoom { room_id: room_id.to_owned() });
        Ok(RoomResponse { envelope: envelope(), ..Default::default() })
    }

    async fn modify_room_attribute(
        &self,
        _credentials: &Credentials,
        request: &ModifyRoomAttributeRequest,
    ) -> Result<ModifyRoomAttributeResponse, ZimError> {
        let keys = |action: AttributeAction| -> Vec<String> {
            request.attributes.iter().filter(|a| a.action == action).map(|a| a.key.clone()).collect()
        };
        self.record(Write::ModifyRoomAttribute {
            room_id: request.room_id.clone(),
            set: keys(AttributeAction::Set),
            delete: keys(AttributeAction::Delete),
        });
        Ok(ModifyRoomAttributeResponse { envelope: envelope(), ..Default::default() })
    }

    async fn query_room_attribute(
        &self,
        credentials: &Credentials,
        room_id: &str,
        from_user_id: &str,
    ) -> Result<QueryRoomAttributeResponse, ZimError> {
        self.inner.query_room_attribute(credentials, room_id, from_user_id).await
    }

    async fn query_room_user_list(
        &self,
        credentials: &Credentials,
        room_id: &str,
        next_flag: &str,
        limit: u32,
    ) -> Result<QueryRoomUserListResponse, ZimError> {
        self.inner.query_room_user_list(credentials, room_id, next_flag, limit).await
    }

    async fn kickout_room_users(
        &self,
        _credentials: &Credentials,
        room_id: &str,
        user_ids: &[String],
        custom_reason: Option<&str>,
        _from_user_id: Option<&str>,
    ) -> Result<CommonResponse, ZimError> {
        super::api::check_kickout(user_ids, custom_reason)?;
        self.record(Write::KickoutRoomUsers { room_id: room_id.to_owned(), users: user_ids.len() });
        Ok(CommonResponse { envelope: envelope() })
    }

    async fn send_room_message(
        &self,
        _credentials: &Credentials,
        request: &SendRoomMessageRequest,
    ) -> Result<SendRoomMessageResponse, ZimError> {
        super::api::check_room_message(request)?;
        self.record(Write::SendRoomMessage { room_id: request.room_id.clone() });
        Ok(SendRoomMessageResponse { envelope: envelope(), ..Default::default() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{SimConfig, Simulator};
    use crate::testing::{APP, SECRET};
    use crate::zim::ServerSecret;
    use crate::zim::types::{ModifyRoomAttribute, SendRoomMessageRequest};

    fn setup() -> (Simulator, DryRun<crate::sim::InMemoryZim>, Credentials) {
        let sim =
            Simulator::new(SimConfig { apps: vec![(APP, ServerSecret::new(SECRET))], ..Default::default() });
        let dry = DryRun::new(sim.in_memory());
        (sim, dry, Credentials::new(APP, SECRET))
    }

    fn create(room_id: &str) -> CreateRoomRequest {
        CreateRoomRequest {
            from_user_id: "op".into(),
            room_id: room_id.into(),
            room_name: None,
            destroy_delay_time: None,
            attributes: Vec::new(),
        }
    }

    /// CreateRoom of a missing room succeeds without creating it; of an existing room it is "exists"; both are
    /// recorded under the caller's key, and only the probes reach the simulator.
    #[tokio::test]
    async fn creations_are_answered_and_recorded_not_sent() {
        let (sim, dry, creds) = setup();
        sim.seed_room(APP, "there", "", 60, &[]);
        let made = scoped(1, dry.create_room(&creds, &create("new"))).await;
        assert_eq!(made.unwrap().envelope.request_id, "");
        assert!(sim.room(APP, "new").is_none(), "not created");
        let refused = scoped(2, dry.create_room(&creds, &create("there"))).await;
        assert_eq!(refused.unwrap_err().code(), Some(codes::ROOM_EXISTS));
        assert_eq!(
            dry.take(1),
            [Write::CreateRoom { room_id: "new".into(), exists: false, attribute_keys: vec![] }]
        );
        assert_eq!(dry.take(1), []);
        assert_eq!(dry.take(2).len(), 1);
        let actions: Vec<String> = sim.log().into_iter().map(|e| e.action).collect();
        assert_eq!(actions, ["QueryRoomUserList", "QueryRoomUserList"]);
    }

    /// ModifyRoomAttribute, DestroyRoom, KickoutRoomUser and SendRoomMessage are answered with success and never
    /// reach the simulator; the keys set and deleted are recorded apart.
    #[tokio::test]
    async fn other_writes_are_recorded_not_sent() {
        let (sim, dry, creds) = setup();
        sim.seed_room(APP, "r", "", 60, &[("k".into(), "v".into())]);
        let item = |action, key: &str| ModifyRoomAttribute {
            action,
            key: key.into(),
            value: String::new(),
            auto_delete: 0,
            stop_on_error: 0,
        };
        let request = ModifyRoomAttributeRequest {
            from_user_id: "op".into(),
            room_id: "r".into(),
            attributes: vec![item(AttributeAction::Set, "a"), item(AttributeAction::Delete, "k")],
        };
        let resp = dry.modify_room_attribute(&creds, &request).await.unwrap();
        assert!(resp.err_key_list.is_empty());
        dry.destroy_room(&creds, "r", None).await.unwrap();
        dry.kickout_room_users(&creds, "r", &["u".into()], None, None).await.unwrap();
        dry.send_room_message(&creds, &SendRoomMessageRequest::text("op", "r", "hi")).await.unwrap();
        assert_eq!(dry.recorded(), 4);
        let writes = dry.take(usize::MAX);
        assert_eq!(
            writes[0],
            Write::ModifyRoomAttribute {
                room_id: "r".into(),
                set: vec!["a".into()],
                delete: vec!["k".into()]
            }
        );
        assert!(sim.log().is_empty(), "nothing sent: {:?}", sim.log());
        assert!(sim.room(APP, "r").is_some(), "not destroyed");
    }
}
