//! kube-runtime wiring: the Controller over ZimRooms, the finalizer, the error policy and the watches. The jobs
//! around it live in their own modules:
//! - [`credentials`]: Secret parsing, the credential cache and last good credentials, the Secret watch;
//! - [`prober`]: periodic existence checks of converged rooms, through the reconcile core;
//! - [`status`]: server-side-apply status writes, the creation intent, events;
//! - [`health`]: readiness of the watches for `/readyz`.
//!
//! - One Controller per watched namespace (or one for all), fed by a watcher whose events are filtered to what
//!   matters — generation, deletion, finalizers and the `paused` / `reconcile-requested-at` annotations — so the
//!   operator's own status writes never re-trigger it.
//! - `finalizer()` is the single top-level step: Apply runs the reconcile core, Cleanup destroys or orphans.
//! - Converged rooms are not requeued by the Controller; the prober re-checks them and hands vanished rooms back.
//! - Retryable failures back off per object ([`crate::backoff`]: 1 s doubling to 5 min, jittered; unknown codes
//!   30 s to 30 min), reset on success; terminal failures retry after about an hour, or at once on a spec or
//!   Secret change.

mod cache;
mod cached;
mod callbacks;
mod claims;
mod context;
mod credentials;
mod fair;
mod health;
mod objects;
mod pack;
mod prober;
mod run;
mod seal_key;
pub(crate) mod status;

use std::sync::Arc;
use std::time::Instant;

use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use tracing::{debug, info, warn};

use crate::backoff::jitter;
use crate::crd::{FINALIZER, ZimRoom, condition};
use crate::metrics::Readiness;
use crate::now;
use crate::reconcile::decide;
use crate::reconcile::{Cleanup, CleanupError, DeleteFacts, Facts, Requeue};
use crate::zim::Class;
use crate::zim::limiter::{CallTag, Priority, tagged};

pub(crate) use callbacks::bridge as callback_bridge;

/// What the callback receiver of a process asks its controller (see `callbacks.rs`): the callback secrets of
/// proven Secrets while `leading`, and each app's callback re-check allowance.
pub fn callback_trust(
    ctx: std::sync::Arc<Context>,
    leading: tokio::sync::watch::Receiver<bool>,
) -> std::sync::Arc<dyn crate::callback::CallbackSecrets> {
    std::sync::Arc::new(callbacks::CallbackTrust::new(ctx, leading))
}
pub use context::{Config, Context, Error};
pub use run::run;
pub use seal_key::SealSecret;

pub use cached::CachedRoom;

use status::{StatusSink, publish, write_if_changed};

/// A reference to `room` by namespace and name, which is all references compare (and the Controller's queue keys
/// on). Unlike `ObjectRef::from_obj` it copies no resource version and UID: the operator holds one for each object
/// in several sets (prober, first sight, backoff), and builds them often.
pub(crate) fn object_ref(room: &impl Resource) -> ObjectRef<CachedRoom> {
    let r = ObjectRef::new(room.meta().name.as_deref().unwrap_or_default());
    match room.meta().namespace.as_deref() {
        Some(ns) => r.within(ns),
        None => r,
    }
}

fn object_key(room: &impl Resource) -> String {
    let meta = room.meta();
    format!("{}/{}", meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default())
}

/// One reconcile: waits for a slot of the fair gate (round-robin between namespaces), then runs with its ZIM calls
/// tagged by namespace at interactive priority (the ZIM limiter serves namespaces in turn as well).
async fn reconcile(cached: Arc<CachedRoom>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = cached.namespace().ok_or(Error::MissingNamespace)?;
    let _slot = ctx.gate.enter(&ns).await;
    let tag = CallTag { tenant: ns.as_str().into(), priority: Priority::Interactive };
    // Boxed: a reconcile parked at the gate holds only its object, not the whole reconcile's state.
    // The object whole again (the cache keeps a compact form, see cached.rs), only once it has a slot.
    Box::pin(tagged(tag, async move { reconcile_now(Arc::new(cached.room()), ctx, ns).await })).await
}

