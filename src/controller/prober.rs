//! The periodic existence prober — the safety net under ZEGO's callbacks: each converged room is re-checked about
//! once per resync period through the reconcile core's probe (QueryRoomUserList), outside the reconcile slots
//! and at background priority on the ZIM limiter, so re-checks never delay a new manifest or a callback's
//! re-check. A vanished room, or one whose credentials fail, is handed back to the Controller (a vanished room
//! is recreated without a second probe).
//!
//! **Within budget.** The prober may use `probe_budget` calls per second per app (its share of
//! QueryRoomUserList's rate). Each app's probes are paced at that rate; when an app has more rooms than the
//! budget covers in one period, its *effective* period stretches to rooms ÷ budget (said once in the log and
//! exported as `zim_operator_probe_effective_period_seconds`, the longest over the apps) instead of falling
//! behind without a sign.
//!
//! **After a start** converged rooms are not probed by the workers: the prober gives each a first probe at a
//! uniformly random point of its first (effective) period, so a restart with 100 000 rooms costs one probe per
//! room per period, spread evenly. A room a reconcile has just checked (created, recreated, converged) is first
//! probed one period later.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use rand::Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::cached::CachedRoom;
use super::object_ref;
use crate::backoff::jitter;
use crate::crd::ZimRoom;
use crate::metrics::ProbeResult;
use crate::reconcile::decide::probe::{self, ProbeVerdict};
use crate::reconcile::decide::{occupied, stale};
use crate::zim::types::RoomProbe;
use kube::Api;
use kube::api::{Patch, PatchParams};

use super::status::FIELD_MANAGER;
use crate::zim::limiter::{CallTag, Priority, tagged};

use super::{Context, object_key};

/// Probes waiting or running at once, at most (they are paced before they start, so few ever wait).
const MAX_IN_FLIGHT: usize = 32;

/// The period one app's rooms are probed at: the configured one, or longer when the budget does not cover them.
pub(crate) fn effective_period(rooms: usize, period: Duration, budget: Option<f64>) -> Duration {
    match budget {
        Some(b) if b > 0.0 => period.max(Duration::from_secs_f64(rooms as f64 / b)),
        _ => period,
    }
}

/// One app's pacing: the earliest moment its next probe may start, and whether its period is stretched.
struct Pace {
    next: Instant,
    stretched: bool,
}

impl Pace {
    /// Whether one more probe may start at `now`, at most one per `interval` on average. Unused budget carries
    /// over for one `tick` only (a tick's worth of probes may start together; the ZIM limiter spaces them).
    fn admit(&mut self, now: Instant, tick: Duration, interval: Duration) -> bool {
        if self.next > now {
            return false;
        }
        self.next = self.next.max(now.checked_sub(tick).unwrap_or(now)) + interval;
        true
    }

    /// Charges `n` probes made outside the prober (callback re-checks of the app's rooms) to the pace: the
    /// periodic probes that follow start `n` intervals later, so both together stay within the budget.
    fn charge(&mut self, now: Instant, tick: Duration, interval: Duration, n: u32) {
        self.next = self.next.max(now.checked_sub(tick).unwrap_or(now)) + interval * n;
    }
}

