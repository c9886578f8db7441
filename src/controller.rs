//! kube-runtime wiring: the Controller over ZimRooms, the finalizer, credentials from Secrets, status by
//! server-side apply, events, per-object backoff, and the periodic existence prober.
//!
//! - One Controller per watched namespace (or one for all), fed by a watcher whose events are filtered to what
//!   matters — generation, deletion, finalizers and the `paused` / `reconcile-requested-at` annotations — so the
//!   operator's own status writes never re-trigger it.
//! - `finalizer()` is the single top-level step: Apply runs the reconcile core, Cleanup destroys or orphans.
//! - Credentials come from `spec.credentialsSecretRef` (same namespace only) or the default Secret, are cached,
//!   and the cache entry is dropped when a metadata watch sees the Secret change, which also re-queues every
//!   ZimRoom that uses it. The last good credentials of each Secret stay in memory so deletion can finish after
//!   the Secret is gone.
//! - Converged rooms are not requeued by the Controller. A separate prober re-checks each converged room once per
//!   (jittered) resync period with QueryRoomUserList, on that action's own rate budget and outside the
//!   Controller's concurrency slots, so re-checking thousands of rooms never delays a new manifest. A vanished
//!   room is handed back to the Controller, which recreates it.
//! - Retryable failures back off per object (1 s doubling to 5 min, jittered; unknown codes 30 s to 30 min),
//!   reset on success; terminal failures retry after about an hour, or at once on a spec or Secret change.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{PartialObjectMeta, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use rand::Rng;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::admin::Health;
use crate::crd::{
    FINALIZER, PAUSED_ANNOTATION, RECONCILE_REQUESTED_ANNOTATION, ZimRoom, ZimRoomStatus, condition, reason,
};
use crate::metrics::Metrics;
use crate::reconcile::{
    Cleanup, CleanupError, CredentialsError, IntentSink, Reconciler, Requeue, ResolvedCredentials, conditions,
};
use crate::zim::{Credentials, ZimApi};

/// The field manager of every status write.
pub const FIELD_MANAGER: &str = "zim-operator";

/// How the controller runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Namespaces to watch; empty for all.
    pub namespaces: Vec<String>,
    /// Only ZimRooms matching this label selector.
    pub label_selector: Option<String>,
    /// Reconciles at once.
    pub concurrency: u16,
    /// How often a converged room's existence is re-checked (jittered ±10 %).
    pub resync: Duration,
    /// The default credentials Secret (namespace, name).
    pub default_secret: Option<(String, String)>,
    /// Retry period after a terminal failure.
    pub slow_retry: Duration,
    /// Bound on each status write.
    pub write_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            namespaces: Vec::new(),
            label_selector: None,
            concurrency: 16,
            resync: Duration::from_secs(600),
            default_secret: None,
            slow_retry: Duration::from_secs(3600),
            write_timeout: Duration::from_secs(10),
        }
    }
}

/// Errors of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object has no namespace.
    #[error("ZimRoom has no namespace")]
    MissingNamespace,
    /// A status write failed.
    #[error("writing the status failed: {0}")]
    WriteStatus(String),
    /// Deletion could not finish.
    #[error("{0}")]
    Cleanup(#[from] CleanupError),
    /// The finalizer could not be added or removed.
    #[error("finalizer: {0}")]
    Finalizer(String),
}

impl Error {
    fn category(&self) -> &'static str {
        match self {
            Error::Cleanup(CleanupError::NoCredentials { .. }) => "credentials",
            Error::Cleanup(CleanupError::Zim { source, .. }) => source.class().label(),
            Error::MissingNamespace => "invalid_spec",
            Error::WriteStatus(_) | Error::Finalizer(_) => "kubernetes",
        }
    }
}

type SecretKey = (String, String);

