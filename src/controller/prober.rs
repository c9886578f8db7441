//! The periodic existence prober: each converged room is re-checked once per (jittered) resync period through the
//! reconcile core's probe (QueryRoomUserList, on that action's own rate budget), outside the Controller's
//! concurrency slots, so re-checking thousands of rooms never delays a new manifest. A vanished room, or one
//! whose credentials fail, is handed back to the Controller, which recreates it or reports the problem.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::backoff::jitter;
use crate::crd::{ZimRoom, condition};
use crate::metrics::ResultLabel;
use crate::reconcile::conditions;

use super::{Context, object_key};

/// Probes at once, at most.
const MAX_IN_FLIGHT: usize = 32;

/// Whether the prober owns this room: converged for its current generation, not paused, not deleting.
pub(crate) fn is_converged(room: &ZimRoom) -> bool {
    let Some(status) = room.status.as_ref() else { return false };
    room.metadata.deletion_timestamp.is_none()
        && !room.is_paused()
        && status.observed_generation == room.metadata.generation
        && conditions::is_true(&status.conditions, condition::READY)
        && conditions::is_true(&status.conditions, condition::SYNCED)
}

/// Where to hand a room back: the Controller of its scope (a namespace, or `None` for all).
pub(crate) type Triggers = HashMap<Option<String>, mpsc::Sender<ObjectRef<ZimRoom>>>;

/// Re-checks each converged room's existence once per jittered resync period until `shutdown`.
pub(crate) async fn probe_loop(
    ctx: Arc<Context>,
    stores: Vec<Store<ZimRoom>>,
    triggers: Triggers,
    shutdown: CancellationToken,
) {
    let mut due: HashMap<ObjectRef<ZimRoom>, Instant> = HashMap::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    // A persistent interval: completions of in-flight probes must never starve the scheduling pass (a sleep
    // recreated on every loop would be, stretching every room's period during a burst).
    let resync = ctx.config.resync;
    let mut ticks = tokio::time::interval(
        (resync / 20).clamp(std::time::Duration::from_millis(100), std::time::Duration::from_secs(5)),
    );
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Every room is probed once per (jittered) period; the prober does not yet measure falling behind, so the
    // achieved period is reported as the configured one.
    ctx.metrics.set_probe_periods(resync, resync);
    let mut probes = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticks.tick() => {}
        }
        while probes.try_join_next().is_some() {}
        let now = Instant::now();
        let mut seen = HashSet::new();
        // One pass over the caches: the Secrets and apps objects refer to (for evicting unused last good
        // credentials), and the probes that are due.
        let mut used = HashSet::new();
        let mut apps = HashSet::new();
        let mut present = HashSet::new();
        for room in stores.iter().flat_map(Store::state) {
            present.insert(object_key(&room));
            used.extend(ctx.credentials.secret_key(&room));
            apps.extend(room.status.as_ref().and_then(|s| s.app_id));
            if !is_converged(&room) {
                continue;
            }
            let key = ObjectRef::from_obj(&*room);
            seen.insert(key.clone());
            // A room's first probe is spread over half a period to one and a half, so that after a start-up (which
            // probed every room once) the probes do not all fall due together; later ones are ±10 %.
            let next = due.entry(key).or_insert_with(|| now + jitter(resync, 0.5));
            if *next > now {
                continue;
            }
            *next = now + jitter(resync, 0.1);
            let scope = if ctx.config.namespaces.is_empty() { None } else { room.namespace() };
            let trigger = triggers.get(&scope).cloned();
            let ctx = ctx.clone();
            let permits = permits.clone();
            probes.spawn(async move {
                let Ok(_permit) = permits.acquire_owned().await else { return };
                if !probe_one(&ctx, &room).await
                    && let Some(t) = trigger
                {
                    let _ = t.send(ObjectRef::from_obj(&*room)).await;
                }
            });
        }
        due.retain(|k, _| seen.contains(k));
        // Objects that went without the operator's cleanup (a finalizer removed by hand) leave the room gauges.
        ctx.metrics.retain_rooms(|key| present.contains(key));
        // Last good credentials of deleted Secrets stay only while an object still refers to them.
        let evicted = ctx.credentials.evict_unused(&used, &apps);
        if evicted > 0 {
            info!(evicted, "dropped the last good credentials of deleted Secrets that no ZimRoom uses");
        }
    }
    while probes.join_next().await.is_some() {}
}

/// Probes one room; false when the Controller must take over (the room is gone, or its credentials fail).
async fn probe_one(ctx: &Context, room: &ZimRoom) -> bool {
    // The Controller reports credential problems.
    let Ok(credentials) = ctx.credentials.for_room(room).await else { return false };
    let result = ctx.reconciler.probe(room, &credentials).await;
    let label = match &result {
        Ok(true) => "exists",
        Ok(false) => "gone",
        Err(_) => "error",
    };
    ctx.metrics.probes.get_or_create(&ResultLabel { result: label.into() }).inc();
    if let Ok(false) = result {
        info!(room = %object_key(room), "room vanished; handing it to the controller");
        return false;
    }
    true
}
