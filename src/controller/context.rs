//! The controller's configuration, the state shared by every reconcile, and the error of one reconcile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::PartialObjectMeta;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::finalizer::Error as FinalizerError;
use kube::runtime::reflector::{ObjectRef, Store};

use super::cached::CachedRoom;
use super::object_ref;
use crate::admin::Health;
use crate::crd::ZimRoom;
use crate::lock;
use crate::metrics::Metrics;
use crate::reconcile::{CleanupError, DefaultCredentialsScope, ErrorCategory, Note, Policy, Reconciler};

use super::credentials::CredentialCache;
use super::objects::{Cleaned, Objects};
use super::status::{WriteError, publish};

/// How the controller runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Namespaces to watch; empty for all.
    pub namespaces: Vec<String>,
    /// Only ZimRooms matching this label selector.
    pub label_selector: Option<String>,
    /// Reconciles at once, across all namespaces (a fair gate: namespaces take turns for free slots).
    pub concurrency: u16,
    /// How often a converged room's existence is re-checked (jittered ±10 %).
    pub resync: Duration,
    /// The default credentials Secret (namespace, name).
    pub default_secret: Option<(String, String)>,
    /// Existence probes per second per app the prober may use (its share of QueryRoomUserList's budget);
    /// `None`: no limit (ZIM calls are not rate limited).
    pub probe_budget: Option<f64>,
    /// Which namespaces may use the default Secret when not annotated.
    pub default_credentials_scope: DefaultCredentialsScope,
    /// When set, the only Secret names the operator may read: watched one name at a time.
    pub secret_names: Vec<String>,
    /// Retry period after a terminal failure.
    pub slow_retry: Duration,
    /// How often a deletion waiting for an occupied room counts its members again.
    pub occupied_recheck: Duration,
    /// Bound on each status write.
    pub write_timeout: Duration,
    /// The seal key's Secret, whose legacy records the leader seals (see `seal_key`); `None`: no sweep.
    pub seal_secret: Option<super::SealSecret>,
    /// ZEGO callbacks are served (`--callback-addr`): after a start the prober proves each Secret at once, so its
    /// callbackSecret verifies within seconds.
    pub callbacks: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            namespaces: Vec::new(),
            label_selector: None,
            concurrency: 16,
            resync: Duration::from_secs(600),
            default_secret: None,
            probe_budget: None,
            default_credentials_scope: DefaultCredentialsScope::All,
            secret_names: Vec::new(),
            slow_retry: Duration::from_secs(3600),
            occupied_recheck: crate::reconcile::decide::occupied::RECHECK,
            write_timeout: Duration::from_secs(10),
            seal_secret: None,
            callbacks: false,
        }
    }
}

/// Errors of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object has no namespace.
    #[error("ZimRoom has no namespace")]
    MissingNamespace,
    /// The object has no name.
    #[error("ZimRoom has no name")]
    MissingName,
    /// A status write failed.
    #[error(transparent)]
    WriteStatus(#[from] WriteError),
    /// Deletion could not finish.
    #[error(transparent)]
    Cleanup(#[from] CleanupError),
    /// The finalizer could not be added or removed.
    #[error("updating the finalizer failed: {0}")]
    Finalizer(#[source] kube::Error),
    /// The finalizer name is not a valid one (a programming error, never a user's).
    #[error("invalid finalizer name")]
    InvalidFinalizer,
    /// The object's Namespace is not in the operator's cache (yet): its policy is unknown, so nothing is done.
    #[error(
        "the policy of namespace {0} is unknown (its Namespace is not in the operator's cache; check the operator's RBAC for namespaces)"
    )]
    PolicyUnknown(String),
    /// Not a failure: the deletion waits for an occupied room (or drains it), so the finalizer stays; the
    /// controller looks again after the duration. Never counted as a failed reconcile.
    #[error("the deletion waits for the room to empty; next look in {0:?}")]
    Waiting(std::time::Duration),
}