/// Credentials read from Secrets, cached until the Secret changes; plus the last good ones per Secret.
struct CredentialCache {
    client: Client,
    entries: Mutex<HashMap<SecretKey, Result<ResolvedCredentials, CredentialsError>>>,
    last_good: Mutex<HashMap<SecretKey, ResolvedCredentials>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Parses a credentials Secret: `appId` (decimal), `serverSecret`, optional `fromUserId`. Errors never show values.
pub fn parse_secret(name: &str, secret: &Secret) -> Result<ResolvedCredentials, CredentialsError> {
    let invalid =
        |reason: String| CredentialsError::Invalid { source_name: format!("Secret {name}"), reason };
    let data = secret.data.clone().unwrap_or_default();
    let text = |k: &str| -> Result<Option<String>, CredentialsError> {
        match data.get(k) {
            None => Ok(None),
            Some(b) => String::from_utf8(b.0.clone())
                .map(|s| Some(s.trim().to_owned()))
                .map_err(|_| invalid(format!("key {k} is not UTF-8 text"))),
        }
    };
    let app_id = text("appId")?.ok_or_else(|| invalid("key appId is missing".into()))?;
    let app_id: u32 = app_id.parse().map_err(|_| invalid("key appId is not a decimal number".into()))?;
    let secret = text("serverSecret")?.filter(|s| !s.is_empty());
    let secret = secret.ok_or_else(|| invalid("key serverSecret is missing or empty".into()))?;
    let from_user_id = text("fromUserId")?.filter(|s| !s.is_empty());
    Ok(ResolvedCredentials { credentials: Credentials::new(app_id, secret), from_user_id })
}

impl CredentialCache {
    async fn get(&self, key: &SecretKey) -> Result<ResolvedCredentials, CredentialsError> {
        if let Some(hit) = lock(&self.entries).get(key) {
            return hit.clone();
        }
        let (ns, name) = key;
        let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let result = match api.get_opt(name).await {
            Ok(Some(secret)) => parse_secret(&format!("{ns}/{name}"), &secret),
            Ok(None) => Err(CredentialsError::NotFound(format!("Secret {ns}/{name}"))),
            // Not cached: the next attempt asks again.
            Err(e) => {
                return Err(CredentialsError::NotFound(format!("Secret {ns}/{name} (cannot read it: {e})")));
            }
        };
        if let Ok(good) = &result {
            lock(&self.last_good).insert(key.clone(), good.clone());
        }
        lock(&self.entries).insert(key.clone(), result.clone());
        result
    }

    fn invalidate(&self, key: &SecretKey) {
        lock(&self.entries).remove(key);
    }

    fn last_good(&self, key: &SecretKey) -> Option<ResolvedCredentials> {
        lock(&self.last_good).get(key).cloned()
    }
}

/// Shared state of every reconcile.
pub struct Context {
    client: Client,
    reconciler: Reconciler,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    config: Config,
    credentials: CredentialCache,
    failures: Mutex<HashMap<ObjectRef<ZimRoom>, u32>>,
}

impl Context {
    /// Builds the context.
    pub fn new(
        client: Client,
        reconciler: Reconciler,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        config: Config,
        instance: String,
    ) -> Self {
        let reporter = Reporter { controller: "zim-operator".into(), instance: Some(instance) };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            credentials: CredentialCache {
                client: client.clone(),
                entries: Mutex::default(),
                last_good: Mutex::default(),
            },
            client,
            reconciler,
            metrics,
            health,
            config,
            failures: Mutex::default(),
        }
    }

    fn secret_key(&self, room: &ZimRoom) -> Option<SecretKey> {
        match &room.spec.credentials_secret_ref {
            Some(r) => Some((room.namespace().unwrap_or_default(), r.name.clone())),
            None => self.config.default_secret.clone(),
        }
    }

    async fn credentials_for(&self, room: &ZimRoom) -> Result<ResolvedCredentials, CredentialsError> {
        match self.secret_key(room) {
            Some(key) => self.credentials.get(&key).await,
            None => Err(CredentialsError::NotFound(
                "(spec.credentialsSecretRef is unset and the operator has no default credentials Secret)"
                    .into(),
            )),
        }
    }

    fn backoff(&self, room: &ZimRoom, slow: bool) -> Duration {
        let key = ObjectRef::from_obj(room);
        let n = {
            let mut f = lock(&self.failures);
            let n = f.entry(key).or_insert(0);
            *n += 1;
            *n
        };
        let (base, max) = if slow { (30.0, 1800.0) } else { (1.0, 300.0) };
        let delay = (base * 2f64.powi(n.saturating_sub(1).min(20) as i32)).min(max);
        jitter(Duration::from_secs_f64(delay), 0.2)
    }

    fn reset_backoff(&self, room: &ZimRoom) {
        lock(&self.failures).remove(&ObjectRef::from_obj(room));
    }

