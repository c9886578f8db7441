//! Claims: which ZimRoom owns a room that several declare (the same AppId and room ID, in any namespaces),
//! decided from the watch cache with no extra API calls (see [`crate::reconcile::decide::winner`]).
//!
//! An object's AppId is the one recorded on its status, else the one its credentials resolve to (cached). The
//! decision is the same whichever claimant is reconciled first: a claimant whose status records the room keeps
//! it; among new claimants the oldest wins, then the lowest `namespace/name`.
//!
//! **Who counts** ([`decide::counts_as_claimant`]): only an object its namespace's policy admits as declared (its
//! roomId, the default credentials, its fromUserId), and which either holds the room (its status records it) or
//! has credentials ZIM has accepted for that AppId (`reconcile::proven`). A `ForbiddenByPolicy` object, or one
//! whose Secret merely names another team's AppId, never blocks or inherits another's room. A status record that
//! does not carry the operator's seal (`reconcile::seal`) holds nothing.
//!
//! **Simultaneous claims.** The cache lags the API server, so two objects created within the same second in two
//! namespaces could each decide before the other is cached, and both become owner. Claim decisions therefore take
//! turns in this process (the only one acting: the leader), and an object that wins a room it does not hold yet
//! is remembered as holding it ([`InFlight`]) until its status (which then records the room) is in the cache, or
//! its reconcile ends without the room: a second claimant decides against it even before it is cached.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kube::runtime::reflector::ObjectRef;

use super::object_ref;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::cached::CachedRoom;
use crate::crd::ZimRoom;
use crate::lock;
use crate::reconcile::decide::{self, Claimant, winner};
use crate::reconcile::{Claim, ClaimSource};

use super::Context;

/// How long a won claim is remembered without its object's status recording it (a status write lands in the cache
/// within seconds; this only bounds the memory of a claim whose object vanished meanwhile).
const IN_FLIGHT_MEMORY: Duration = Duration::from_secs(120);

/// Claims this process granted to objects that did not hold the room yet: (AppId, roomId) → the claimant.
#[derive(Default)]
pub(crate) struct InFlight {
    claims: std::sync::Mutex<HashMap<(u32, String), (Claimant, Instant)>>,
    /// Claim decisions take turns.
    turn: tokio::sync::Mutex<()>,
}

impl InFlight {
    fn of(&self, app_id: u32, room_id: &str) -> Option<Claimant> {
        let mut claims = lock(&self.claims);
        let now = Instant::now();
        claims.retain(|_, (_, at)| now.duration_since(*at) < IN_FLIGHT_MEMORY);
        claims.get(&(app_id, room_id.to_owned())).map(|(c, _)| c.clone())
    }

    fn grant(&self, app_id: u32, room_id: &str, claimant: Claimant) {
        lock(&self.claims)
            .insert((app_id, room_id.to_owned()), (Claimant { holds: true, ..claimant }, Instant::now()));
    }

    /// `key`'s reconcile ended: its claims go unless its status now records the room (`holds`), in which case
    /// they go once the cache has that status (or after [`IN_FLIGHT_MEMORY`]).
    pub(crate) fn settled(&self, key: &str, holds: bool) {
        if !holds {
            lock(&self.claims).retain(|_, (c, _)| c.key != key);
        }
    }
}

/// One other object declaring the same room.
pub(crate) struct Rival {
    claimant: Claimant,
    pub(crate) object: ObjectRef<CachedRoom>,
}

fn key_of(meta: &ObjectMeta) -> String {
    format!("{}/{}", meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default())
}

/// A claimant from its metadata and the room ID and AppId its status records.
fn claimant(
    meta: &ObjectMeta,
    recorded: (Option<&str>, Option<u32>),
    room_id: &str,
    app_id: u32,
) -> Claimant {
    let holds = recorded == (Some(room_id), Some(app_id));
    let created = meta.creation_timestamp.as_ref().map_or(i64::MAX, |t| t.0.as_second());
    Claimant { key: key_of(meta), holds, created }
}