/// How soon a reconcile that found a stale copy (see `decide::stale`) tries again.
const STALE_COPY_RETRY: std::time::Duration = std::time::Duration::from_millis(500);

async fn reconcile_now(room: Arc<ZimRoom>, ctx: Arc<Context>, ns: String) -> Result<Action, Error> {
    ctx.health.beat();
    let api: Api<ZimRoom> = Api::namespaced(ctx.client.clone(), &ns);
    if room.metadata.deletion_timestamp.is_some() && ctx.objects.is_stale(&*room) {
        // A deletion from a copy older than this process's own last status write: wait for the newer copy (the
        // reconcile core makes the same check for the other reconciles, `Requeue::StaleCopy`).
        debug!(room = %object_key(&*room), "a copy older than the last status written; waiting for the cache");
        return Ok(Action::requeue(STALE_COPY_RETRY));
    }
    let start = Instant::now();
    let result = finalizer(&api, FINALIZER, room.clone(), |event| async {
        match event {
            FinalizerEvent::Apply(room) => apply(&room, &api, &ctx).await,
            FinalizerEvent::Cleanup(room) => cleanup(&room, &api, &ctx).await,
        }
    })
    .await;
    match result.map_err(Error::from_finalizer) {
        // A deletion that waits for an occupied room keeps its finalizer (an Ok cleanup would remove it) and
        // frees its reconcile slot until the next look.
        Err(Error::Waiting(after)) => {
            ctx.metrics.reconcile.reconciled(start.elapsed(), None);
            Ok(Action::requeue(after))
        }
        Err(e) => {
            ctx.metrics.reconcile.reconciled(start.elapsed(), Some(e.category()));
            Err(e)
        }
        Ok(action) => Ok(action),
    }
}

/// The facts of one reconcile, from this process's state and its caches (cached Secret reads, the Namespace's
/// annotations); nothing here decides.
async fn gather<'a>(room: &ZimRoom, ctx: &'a Context) -> Result<Facts<claims::CacheClaims<'a>>, Error> {
    let state = ctx.objects.take(room);
    let policy = ctx.policy(&room.namespace().unwrap_or_default()).await?;
    let credentials = ctx.credentials.for_room(room).await;
    Ok(Facts {
        credentials,
        policy,
        claims: claims::CacheClaims(ctx),
        known_absent: state.absent,
        first_sight: state.first_sight,
        recheck: state.recheck,
        written: state.written,
    })
}

async fn apply(room: &ZimRoom, api: &Api<ZimRoom>, ctx: &Context) -> Result<Action, Error> {
    let start = Instant::now();
    let facts = gather(room, ctx).await?;
    let timeout = ctx.config.write_timeout;
    let sink = StatusSink { api, room, timeout, metrics: &ctx.metrics, objects: &ctx.objects };
    let outcome = ctx.reconciler.reconcile(room, &facts, &sink, now()).await;
    if !matches!(outcome.requeue, Requeue::Prober | Requeue::StaleCopy) {
        let version = write_if_changed(api, room, &outcome.status, timeout, &ctx.metrics).await?;
        ctx.objects.written(room, version);
    }
    // A claim granted in this reconcile stays until the cache has the status that records the room.
    ctx.claiming.settled(&object_key(room), decide::holds_room(&outcome.status));
    for note in &outcome.notes {
        publish(&ctx.recorder, room, note).await;
    }
    let own_credentials = room.spec.credentials_secret_ref.is_some();
    let readiness =
        Readiness::of_conditions(&outcome.status.conditions, own_credentials, jiff::Timestamp::now());
    ctx.metrics.rooms.set_ready(&object_key(room), Some(readiness));
    ctx.metrics.reconcile.reconciled(start.elapsed(), outcome.error_category);
    debug!(room = %object_key(room), requeue = ?outcome.requeue, "reconciled");
    Ok(match outcome.requeue {
        // A start: a converged room is the prober's (its first probe is spread over one period), not a worker's.
        Requeue::Prober => {
            ctx.objects.handed_at_start(room);
            Action::await_change()
        }
        Requeue::Resync | Requeue::OnChange => {
            ctx.objects.reset_backoff(room);
            Action::await_change()
        }
        Requeue::StaleCopy => {
            debug!(room = %object_key(room), "a copy older than the last status written; waiting for the cache");
            Action::requeue(STALE_COPY_RETRY)
        }
        Requeue::Backoff { slow } => Action::requeue(ctx.objects.backoff(room, slow)),
        Requeue::Slow => Action::requeue(jitter(ctx.config.slow_retry, 0.1)),
        // An observed room: read again after one resync period.
        Requeue::Period => {
            ctx.objects.reset_backoff(room);
            Action::requeue(jitter(ctx.config.resync, 0.1))
        }
    })
}

