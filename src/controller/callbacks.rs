//! From a verified ZEGO callback to a re-check of the room (the receiver is [`crate::callback`]).
//!
//! A `room_destroy` for (AppId, roomId) names every ZimRoom whose status records that app and room. On the
//! leader each is queued for an immediate re-check (probe at interactive priority, then recreate if it is really
//! gone) — never a write on the callback's word. With two replicas the Service spreads callbacks over both: a
//! standby, which runs no controller, keeps its own cache of ZimRooms to find the objects and nudges each through
//! the API server (the `zim.zego.im/reconcile-requested-at` annotation, which the leader's watch turns into a
//! reconcile), at most once per object every [`NUDGE_COALESCE`]. The standby's cache is dropped when it becomes
//! the leader.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::cached::CachedRoom;
use super::object_ref;
use crate::callback::{Event, RoomEvent, RoomEvents};
use crate::crd::{RECONCILE_REQUESTED_ANNOTATION, ZimRoom};

use super::Context;

/// A standby nudges one object at most this often.
pub(crate) const NUDGE_COALESCE: Duration = Duration::from_secs(2);

/// The leader re-checks one object at most this often for callbacks; callbacks in between (ZEGO's retries, a
/// flood) are folded into one more re-check when the interval ends, so the last one is always followed by a
/// probe that started after it.
pub(crate) const RECHECK_COALESCE: Duration = Duration::from_secs(1);

/// Per object: when its last callback re-check was requested, and whether one more is scheduled.
#[derive(Default)]
struct Rechecks {
    last: HashMap<ObjectRef<CachedRoom>, (Instant, bool)>,
}

/// Requests a re-check of `object` now, or once at the end of its coalescing interval.
fn recheck_coalesced(ctx: &Arc<Context>, state: &Arc<std::sync::Mutex<Rechecks>>, room: Arc<CachedRoom>) {
    let object = object_ref(&*room);
    let now = Instant::now();
    let mut s = crate::lock(state);
    s.last.retain(|_, (at, trailing)| *trailing || now.duration_since(*at) < RECHECK_COALESCE * 10);
    match s.last.get_mut(&object) {
        // One is already scheduled after this callback.
        Some((_, true)) => {}
        Some((at, trailing)) if now.duration_since(*at) < RECHECK_COALESCE => {
            *trailing = true;
            let due = *at + RECHECK_COALESCE;
            let (ctx, state) = (ctx.clone(), state.clone());
            tokio::spawn(async move {
                tokio::time::sleep_until(due).await;
                crate::lock(&state).last.insert(object, (Instant::now(), false));
                ctx.request_recheck(&*room);
            });
        }
        _ => {
            s.last.insert(object, (now, false));
            drop(s);
            ctx.request_recheck(&*room);
        }
    }
}

/// The objects whose status records room `room_id` of app `app_id`.
pub(crate) fn managing(stores: &[Store<CachedRoom>], app_id: u32, room_id: &str) -> Vec<Arc<CachedRoom>> {
    stores
        .iter()
        .flat_map(Store::state)
        .filter(|r| r.app_id() == Some(app_id) && r.status_room_id().unwrap_or(r.room_id_str()) == room_id)
        .collect()
}

/// A standby's cache of the ZimRooms in the operator's scope (the same watches as the controller's), and of the
/// credentials Secrets they use (re-read every minute): the callback secrets to verify callbacks with.
fn standby_cache(ctx: &Arc<Context>) -> (Vec<Store<CachedRoom>>, tokio::task::JoinHandle<()>) {
    let mut stores = Vec::new();
    let mut streams = Vec::new();
    for scope in super::run::scopes(ctx) {
        let (api, wc) = super::run::room_watch(ctx, &scope);
        let (reader, writer) = reflector::store();
        stores.push(reader);
        streams.push(
            watcher(api, wc)
                .default_backoff()
                // (What the leader's cache keeps: see cached.rs.)
                .reflect(writer)
                .boxed(),
        );
    }
    let watching = futures::stream::select_all(streams).for_each(|e| {
        if let Err(e) = e {
            warn!(error = %e, "standby ZimRoom watch (for callbacks) failed; retrying");
        }
        futures::future::ready(())
    });
    let (ctx, readers) = (ctx.clone(), stores.clone());
    let warming = async move {
        for tick in 0u64.. {
            let ready = futures::future::join_all(readers.iter().map(Store::wait_until_ready));
            let _ = ready.await;
            let used: std::collections::HashSet<_> = readers
                .iter()
                .flat_map(Store::state)
                .filter_map(|r| ctx.credentials.secret_key(&*r))
                .collect();
            if tick % 30 == 29 {
                for key in &used {
                    ctx.credentials.invalidate(key);
                }
            }
            ctx.credentials.warm(used).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    };
    let task = tokio::spawn(async move {
        tokio::join!(watching, warming);
    });
    (stores, task)
}

/// Takes room events from the callback receiver until `shutdown`: re-checks on the leader, nudges on a standby.
pub(crate) async fn bridge(
    ctx: Arc<Context>,
    mut events: RoomEvents,
    mut leading: watch::Receiver<bool>,
    shutdown: CancellationToken,
) {
    let mut standby: Option<(Vec<Store<CachedRoom>>, tokio::task::JoinHandle<()>)> = None;
    let mut nudged: HashMap<ObjectRef<CachedRoom>, Instant> = HashMap::new();
    let rechecks = Arc::new(std::sync::Mutex::new(Rechecks::default()));
    loop {
        let is_leader = *leading.borrow_and_update();
        match (is_leader, &standby) {
            (true, Some((_, task))) => {
                task.abort();
                standby = None;
            }
            (false, None) => standby = Some(standby_cache(&ctx)),
            _ => {}
        }
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = leading.changed() => {
                if changed.is_err() {
                    break;
                }
                continue;
            }
            event = events.recv() => match event {
                Some(e) => e,
                None => break,
            },
        };
        let RoomEvent { app_id, room_id, event: kind } = event;
        if kind != Event::RoomDestroy {
            continue;
        }
        if is_leader {
            let objects = managing(&ctx.stores(), app_id, &room_id);
            debug!(app_id, room_id, objects = objects.len(), "room_destroy callback: re-checking");
            for object in objects {
                recheck_coalesced(&ctx, &rechecks, object);
            }
        } else if let Some((stores, _)) = &standby {
            let now = Instant::now();
            nudged.retain(|_, at| now.duration_since(*at) < NUDGE_COALESCE);
            for object in managing(stores, app_id, &room_id).iter().map(|r| object_ref(&**r)) {
                if nudged.contains_key(&object) {
                    continue;
                }
                nudged.insert(object.clone(), now);
                nudge(&ctx, &object).await;
            }
        }
    }
    if let Some((_, task)) = standby {
        task.abort();
    }
}

/// Asks the leader, through the API server, to reconcile `object` now.
async fn nudge(ctx: &Context, object: &ObjectRef<CachedRoom>) {
    let Some(ns) = object.namespace.as_deref() else { return };
    let api: Api<ZimRoom> = Api::namespaced(ctx.client.clone(), ns);
    let stamp = jiff::Timestamp::now().to_string();
    let patch = serde_json::json!({"metadata": {"annotations": {RECONCILE_REQUESTED_ANNOTATION: stamp}}});
    match api.patch(&object.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(r) => {
            debug!(room = %format!("{ns}/{}", r.name_any()), "room_destroy callback on a standby: nudged the leader")
        }
        Err(e) => {
            warn!(error = %e, room = %format!("{ns}/{}", object.name), "could not nudge the leader about a room_destroy callback; the poll will find it")
        }
    }
}
