//! Claims: which ZimRoom owns a room that several declare (the same AppId and room ID, in any namespaces),
//! decided from the watch cache with no extra API calls (see [`crate::reconcile::decide::winner`]).
//!
//! An object's AppId is the one recorded on its status, else the one its credentials resolve to (cached). The
//! decision is the same whichever claimant is reconciled first: a claimant whose status records the room keeps
//! it; among new claimants the oldest wins, then the lowest `namespace/name`.

use kube::runtime::reflector::ObjectRef;

use super::object_ref;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::cached::CachedRoom;
use crate::crd::ZimRoom;
use crate::reconcile::decide::{self, Claimant, winner};
use crate::reconcile::{Claim, ClaimSource};

use super::Context;

/// One other object declaring the same room.
pub(crate) struct Rival {
    claimant: Claimant,
    pub(crate) object: ObjectRef<CachedRoom>,
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
    let key = format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    );
    Claimant { key, holds, created }
}

/// The other live (not deleting) objects that declare `room`'s room in `app_id`.
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
        .filter(|o| o.metadata.deletion_timestamp.is_none() && o.room_id_str() == room_id && !is_me(o))
        .collect();
    let mut out = Vec::new();
    for other in candidates {
        let other_app = match other.app_id() {
            Some(app) => app,
            // Without credentials it cannot act on any room: it claims nothing yet.
            None => match decide::app_of(None, ctx.credentials.for_room(&*other).await.ok().as_ref()) {
                Some(app) => app,
                None => continue,
            },
        };
        if other_app == app_id {
            let recorded = (other.status_room_id(), other.app_id());
            out.push(Rival {
                claimant: claimant(&other.metadata, recorded, &room_id, app_id),
                object: object_ref(&*other),
            });
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
        claim(room, app_id, &rivals(self.0, room, app_id).await)
    }
}

impl Rival {
    /// `namespace/name`.
    pub(crate) fn key(&self) -> &str {
        &self.claimant.key
    }
}