    async fn publish(&self, room: &ZimRoom, warning: bool, reason: &str, message: &str) {
        let mut note = message.to_owned();
        if note.len() > 1000 {
            let mut cut = 1000;
            while !note.is_char_boundary(cut) {
                cut -= 1;
            }
            note.truncate(cut);
        }
        let event = KubeEvent {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.to_owned(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &room.object_ref(&())).await {
            warn!(error = %e, reason, "could not publish an event");
        }
    }

    async fn write_status(
        &self,
        api: &Api<ZimRoom>,
        name: &str,
        status: &ZimRoomStatus,
    ) -> Result<(), Error> {
        let patch = serde_json::json!({
            "apiVersion": "zim.zego.im/v1alpha1",
            "kind": "ZimRoom",
            "status": status,
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let patch = Patch::Apply(&patch);
        let write = api.patch_status(name, &params, &patch);
        match tokio::time::timeout(self.config.write_timeout, write).await {
            Ok(Ok(_)) => {
                self.metrics.status_writes.inc();
                Ok(())
            }
            Ok(Err(e)) => Err(Error::WriteStatus(e.to_string())),
            Err(_) => Err(Error::WriteStatus(format!("timed out after {:?}", self.config.write_timeout))),
        }
    }
}

/// Writes the creation intent to the status before the first CreateRoom.
struct StatusSink<'a> {
    ctx: &'a Context,
    api: &'a Api<ZimRoom>,
    name: &'a str,
}

impl IntentSink for StatusSink<'_> {
    async fn persist_intent(&self, status: &ZimRoomStatus) -> Result<(), String> {
        self.ctx.write_status(self.api, self.name, status).await.map_err(|e| e.to_string())
    }
}

fn jitter(d: Duration, fraction: f64) -> Duration {
    let f = rand::rng().random_range((1.0 - fraction)..=(1.0 + fraction));
    d.mul_f64(f)
}

fn now() -> Time {
    Time(jiff::Timestamp::now())
}

fn object_key(room: &ZimRoom) -> String {
    format!("{}/{}", room.namespace().unwrap_or_default(), room.name_any())
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

/// Whether the prober owns this room: converged for its current generation, not paused, not deleting.
fn is_converged(room: &ZimRoom) -> bool {
    let Some(status) = room.status.as_ref() else { return false };
    room.metadata.deletion_timestamp.is_none()
        && !room.is_paused()
        && status.observed_generation == room.metadata.generation
        && conditions::is_true(&status.conditions, condition::READY)
        && conditions::is_true(&status.conditions, condition::SYNCED)
}

async fn reconcile(room: Arc<ZimRoom>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.health.beat();
    let ns = room.namespace().ok_or(Error::MissingNamespace)?;
    let api: Api<ZimRoom> = Api::namespaced(ctx.client.clone(), &ns);
    let start = Instant::now();
    let result = finalizer(&api, FINALIZER, room.clone(), |event| async {
        match event {
            FinalizerEvent::Apply(room) => apply(&room, &api, &ctx).await,
            FinalizerEvent::Cleanup(room) => cleanup(&room, &api, &ctx).await,
        }
    })
    .await;
    match result {
        Ok(action) => Ok(action),
        Err(
            kube::runtime::finalizer::Error::ApplyFailed(e)
            | kube::runtime::finalizer::Error::CleanupFailed(e),
        ) => {
            ctx.metrics.reconciled(start.elapsed(), Some(e.category()));
            Err(e)
        }
        Err(e) => {
            ctx.metrics.reconciled(start.elapsed(), Some("kubernetes"));
            Err(Error::Finalizer(e.to_string()))
        }
    }
}

async fn apply(room: &ZimRoom, api: &Api<ZimRoom>, ctx: &Context) -> Result<Action, Error> {
    let start = Instant::now();
    let name = room.name_any();
    let credentials = ctx.credentials_for(room).await;
    let sink = StatusSink { ctx, api, name: &name };
    let outcome = ctx.reconciler.reconcile(room, credentials, &sink, now()).await;
    if room.status.as_ref() != Some(&outcome.status) {
        ctx.write_status(api, &name, &outcome.status).await?;
    }
    for note in &outcome.notes {
        ctx.publish(room, note.warning, &note.reason, &note.message).await;
    }
    let ready = outcome.status.conditions.iter().find(|c| c.type_ == condition::READY);
    let ready = ready.map_or("unknown", |c| if c.status == "True" { "true" } else { "false" });
    ctx.metrics.set_ready(&object_key(room), Some(ready));
    ctx.metrics.reconciled(start.elapsed(), outcome.error_category);
    debug!(room = %object_key(room), requeue = ?outcome.requeue, "reconciled");
    Ok(match outcome.requeue {
        Requeue::Resync | Requeue::OnChange => {
            ctx.reset_backoff(room);
            Action::await_change()
        }
        Requeue::Backoff { slow } => Action::requeue(ctx.backoff(room, slow)),
        Requeue::Slow => Action::requeue(jitter(ctx.config.slow_retry, 0.1)),
    })
}

async fn cleanup(room: &ZimRoom, api: &Api<ZimRoom>, ctx: &Context) -> Result<Action, Error> {
    let room_id = room.status.as_ref().and_then(|s| s.room_id.clone()).unwrap_or_else(|| room.room_id());
    let current = ctx.credentials_for(room).await;
    let remembered = ctx.secret_key(room).and_then(|k| ctx.credentials.last_good(&k));
    let credentials = match (&current, &remembered) {
        (Ok(c), _) => Ok(c),
        (Err(_), Some(last)) => Ok(last),
        (Err(e), None) => Err(e.to_string()),
    };
    match ctx.reconciler.cleanup(room, credentials).await {
        Ok(done) => {
            match done {
                Cleanup::Destroyed { request_id } => {
                    let msg = format!("destroyed ZIM room {room_id} (request id {request_id})");
                    info!(room = %object_key(room), "{msg}");
                    ctx.publish(room, false, "Destroyed", &msg).await;
                }
                Cleanup::AlreadyGone => {
                    ctx.publish(room, false, "Destroyed", &format!("ZIM room {room_id} no longer existed"))
                        .await;
                }
                Cleanup::Orphaned => {
                    let msg = format!("left ZIM room {room_id} in place (deletionPolicy Orphan)");
                    ctx.publish(room, false, "Orphaned", &msg).await;
                }
                Cleanup::NeverCreated => {}
            }
            ctx.metrics.set_ready(&object_key(room), None);
            ctx.reset_backoff(room);
            Ok(Action::await_change())
        }
        Err(e) => {
            let message = e.to_string();
            ctx.publish(room, true, "DeletionBlocked", &message).await;
            let mut status = room.status.clone().unwrap_or_default();
            let generation = room.metadata.generation;
            conditions::set(
                &mut status.conditions,
                condition::READY,
                false,
                reason::DELETING,
                &message,
                generation,
                &now(),
            );
            if room.status.as_ref() != Some(&status) {
                // Best effort: the event already says how to unblock.
                let _ = ctx.write_status(api, &room.name_any(), &status).await;
            }
            Err(e.into())
        }
    }
}

fn error_policy(room: Arc<ZimRoom>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(room = %object_key(&room), error = %error, "reconcile failed");
    Action::requeue(ctx.backoff(&room, false))
}

/// How long after the last watch error the operator counts as watching again when no event has arrived since
/// (a resumed watch on a quiet namespace sends nothing). Longer than the watch's longest backoff, so a watch that
/// keeps failing never looks healthy.
const WATCH_ERROR_GRACE: Duration = Duration::from_secs(12);
/// The ZimRoom watch retries quickly, so an outage is noticed and left quickly.
const WATCH_BACKOFF_MAX: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Default)]
struct WatchState {
    synced: bool,
    last_error: Option<Instant>,
}

