//! What this process remembers of each object, in one map keyed by the object's UID: whether it was seen, handed
//! to the prober at a start, found gone by the prober, asked to be re-checked, and its failures in a row (the
//! backoff). An entry goes when the object's cleanup finishes, and the prober's passes drop the entries of objects
//! no longer in the caches (at the second pass that misses them) — deleted, their finalizer removed by hand, out
//! of the label selector, or gone with the CRD — so the map holds no more than the objects in the caches and
//! those created since the last pass.
//!
//! The cleanups this process finished are remembered apart, for a while after the object is gone ([`Cleaned`]).
//!
//! A new object with the same name has a new UID, so it never inherits another's state. A UID is kept as the
//! 128-bit number it spells (Kubernetes UIDs are UUIDs): 16 bytes per object, and no two objects share one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::backoff;
use crate::lock;
use kube::Resource;

/// One object's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct State {
    seen: bool,
    handed_at_start: bool,
    absent: bool,
    recheck: bool,
    failures: u32,
    /// The resourceVersion this process's last status write returned (0: none): a copy below it is stale.
    written: u64,
    /// Absent from the caches at the last sweep (dropped if still absent at the next one).
    unseen: bool,
}

/// What a reconcile takes from the state (the one-shot facts are cleared as they are taken).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Taken {
    /// This process reconciles the object for the first time.
    pub(crate) first_sight: bool,
    /// The prober found its room gone since its last reconcile.
    pub(crate) absent: bool,
    /// A re-check was asked for.
    pub(crate) recheck: bool,
}

/// The per-object state of every object the caches hold, keyed by UID.
#[derive(Debug, Default)]
pub(crate) struct Objects {
    by_uid: Mutex<HashMap<u128, State>>,
}

/// The object's UID as a number: a UUID's 128 bits, or (for a UID that is no UUID, which the API server never
/// hands out) a hash of it.
pub(crate) fn uid_key(uid: &str) -> u128 {
    let hex: String = uid.chars().filter(|c| *c != '-').collect();
    match (hex.len(), u128::from_str_radix(&hex, 16)) {
        (32, Ok(n)) => n,
        _ => {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            uid.hash(&mut h);
            u128::from(h.finish())
        }
    }
}

fn uid(room: &impl Resource) -> u128 {
    uid_key(room.meta().uid.as_deref().unwrap_or_default())
}

impl Objects {
    fn update<T>(&self, room: &impl Resource, f: impl FnOnce(&mut State) -> T) -> T {
        let mut map = lock(&self.by_uid);
        let uid = uid(room);
        match map.get_mut(&uid) {
            Some(state) => {
                state.unseen = false;
                f(state)
            }
            None => {
                let mut state = State::default();
                let out = f(&mut state);
                if state != State::default() {
                    map.insert(uid, state);
                }
                out
            }
        }
    }

    /// The facts a reconcile of `room` starts from; marks it seen and clears the one-shot facts.
    pub(crate) fn take(&self, room: &impl Resource) -> Taken {
        self.update(room, |s| {
            let taken = Taken { first_sight: !s.seen, absent: s.absent, recheck: s.recheck };
            s.seen = true;
            s.absent = false;
            s.recheck = false;
            taken
        })
    }

    /// `room` was handed to the prober at a start, without a probe.
    pub(crate) fn handed_at_start(&self, room: &impl Resource) {
        self.update(room, |s| s.handed_at_start = true);
    }

    /// Whether `room` was handed to the prober at a start (and forgets it).
    pub(crate) fn take_handed_at_start(&self, room: &impl Resource) -> bool {
        self.update(room, |s| std::mem::take(&mut s.handed_at_start))
    }

    /// The prober found `room`'s room gone: its next reconcile skips the probe.
    pub(crate) fn mark_absent(&self, room: &impl Resource) {
        self.update(room, |s| s.absent = true);
    }

    /// A re-check of `room` was asked for.
    pub(crate) fn mark_recheck(&self, room: &impl Resource) {
        self.update(room, |s| s.recheck = true);
    }

