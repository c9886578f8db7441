//! From a verified ZEGO callback to a re-check of the room (the receiver is [`crate::callback`]).
//!
//! A `room_destroy` for (AppId, roomId) names every ZimRoom whose status records that app and room. On the
//! leader each is queued for an immediate re-check (probe at interactive priority, then recreate if it is really
//! gone) — never a write on the callback's word — at most once a second per object, and within the app's
//! callback allowance (a share of its probe budget, charged to its periodic prober: `decide::callback`).
//!
//! **Who verifies.** Only the leader, and only with the callback secrets of Secrets whose server secret ZIM has
//! accepted for the callback's AppId ([`CallbackTrust`]). A standby makes no ZIM call, so it can prove no
//! Secret: it verifies nothing and answers 503, which ZEGO retries (2, 4, 8, 16 and 32 s later); with two
//! replicas the Service spreads the retries over both, so one reaches the leader unless all six deliveries
//! land on the standby, and the periodic poll finds the room in any case. A standby never writes to the API
//! server or calls ZIM on a callback's word.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::cached::CachedRoom;
use super::object_ref;
use crate::callback::{CallbackSecret, CallbackSecrets, Event, RoomEvent, RoomEvents};
use crate::reconcile::decide::callback::{self, Allowance};
use crate::reconcile::proven::Proven;
use crate::zim::Credentials;

use super::Context;

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

/// Takes room events from the callback receiver until `shutdown` and re-checks the objects that record the room.
/// Only the leader acts: a standby's receiver verifies nothing (see [`CallbackTrust`]), and an event taken while
/// this replica does not lead is dropped.
pub(crate) async fn bridge(
    ctx: Arc<Context>,
    mut events: RoomEvents,
    leading: watch::Receiver<bool>,
    shutdown: CancellationToken,
) {
    let rechecks = Arc::new(std::sync::Mutex::new(Rechecks::default()));
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            event = events.recv() => match event {
                Some(e) => e,
                None => break,
            },
        };
        let RoomEvent { app_id, room_id, event: kind } = event;
        if !matches!(kind, Event::RoomDestroy | Event::RoomExit) || !*leading.borrow() {
            continue;
        }
        // room_exit: only the deletions that wait for the room to empty count its members again.
        let objects: Vec<_> = managing(&ctx.stores(), app_id, &room_id)
            .into_iter()
            .filter(|r| kind == Event::RoomDestroy || r.metadata.deletion_timestamp.is_some())
            .collect();
        debug!(app_id, room_id, event = kind.as_str(), objects = objects.len(), "callback: re-checking");
        for object in objects {
            recheck_coalesced(&ctx, &rechecks, object);
        }
    }
}

/// What the callback receiver asks the controller: the callback secrets that verify a callback (only those of
/// Secrets whose server secret ZIM has accepted for the AppId, and only while this replica leads), and whether
/// an app's callback re-check allowance admits one more re-check (charged to the app's periodic prober).
pub(crate) struct CallbackTrust {
    ctx: Arc<Context>,
    leading: watch::Receiver<bool>,
    /// Each app's allowance and when it was last refilled. Only apps with a proven callback secret get here (a
    /// re-check is asked for after verification), so it holds at most the apps in use.
    allowances: std::sync::Mutex<HashMap<u32, (Allowance, Instant)>>,
}

impl CallbackTrust {
    pub(crate) fn new(ctx: Arc<Context>, leading: watch::Receiver<bool>) -> Self {
        Self { ctx, leading, allowances: Default::default() }
    }
}

/// The callback secrets among `candidates` (each with its Secret's credentials) that verify a callback for
/// `app_id`, as [`callback::verifies`] decides.
pub(crate) fn verifying_secrets(
    leading: bool,
    app_id: u32,
    candidates: Vec<(Credentials, CallbackSecret)>,
    proven: &Proven,
) -> Vec<CallbackSecret> {
    candidates
        .into_iter()
        .filter(|(c, _)| callback::verifies(leading, c.app_id, app_id, proven.is_proven(c)))
        .map(|(_, s)| s)
        .collect()
}

impl CallbackSecrets for CallbackTrust {
    fn secrets(&self, app_id: u32) -> Vec<CallbackSecret> {
        let candidates = self.ctx.credentials.callback_candidates(app_id);
        verifying_secrets(self.verifying(), app_id, candidates, self.ctx.reconciler.proven())
    }

    fn verifying(&self) -> bool {
        *self.leading.borrow()
    }

    fn awaits_exit(&self, app_id: u32, room_id: &str) -> bool {
        self.ctx.awaits_exit(app_id, room_id)
    }

    fn admit_recheck(&self, app_id: u32) -> bool {
        let rate = callback::recheck_rate(self.ctx.config.probe_budget);
        let now = Instant::now();
        let mut allowances = crate::lock(&self.allowances);
        let (allowance, at) = allowances.entry(app_id).or_insert_with(|| (Allowance::full(rate), now));
        let admitted = allowance.take(now.duration_since(*at).as_secs_f64(), rate);
        *at = now;
        drop(allowances);
        if admitted {
            self.ctx.charge_probe(app_id);
        }
        admitted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zim::ZimError;

    /// Scenario 5 at unit level: of the Secrets claiming app 7, only the callback secret beside a server secret
    /// ZIM accepted verifies, and only on the leader; a Secret whose server secret changes is proven again.
    #[test]
    fn only_callback_secrets_beside_a_proven_server_secret_verify() {
        let proven = Proven::default();
        let owner = Credentials::new(7, "right");
        let squatter = Credentials::new(7, "wrong");
        let candidates = || {
            vec![
                (owner.clone(), CallbackSecret::new("owner-cb")),
                (squatter.clone(), CallbackSecret::new("squatter-cb")),
                (Credentials::new(8, "other"), CallbackSecret::new("other-cb")),
            ]
        };
        let shown = |v: Vec<CallbackSecret>| v.iter().map(|s| s.expose().to_owned()).collect::<Vec<_>>();
        assert!(verifying_secrets(true, 7, candidates(), &proven).is_empty(), "nothing proven yet");
        proven.observe(&owner, &Ok::<(), ZimError>(()));
        proven.observe(
            &squatter,
            &Err::<(), _>(ZimError::api(
                crate::zim::Action::QueryRoomUserList,
                crate::zim::codes::SIGNATURE_WRONG,
                "m",
                "r",
            )),
        );
        assert_eq!(shown(verifying_secrets(true, 7, candidates(), &proven)), ["owner-cb"]);
        assert!(verifying_secrets(false, 7, candidates(), &proven).is_empty(), "a standby verifies nothing");
        // The owner's Secret gets a new server secret: not proven until ZIM accepts it.
        let rotated = vec![(Credentials::new(7, "rotated"), CallbackSecret::new("owner-cb"))];
        assert!(verifying_secrets(true, 7, rotated.clone(), &proven).is_empty());
        proven.observe(&rotated[0].0, &Ok::<(), ZimError>(()));
        assert_eq!(shown(verifying_secrets(true, 7, rotated, &proven)), ["owner-cb"]);
    }
}