/// Tracks whether every watch has synced and is healthy, and whether the API server answers, for `/readyz`.
/// A watch cut by an API server that went away does not always report an error, so reachability is probed too.
struct WatchHealth {
    health: Arc<Health>,
    states: Mutex<Vec<WatchState>>,
    reachable: std::sync::atomic::AtomicBool,
}

impl WatchHealth {
    fn event(&self, i: usize, ok: bool, init_done: bool) {
        {
            let mut states = lock(&self.states);
            let s = &mut states[i];
            if ok {
                s.synced |= init_done;
                s.last_error = None;
            } else {
                s.last_error = Some(Instant::now());
            }
        }
        self.refresh();
    }

    fn refresh(&self) {
        let watching = lock(&self.states)
            .iter()
            .all(|s| s.synced && s.last_error.is_none_or(|t| t.elapsed() > WATCH_ERROR_GRACE));
        let reachable = self.reachable.load(std::sync::atomic::Ordering::Relaxed);
        self.health.set_watching(watching && reachable);
    }

    async fn probe_api(&self, client: &Client) {
        let ok = matches!(
            tokio::time::timeout(Duration::from_secs(3), client.apiserver_version()).await,
            Ok(Ok(_))
        );
        if !ok {
            warn!("the Kubernetes API server does not answer");
        }
        self.reachable.store(ok, std::sync::atomic::Ordering::Relaxed);
        self.refresh();
    }
}