/// Re-checks each converged room's existence about once per (effective) period until `shutdown`.
pub(crate) async fn probe_loop(
    ctx: Arc<Context>,
    stores: Vec<Store<CachedRoom>>,
    shutdown: CancellationToken,
) {
    // Each converged room's next probe, and the last pass that saw it converged (older entries are dropped).
    let mut due: HashMap<ObjectRef<CachedRoom>, (Instant, u64)> = HashMap::new();
    let mut pass = 0u64;
    let mut paces: HashMap<u32, Pace> = HashMap::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let resync = ctx.config.resync;
    let budget = ctx.config.probe_budget;
    ctx.metrics.prober.set_periods(resync, resync);
    // A persistent interval: completions of in-flight probes must never starve the scheduling pass. Each pass
    // walks every cached object, so passes are spaced (up to 5 s; the pace carries a tick's budget over).
    let tick = (resync / 20).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut ticks = tokio::time::interval(tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut probes = tokio::task::JoinSet::new();
    let mut warmed = false;
    // With callbacks served, the Secrets whose first room after a start was probed at once: its answer proves the
    // Secret's server secret, and so lets its callbackSecret verify callbacks (`decide::callback`) within seconds
    // of a start. Without callbacks nothing needs the proof that soon: every first probe is spread.
    let mut proving: HashSet<super::credentials::SecretKey> = HashSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticks.tick() => {}
        }
        while probes.try_join_next().is_some() {}
        let now = Instant::now();
        pass += 1;
        // One pass over the caches: the Secrets and apps objects refer to (for warming the credentials cache and
        // evicting unused last good credentials), and each app's converged rooms.
        let mut used = HashSet::new();
        let mut apps = HashSet::new();
        let mut by_app: HashMap<u32, Vec<Arc<CachedRoom>>> = HashMap::new();
        let mut present = HashSet::new();
        let mut uids = HashSet::new();
        for room in stores.iter().flat_map(Store::state) {
            let (ns, name) = (room.metadata.namespace.as_deref(), room.metadata.name.as_deref());
            present.insert(crate::metrics::room_key(ns.unwrap_or_default(), name.unwrap_or_default()));
            uids.extend(room.metadata.uid.as_deref().map(super::objects::uid_key));
            used.extend(ctx.credentials.secret_key(&*room));
            let app = room.app_id();
            apps.extend(app);
            if room.is_converged() {
                by_app.entry(app.unwrap_or(0)).or_default().push(room);
            }
        }
        if !warmed && stores.iter().all(|s| s.wait_until_ready().now_or_never().is_some()) {
            // Once after a start: read every Secret in use, so the callback secrets of every app are known.
            ctx.credentials.warm(used.iter().cloned()).await;
            warmed = true;
        }
        let mut longest = resync;
        // The pacing of apps that no longer have converged rooms goes (apps come and go).
        paces.retain(|app, _| by_app.contains_key(app));
        let mut charges = ctx.take_probe_charges();
        for (app, rooms) in by_app {
            let period = effective_period(rooms.len(), resync, budget);
            longest = longest.max(period);
            let pace = paces.entry(app).or_insert(Pace { next: now, stretched: false });
            let stretched = period > resync;
            if stretched != pace.stretched {
                pace.stretched = stretched;
                if stretched {
                    warn!(
                        app_id = app,
                        rooms = rooms.len(),
                        budget_per_second = budget.unwrap_or(0.0),
                        period_seconds = resync.as_secs_f64(),
                        effective_period_seconds = period.as_secs_f64(),
                        "more rooms than the probe budget covers in one resync period: each room is re-checked about once per effective period instead (callbacks still bring vanished rooms back at once)"
                    );
                } else {
                    info!(
                        app_id = app,
                        rooms = rooms.len(),
                        "the probe budget covers the resync period again"
                    );
                }
            }
            let interval = budget.filter(|b| *b > 0.0).map(|b| Duration::from_secs_f64(1.0 / b));
            if let (Some(n), Some(interval)) = (charges.remove(&app), interval) {
                pace.charge(now, tick, interval, n);
            }
            for room in rooms {
                let key = object_ref(&*room);
                // A room's first probe: after a start (the workers did not probe it), a uniformly random point of
                // its first period — at once for the first room of each Secret when callbacks are served —; after a
                // reconcile (which just checked it), one period on. Later ones one period on, ±10 %.
                let (next, last_pass) = due.entry(key).or_insert_with(|| {
                    let first = if ctx.objects.take_handed_at_start(&*room) {
                        let proves = ctx.config.callbacks
                            && ctx.credentials.secret_key(&*room).is_some_and(|k| proving.insert(k));
                        if proves { now } else { now + period.mul_f64(rand::rng().random::<f64>()) }
                    } else {
                        now + jitter(period, 0.1)
                    };
                    (first, pass)
                });
                *last_pass = pass;
                if *next > now {
                    continue;
                }
                if let Some(interval) = interval
                    && !pace.admit(now, tick, interval)
                {
                    continue;
                }
                *next = now + jitter(period, 0.1);
                let ctx = ctx.clone();
                let permits = permits.clone();
                let tag = CallTag {
                    tenant: room.namespace().unwrap_or_default().into(),
                    priority: Priority::Background,
                };
                probes.spawn(tagged(tag, async move {
                    let Ok(_permit) = permits.acquire_owned().await else { return };
                    probe_one(&ctx, &room.room()).await;
                }));
            }
        }
        ctx.metrics.prober.set_periods(resync, longest);
        due.retain(|_, (_, last_pass)| *last_pass == pass);
        // Objects that went without the operator's cleanup (a finalizer removed by hand) leave the room gauges.
        ctx.metrics.rooms.retain(|key| present.contains(&key));
        // And this process's state of them (deleted, out of the label selector, gone with the CRD).
        ctx.objects.retain(|uid| uids.contains(&uid));
        // Registrations of operator users unused for an hour (apps that went away), and the policy fingerprints
        // of deleted Namespaces.
        // Proofs last three resync periods: each Secret's rooms are probed at least once a period (more with
        // jitter), which proves it again before it could lapse.
        ctx.reconciler.sweep_registrations(resync * 3);
        ctx.sweep_policies();
        // Last good credentials of deleted Secrets stay only while an object still refers to them.
        let evicted = ctx.credentials.evict_unused(&used, &apps);
        if evicted > 0 {
            info!(evicted, "dropped the last good credentials of deleted Secrets that no ZimRoom uses");
        }
    }
    while probes.join_next().await.is_some() {}
}