async fn cleanup(room: &ZimRoom, api: &Api<ZimRoom>, ctx: &Context) -> Result<Action, Error> {
    if ctx.was_cleaned(room) {
        // A stale cached copy (the finalizer's removal has not reached the cache yet): nothing is called again.
        debug!(room = %object_key(room), "cleanup already done; waiting for the object to go");
        return Ok(Action::await_change());
    }
    let done = cleanup_once(room, api, ctx).await;
    if done.is_ok() {
        ctx.record_cleaned(room);
    }
    done
}

/// A deletion that waits for an occupied room, or drains it: the status says how many members, the phase and its
/// deadline (an event at each new phase and when the members were told), and the room is looked at again later.
async fn occupied(
    room: &ZimRoom,
    api: &Api<ZimRoom>,
    ctx: &Context,
    members: u64,
    progress: crate::crd::DeletionProgress,
    message: String,
    notified: Option<String>,
) -> Result<Action, Error> {
    let now = now();
    let room_id = room.status.as_ref().and_then(|s| s.room_id.clone()).unwrap_or_else(|| room.room_id());
    let phase_before = room.status.as_ref().and_then(|s| s.deletion.as_ref()).map(|d| d.phase);
    let status = crate::reconcile::deletion_occupied(room, members, &progress, &message, &now);
    if let Some(id) = &notified {
        let text = format!(
            "told the {members} member(s) of ZIM room {room_id} that it is closing (SendRoomMessage, request id {id})"
        );
        ctx.note(room, false, "DrainMessageSent", text).await;
    }
    if phase_before != Some(progress.phase) {
        let reason = status.conditions.iter().find(|c| c.type_ == condition::READY).map(|c| c.reason.clone());
        ctx.note(room, false, reason.as_deref().unwrap_or_default(), message.clone()).await;
    }
    let own_credentials = room.spec.credentials_secret_ref.is_some();
    let readiness = Readiness::of_conditions(&status.conditions, own_credentials, jiff::Timestamp::now());
    ctx.metrics.rooms.set_ready(&object_key(room), Some(readiness));
    ctx.metrics.rooms.set_members(&object_key(room), &room.namespace().unwrap_or_default(), members);
    if let Some(app) = status.app_id {
        ctx.set_awaiting_exit(app, &room_id, true);
    }
    let version = write_if_changed(api, room, &status, ctx.config.write_timeout, &ctx.metrics).await?;
    ctx.objects.written(room, version);
    let after = crate::reconcile::decide::occupied::recheck_in(&progress, &now, ctx.config.occupied_recheck);
    debug!(room = %object_key(room), members, phase = ?progress.phase, ?after, "the deletion waits for an occupied room");
    Err(Error::Waiting(jitter(after, 0.1)))
}

/// The facts of a deletion: whether the CRD is going (then nothing else is read), the namespace's policy, the
/// credentials of the room's app, and the claimant that takes the room over.
async fn gather_for_delete(
    room: &ZimRoom,
    ctx: &Context,
) -> Result<(DeleteFacts, Option<claims::Rival>), Error> {
    if ctx.crd_deleting().await {
        let facts = DeleteFacts {
            credentials: Err(String::new()),
            policy: None,
            crd_deleting: true,
            successor: None,
        };
        return Ok((facts, None));
    }
    let policy = ctx.policy(&room.namespace().unwrap_or_default()).await?;
    let credentials = ctx.credentials.for_deletion(room).await;
    let successor = match decide::app_of(room.status.as_ref(), credentials.as_ref().ok()) {
        Some(app) => claims::successor(claims::rivals(ctx, room, app).await),
        None => None,
    };
    let facts = DeleteFacts {
        credentials,
        policy: Some(policy),
        crd_deleting: false,
        successor: successor.as_ref().map(|r| r.key().to_owned()),
    };
    Ok((facts, successor))
}