/// Runs the controllers and the prober until `shutdown` is cancelled; in-flight reconciles finish first.
pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken) {
    let scopes: Vec<Option<String>> = if ctx.config.namespaces.is_empty() {
        vec![None]
    } else {
        ctx.config.namespaces.iter().cloned().map(Some).collect()
    };
    let watch_health = Arc::new(WatchHealth {
        health: ctx.health.clone(),
        states: Mutex::new(vec![WatchState::default(); scopes.len()]),
        reachable: std::sync::atomic::AtomicBool::new(true),
    });
    let mut stores = Vec::new();
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
                    warn!(error = %e, "ZimRoom watch failed; retrying");
                    wh.event(i, false, false);
                }
            })
            .reflect(writer)
            .touched_objects()
            .predicate_filter(relevant_fields, Default::default());
        stores.push(reader.clone());
        let (tx, rx) = mpsc::channel::<ObjectRef<ZimRoom>>(1024);
        triggers.insert(scope.clone(), tx);

        // Secrets: a metadata-only watch (no secret data is held) of the scope, plus the default Secret.
        let secrets_api: Api<PartialObjectMeta<Secret>> = match scope {
            Some(ns) => Api::namespaced(ctx.client.clone(), ns),
            None => Api::all(ctx.client.clone()),
        };
        let mut secret_streams =
            vec![secret_changes(ctx.clone(), watcher(secrets_api, watcher::Config::default()))];
        if let (Some((dns, dname)), Some(ns)) = (&ctx.config.default_secret, scope)
            && dns != ns
        {
            let api: Api<PartialObjectMeta<Secret>> = Api::namespaced(ctx.client.clone(), dns);
            let wc = watcher::Config::default().fields(&format!("metadata.name={dname}"));
            secret_streams.push(secret_changes(ctx.clone(), watcher(api, wc)));
        }
        let secret_stream = futures::stream::select_all(secret_streams);

        let controller = Controller::for_stream(stream, reader.clone());
        let store = controller.store();
        let mapper_ctx = ctx.clone();
        let controller = controller
            .watches_stream(secret_stream, move |secret: PartialObjectMeta<Secret>| {
                let key = (secret.namespace().unwrap_or_default(), secret.name_any());
                mapper_ctx.credentials.invalidate(&key);
                store
                    .state()
                    .into_iter()
                    .filter(|room| mapper_ctx.secret_key(room).as_ref() == Some(&key))
                    .map(|room| ObjectRef::from_obj(&*room))
                    .collect::<Vec<_>>()
            })
            .reconcile_on(tokio_stream_from(rx))
            .with_config(kube::runtime::controller::Config::default().concurrency(ctx.config.concurrency))
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
    let prober = tokio::spawn(probe_loop(ctx.clone(), stores, triggers, shutdown.clone()));
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

/// Secret changes that should re-queue ZimRooms. The watch's initial listing (at start and after a reconnect)
/// only drops cached credentials: the rooms read them afresh on their next reconcile, and start-up does not
/// reconcile every room a second time.
fn secret_changes(
    ctx: Arc<Context>,
    events: impl futures::Stream<Item = Result<watcher::Event<PartialObjectMeta<Secret>>, watcher::Error>>
    + Send
    + 'static,
) -> futures::stream::BoxStream<'static, Result<PartialObjectMeta<Secret>, watcher::Error>> {
    let key = |s: &PartialObjectMeta<Secret>| (s.namespace().unwrap_or_default(), s.name_any());
    events
        .default_backoff()
        .filter_map(move |event| {
            let out = match event {
                Ok(watcher::Event::Apply(s) | watcher::Event::Delete(s)) => Some(Ok(s)),
                Ok(watcher::Event::InitApply(s)) => {
                    ctx.credentials.invalidate(&key(&s));
                    None
                }
                Ok(_) => None,
                Err(e) => {
                    warn!(error = %e, "Secret watch failed; retrying");
                    None
                }
            };
            futures::future::ready(out)
        })
        .boxed()
}

