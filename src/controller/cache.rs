//! What the ZimRoom watch keeps, and how it makes its initial listing.
//!
//! The watch cache holds every ZimRoom in scope for the life of the process, so each byte kept per object is paid
//! 100 000 times on a large cluster. The watch deserializes each object into [`super::cached::CachedRoom`], which
//! first hands it to [`slim`]: only what the operator reads stays (docs/PERFORMANCE.md, P10, says what each field
//! costs), and the cached form then packs it (see cached.rs):
//!
//! - `metadata.name` and `namespace`: every key;
//! - `metadata.uid`: the involved object of events, the memory of finished cleanups, kube's cache keys;
//! - `metadata.generation`, `deletionTimestamp`, `finalizers`: the event filter, the finalizer, convergence;
//! - `metadata.resourceVersion`: the watcher resumes from the version of the last object it saw (the objects are
//!   slimmed inside the watch, as they are deserialized, so the watcher reads this copy);
//! - `metadata.creationTimestamp`: claims (the oldest claimant of a contested room holds it);
//! - the annotations `zim.zego.im/paused` and `zim.zego.im/reconcile-requested-at`;
//! - `spec` and `status`, whole: the next status is built from the cached one and compared with it to skip writes.
//!
//! Dropped: `managedFields`, `labels` (a label selector is applied by the API server), every other annotation
//! (kubectl's last-applied copy of the object among them), `ownerReferences`, `generateName`, `selfLink` and
//! `deletionGracePeriodSeconds`.
//!
//! The initial listing is a streaming list (Kubernetes' WatchList: one watch that sends the current objects one by
//! one, then a bookmark) where the API server serves one, and a paged list otherwise (Kubernetes 1.20 has no
//! streaming lists). [`initial_listing`] asks the server once, at start.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt, TryStreamExt};
use kube::Api;
use kube::api::{WatchEvent, WatchParams};
use kube::runtime::watcher;
use tracing::{debug, info};

use super::cached::CachedRoom;
use crate::crd::{PAUSED_ANNOTATION, RECONCILE_REQUESTED_ANNOTATION, ZimRoom};

/// The annotations the operator reads from a ZimRoom.
pub(crate) const READ_ANNOTATIONS: [&str; 2] = [PAUSED_ANNOTATION, RECONCILE_REQUESTED_ANNOTATION];

/// Keeps of `room` only what the operator reads (see the module's documentation).
pub(crate) fn slim(room: &mut ZimRoom) {
    let meta = &mut room.metadata;
    meta.managed_fields = None;
    meta.labels = None;
    meta.owner_references = None;
    meta.generate_name = None;
    meta.self_link = None;
    meta.deletion_grace_period_seconds = None;
    if let Some(annotations) = meta.annotations.take() {
        // A new map rather than `retain`: an object with many annotations keeps no larger map than one with two.
        let kept: std::collections::BTreeMap<String, String> =
            annotations.into_iter().filter(|(k, _)| READ_ANNOTATIONS.contains(&k.as_str())).collect();
        meta.annotations = (!kept.is_empty()).then_some(kept);
    }
}

/// How long the event filter remembers an object it has not seen since (as kube-runtime's `predicate_filter`).
const CHANGES_TTL: Duration = Duration::from_secs(3600);

/// The identity of an object for [`relevant_changes`]: namespace, name and UID (a new object under an old name is
/// another object).
fn identity(room: &CachedRoom) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    room.metadata.namespace.hash(&mut h);
    room.metadata.name.hash(&mut h);
    room.metadata.uid.hash(&mut h);
    h.finish()
}

/// The objects of `stream` whose `relevant` fingerprint changed since the object was last passed on (and every
/// object the first time, and errors): kube-runtime's `predicate_filter`, with the same one-hour memory, but
/// remembering each object as two integers instead of copies of its namespace, name and UID (about 200 bytes
/// less per object).
pub(crate) fn relevant_changes<S>(
    stream: S,
    relevant: fn(&CachedRoom) -> Option<u64>,
) -> impl Stream<Item = Result<CachedRoom, watcher::Error>>
where
    S: Stream<Item = Result<CachedRoom, watcher::Error>>,
{
    let mut seen = Changes::default();
    stream.filter(move |item| {
        let pass = match item {
            Ok(room) => seen.changed(identity(room), relevant(room), Instant::now()),
            Err(_) => true,
        };
        futures::future::ready(pass)
    })
}

/// The memory of [`relevant_changes`]: per object identity, its last fingerprint and when it was last seen.
#[derive(Default)]
struct Changes {
    last: HashMap<u64, (u64, Instant)>,
    swept: Option<Instant>,
}