impl Error {
    /// The metrics category.
    pub fn category(&self) -> ErrorCategory {
        match self {
            Error::Cleanup(CleanupError::NoCredentials { .. }) => ErrorCategory::Credentials,
            Error::Cleanup(CleanupError::Zim { source, .. }) => {
                crate::reconcile::failure::zim_failure(source.class(), source.code(), false).category
            }
            Error::MissingNamespace | Error::MissingName => ErrorCategory::InvalidSpec,
            Error::WriteStatus(_)
            | Error::Finalizer(_)
            | Error::InvalidFinalizer
            | Error::PolicyUnknown(_) => ErrorCategory::Kubernetes,
            Error::Cleanup(CleanupError::Occupancy { source, .. }) => {
                crate::reconcile::failure::zim_failure(source.class(), source.code(), false).category
            }
            Error::Waiting(_) => ErrorCategory::Transient,
        }
    }

    pub(super) fn from_finalizer(e: FinalizerError<Error>) -> Self {
        match e {
            FinalizerError::ApplyFailed(e) | FinalizerError::CleanupFailed(e) => e,
            FinalizerError::AddFinalizer(e) | FinalizerError::RemoveFinalizer(e) => Error::Finalizer(e),
            FinalizerError::UnnamedObject => Error::MissingName,
            FinalizerError::InvalidFinalizer => Error::InvalidFinalizer,
        }
    }
}

/// Where to queue an object for a reconcile: the Controller of its scope (a namespace, or `None` for all).
pub(crate) type Triggers = HashMap<Option<String>, tokio::sync::mpsc::Sender<ObjectRef<CachedRoom>>>;

/// Which Namespace events re-queue the namespace's rooms.
#[derive(Debug, Default)]
pub(super) struct PolicySeen {
    /// The policy fingerprint of each Namespace seen.
    fingerprints: HashMap<String, u64>,
    /// Namespaces whose policy a reconcile found unknown (not in the cache yet).
    waiters: std::collections::HashSet<String>,
}

impl PolicySeen {
    /// A reconcile found `ns`'s policy unknown.
    pub(super) fn waiting(&mut self, ns: &str) {
        self.waiters.insert(ns.to_owned());
    }

    /// Whether `ns`, now in the cache with policy `fingerprint`, must have its rooms re-queued: when its policy
    /// changed since it was last seen, or at its first sight if a reconcile found its policy unknown. A first sight
    /// otherwise re-queues nothing: a start's listing is not a change, and a reconcile that got there first waited
    /// for the listing and read the policy (a re-queue would probe its room a second time). A re-listing after a
    /// watch error re-queues only the namespaces whose policy changed meanwhile.
    pub(super) fn changed(&mut self, ns: &str, fingerprint: u64) -> bool {
        match self.fingerprints.insert(ns.to_owned(), fingerprint) {
            Some(before) => before != fingerprint,
            None => self.waiters.remove(ns),
        }
    }

    /// Forgets the fingerprints of Namespaces `live` does not hold (deleted ones).
    pub(super) fn retain(&mut self, live: impl Fn(&str) -> bool) {
        self.fingerprints.retain(|ns, _| live(ns));
    }
}

/// The running controllers' caches and queues.
pub(super) struct Wiring {
    /// The ZimRoom watch caches (claims are decided from them).
    pub(super) stores: Vec<Store<CachedRoom>>,
    /// The Namespace caches (metadata only), for each namespace's policy.
    pub(super) namespaces: Vec<Store<PartialObjectMeta<Namespace>>>,
    /// Where to queue an object for a reconcile, per scope (a namespace, or `None` for all).
    pub(super) triggers: Triggers,
}

/// The ZimRoom CRD's name.
pub(super) const CRD_NAME: &str = "zimrooms.zim.zego.im";

