//! The seal: the operator's proof that a status's ownership record is its own.
//!
//! The ownership record — `status.roomId`, `appId`, `pendingCreation`, `adopted`, `managedAttributeKeys` and
//! `applied` — decides what the operator may do to a room: destroy it on deletion, count a "room already exists"
//! as its own creation, delete an attribute. Anyone who may write the `status` subresource can write that record
//! (many clusters grant `*` on a namespace's resources), so the operator does not take it on trust: every status it
//! writes carries `status.seal`, an HMAC-SHA256 over the record and the object's UID, with a key only the operator
//! reads (a Secret in its own namespace, created by the operator at its first start and shared by its replicas;
//! see `controller::seal_key`). The UID binds a record to one object: a sealed record copied onto another object
//! does not verify.
//!
//! What a record is worth ([`decide::trust`](super::decide::trust)):
//! - no ownership facts at all: nothing to prove, the object starts afresh;
//! - facts with a seal that verifies: the operator's own record;
//! - facts without a valid seal on an object created before the key, while the key's first sweep has not sealed
//!   every such record yet (an upgrade from a version without seals, or a key deleted on purpose to rotate it):
//!   trusted as before and sealed;
//! - anything else: **unverified** — the object makes no ZIM call (Ready=False `UnverifiedStatus`, with an event),
//!   its deletion never destroys the room, and it claims no room against other objects. Removing the status
//!   (`kubectl patch zimroom NAME --subresource=status --type=merge -p '{"status":null}'`) has the object examined
//!   afresh under its namespace's adoption policy.
//!
//! `apply` trusts every record it reads and seals none: its input is the user's own files.
//!
//! What the seal cannot do: it proves the record was written by the operator for this object, not that it is the
//! latest one. A status writer can put back an earlier record the operator sealed for the same object.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::crd::{AppliedState, ZimRoom, ZimRoomStatus};

use super::decide::{self, Trust};

type HmacSha256 = Hmac<Sha256>;

/// The version prefix of a seal.
const PREFIX: &str = "v1:";

/// The key's length in bytes (HMAC-SHA256's block is 64; 32 random bytes are its full strength).
pub const KEY_BYTES: usize = 32;

/// No legacy window.
const CLOSED: i64 = i64::MIN;

/// The record a seal covers, in a fixed field order (serde_json writes fields in declaration order).
#[derive(Serialize)]
struct Record<'a> {
    uid: &'a str,
    room_id: Option<&'a str>,
    app_id: Option<u32>,
    pending_creation: bool,
    adopted: Option<bool>,
    managed_attribute_keys: &'a [String],
    applied: Option<&'a AppliedState>,
}

impl<'a> Record<'a> {
    fn of(uid: &'a str, status: &'a ZimRoomStatus) -> Self {
        Record {
            uid,
            room_id: status.room_id.as_deref(),
            app_id: status.app_id,
            pending_creation: status.pending_creation,
            adopted: status.adopted,
            managed_attribute_keys: &status.managed_attribute_keys,
            applied: status.applied.as_ref(),
        }
    }
}

/// Whether `status` records anything about a room (an empty record needs no seal).
pub fn has_facts(status: &ZimRoomStatus) -> bool {
    status.room_id.is_some()
        || status.app_id.is_some()
        || status.pending_creation
        || status.adopted.is_some()
        || !status.managed_attribute_keys.is_empty()
        || status.applied.is_some()
}