fn tokio_stream_from<T: Send + 'static>(mut rx: mpsc::Receiver<T>) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Re-checks each converged room's existence once per jittered resync period; hands vanished rooms to the
/// controller. Probes run outside the controller's slots, at most 32 at a time.
async fn probe_loop(
    ctx: Arc<Context>,
    stores: Vec<Store<ZimRoom>>,
    triggers: HashMap<Option<String>, mpsc::Sender<ObjectRef<ZimRoom>>>,
    shutdown: CancellationToken,
) {
    let mut due: HashMap<ObjectRef<ZimRoom>, Instant> = HashMap::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(32));
    // A persistent interval: completions of in-flight probes must never starve the scheduling pass (a sleep
    // recreated on every loop would be, stretching every room's period during a burst).
    let mut ticks = tokio::time::interval(
        (ctx.config.resync / 20).clamp(Duration::from_millis(100), Duration::from_secs(5)),
    );
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut probes = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticks.tick() => {}
        }
        while probes.try_join_next().is_some() {}
        let now = Instant::now();
        let mut seen = std::collections::HashSet::new();
        for store in &stores {
            for room in store.state() {
                if !is_converged(&room) {
                    continue;
                }
                let key = ObjectRef::from_obj(&*room);
                seen.insert(key.clone());
                // A room's first probe is spread over half a period to one and a half, so that after a start-up (which
                // probed every room once) the probes do not all fall due together; later ones are ±10 %.
                let next = due.entry(key.clone()).or_insert_with(|| now + jitter(ctx.config.resync, 0.5));
                if *next > now {
                    continue;
                }
                *next = now + jitter(ctx.config.resync, 0.1);
                let scope = if ctx.config.namespaces.is_empty() { None } else { room.namespace() };
                let trigger = triggers.get(&scope).cloned();
                let ctx = ctx.clone();
                let permits = permits.clone();
                probes.spawn(async move {
                    let Ok(_permit) = permits.acquire_owned().await else { return };
                    let credentials = match ctx.credentials_for(&room).await {
                        Ok(c) => c,
                        Err(_) => {
                            // The controller reports credential problems; hand the room over.
                            if let Some(t) = trigger {
                                let _ = t.send(ObjectRef::from_obj(&*room)).await;
                            }
                            return;
                        }
                    };
                    let room_id = room.status.as_ref().and_then(|s| s.room_id.clone()).unwrap_or_else(|| room.room_id());
                    let result = ctx.reconciler.zim().room_exists(&credentials.credentials, &room_id).await;
                    let label = match &result {
                        Ok(true) => "exists",
                        Ok(false) => "gone",
                        Err(_) => "error",
                    };
                    ctx.metrics.probes.get_or_create(&crate::metrics::ResultLabel { result: label.into() }).inc();
                    if let Ok(false) = result {
                        info!(room = %object_key(&room), room_id, "room vanished; handing it to the controller");
                        if let Some(t) = trigger {
                            let _ = t.send(ObjectRef::from_obj(&*room)).await;
                        }
                    }
                });
            }
        }
        due.retain(|k, _| seen.contains(k));
    }
    while probes.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    #[test]
    fn secret_parsing_names_the_problem_without_values() {
        let secret = |pairs: &[(&str, &[u8])]| Secret {
            data: Some(pairs.iter().map(|(k, v)| (k.to_string(), ByteString(v.to_vec()))).collect()),
            ..Default::default()
        };
        let ok =
            parse_secret("ns/s", &secret(&[("appId", b"123\n"), ("serverSecret", b"topsecret\n")])).unwrap();
        assert_eq!(ok.credentials.app_id, 123);
        assert_eq!(ok.credentials.secret.expose(), "topsecret");
        let err =
            parse_secret("ns/s", &secret(&[("appId", b"x1"), ("serverSecret", b"topsecret")])).unwrap_err();
        assert!(err.to_string().contains("appId is not a decimal number"));
        let err = parse_secret("ns/s", &secret(&[("appId", b"1")])).unwrap_err();
        assert!(err.to_string().contains("serverSecret is missing"));
        let err = parse_secret("ns/s", &secret(&[("appId", b"1"), ("serverSecret", b"\xff")])).unwrap_err();
        assert!(!err.to_string().contains("topsecret"));
    }

    #[test]
    fn status_only_changes_are_not_relevant() {
        let mut room: ZimRoom = serde_yaml::from_str(
            "apiVersion: zim.zego.im/v1alpha1\nkind: ZimRoom\nmetadata: {name: a, namespace: b, generation: 1}\nspec: {}\n",
        )
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