/// Shared state of every reconcile.
pub struct Context {
    pub(super) client: Client,
    pub(super) reconciler: Reconciler,
    pub(super) recorder: Recorder,
    pub(super) metrics: Arc<Metrics>,
    pub(super) health: Arc<Health>,
    pub(super) config: Config,
    pub(super) credentials: Arc<CredentialCache>,
    /// Reconciles at once (`--concurrency`), shared fairly between namespaces.
    pub(super) gate: super::fair::FairGate,
    /// What this process remembers of each object (first sight, hand-over at a start, found gone, re-check,
    /// backoff), by UID.
    pub(super) objects: Objects,
    /// The caches and queues of the running controllers, set once when they start.
    wiring: std::sync::OnceLock<Wiring>,
    /// Which Namespace events re-queue the namespace's rooms.
    policy_seen: Mutex<PolicySeen>,
    /// Objects whose cleanup this process finished (see [`Cleaned`]).
    cleaned: Mutex<Cleaned>,
    /// Claims granted to objects not cached with their room yet (see `claims.rs`).
    pub(super) claiming: super::claims::InFlight,
    /// Whether the ZimRoom CRD is being deleted, and when that was last read.
    crd_deleting: Mutex<Option<(std::time::Instant, bool)>>,
    /// Callback re-checks per app not yet charged to the prober's pacing.
    probe_charges: Mutex<HashMap<u32, u32>>,
    /// The rooms (AppId, roomId) whose deletion waits for them to empty: a `room_exit` callback re-checks them.
    awaiting_exit: Mutex<std::collections::HashSet<(u32, String)>>,
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
            credentials: Arc::new(CredentialCache::new(client.clone(), config.default_secret.clone())),
            gate: super::fair::FairGate::new(usize::from(config.concurrency)),
            client,
            reconciler,
            metrics,
            health,
            config,
            objects: Objects::default(),
            wiring: std::sync::OnceLock::new(),
            policy_seen: Mutex::default(),
            cleaned: Mutex::default(),
            claiming: Default::default(),
            crd_deleting: Mutex::default(),
            probe_charges: Mutex::default(),
            awaiting_exit: Mutex::default(),
        }
    }

    /// Whether the ZimRoom CRD itself is being deleted (an uninstall: the API server then deletes every ZimRoom).
    /// Read at most every 2 s, so a mass deletion costs few API calls. An unreadable CRD counts as not deleted
    /// (and is logged): deletions then follow each object's deletionPolicy, as before.
    pub(super) async fn crd_deleting(&self) -> bool {
        if let Some((at, deleting)) = *lock(&self.crd_deleting)
            && at.elapsed() < Duration::from_secs(2)
        {
            return deleting;
        }
        let api: kube::Api<CustomResourceDefinition> = kube::Api::all(self.client.clone());
        let deleting = match api.get_opt(CRD_NAME).await {
            Ok(Some(crd)) => crd.metadata.deletion_timestamp.is_some(),
            Ok(None) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the ZimRoom CRD; deletions follow each object's deletionPolicy");
                false
            }
        };
        *lock(&self.crd_deleting) = Some((std::time::Instant::now(), deleting));
        deleting
    }

    /// Records the caches and queues of the running controllers (once; a second call is ignored).
    pub(super) fn wire(&self, wiring: Wiring) {
        if self.wiring.set(wiring).is_err() {
            tracing::warn!("the controllers were wired twice; keeping the first");
        }
    }

    /// The policy of namespace `ns`, from its annotations in the cache. Waits a few seconds for the caches'
    /// first listing; a namespace that is still unknown is an error (fail closed: nothing is done without it).
    pub(super) async fn policy(&self, ns: &str) -> Result<Policy, Error> {
        let key = ObjectRef::<PartialObjectMeta<Namespace>>::new(ns);
        let stores = self.wiring.get().map(|w| w.namespaces.clone()).unwrap_or_default();
        for attempt in 0..2 {
            if let Some(found) = stores.iter().find_map(|s| s.get(&key)) {
                let annotations = found.metadata.annotations.as_ref();
                return Ok(Policy::from_namespace(ns, annotations, self.config.default_credentials_scope));
            }
            if attempt == 0 {
                let ready = futures::future::join_all(stores.iter().map(|s| s.wait_until_ready()));
                let _ = tokio::time::timeout(Duration::from_secs(5), ready).await;
            }
        }
        lock(&self.policy_seen).waiting(ns);
        Err(Error::PolicyUnknown(ns.to_owned()))
    }

    /// Whether namespace `ns`, now in the cache with policy `fingerprint`, must have its rooms re-queued (see
    /// [`PolicySeen::changed`]).
    pub(super) fn policy_changed(&self, ns: &str, fingerprint: u64) -> bool {
        lock(&self.policy_seen).changed(ns, fingerprint)
    }

    /// Forgets the policy fingerprints of Namespaces no longer in the (synced) Namespace caches.
    pub(super) fn sweep_policies(&self) {
        use futures::FutureExt;
        let Some(wiring) = self.wiring.get() else { return };
        if !wiring.namespaces.iter().all(|s| s.wait_until_ready().now_or_never().is_some()) {
            return;
        }
        let live: std::collections::HashSet<String> = wiring
            .namespaces
            .iter()
            .flat_map(|s| s.state())
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        lock(&self.policy_seen).retain(|ns| live.contains(ns));
    }

    /// Notes that `room`'s cleanup is done (its finalizer may go).
    pub(super) fn record_cleaned(&self, room: &ZimRoom) {
        if let Some(uid) = room.metadata.uid.as_deref() {
            lock(&self.cleaned).record(uid, std::time::Instant::now());
        }
    }

    /// Whether this process has already cleaned `room` up (this copy is stale: its removal is on its way).
    pub(super) fn was_cleaned(&self, room: &ZimRoom) -> bool {
        room.metadata.uid.as_deref().is_some_and(|uid| lock(&self.cleaned).contains(uid))
    }

    /// The watch caches.
    pub(crate) fn stores(&self) -> Vec<Store<CachedRoom>> {
        self.wiring.get().map(|w| w.stores.clone()).unwrap_or_default()
    }

    /// Queues `object` for a reconcile (e.g. a claimant that takes a room over).
    pub(crate) fn trigger(&self, object: ObjectRef<CachedRoom>) {
        let scope = if self.config.namespaces.is_empty() { None } else { object.namespace.clone() };
        if let Some(tx) = self.wiring.get().and_then(|w| w.triggers.get(&scope))
            && tx.try_send(object).is_err()
        {
            tracing::warn!("the reconcile queue is full; the object is picked up at its next event");
        }
    }

    /// Charges one callback re-check of a room of `app_id` to the app's periodic prober (see
    /// `decide::callback`).
    pub(crate) fn charge_probe(&self, app_id: u32) {
        *lock(&self.probe_charges).entry(app_id).or_default() += 1;
    }

    /// The callback re-checks charged per app since the last call.
    pub(crate) fn take_probe_charges(&self) -> HashMap<u32, u32> {
        std::mem::take(&mut *lock(&self.probe_charges))
    }

    /// The prober found `room`'s room gone: queue it; its reconcile skips the probe.
    pub(super) fn hand_over_absent(&self, room: &impl kube::Resource) {
        self.objects.mark_absent(room);
        self.trigger(object_ref(room));
    }

    /// Queues `room` for a re-check now (a callback said its room was destroyed).
    /// Records that the deletion of room `room_id` of `app_id` waits for it to empty (`true`) or no longer does.
    pub(crate) fn set_awaiting_exit(&self, app_id: u32, room_id: &str, waiting: bool) {
        let mut rooms = lock(&self.awaiting_exit);
        if waiting {
            rooms.insert((app_id, room_id.to_owned()));
        } else {
            rooms.remove(&(app_id, room_id.to_owned()));
        }
    }

    /// Whether a deletion waits for room `room_id` of `app_id` to empty (a `room_exit` callback then re-checks it).
    pub(crate) fn awaits_exit(&self, app_id: u32, room_id: &str) -> bool {
        lock(&self.awaiting_exit).contains(&(app_id, room_id.to_owned()))
    }

    pub(crate) fn request_recheck(&self, room: &impl kube::Resource) {
        self.objects.mark_recheck(room);
        self.trigger(object_ref(room));
    }

    pub(super) async fn note(&self, room: &ZimRoom, warning: bool, reason: &str, message: String) {
        publish(&self.recorder, room, &Note { warning, reason: reason.to_owned(), message }).await;
    }
}

#[cfg(test)]
mod tests {
    use super::PolicySeen;

    #[test]
    fn only_a_policy_change_or_a_waiting_reconcile_re_queues_a_namespace() {
        let mut seen = PolicySeen::default();
        assert!(!seen.changed("a", 1), "a start's listing is not a change");
        assert!(!seen.changed("a", 1), "nor is a re-listing with the same policy");
        assert!(seen.changed("a", 2), "an annotation change is");
        seen.waiting("b");
        assert!(seen.changed("b", 1), "a namespace a reconcile waited for");
        assert!(!seen.changed("b", 1), "once");
        seen.waiting("a");
        assert!(!seen.changed("a", 2), "a known namespace re-queues on a change only");
        // A deleted Namespace is forgotten; seen again (recreated), it is a first sight.
        seen.retain(|ns| ns == "b");
        assert_eq!(seen.fingerprints.len(), 1);
        assert!(seen.changed("a", 3), "seen again: a first sight, which a reconcile had waited for");
        seen.retain(|ns| ns == "b");
        assert!(!seen.changed("a", 3), "a first sight nobody waited for re-queues nothing");
    }
}