    /// The next backoff delay for `room` (one more failure), on the fast or slow schedule.
    pub(crate) fn backoff(&self, room: &impl Resource, slow: bool) -> Duration {
        let n = self.update(room, |s| {
            s.failures = s.failures.saturating_add(1);
            s.failures
        });
        if slow { backoff::SLOW.delay(n) } else { backoff::FAST.delay(n) }
    }

    /// `room` succeeded: its backoff starts over.
    pub(crate) fn reset_backoff(&self, room: &impl Resource) {
        self.update(room, |s| s.failures = 0);
    }

    /// This process wrote `room`'s status, which is now at `version`.
    pub(crate) fn written(&self, room: &impl Resource, version: Option<u64>) {
        if let Some(v) = version {
            self.update(room, |s| s.written = s.written.max(v));
        }
    }

    /// Whether `room` is a copy older than this process's last status write for it
    /// ([`crate::reconcile::decide::stale::stale_copy`]).
    pub(crate) fn is_stale(&self, room: &impl Resource) -> bool {
        let floor = lock(&self.by_uid).get(&uid(room)).map(|s| s.written).filter(|v| *v > 0);
        crate::reconcile::decide::stale::stale_copy(room.meta().resource_version.as_deref(), floor)
    }

    /// Forgets `room` (its cleanup finished).
    pub(crate) fn forget(&self, room: &impl Resource) {
        lock(&self.by_uid).remove(&uid(room));
    }

    /// Keeps only the objects whose UID (see [`uid_key`]) `live` holds (the caches' objects).
    ///
    /// An entry goes at the second sweep that does not find its object: the caches are read at the start of the
    /// prober's pass, so an object created since (and reconciled already) is kept until the next pass sees it.
    pub(crate) fn retain(&self, live: impl Fn(u128) -> bool) {
        lock(&self.by_uid).retain(|uid, state| {
            let gone = !live(*uid);
            let keep = !(gone && state.unseen);
            state.unseen = gone;
            keep
        });
    }

    /// How many objects have state.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.by_uid).len()
    }
}

// Also by UID, but outliving the object: the cleanups this process finished.

/// How long the UID of an object this process cleaned up is remembered: far longer than a watch event takes to
/// arrive, even on a loaded API server.
const CLEANED_MEMORY: Duration = Duration::from_secs(600);

/// The objects (by UID) whose cleanup this process has finished. Until the watch delivers an object's removal, a
/// re-queue (a Secret event, a retry) can hand the controller a stale cached copy that still shows the finalizer;
/// cleaning it up again would call DestroyRoom a second time — and could destroy a room another object has created
/// with that ID since.
#[derive(Debug, Default)]
pub(crate) struct Cleaned {
    at: HashMap<String, std::time::Instant>,
}

impl Cleaned {
    /// Records that the object with `uid` was cleaned up at `now` (and forgets those older than CLEANED_MEMORY).
    pub(crate) fn record(&mut self, uid: &str, now: std::time::Instant) {
        self.at.retain(|_, at| now.duration_since(*at) < CLEANED_MEMORY);
        self.at.insert(uid.to_owned(), now);
    }

