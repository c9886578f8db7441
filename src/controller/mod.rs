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

mod callbacks;
mod claims;
mod context;
mod credentials;
mod fair;
mod health;
mod objects;
mod prober;
mod status;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::backoff::jitter;
use crate::crd::{FINALIZER, PAUSED_ANNOTATION, RECONCILE_REQUESTED_ANNOTATION, ZimRoom};
use crate::metrics::Readiness;
use crate::now;
use crate::reconcile::decide;
use crate::reconcile::policy::annotation as policy_annotation;
use crate::reconcile::{Cleanup, CleanupError, DeleteFacts, Facts, Requeue};
use crate::zim::Class;
use crate::zim::limiter::{CallTag, Priority, tagged};

pub(crate) use callbacks::bridge as callback_bridge;
pub use context::{Config, Context, Error};
use credentials::{key_of, secret_changes};
use health::{WATCH_BACKOFF_MAX, WatchHealth};

use status::{StatusSink, publish, write_if_changed};

/// A reference to `room` by namespace and name, which is all references compare (and the Controller's queue keys
/// on). Unlike `ObjectRef::from_obj` it copies no resource version and UID: the operator holds one for each object
/// in several sets (prober, first sight, backoff), and builds them often.
pub(crate) fn object_ref(room: &ZimRoom) -> ObjectRef<ZimRoom> {
    let r = ObjectRef::new(room.metadata.name.as_deref().unwrap_or_default());
    match room.metadata.namespace.as_deref() {
        Some(ns) => r.within(ns),
        None => r,
    }
}

fn object_key(room: &ZimRoom) -> String {
    format!("{}/{}", room.namespace().unwrap_or_default(), room.name_any())
}

/// Reconciles the Controller hands to the fair gate at most (per scope). Enough for fairness behind a backlog of
/// this many objects (about 50 s of creations at 20/s) while bounding the memory of reconciles parked at the gate
/// after a start with many objects; past it, further objects wait in the Controller's own queue in arrival order.
const CONTROLLER_IN_FLIGHT: u16 = 1024;

/// The policy annotations of a Namespace: a change to any of them re-queues its ZimRooms.
fn policy_fingerprint(ns: &PartialObjectMeta<Namespace>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let annotations = ns.metadata.annotations.as_ref();
    for key in policy_annotation::ALL {
        annotations.and_then(|a| a.get(key)).hash(&mut h);
    }
    h.finish()
}

/// The parts of a ZimRoom whose change must trigger a reconcile; status writes change none of them.
fn relevant_fields(room: &ZimRoom) -> Option<u64> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    room.metadata.generation.hash(&mut h);
    room.metadata.deletion_timestamp.is_some().hash(&mut h);
    room.metadata.finalizers.hash(&mut h);
    let annotations = room.metadata.annotations.as_ref();
    for key in [PAUSED_ANNOTATION, RECONCILE_REQUESTED_ANNOTATION] {
        annotations.and_then(|a| a.get(key)).hash(&mut h);
    }
    Some(h.finish())
}

/// One reconcile: waits for a slot of the fair gate (round-robin between namespaces), then runs with its ZIM calls
/// tagged by namespace at interactive priority (the ZIM limiter serves namespaces in turn as well).
async fn reconcile(room: Arc<ZimRoom>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = room.namespace().ok_or(Error::MissingNamespace)?;
    let _slot = ctx.gate.enter(&ns).await;
    let tag = CallTag { tenant: ns.as_str().into(), priority: Priority::Interactive };
    // Boxed: a reconcile parked at the gate holds only its object, not the whole reconcile's state.
    Box::pin(tagged(tag, reconcile_now(room, ctx, ns))).await
}

async fn reconcile_now(room: Arc<ZimRoom>, ctx: Arc<Context>, ns: String) -> Result<Action, Error> {
    ctx.health.beat();
    let api: Api<ZimRoom> = Api::namespaced(ctx.client.clone(), &ns);
    let start = Instant::now();
    let result = finalizer(&api, FINALIZER, room.clone(), |event| async {
        match event {
            FinalizerEvent::Apply(room) => apply(&room, &api, &ctx).await,
            FinalizerEvent::Cleanup(room) => cleanup(&room, &api, &ctx).await,
        }
    })
    .await;
    result.map_err(|e| {
        let e = Error::from_finalizer(e);
        ctx.metrics.reconcile.reconciled(start.elapsed(), Some(e.category()));
        e
    })
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
    })
}