impl Changes {
    /// Whether an object with `fingerprint` passes: it is new, or its fingerprint changed, or it has none.
    fn changed(&mut self, identity: u64, fingerprint: Option<u64>, now: Instant) -> bool {
        if self.swept.is_none_or(|at| now.duration_since(at) >= CHANGES_TTL) {
            self.last.retain(|_, (_, seen)| now.duration_since(*seen) < CHANGES_TTL);
            self.swept = Some(now);
        }
        let Some(fingerprint) = fingerprint else { return true };
        match self.last.insert(identity, (fingerprint, now)) {
            // An entry older than the memory's time counts as absent, as in kube-runtime.
            Some((before, seen)) => before != fingerprint || now.duration_since(seen) >= CHANGES_TTL,
            None => true,
        }
    }
}

/// A label selector no object has: the question in [`serves_streaming_lists`] lists nothing.
const NO_OBJECT: &str = "zim.zego.im/streaming-list-check=absent";

/// How long the server has to answer [`serves_streaming_lists`]; no answer counts as no.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the API server serves streaming lists of `api`: a watch asking for the initial events (of no object)
/// must end them with the bookmark that marks their end. A server without streaming lists refuses the request
/// (Kubernetes 1.20: `resourceVersionMatch` is forbidden on a watch; later ones without the WatchList feature:
/// `sendInitialEvents` is forbidden) or, were one to ignore the parameters, sends no such bookmark.
pub(crate) async fn serves_streaming_lists(api: &Api<CachedRoom>) -> bool {
    let params = WatchParams::streaming_lists().labels(NO_OBJECT).timeout(ASK_TIMEOUT.as_secs() as u32);
    let ask = async {
        let mut events = api.watch(&params, "0").await?.boxed();
        // The first event answers: no object has the label, so it is the bookmark, or a refusal.
        Ok::<_, kube::Error>(match events.try_next().await? {
            Some(WatchEvent::Bookmark(b)) => b.metadata.annotations.contains_key("k8s.io/initial-events-end"),
            Some(WatchEvent::Error(e)) => {
                debug!(error = %e.message, "streaming list refused");
                false
            }
            // A server that sends an object anyway, or nothing, is not answering the question.
            Some(WatchEvent::Added(_) | WatchEvent::Modified(_) | WatchEvent::Deleted(_)) | None => false,
        })
    };
    match tokio::time::timeout(ASK_TIMEOUT + Duration::from_secs(2), ask).await {
        Ok(Ok(served)) => served,
        Ok(Err(e)) => {
            debug!(error = %e, "streaming list refused");
            false
        }
        Err(_) => false,
    }
}