/// The cleanup of a deleted object: destroys or releases its room, then its finalizer may go.
async fn cleanup_once(room: &ZimRoom, api: &Api<ZimRoom>, ctx: &Context) -> Result<Action, Error> {
    let room_id = room.status.as_ref().and_then(|s| s.room_id.clone()).unwrap_or_else(|| room.room_id());
    let (facts, successor) = gather_for_delete(room, ctx).await?;
    match ctx.reconciler.cleanup(room, &facts).await {
        Ok(Cleanup::Occupied { members, progress, message, notified }) => {
            occupied(room, api, ctx, members, progress, message, notified).await
        }
        Ok(done) => {
            match done {
                Cleanup::Occupied { .. } => unreachable!("handled above"),
                Cleanup::Destroyed { request_id, removed } => {
                    let removed = match removed {
                        0 => String::new(),
                        n => format!(", after removing its {n} remaining member(s)"),
                    };
                    let msg = format!("destroyed ZIM room {room_id} (request id {request_id}){removed}");
                    info!(room = %object_key(room), "{msg}");
                    ctx.note(room, false, "Destroyed", msg).await;
                }
                Cleanup::AlreadyGone => {
                    ctx.note(room, false, "Destroyed", format!("ZIM room {room_id} no longer existed")).await;
                }
                Cleanup::Orphaned { why } => {
                    let msg = format!("left ZIM room {room_id} in place ({why})");
                    ctx.note(room, false, "Orphaned", msg).await;
                }
                Cleanup::NeverCreated => {}
            }
            ctx.metrics.rooms.set_ready(&object_key(room), None);
            if let Some(app) = room.status.as_ref().and_then(|s| s.app_id) {
                ctx.set_awaiting_exit(app, &room_id, false);
            }
            ctx.objects.forget(room);
            ctx.claiming.settled(&object_key(room), false);
            // The next claimant takes the room over once this object is gone.
            if let Some(next) = successor {
                ctx.trigger(next.object);
            }
            Ok(Action::await_change())
        }
        Err(e) => {
            ctx.note(room, true, "DeletionBlocked", e.to_string()).await;
            let status = crate::reconcile::deletion_blocked(room, &e, &now());
            let own_credentials = room.spec.credentials_secret_ref.is_some();
            let readiness =
                Readiness::of_conditions(&status.conditions, own_credentials, jiff::Timestamp::now());
            ctx.metrics.rooms.set_ready(&object_key(room), Some(readiness));
            // Best effort: the event already says how to unblock.
            if let Ok(version) =
                write_if_changed(api, room, &status, ctx.config.write_timeout, &ctx.metrics).await
            {
                ctx.objects.written(room, version);
            }
            Err(e.into())
        }
    }
}

fn error_policy(room: Arc<CachedRoom>, error: &Error, ctx: Arc<Context>) -> Action {
    if let Error::Finalizer(kube::Error::Api(status)) = error
        && status.code == 404
    {
        // The finalizer of an object that is already gone (a stale cached copy): nothing left to do.
        debug!(room = %object_key(&*room), "the object is gone");
        return Action::await_change();
    }
    warn!(room = %object_key(&*room), error = %error, "reconcile failed");
    // A deletion that ZIM refuses for good (auth, app disabled) waits for a person: retry slowly.
    let slow = matches!(error, Error::Cleanup(CleanupError::Zim { source, .. }) if matches!(source.class(), Class::Terminal(_)));
    Action::requeue(ctx.objects.backoff(&*room, slow))
}