async fn apply(room: &ZimRoom, api: &Api<ZimRoom>, ctx: &Context) -> Result<Action, Error> {
    let start = Instant::now();
    let name = room.name_any();
    let facts = gather(room, ctx).await?;
    let timeout = ctx.config.write_timeout;
    let sink = StatusSink { api, name: &name, timeout, metrics: &ctx.metrics };
    let outcome = ctx.reconciler.reconcile(room, &facts, &sink, now()).await;
    if outcome.requeue != Requeue::Prober {
        write_if_changed(api, room, &outcome.status, timeout, &ctx.metrics).await?;
    }
    for note in &outcome.notes {
        publish(&ctx.recorder, room, note).await;
    }
    let readiness = Readiness::of_conditions(&outcome.status.conditions, jiff::Timestamp::now());
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
        Requeue::Backoff { slow } => Action::requeue(ctx.objects.backoff(room, slow)),
        Requeue::Slow => Action::requeue(jitter(ctx.config.slow_retry, 0.1)),
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
        Ok(done) => {
            match done {
                Cleanup::Destroyed { request_id } => {
                    let msg = format!("destroyed ZIM room {room_id} (request id {request_id})");
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
            ctx.objects.forget(room);
            // The next claimant takes the room over once this object is gone.
            if let Some(next) = successor {
                ctx.trigger(next.object);
            }
            Ok(Action::await_change())
        }
        Err(e) => {
            ctx.note(room, true, "DeletionBlocked", e.to_string()).await;
            let status = crate::reconcile::deletion_blocked(room, &e, &now());
            let readiness = Readiness::of_conditions(&status.conditions, jiff::Timestamp::now());
            ctx.metrics.rooms.set_ready(&object_key(room), Some(readiness));
            // Best effort: the event already says how to unblock.
            let _ = write_if_changed(api, room, &status, ctx.config.write_timeout, &ctx.metrics).await;
            Err(e.into())
        }
    }
}

fn error_policy(room: Arc<ZimRoom>, error: &Error, ctx: Arc<Context>) -> Action {
    if let Error::Finalizer(kube::Error::Api(status)) = error
        && status.code == 404
    {
        // The finalizer of an object that is already gone (a stale cached copy): nothing left to do.
        debug!(room = %object_key(&room), "the object is gone");
        return Action::await_change();
    }
    warn!(room = %object_key(&room), error = %error, "reconcile failed");
    // A deletion that ZIM refuses for good (auth, app disabled) waits for a person: retry slowly.
    let slow = matches!(error, Error::Cleanup(CleanupError::Zim { source, .. }) if matches!(source.class(), Class::Terminal(_)));
    Action::requeue(ctx.objects.backoff(&room, slow))
}

/// Runs the controllers and the prober until `shutdown` is cancelled; in-flight reconciles finish first.
pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken) {
    let scopes: Vec<Option<String>> = if ctx.config.namespaces.is_empty() {
        vec![None]
    } else {
        ctx.config.namespaces.iter().cloned().map(Some).collect()
    };
    let watch_health = Arc::new(WatchHealth::new(ctx.health.clone(), scopes.len()));
    let mut stores = Vec::new();
    let mut ns_stores = Vec::new();
    let mut triggers = HashMap::new();
    let mut controllers = Vec::new();
    for (i, scope) in scopes.iter().enumerate() {
        let rooms: Api<ZimRoom> = match scope {
            Some(ns) => Api::namespaced(ctx.client.clone(), ns),
            None => Api::all(ctx.client.clone()),
        };
        let mut wc = watcher::Config::default();
        if let Some(sel) = &ctx.config.label_selector {
            wc = wc.labels(sel);
        }
        let (reader, writer) = reflector::store();
        let wh = watch_health.clone();
        let backoff = watcher::ExponentialBackoff::from(
            backon::ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(500))
                .with_max_delay(WATCH_BACKOFF_MAX)
                .with_factor(2.0)
                .with_jitter()
                .without_max_times(),
        );
        let stream = watcher(rooms, wc)
            .backoff(backoff)
            // The cache keeps only what the operator reads: managedFields and kubectl's last-applied copy of the
            // object are most of an object's size and are never used.
            .modify(|room: &mut ZimRoom| {
                room.metadata.managed_fields = None;
                if let Some(a) = room.metadata.annotations.as_mut() {
                    a.remove("kubectl.kubernetes.io/last-applied-configuration");
                }
            })
            .inspect(move |event| match event {
                Ok(e) => wh.event(i, true, matches!(e, watcher::Event::InitDone)),
                Err(e) => {
                    match missing_crd_hint(e) {
                        Some(hint) => warn!(error = %e, "ZimRoom watch failed; retrying. {hint}"),
                        None => warn!(error = %e, "ZimRoom watch failed; retrying"),
                    }
                    wh.event(i, false, false);
                }
            })
            .reflect(writer)
            .touched_objects()
            .predicate_filter(relevant_fields, Default::default());
        stores.push(reader.clone());
        let (tx, rx) = mpsc::channel::<ObjectRef<ZimRoom>>(1024);
        triggers.insert(scope.clone(), tx);

        // Secrets: a metadata-only watch (no secret data is held) of the scope, or of each permitted name when
        // the operator may read only named Secrets; plus the default Secret.
        let secrets_api: Api<PartialObjectMeta<Secret>> = match scope {
            Some(ns) => Api::namespaced(ctx.client.clone(), ns),
            None => Api::all(ctx.client.clone()),
        };
        let mut secret_streams = Vec::new();
        if ctx.config.secret_names.is_empty() {
            secret_streams.push(secret_changes(
                ctx.credentials.clone(),
                watcher(secrets_api, watcher::Config::default()),
            ));
        } else {
            for name in &ctx.config.secret_names {
                let wc = watcher::Config::default().fields(&format!("metadata.name={name}"));
                secret_streams
                    .push(secret_changes(ctx.credentials.clone(), watcher(secrets_api.clone(), wc)));
            }
        }
        let names = &ctx.config.secret_names;
        if let Some((dns, dname)) = &ctx.config.default_secret
            && !(scope.as_ref().is_none_or(|ns| ns == dns) && (names.is_empty() || names.contains(dname)))
        {
            let api: Api<PartialObjectMeta<Secret>> = Api::namespaced(ctx.client.clone(), dns);
            let wc = watcher::Config::default().fields(&format!("metadata.name={dname}"));
            secret_streams.push(secret_changes(ctx.credentials.clone(), watcher(api, wc)));
        }
        let secret_stream = futures::stream::select_all(secret_streams);

        // The scope's Namespaces (metadata only): each namespace's policy, and a re-queue of its ZimRooms when a
        // policy annotation changes (or when a reconcile was waiting for the Namespace; see
        // Context::policy_changed).
        let ns_api: Api<PartialObjectMeta<Namespace>> = Api::all(ctx.client.clone());
        let ns_config = match scope {
            Some(ns) => watcher::Config::default().fields(&format!("metadata.name={ns}")),
            None => watcher::Config::default(),
        };
        let (ns_reader, ns_writer) = reflector::store::<PartialObjectMeta<Namespace>>();
        ns_stores.push(ns_reader);
        let ns_ctx = ctx.clone();
        let ns_stream = watcher(ns_api, ns_config)
            .default_backoff()
            .reflect(ns_writer)
            .applied_objects()
            .filter_map(move |r| {
                futures::future::ready(match r {
                    Ok(ns) => ns_ctx.policy_changed(&ns.name_any(), policy_fingerprint(&ns)).then_some(ns),
                    Err(e) => {
                        warn!(error = %e, "Namespace watch failed (the namespaces' policies are unknown until it recovers); retrying");
                        None
                    }
                })
            })
            .map(Ok::<_, watcher::Error>);

        let controller = Controller::for_stream(stream, reader.clone());
        let store = controller.store();
        let mapper_ctx = ctx.clone();
        let ns_store = controller.store();
        let controller = controller
            .watches_stream(ns_stream, move |ns: PartialObjectMeta<Namespace>| {
                let name = ns.name_any();
                ns_store
                    .state()
                    .into_iter()
                    .filter(|room| room.namespace().as_deref() == Some(name.as_str()))
                    .map(|room| object_ref(&room))
                    .collect::<Vec<_>>()
            })
            .watches_stream(secret_stream, move |secret: PartialObjectMeta<Secret>| {
                // (The Secret stream has already refreshed or dropped the cached credentials.)
                let key = key_of(&secret);
                store
                    .state()
                    .into_iter()
                    .filter(|room| mapper_ctx.credentials.secret_key(room).as_ref() == Some(&key))
                    .map(|room| object_ref(&room))
                    .collect::<Vec<_>>()
            })
            .reconcile_on(tokio_stream_from(rx))
            // The fair gate in `reconcile` bounds running reconciles at `--concurrency` across scopes; this bound
            // only caps how many wait at the gate (each holds a little memory), see CONTROLLER_IN_FLIGHT.
            .with_config(kube::runtime::controller::Config::default().concurrency(CONTROLLER_IN_FLIGHT))
            .graceful_shutdown_on({
                let s = shutdown.clone();
                async move { s.cancelled().await }
            });
        let ctx = ctx.clone();
        controllers.push(
            controller
                .run(reconcile, error_policy, ctx)
                .for_each(|result| {
                    if let Err(e) = result {
                        debug!(error = %e, "controller event");
                    }
                    futures::future::ready(())
                })
                .boxed(),
        );
    }
    ctx.wire(context::Wiring { stores: stores.clone(), namespaces: ns_stores, triggers });
    let prober = tokio::spawn(prober::probe_loop(ctx.clone(), stores, shutdown.clone()));
    let heartbeat = {
        let health = ctx.health.clone();
        let client = ctx.client.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = 0u64;
            loop {
                health.beat();
                if tick.is_multiple_of(5) {
                    watch_health.probe_api(&client).await;
                } else {
                    watch_health.refresh();
                }
                tick += 1;
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        })
    };
    futures::future::join_all(controllers).await;
    shutdown.cancel();
    let _ = prober.await;
    let _ = heartbeat.await;
}

