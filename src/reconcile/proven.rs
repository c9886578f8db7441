//! Which credentials are proven: a (AppId, server secret) pair whose signed request ZIM has accepted.
//!
//! A Secret proves nothing by itself: anyone who may write a Secret can claim any AppId. ZIM checks a request's
//! signature before anything else, so an answer with a ZIM code that is not an authentication failure (success,
//! "room not found", "already exists", throttled, …) proves that the secret is that app's. Transport failures
//! (no ZIM answer) and authentication codes prove nothing. What is proven decides:
//!
//! - whether an object that does not hold a room yet counts as a claimant of it (a junk Secret naming another
//!   team's AppId blocks nobody), see `controller/claims.rs`;
//! - whether a Secret's `callbackSecret` may authenticate callbacks for its AppId.
//!
//! The memory is per process (a restart proves again at the first calls) and bounded: an entry not proven again
//! for [`PROOF_MEMORY`] goes at the next [`Proven::sweep`]. The controller keeps entries for at least three resync
//! periods ([`Proven::sweep_older_than`]): a Secret whose only rooms are probed once a period is proven again by
//! those probes before its proof could lapse (its callbacks would be refused meanwhile).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::lock;
use crate::zim::types::{
    CommonResponse, CreateRoomRequest, ModifyRoomAttributeRequest, ModifyRoomAttributeResponse,
    QueryRoomAttributeResponse, QueryRoomUserListResponse, RoomResponse, SendRoomMessageRequest,
    SendRoomMessageResponse, UserInfo, UserRegisterResponse,
};
use crate::zim::{Class, Credentials, Terminal, ZimApi, ZimError};

/// How long an entry is kept without a new proof.
pub const PROOF_MEMORY: Duration = Duration::from_secs(3600);

/// The proven (AppId, secret) pairs; secrets are kept as keyed hashes (the key is this process's own), never as
/// text.
#[derive(Default)]
pub struct Proven {
    hasher: RandomState,
    seen: Mutex<HashMap<(u32, u64), Instant>>,
}

impl Proven {
    fn key(&self, credentials: &Credentials) -> (u32, u64) {
        (credentials.app_id, self.hasher.hash_one(credentials.secret.expose()))
    }

    /// Records what the answer to a request signed with `credentials` proves.
    pub fn observe<T>(&self, credentials: &Credentials, result: &Result<T, ZimError>) {
        let proves = match result {
            Ok(_) => true,
            Err(e) => e.code().is_some() && e.class() != Class::Terminal(Terminal::Auth),
        };
        if proves {
            lock(&self.seen).insert(self.key(credentials), Instant::now());
        }
    }

    /// Whether ZIM has accepted a request signed with `credentials` (within [`PROOF_MEMORY`]).
    pub fn is_proven(&self, credentials: &Credentials) -> bool {
        lock(&self.seen).contains_key(&self.key(credentials))
    }

    /// Whether some proven secret is `app_id`'s, among `candidates` (the server secrets of the Secrets that claim
    /// the app).
    pub fn any_proven<'a>(&self, mut candidates: impl Iterator<Item = &'a Credentials>) -> bool {
        candidates.any(|c| self.is_proven(c))
    }

    /// Forgets the pairs not proven again within [`PROOF_MEMORY`]; returns how many are kept.
    pub fn sweep(&self) -> usize {
        self.sweep_older_than(PROOF_MEMORY)
    }

    /// Forgets the pairs not proven again within `memory`; returns how many are kept.
    pub fn sweep_older_than(&self, memory: Duration) -> usize {
        let now = Instant::now();
        let mut seen = lock(&self.seen);
        seen.retain(|_, at| now.duration_since(*at) < memory);
        seen.len()
    }
}

/// A [`ZimApi`] that records in [`Proven`] what each answer proves (the reconciler's calls go through it).
pub struct Proving<Z> {
    inner: Z,
    proven: Proven,
}

impl<Z> Proving<Z> {
    /// `inner`, observed.
    pub fn new(inner: Z) -> Self {
        Self { inner, proven: Proven::default() }
    }

    /// The observed client.
    pub fn inner(&self) -> &Z {
        &self.inner
    }

    /// What the answers so far prove.
    pub fn proven(&self) -> &Proven {
        &self.proven
    }

    fn seen<T>(&self, credentials: &Credentials, result: Result<T, ZimError>) -> Result<T, ZimError> {
        self.proven.observe(credentials, &result);
        result
    }
}

impl<Z: ZimApi> ZimApi for Proving<Z> {
    async fn user_register(
        &self,
        credentials: &Credentials,
        users: &[UserInfo],
    ) -> Result<UserRegisterResponse, ZimError> {
        self.seen(credentials, self.inner.user_register(credentials, users).await)
    }