    /// Whether the object with `uid` was cleaned up already.
    pub(crate) fn contains(&self, uid: &str) -> bool {
        self.at.contains_key(uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ZimRoom;

    fn room(uid: &str) -> ZimRoom {
        let mut r = ZimRoom::new("lobby", Default::default());
        r.metadata.namespace = Some("chat".into());
        r.metadata.uid = Some(uid.into());
        r
    }

    /// Issue 22, scenario 8: after this process wrote an object's status (at version 120), a copy from before that
    /// write (119) is stale and a reconcile waits for the cache; the written copy and later ones are not. Another
    /// object's floor is its own.
    #[test]
    fn a_copy_older_than_the_last_status_written_is_stale() {
        let objects = Objects::default();
        let at = |uid: &str, version: &str| {
            let mut r = room(uid);
            r.metadata.resource_version = Some(version.into());
            r
        };
        assert!(!objects.is_stale(&at("uid-a", "119")), "nothing written yet");
        objects.written(&at("uid-a", "119"), Some(120));
        assert!(objects.is_stale(&at("uid-a", "119")));
        assert!(!objects.is_stale(&at("uid-a", "120")));
        assert!(!objects.is_stale(&at("uid-a", "121")));
        assert!(!objects.is_stale(&at("uid-b", "1")));
        // A write that returned an older version (out of order) never lowers the floor.
        objects.written(&at("uid-a", "119"), Some(110));
        assert!(objects.is_stale(&at("uid-a", "115")));
    }

    #[test]
    fn one_shot_facts_are_taken_once_and_state_is_per_uid() {
        let objects = Objects::default();
        let a = room("uid-a");
        assert_eq!(objects.take(&a), Taken { first_sight: true, absent: false, recheck: false });
        objects.mark_absent(&a);
        objects.mark_recheck(&a);
        assert_eq!(objects.take(&a), Taken { first_sight: false, absent: true, recheck: true });
        assert_eq!(objects.take(&a), Taken::default());
        // The same name with a new UID is a new object.
        assert!(objects.take(&room("uid-b")).first_sight);
        objects.handed_at_start(&a);
        assert!(objects.take_handed_at_start(&a));
        assert!(!objects.take_handed_at_start(&a));
    }

    #[test]
    fn a_cleaned_object_is_remembered_for_a_while() {
        let mut cleaned = Cleaned::default();
        let t0 = std::time::Instant::now();
        cleaned.record("uid-1", t0);
        assert!(cleaned.contains("uid-1"));
        assert!(!cleaned.contains("uid-2"), "another object (a new one with the same name has a new UID)");
        cleaned.record("uid-2", t0 + CLEANED_MEMORY);
        assert!(!cleaned.contains("uid-1"), "forgotten after CLEANED_MEMORY");
        assert!(cleaned.contains("uid-2"));
    }

    #[test]
    fn a_uuid_is_kept_as_its_number() {
        assert_eq!(uid_key("9f6c0c4e-1b2a-4c39-9a0e-3d2f1e0b7a11"), 0x9f6c0c4e_1b2a_4c39_9a0e_3d2f1e0b7a11);
        assert_ne!(uid_key("uid-a"), uid_key("uid-b"));
    }

    #[test]
    fn backoff_grows_and_resets() {
        let objects = Objects::default();
        let a = room("uid-a");
        let first = objects.backoff(&a, false);
        let _ = objects.backoff(&a, false);
        let third = objects.backoff(&a, false);
        assert!(third > first, "{first:?} {third:?}");
        objects.reset_backoff(&a);
        assert!(objects.backoff(&a, false) < third, "starts over at the first delay");
    }

    /// Entries go with the object: at its cleanup, or when it is no longer in the caches; asking about an object
    /// without state creates none.
    #[test]
    fn state_is_bounded_by_the_objects_in_the_caches() {
        let objects = Objects::default();
        for i in 0..10_000 {
            let r = room(&format!("uid-{i}"));
            objects.take(&r);
            let _ = objects.backoff(&r, false);
        }
        assert_eq!(objects.len(), 10_000);
        objects.forget(&room("uid-0"));
        assert_eq!(objects.len(), 9_999);
        objects.retain(|uid| uid == uid_key("uid-1"));
        assert_eq!(objects.len(), 9_999, "the first sweep that misses an object only marks it");
        // An object reconciled since that sweep (it was not in the caches yet when they were read) stays.
        objects.take(&room("uid-new"));
        objects.take(&room("uid-2"));
        objects.retain(|uid| uid == uid_key("uid-1"));
        assert_eq!(objects.len(), 3, "uid-1 (live), uid-2 and uid-new (touched since the last sweep)");
        objects.retain(|uid| uid == uid_key("uid-1") || uid == uid_key("uid-new"));
        objects.retain(|uid| uid == uid_key("uid-1") || uid == uid_key("uid-new"));
        assert_eq!(objects.len(), 2);
        assert!(!objects.take(&room("uid-new")).first_sight, "kept with its state");
        assert!(!objects.take_handed_at_start(&room("uid-never-seen")));
        assert_eq!(objects.len(), 2);
    }
}
