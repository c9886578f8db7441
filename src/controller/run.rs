//! Starting the controllers: one per watched namespace (or one for all), each fed by a ZimRoom watch filtered to
//! what matters (generation, deletion, finalizers, the `paused` and `reconcile-requested-at` annotations), and
//! re-queued by the Namespace watch (policies) and the Secret watch (credentials); then the prober and the
//! heartbeat that keeps `/readyz` honest.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::PartialObjectMeta;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::cached::CachedRoom;
use crate::reconcile::policy::annotation as policy_annotation;

use super::context::{Triggers, Wiring};
use super::credentials::{key_of, secret_changes};
use super::health::{WATCH_BACKOFF_MAX, WatchHealth};
use super::{Context, cache, error_policy, object_ref, prober, reconcile};

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
pub(super) fn relevant_fields(room: &CachedRoom) -> Option<u64> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    room.metadata.generation.hash(&mut h);
    room.metadata.deletion_timestamp.is_some().hash(&mut h);
    room.metadata.finalizers.hash(&mut h);
    room.paused.hash(&mut h);
    room.reconcile_requested.hash(&mut h);
    Some(h.finish())
}

/// The scopes watched: each namespace of `--namespace`, or the whole cluster (`None`).
pub(super) fn scopes(ctx: &Context) -> Vec<Option<String>> {
    if ctx.config.namespaces.is_empty() {
        vec![None]
    } else {
        ctx.config.namespaces.iter().cloned().map(Some).collect()
    }
}

/// The ZimRooms of `scope` and the watch over them (with the label selector, if any): the controller's watch and
/// a standby's cache are the same.
pub(super) fn room_watch(ctx: &Context, scope: &Option<String>) -> (Api<CachedRoom>, watcher::Config) {
    let api = match scope {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let mut wc = watcher::Config::default();
    if let Some(sel) = &ctx.config.label_selector {
        wc = wc.labels(sel);
    }
    (api, wc)
}

/// The ZimRoom watch of scope number `i`: listed with a streaming list where the server serves one, retried with
/// backoff, reported to `/readyz`, cached in `writer` (only what the operator reads), filtered to the changes that
/// need a reconcile.
async fn room_stream(
    ctx: &Context,
    scope: &Option<String>,
    i: usize,
    health: Arc<WatchHealth>,
    writer: reflector::store::Writer<CachedRoom>,
) -> impl futures::Stream<Item = Result<CachedRoom, watcher::Error>> + Send + 'static {
    let (rooms, wc) = room_watch(ctx, scope);
    let wc = cache::initial_listing(&rooms, wc).await;
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
        // (The objects arrive as CachedRoom: only what the operator reads, see cached.rs.)
        .inspect(move |event| match event {
            Ok(e) => health.event(i, true, matches!(e, watcher::Event::InitDone)),
            Err(e) => {
                match missing_crd_hint(e) {
                    Some(hint) => warn!(error = %e, "ZimRoom watch failed; retrying. {hint}"),
                    None => warn!(error = %e, "ZimRoom watch failed; retrying"),
                }
                health.event(i, false, false);
            }
        })
        .reflect(writer)
        .touched_objects();
    cache::relevant_changes(stream, relevant_fields)
}

/// Secrets: a metadata-only watch (no secret data is held) of the scope, or of each permitted name when the
/// operator may read only named Secrets; plus the default Secret.
fn secret_stream(
    ctx: &Context,
    scope: &Option<String>,
) -> futures::stream::SelectAll<
    futures::stream::BoxStream<'static, Result<PartialObjectMeta<Secret>, watcher::Error>>,
> {
    let secrets_api: Api<PartialObjectMeta<Secret>> = match scope {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let mut streams = Vec::new();
    if ctx.config.secret_names.is_empty() {
        streams
            .push(secret_changes(ctx.credentials.clone(), watcher(secrets_api, watcher::Config::default())));
    } else {
        for name in &ctx.config.secret_names {
            let wc = watcher::Config::default().fields(&format!("metadata.name={name}"));
            streams.push(secret_changes(ctx.credentials.clone(), watcher(secrets_api.clone(), wc)));
        }
    }
    let names = &ctx.config.secret_names;
    if let Some((dns, dname)) = &ctx.config.default_secret
        && !(scope.as_ref().is_none_or(|ns| ns == dns) && (names.is_empty() || names.contains(dname)))
    {
        let api: Api<PartialObjectMeta<Secret>> = Api::namespaced(ctx.client.clone(), dns);
        let wc = watcher::Config::default().fields(&format!("metadata.name={dname}"));
        streams.push(secret_changes(ctx.credentials.clone(), watcher(api, wc)));
    }
    futures::stream::select_all(streams)
}

/// The scope's Namespaces (metadata only), cached in `writer` for each namespace's policy; yields a Namespace
/// whose policy annotations changed (or that a reconcile was waiting for; see `Context::policy_changed`).
fn namespace_stream(
    ctx: &Arc<Context>,
    scope: &Option<String>,
    writer: reflector::store::Writer<PartialObjectMeta<Namespace>>,
) -> impl futures::Stream<Item = Result<PartialObjectMeta<Namespace>, watcher::Error>> + Send + 'static {
    let ns_api: Api<PartialObjectMeta<Namespace>> = Api::all(ctx.client.clone());
    let ns_config = match scope {
        Some(ns) => watcher::Config::default().fields(&format!("metadata.name={ns}")),
        None => watcher::Config::default(),
    };
    let ctx = ctx.clone();
    watcher(ns_api, ns_config)
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .filter_map(move |r| {
            futures::future::ready(match r {
                Ok(ns) => ctx.policy_changed(&ns.name_any(), policy_fingerprint(&ns)).then_some(ns),
                Err(e) => {
                    warn!(error = %e, "Namespace watch failed (the namespaces' policies are unknown until it recovers); retrying");
                    None
                }
            })
        })
        .map(Ok::<_, watcher::Error>)
}