/// The watcher configuration of the ZimRoom watch: `config` with a streaming initial listing when the server
/// serves one, else with the paged list as it is (kube's default pages of 500 objects).
pub(crate) async fn initial_listing(api: &Api<CachedRoom>, config: watcher::Config) -> watcher::Config {
    if serves_streaming_lists(api).await {
        info!("the ZimRoom watch lists with a streaming list (WatchList)");
        config.streaming_lists()
    } else {
        info!("the API server serves no streaming lists: the ZimRoom watch lists in pages");
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::decide;

    /// An object as the API server sends it after `kubectl apply` and a few reconciles.
    fn as_served() -> ZimRoom {
        let manifest = serde_json::json!({
            "apiVersion": "zim.zego.im/v1alpha1", "kind": "ZimRoom",
            "metadata": {"name": "lobby", "namespace": "chat", "labels": {"team": "a"},
                         "annotations": {"zim.zego.im/paused": "true"}},
            "spec": {"attributes": [{"key": "topic", "value": "x"}]},
        });
        serde_json::from_value(serde_json::json!({
            "apiVersion": "zim.zego.im/v1alpha1", "kind": "ZimRoom",
            "metadata": {
                "name": "lobby", "namespace": "chat", "uid": "9f6c0c4e-1b2a-4c39-9a0e-3d2f1e0b7a11",
                "resourceVersion": "123456", "generation": 2, "creationTimestamp": "2026-01-05T10:00:00Z",
                "deletionTimestamp": "2026-01-06T10:00:00Z", "deletionGracePeriodSeconds": 0,
                "generateName": "lobby-", "selfLink": "/apis/zim.zego.im/v1alpha1/namespaces/chat/zimrooms/lobby",
                "finalizers": ["zim.zego.im/destroy-room"],
                "labels": {"team": "a", "app.kubernetes.io/name": "chat"},
                "annotations": {
                    "zim.zego.im/paused": "true",
                    "zim.zego.im/reconcile-requested-at": "2026-01-05T11:00:00Z",
                    "kubectl.kubernetes.io/last-applied-configuration": manifest.to_string(),
                    "note": "kept by nobody",
                },
                "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                                     "uid": "0d0b6a7e-6f4e-4b0f-8f7c-2c1d0e9f8a77"}],
                "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update",
                                   "apiVersion": "zim.zego.im/v1alpha1", "fieldsType": "FieldsV1",
                                   "fieldsV1": {"f:spec": {"f:attributes": {}}}}],
            },
            "spec": {"roomId": "lobby-1", "roomName": "Lobby", "destroyDelayTime": 3600,
                     "attributes": [{"key": "topic", "value": "x"}],
                     "credentialsSecretRef": {"name": "zego"}, "deletionPolicy": "Orphan"},
            "status": {
                "roomId": "lobby-1", "appId": 880001, "observedGeneration": 2, "requestId": "r-1",
                "managedAttributeKeys": ["topic"],
                "applied": {"roomId": "lobby-1", "roomName": "Lobby", "destroyDelayTime": 3600,
                            "attributesHash": "abc"},
                "conditions": [{"type": "Ready", "status": "True", "reason": "Available", "message": "exists",
                                "lastTransitionTime": "2026-01-05T10:00:01Z", "observedGeneration": 2}],
            },
        }))
        .unwrap()
    }

    #[test]
    fn the_cache_keeps_what_the_operator_reads() {
        let served = as_served();
        let mut room = served.clone();
        slim(&mut room);
        let kept = serde_json::to_value(&room).unwrap();
        assert_eq!(
            kept["metadata"],
            serde_json::json!({
                "name": "lobby", "namespace": "chat", "uid": "9f6c0c4e-1b2a-4c39-9a0e-3d2f1e0b7a11",
                "resourceVersion": "123456", "generation": 2, "creationTimestamp": "2026-01-05T10:00:00Z",
                "deletionTimestamp": "2026-01-06T10:00:00Z", "finalizers": ["zim.zego.im/destroy-room"],
                "annotations": {
                    "zim.zego.im/paused": "true",
                    "zim.zego.im/reconcile-requested-at": "2026-01-05T11:00:00Z",
                },
            })
        );
        assert_eq!(room.spec, served.spec, "the spec is kept whole");
        assert_eq!(room.status, served.status, "the status is kept whole");
    }

    #[test]
    fn what_the_operator_decides_from_an_object_is_the_same_after_slimming() {
        let mut served = as_served();
        served.metadata.deletion_timestamp = None;
        let mut room = served.clone();
        slim(&mut room);
        assert_eq!(room.is_paused(), served.is_paused());
        assert_eq!(room.room_id(), served.room_id());
        assert_eq!(decide::is_converged(&room), decide::is_converged(&served));
        assert_eq!(decide::attributes_applied(&room), decide::attributes_applied(&served));
        let relevant = |r: &ZimRoom| super::super::run::relevant_fields(&CachedRoom::from(r.clone()));
        assert_eq!(relevant(&room), relevant(&served));
        assert_eq!(super::super::object_ref(&room), super::super::object_ref(&served));
        assert_eq!(room.metadata.uid, served.metadata.uid);
        assert_eq!(room.metadata.creation_timestamp, served.metadata.creation_timestamp);
    }

    #[test]
    fn only_relevant_changes_pass_and_old_memories_fade() {
        let mut changes = Changes::default();
        let t0 = Instant::now();
        assert!(changes.changed(1, Some(10), t0), "a new object passes");
        assert!(!changes.changed(1, Some(10), t0), "the same fingerprint does not");
        assert!(changes.changed(1, Some(11), t0), "a changed one does");
        assert!(changes.changed(2, Some(11), t0), "another object is another object");
        assert!(changes.changed(3, None, t0), "an object without a fingerprint always passes");
        assert!(changes.changed(3, None, t0));
        let later = t0 + CHANGES_TTL;
        assert!(changes.changed(2, Some(11), later), "forgotten after the memory's time: passes again");
        assert!(!changes.changed(2, Some(11), later));
    }

    #[test]
    fn a_new_object_under_an_old_name_is_another_object() {
        let room = as_served();
        let mut again = room.clone();
        again.metadata.uid = Some("another".into());
        let cached = |r: &ZimRoom| CachedRoom::from(r.clone());
        assert_ne!(identity(&cached(&room)), identity(&cached(&again)));
    }

    #[tokio::test]
    async fn the_filter_passes_errors_and_relevant_changes_only() {
        let room = as_served();
        let mut status_only = room.clone();
        status_only.status = None;
        let mut paused_off = room.clone();
        paused_off.metadata.annotations.as_mut().unwrap().remove(crate::crd::PAUSED_ANNOTATION);
        let events = vec![
            Ok(CachedRoom::from(room.clone())),
            Ok(CachedRoom::from(status_only)),
            Err(watcher::Error::NoResourceVersion),
            Ok(CachedRoom::from(paused_off.clone())),
            Ok(CachedRoom::from(paused_off)),
        ];
        let passed: Vec<_> =
            relevant_changes(futures::stream::iter(events), super::super::run::relevant_fields)
                .collect()
                .await;
        let kinds: Vec<_> = passed.iter().map(|r| r.as_ref().map(|r| r.paused).map_err(|_| ())).collect();
        assert_eq!(kinds, [Ok(true), Err(()), Ok(false)]);
    }

    #[test]
    fn an_object_without_the_annotations_read_keeps_no_annotation_map() {
        let mut room = as_served();
        let annotations = room.metadata.annotations.as_mut().unwrap();
        for key in READ_ANNOTATIONS {
            annotations.remove(key);
        }
        slim(&mut room);
        assert_eq!(room.metadata.annotations, None);
        assert_eq!(room.metadata.labels, None);
    }
}