/// The other live (not deleting) objects that count as claimants of `room`'s room in `app_id`, and the claim this
/// process granted meanwhile to one not cached with it yet.
pub(crate) async fn rivals(ctx: &Context, room: &ZimRoom, app_id: u32) -> Vec<Rival> {
    let room_id = room.room_id();
    let is_me = |o: &CachedRoom| {
        o.metadata.name == room.metadata.name && o.metadata.namespace == room.metadata.namespace
    };
    // Runs for every reconcile over the whole cache: compares borrowed fields, copies nothing per object.
    let candidates: Vec<_> = ctx
        .stores()
        .iter()
        .flat_map(|s| s.state())
        .filter(|o| {
            o.metadata.deletion_timestamp.is_none() && !o.observing && o.room_id_str() == room_id && !is_me(o)
        })
        .collect();
    let mut out = Vec::new();
    for other in candidates {
        let credentials = ctx.credentials.for_room(&*other).await.ok();
        let other_app = match other.app_id() {
            Some(app) => app,
            // Without credentials it cannot act on any room: it claims nothing yet.
            None => match decide::app_of(None, credentials.as_ref()) {
                Some(app) => app,
                None => continue,
            },
        };
        if other_app != app_id {
            continue;
        }
        let recorded = (other.status_room_id(), other.app_id());
        let mut claimant = claimant(&other.metadata, recorded, &room_id, app_id);
        // A record the operator did not seal holds nothing (the copy is expanded only for a claimant that holds).
        claimant.holds = claimant.holds && ctx.reconciler.sealer().trust(&other.room()).trusted();
        // A namespace whose policy is not known yet counts its objects as admitted (they may block, never take).
        let admitted = match ctx.policy(other.metadata.namespace.as_deref().unwrap_or_default()).await {
            Ok(policy) => decide::admitted_by(&other.room(), &policy, credentials.as_ref()),
            Err(_) => true,
        };
        let proven = credentials.as_ref().is_some_and(|c| {
            c.credentials.app_id == app_id && ctx.reconciler.proven().is_proven(&c.credentials)
        });
        if decide::counts_as_claimant(admitted, claimant.holds, proven) {
            out.push(Rival { claimant, object: object_ref(&*other) });
        }
    }
    let mine = key_of(&room.metadata);
    if let Some(granted) = ctx.claiming.of(app_id, &room_id).filter(|c| c.key != mine) {
        match out.iter_mut().find(|r| r.claimant.key == granted.key) {
            Some(cached) => cached.claimant.holds = true,
            None => {
                let (ns, name) = granted.key.split_once('/').unwrap_or_default();
                let object = ObjectRef::new(name).within(ns);
                out.push(Rival { claimant: granted, object });
            }
        }
    }
    out
}

/// Whether `room` owns its room in `app_id` against `rivals`.
pub(crate) fn claim(room: &ZimRoom, app_id: u32, rivals: &[Rival]) -> Claim {
    if rivals.is_empty() {
        return Claim::Owner;
    }
    let status = room.status.as_ref();
    let recorded = (status.and_then(|s| s.room_id.as_deref()), status.and_then(|s| s.app_id));
    let mine = claimant(&room.metadata, recorded, &room.room_id(), app_id);
    let mut all: Vec<Claimant> = rivals.iter().map(|r| r.claimant.clone()).collect();
    all.push(mine.clone());
    match winner(&all) {
        Some(w) if w.key != mine.key => Claim::Conflict { owner: w.key.clone() },
        _ => Claim::Owner,
    }
}

/// The rival that takes the room over when `room` is deleted: the winner among the others.
pub(crate) fn successor(rivals: Vec<Rival>) -> Option<Rival> {
    let all: Vec<Claimant> = rivals.iter().map(|r| r.claimant.clone()).collect();
    let key = winner(&all)?.key.clone();
    rivals.into_iter().find(|r| r.claimant.key == key)
}

/// The claims of the objects in the controller's caches, which the reconcile core asks for once an object could
/// act on its room.
pub(crate) struct CacheClaims<'a>(pub(crate) &'a Context);

impl ClaimSource for CacheClaims<'_> {
    async fn claim(&self, room: &ZimRoom, app_id: u32) -> Claim {
        let ctx = self.0;
        let _turn = ctx.claiming.turn.lock().await;
        let decided = claim(room, app_id, &rivals(ctx, room, app_id).await);
        let status = room.status.as_ref();
        let recorded = (status.and_then(|s| s.room_id.as_deref()), status.and_then(|s| s.app_id));
        let me = claimant(&room.metadata, recorded, &room.room_id(), app_id);
        if decided == Claim::Owner && !me.holds {
            ctx.claiming.grant(app_id, &room.room_id(), me);
        }
        decided
    }

    async fn held_elsewhere(&self, room: &ZimRoom, app_id: u32) -> Option<String> {
        self.holder_elsewhere(room, app_id).await
    }
}

impl CacheClaims<'_> {
    async fn holder_elsewhere(&self, room: &ZimRoom, app_id: u32) -> Option<String> {
        let ns = room.metadata.namespace.as_deref().unwrap_or_default();
        rivals(self.0, room, app_id)
            .await
            .into_iter()
            .find(|r| r.claimant.holds && r.claimant.key.split_once('/').is_none_or(|(other, _)| other != ns))
            .map(|r| r.claimant.key)
    }
}

impl Rival {
    /// `namespace/name`.
    pub(crate) fn key(&self) -> &str {
        &self.claimant.key
    }
}