/// The objects of `store` in namespace `ns`.
fn rooms_in(store: &Store<CachedRoom>, ns: &str) -> Vec<ObjectRef<CachedRoom>> {
    store
        .state()
        .into_iter()
        .filter(|room| room.namespace().as_deref() == Some(ns))
        .map(|r| object_ref(&*r))
        .collect()
}

/// Runs the controllers and the prober until `shutdown` is cancelled; in-flight reconciles finish first.
pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken) {
    if let Some(at) = &ctx.config.seal_secret
        && !super::seal_key::install(&ctx.client, at, ctx.reconciler.sealer(), &shutdown).await
    {
        return;
    }
    let scopes = scopes(&ctx);
    let watch_health = Arc::new(WatchHealth::new(ctx.health.clone(), scopes.len()));
    let mut stores = Vec::new();
    let mut ns_stores = Vec::new();
    let mut triggers: Triggers = HashMap::new();
    let mut controllers = Vec::new();
    for (i, scope) in scopes.iter().enumerate() {
        let (reader, writer) = reflector::store();
        let stream = room_stream(&ctx, scope, i, watch_health.clone(), writer).await;
        stores.push(reader.clone());
        let (tx, rx) = mpsc::channel::<ObjectRef<CachedRoom>>(1024);
        triggers.insert(scope.clone(), tx);
        let (ns_reader, ns_writer) = reflector::store::<PartialObjectMeta<Namespace>>();
        ns_stores.push(ns_reader);
        let ns_stream = namespace_stream(&ctx, scope, ns_writer);

        let controller = Controller::for_stream(stream, reader);
        let (ns_store, secret_store) = (controller.store(), controller.store());
        let mapper_ctx = ctx.clone();
        let controller = controller
            .watches_stream(ns_stream, move |ns: PartialObjectMeta<Namespace>| {
                rooms_in(&ns_store, &ns.name_any())
            })
            .watches_stream(secret_stream(&ctx, scope), move |secret: PartialObjectMeta<Secret>| {
                // (The Secret stream has already refreshed or dropped the cached credentials.)
                let key = key_of(&secret);
                secret_store
                    .state()
                    .into_iter()
                    .filter(|room| mapper_ctx.credentials.secret_key(&**room).as_ref() == Some(&key))
                    .map(|room| object_ref(&*room))
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
        controllers.push(
            controller
                .run(reconcile, error_policy, ctx.clone())
                .for_each(|result| {
                    if let Err(e) = result {
                        debug!(error = %e, "controller event");
                    }
                    futures::future::ready(())
                })
                .boxed(),
        );
    }
    // The ZimRoomSet controller, per scope: it manages child ZimRooms only (no ZIM call).
    let set_ctx = Arc::new(crate::roomset::controller::SetContext { client: ctx.client.clone() });
    for scope in &scopes {
        controllers
            .push(crate::roomset::controller::run(set_ctx.clone(), scope.clone(), shutdown.clone()).boxed());
    }
    ctx.wire(Wiring { stores: stores.clone(), namespaces: ns_stores, triggers });
    let sweep = ctx.config.seal_secret.clone().map(|at| {
        let sealer = ctx.reconciler.sealer().clone();
        tokio::spawn(super::seal_key::sweep(ctx.client.clone(), at, sealer, stores.clone(), shutdown.clone()))
    });
    let prober = tokio::spawn(prober::probe_loop(ctx.clone(), stores, shutdown.clone()));
    let heartbeat = tokio::spawn(heartbeat(ctx.clone(), watch_health, shutdown.clone()));
    futures::future::join_all(controllers).await;
    shutdown.cancel();
    let _ = prober.await;
    let _ = heartbeat.await;
    if let Some(sweep) = sweep {
        let _ = sweep.await;
    }
}

/// Every second: a heartbeat for `/healthz`, the watches' readiness refreshed, and every 5 s the API server asked.
async fn heartbeat(ctx: Arc<Context>, watch_health: Arc<WatchHealth>, shutdown: CancellationToken) {
    let mut tick = 0u64;
    loop {
        ctx.health.beat();
        if tick.is_multiple_of(5) {
            watch_health.probe_api(&ctx.client).await;
        } else {
            watch_health.refresh();
        }
        tick += 1;
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
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
    use crate::crd::{PAUSED_ANNOTATION, RECONCILE_REQUESTED_ANNOTATION, ZimRoom, ZimRoomStatus};

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
        let relevant = |room: &ZimRoom| relevant_fields(&CachedRoom::from(room.clone()));
        let before = relevant(&room);
        room.status = Some(ZimRoomStatus { request_id: Some("1".into()), ..Default::default() });
        room.metadata.resource_version = Some("99".into());
        assert_eq!(relevant(&room), before);
        room.metadata.annotations =
            Some([(RECONCILE_REQUESTED_ANNOTATION.to_string(), "now".to_string())].into());
        let requested = relevant(&room);
        assert_ne!(requested, before);
        room.metadata.annotations.as_mut().unwrap().insert(PAUSED_ANNOTATION.into(), "true".into());
        assert_ne!(relevant(&room), requested, "pausing is relevant");
    }
}