    async fn create_room(
        &self,
        credentials: &Credentials,
        request: &CreateRoomRequest,
    ) -> Result<RoomResponse, ZimError> {
        self.seen(credentials, self.inner.create_room(credentials, request).await)
    }

    async fn destroy_room(
        &self,
        credentials: &Credentials,
        room_id: &str,
        from_user_id: Option<&str>,
    ) -> Result<RoomResponse, ZimError> {
        self.seen(credentials, self.inner.destroy_room(credentials, room_id, from_user_id).await)
    }

    async fn modify_room_attribute(
        &self,
        credentials: &Credentials,
        request: &ModifyRoomAttributeRequest,
    ) -> Result<ModifyRoomAttributeResponse, ZimError> {
        self.seen(credentials, self.inner.modify_room_attribute(credentials, request).await)
    }

    async fn query_room_attribute(
        &self,
        credentials: &Credentials,
        room_id: &str,
        from_user_id: &str,
    ) -> Result<QueryRoomAttributeResponse, ZimError> {
        self.seen(credentials, self.inner.query_room_attribute(credentials, room_id, from_user_id).await)
    }

    async fn query_room_user_list(
        &self,
        credentials: &Credentials,
        room_id: &str,
        next_flag: &str,
        limit: u32,
    ) -> Result<QueryRoomUserListResponse, ZimError> {
        self.seen(credentials, self.inner.query_room_user_list(credentials, room_id, next_flag, limit).await)
    }

    async fn kickout_room_users(
        &self,
        credentials: &Credentials,
        room_id: &str,
        user_ids: &[String],
        custom_reason: Option<&str>,
        from_user_id: Option<&str>,
    ) -> Result<CommonResponse, ZimError> {
        let result =
            self.inner.kickout_room_users(credentials, room_id, user_ids, custom_reason, from_user_id).await;
        self.seen(credentials, result)
    }

    async fn send_room_message(
        &self,
        credentials: &Credentials,
        request: &SendRoomMessageRequest,
    ) -> Result<SendRoomMessageResponse, ZimError> {
        self.seen(credentials, self.inner.send_room_message(credentials, request).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zim::Action;

    fn answer(code: i64) -> Result<(), ZimError> {
        Err(ZimError::api(Action::QueryRoomUserList, code, "m", "r"))
    }

    #[tokio::test(start_paused = true)]
    async fn only_an_answer_past_authentication_proves_a_secret() {
        let proven = Proven::default();
        let good = Credentials::new(7, "right");
        let junk = Credentials::new(7, "wrong");
        assert!(!proven.is_proven(&good));
        // An authentication failure and a transport failure prove nothing.
        proven.observe(&junk, &answer(crate::zim::codes::SIGNATURE_WRONG));
        proven.observe(&junk, &Err::<(), _>(ZimError::transport(Action::QueryRoomUserList, "timed out")));
        assert!(!proven.is_proven(&junk));
        // "Room not found" is an answer past the signature check.
        proven.observe(&good, &answer(crate::zim::codes::ROOM_NOT_FOUND));
        assert!(proven.is_proven(&good));
        assert!(!proven.is_proven(&junk), "the same AppId with another secret is not proven");
        assert!(!proven.is_proven(&Credentials::new(8, "right")), "nor the same secret for another AppId");
        // Forgotten after the memory's time without a new proof.
        tokio::time::advance(PROOF_MEMORY).await;
        assert_eq!(proven.sweep(), 0);
        assert!(!proven.is_proven(&good));
    }

    /// The controller keeps proofs for three resync periods: a proof an hourly probe renews never lapses between
    /// two probes, even with a period longer than [`PROOF_MEMORY`].
    #[tokio::test(start_paused = true)]
    async fn a_longer_memory_keeps_proofs_between_probes() {
        let proven = Proven::default();
        let good = Credentials::new(7, "right");
        let period = Duration::from_secs(66 * 60);
        proven.observe(&good, &answer(crate::zim::codes::ROOM_NOT_FOUND));
        tokio::time::advance(period).await;
        assert_eq!(proven.sweep_older_than(period * 3), 1, "kept past PROOF_MEMORY");
        proven.observe(&good, &answer(crate::zim::codes::ROOM_NOT_FOUND));
        tokio::time::advance(period * 2).await;
        assert_eq!(proven.sweep_older_than(period * 3), 1, "renewed by the probe");
        tokio::time::advance(period).await;
        assert_eq!(proven.sweep_older_than(period * 3), 0, "gone three periods after the last proof");
    }
}