/// Seals and verifies ownership records with one key. The secret never leaves it: its `Debug` prints nothing of it.
pub struct Sealer {
    /// The key, once known (the controller reads it from its Secret before its first reconcile).
    mac: OnceLock<HmacSha256>,
    /// `apply`: every record is trusted and none is sealed (see [`Sealer::trusting`]).
    trust_all: bool,
    /// Objects created before this instant (Unix seconds, or within its second: an object made in the same second
    /// as the key counts as older) are trusted without a valid seal; [`CLOSED`]: none.
    legacy_before: AtomicI64,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("keyed", &self.mac.get().is_some())
            .field("legacy_open", &self.legacy_open())
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer with `key` (any length; the operator's is [`KEY_BYTES`] random bytes) and no legacy window.
    pub fn new(key: &[u8]) -> Self {
        let sealer = Self::unkeyed();
        sealer.set_key(key);
        sealer
    }

    /// A sealer whose key comes later ([`Sealer::set_key`]); until then no record verifies and none is sealed.
    pub fn unkeyed() -> Self {
        Sealer { mac: OnceLock::new(), trust_all: false, legacy_before: AtomicI64::new(CLOSED) }
    }

    /// Sets the key, once; returns whether this call set it.
    pub fn set_key(&self, key: &[u8]) -> bool {
        self.mac.set(HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length")).is_ok()
    }

    /// A sealer with a fresh random key, for a process whose seals need not outlive it (tests).
    pub fn ephemeral() -> Self {
        Self::new(&new_key())
    }

    /// For `apply`: the statuses it reads are the user's own files, which nobody else writes, so every record is
    /// trusted, and none is sealed (a seal of a one-off key would mean nothing in the printed output).
    pub fn trusting() -> Self {
        Sealer { trust_all: true, ..Self::unkeyed() }
    }

    /// Trusts records without a valid seal on objects created before `created` (the key's creation, Unix
    /// seconds) until [`Sealer::close_legacy`].
    pub fn open_legacy(&self, created: i64) {
        self.legacy_before.store(created, Ordering::Relaxed);
    }

    /// Ends the legacy window: from now on only sealed records are trusted.
    pub fn close_legacy(&self) {
        self.legacy_before.store(CLOSED, Ordering::Relaxed);
    }

    /// Whether records without a valid seal are still trusted on older objects.
    pub fn legacy_open(&self) -> bool {
        self.legacy_before.load(Ordering::Relaxed) != CLOSED
    }

    /// The seal of `status`'s record for the object `uid`; `None` for a record without facts.
    pub fn seal(&self, uid: &str, status: &ZimRoomStatus) -> Option<String> {
        let mac = self.mac.get()?;
        has_facts(status).then(|| {
            let mut mac = mac.clone();
            mac.update(&message(uid, status));
            format!("{PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
        })
    }

    /// Whether `status.seal` is the seal of its record for `uid`.
    pub fn verifies(&self, uid: &str, status: &ZimRoomStatus) -> bool {
        let Some(tag) =
            status.seal.as_deref().and_then(|s| s.strip_prefix(PREFIX)).and_then(|h| hex::decode(h).ok())
        else {
            return false;
        };
        let Some(mac) = self.mac.get() else { return false };
        let mut mac = mac.clone();
        mac.update(&message(uid, status));
        // Constant-time comparison.
        mac.verify_slice(&tag).is_ok()
    }

    /// What `room`'s ownership record is worth (see the module docs).
    pub fn trust(&self, room: &ZimRoom) -> Trust {
        let Some(status) = room.status.as_ref() else { return Trust::Empty };
        if self.trust_all {
            return decide::trust(has_facts(status), || true, false);
        }
        let uid = room.metadata.uid.as_deref().unwrap_or_default();
        let created = room.metadata.creation_timestamp.as_ref().map(|t| t.0.as_second());
        let legacy_before = self.legacy_before.load(Ordering::Relaxed);
        let legacy = legacy_before != CLOSED && created.is_some_and(|c| c <= legacy_before);
        decide::trust(has_facts(status), || self.verifies(uid, status), legacy)
    }

    /// Sets `status.seal` for the object `uid` (removes it from a record without facts).
    pub fn seal_into(&self, uid: &str, status: &mut ZimRoomStatus) {
        status.seal = self.seal(uid, status);
    }
}

fn message(uid: &str, status: &ZimRoomStatus) -> Vec<u8> {
    serde_json::to_vec(&Record::of(uid, status)).expect("a record serializes")
}

/// [`KEY_BYTES`] random bytes from the operating system's generator.
pub fn new_key() -> [u8; KEY_BYTES] {
    use rand::TryRngCore;
    let mut key = [0u8; KEY_BYTES];
    rand::rngs::OsRng.try_fill_bytes(&mut key).expect("the operating system's random generator works");
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned() -> ZimRoomStatus {
        ZimRoomStatus {
            room_id: Some("lobby".into()),
            app_id: Some(1),
            adopted: Some(false),
            managed_attribute_keys: vec!["topic".into()],
            applied: Some(AppliedState {
                room_id: "lobby".into(),
                destroy_delay_time: 600,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn room(uid: &str, created: i64, status: ZimRoomStatus) -> ZimRoom {
        let mut r = ZimRoom::new("lobby", Default::default());
        r.metadata.uid = Some(uid.into());
        r.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::from_second(created).unwrap(),
        ));
        r.status = Some(status);
        r
    }

    /// A sealed record verifies for its object only, under its key only, and any change to any fact of the
    /// record breaks it; conditions and other fields outside the record do not.
    #[test]
    fn a_seal_covers_the_record_and_the_uid() {
        let sealer = Sealer::new(b"key one");
        let mut status = owned();
        sealer.seal_into("uid-1", &mut status);
        assert!(status.seal.as_deref().is_some_and(|s| s.starts_with("v1:") && s.len() == 3 + 64));
        assert!(sealer.verifies("uid-1", &status));
        assert!(!sealer.verifies("uid-2", &status), "a record copied onto another object");
        assert!(!Sealer::new(b"key two").verifies("uid-1", &status), "another key");

        let forgeries: [fn(&mut ZimRoomStatus); 7] = [
            |s| s.adopted = Some(true),
            |s| s.adopted = None,
            |s| s.pending_creation = true,
            |s| s.managed_attribute_keys.push("owner".into()),
            |s| s.app_id = Some(2),
            |s| s.room_id = Some("backend".into()),
            |s| s.applied = None,
        ];
        for (i, forge) in forgeries.iter().enumerate() {
            let mut forged = status.clone();
            forge(&mut forged);
            assert!(!sealer.verifies("uid-1", &forged), "forgery {i} verifies");
        }
        let mut outside = status.clone();
        outside.request_id = Some("42".into());
        outside.observed_generation = Some(9);
        assert!(sealer.verifies("uid-1", &outside), "fields outside the record are not sealed");

        for garbage in ["", "v1:", "v1:zz", "v2:00", &format!("v1:{}", "0".repeat(64))] {
            let mut s = status.clone();
            s.seal = Some(garbage.into());
            assert!(!sealer.verifies("uid-1", &s), "{garbage:?}");
        }
        assert_eq!(sealer.seal("uid-1", &ZimRoomStatus::default()), None, "an empty record has no seal");
    }

    /// The trust of a whole object: empty, sealed, legacy only while the window is open and only for objects
    /// created before the key, unverified otherwise.
    #[test]
    fn trust_of_objects() {
        let sealer = Sealer::new(b"k");
        let mut sealed = owned();
        sealer.seal_into("u", &mut sealed);
        assert_eq!(sealer.trust(&room("u", 100, ZimRoomStatus::default())), Trust::Empty);
        assert_eq!(sealer.trust(&room("u", 100, sealed.clone())), Trust::Sealed);
        assert_eq!(sealer.trust(&room("u", 100, owned())), Trust::Unverified);
        sealer.open_legacy(200);
        assert_eq!(sealer.trust(&room("u", 100, owned())), Trust::Legacy);
        assert_eq!(sealer.trust(&room("u", 200, owned())), Trust::Legacy, "created in the key's second");
        assert_eq!(sealer.trust(&room("u", 201, owned())), Trust::Unverified, "created after the key");
        assert_eq!(sealer.trust(&room("u", 300, sealed)), Trust::Sealed);
        sealer.close_legacy();
        assert_eq!(sealer.trust(&room("u", 100, owned())), Trust::Unverified);
        assert_eq!(format!("{sealer:?}"), "Sealer { keyed: true, legacy_open: false, .. }", "no key printed");
    }

    /// Without a key nothing verifies and nothing is sealed; `apply`'s sealer trusts every record and seals none.
    #[test]
    fn unkeyed_and_trusting_sealers() {
        let keyed = Sealer::new(b"k");
        let mut sealed = owned();
        keyed.seal_into("u", &mut sealed);
        let unkeyed = Sealer::unkeyed();
        assert_eq!(unkeyed.seal("u", &owned()), None);
        assert_eq!(unkeyed.trust(&room("u", 1, sealed.clone())), Trust::Unverified);
        assert!(unkeyed.set_key(b"k") && !unkeyed.set_key(b"other"), "the key is set once");
        assert_eq!(unkeyed.trust(&room("u", 1, sealed)), Trust::Sealed);
        let trusting = Sealer::trusting();
        assert_eq!(trusting.trust(&room("u", 1, owned())), Trust::Sealed);
        assert_eq!(trusting.trust(&room("u", 1, ZimRoomStatus::default())), Trust::Empty);
        assert_eq!(trusting.seal("u", &owned()), None);
    }

    /// Keys are random and full length.
    #[test]
    fn keys_are_random() {
        assert_ne!(new_key(), new_key());
    }
}