/// A hint when the API server does not know ZimRooms (404 on the list or watch): the CRD is not installed.
fn missing_crd_hint(e: &watcher::Error) -> Option<&'static str> {
    let status = match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => s.code,
        watcher::Error::WatchError(s) => s.code,
        _ => return None,
    };
    (status == 404).then_some(
        "The API server does not know zimrooms.zim.zego.im: the ZimRoom CRD is not installed. Install it (see the README's \"Install on a cluster\"; `zim-operator crd | kubectl create -f -`), and the operator picks it up",
    )
}

fn tokio_stream_from<T: Send + 'static>(mut rx: mpsc::Receiver<T>) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ZimRoomStatus;

    #[test]
    fn a_missing_crd_gets_a_hint() {
        let not_found = kube::Error::Api(
            kube::core::Status::failure("the server could not find the requested resource", "NotFound")
                .with_code(404)
                .boxed(),
        );
        assert!(
            missing_crd_hint(&watcher::Error::InitialListFailed(not_found))
                .unwrap()
                .contains("CRD is not installed")
        );
        let forbidden =
            kube::Error::Api(kube::core::Status::failure("no", "Forbidden").with_code(403).boxed());
        assert!(missing_crd_hint(&watcher::Error::InitialListFailed(forbidden)).is_none());
    }

    #[test]
    fn status_only_changes_are_not_relevant() {
        let mut room: ZimRoom = serde_json::from_value(serde_json::json!({
            "apiVersion": "zim.zego.im/v1alpha1", "kind": "ZimRoom",
            "metadata": {"name": "a", "namespace": "b", "generation": 1}, "spec": {},
        }))
        .unwrap();
        let before = relevant_fields(&room);
        room.status = Some(ZimRoomStatus { request_id: Some("1".into()), ..Default::default() });
        room.metadata.resource_version = Some("99".into());
        assert_eq!(relevant_fields(&room), before);
        room.metadata.annotations =
            Some([(RECONCILE_REQUESTED_ANNOTATION.to_string(), "now".to_string())].into());
        assert_ne!(relevant_fields(&room), before);
    }
}