/// Probes one room, as [`decide::probe`] decides: only in the AppId its status records; a vanished room goes to
/// the Controller, recreated without another probe; a failure a person must fix (revoked credentials) goes to the
/// Controller too, whose reconcile reports it on the status; credentials that now name another app make no call
/// (the reconcile reports `AppIdChanged`).
async fn probe_one(ctx: &Context, room: &ZimRoom) {
    let object = object_ref(room);
    let Ok(credentials) = ctx.credentials.for_room(room).await else {
        ctx.trigger(object);
        return;
    };
    let recorded = room.status.as_ref().and_then(|s| s.app_id);
    if !probe::may_probe(recorded, credentials.credentials.app_id) {
        info!(room = %object_key(room), "the credentials now name another app; handing the room to the controller");
        ctx.request_recheck(room);
        return;
    }
    let result = ctx.reconciler.probe(room, &credentials).await;
    ctx.metrics.prober.probed(match &result {
        Ok(RoomProbe::Exists { .. }) => ProbeResult::Exists,
        Ok(RoomProbe::Missing) => ProbeResult::Gone,
        Err(_) => ProbeResult::Error,
    });
    if let Ok(RoomProbe::Exists { members }) = result {
        record_members(ctx, room, members).await;
    }
    let exists = result.as_ref().map(|p| *p != RoomProbe::Missing);
    match probe::after_probe(exists.map_err(|e| e.class())) {
        ProbeVerdict::Exists | ProbeVerdict::Retry => {}
        ProbeVerdict::Gone => {
            info!(room = %object_key(room), "room vanished; handing it to the controller");
            ctx.hand_over_absent(room);
        }
        ProbeVerdict::Report => {
            info!(room = %object_key(room), "the probe failed for good; handing the room to the controller to report it");
            ctx.request_recheck(room);
        }
    }
}

/// Records a probe's member count: on the room gauges, and on the status when it differs from the count the
/// status shows (`status.occupancy`, exact). A room whose count stays costs no write; one that changes, at most
/// one per probe, so one per resync period; an empty room whose status shows no count yet (converged before this
/// version) is not written until someone enters. The write is a merge patch of `status.occupancy` alone, with the
/// copy's resourceVersion as a precondition: a status changed meanwhile (a reconcile) is left alone, and the next
/// probe counts again.
async fn record_members(ctx: &Context, room: &ZimRoom, members: u64) {
    let ns = room.metadata.namespace.as_deref().unwrap_or_default();
    let name = room.metadata.name.as_deref().unwrap_or_default();
    ctx.metrics.rooms.set_members(&object_key(room), ns, members);
    if members == 0 && room.status.as_ref().is_none_or(|s| s.occupancy.is_none()) {
        // A room converged before occupancy was recorded, and still empty: no write (an upgrade would otherwise
        // rewrite every room's status once); its count is written when someone enters.
        return;
    }
    let mut status = room.status.clone().unwrap_or_default();
    if !occupied::observe(&mut status, members, &crate::now()) {
        return;
    }
    let patch = serde_json::json!({
        "metadata": {"resourceVersion": room.metadata.resource_version},
        "status": {"occupancy": status.occupancy},
    });
    let api: Api<ZimRoom> = Api::namespaced(ctx.client.clone(), ns);
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    let patch = Patch::Merge(&patch);
    let write = api.patch_status(name, &params, &patch);
    match tokio::time::timeout(ctx.config.write_timeout, write).await {
        Ok(Ok(written)) => {
            ctx.metrics.reconcile.status_writes.inc();
            let version = written.metadata.resource_version.as_deref().and_then(stale::parse);
            ctx.objects.written(room, version);
        }
        Ok(Err(kube::Error::Api(e))) if e.code == 409 || e.code == 404 => {}
        Ok(Err(e)) => warn!(room = %object_key(room), error = %e, "could not record the member count"),
        Err(_) => warn!(room = %object_key(room), "recording the member count timed out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_effective_period_stretches_only_past_the_budget() {
        let hour = Duration::from_secs(3600);
        assert_eq!(effective_period(1000, hour, Some(16.0)), hour);
        assert_eq!(effective_period(100_000, hour, Some(16.0)), Duration::from_secs(6250));
        assert_eq!(effective_period(100_000, hour, None), hour);
    }

    /// Ticks of 400 ms with a budget of 392/s admit about 392 probes a second, never more.
    #[test]
    fn the_pace_admits_the_budget_per_tick() {
        let (tick, interval) = (Duration::from_millis(400), Duration::from_secs_f64(1.0 / 392.0));
        let start = Instant::now();
        let mut pace = Pace { next: start, stretched: false };
        let mut admitted = 0;
        for t in 1..=25 {
            let now = start + tick * t;
            while pace.admit(now, tick, interval) {
                admitted += 1;
            }
        }
        // 10 s of ticks (plus the first tick's carried-over budget).
        assert!((3920..=4080).contains(&admitted), "{admitted} probes in 10 s at 392/s");
    }

    /// Callback re-checks charged to an app's pace delay its periodic probes by as many intervals: at 10/s, 20
    /// charged re-checks leave the prober 2 s of budget less.
    #[test]
    fn charged_rechecks_come_out_of_the_budget() {
        let (tick, interval) = (Duration::from_millis(100), Duration::from_millis(100));
        let start = Instant::now();
        let mut pace = Pace { next: start, stretched: false };
        pace.charge(start, tick, interval, 20);
        let mut admitted = 0;
        for t in 1..=50 {
            let now = start + tick * t;
            while pace.admit(now, tick, interval) {
                admitted += 1;
            }
        }
        // 5 s at 10/s is 50 probes, less the 20 charged.
        assert!((29..=31).contains(&admitted), "{admitted} periodic probes in 5 s after 20 charged");
    }
}
