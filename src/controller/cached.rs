//! The form a ZimRoom takes in the watch cache: [`CachedRoom`].
//!
//! The cache holds every ZimRoom in scope for the life of the process, so each byte kept per object is paid
//! 100 000 times on a large cluster (docs/PERFORMANCE.md, P10, measures each part). A `CachedRoom` keeps exactly
//! what the operator reads of an object, in the smallest form that still answers the questions asked of every
//! cached object at once (claims, the prober's pass, callbacks, the Secret and Namespace mappings):
//!
//! - `metadata`: name, namespace, UID, resourceVersion, generation, creationTimestamp, deletionTimestamp and
//!   finalizers only (see [`super::cache::slim`]), never the annotations: their map is a whole B-tree leaf (about 540 bytes)
//!   even with one entry;
//! - the two annotations the operator reads, as fields: `paused` (is `zim.zego.im/paused` `"true"`) and the value
//!   of `zim.zego.im/reconcile-requested-at`, if any;
//! - the spec's room ID and Secret name, plain (claims and the Secret mapping compare them over the whole cache),
//!   and the whole spec as its JSON text for a reconcile — one allocation instead of two per attribute and one
//!   per other string;
//! - the status's room ID and AppId, plain (claims and callbacks compare them over the whole cache), whether the
//!   object is converged (the prober's pass), and the whole status as its JSON text — one allocation instead of
//!   about twenty (each condition is six fields, four of them strings).
//!
//! Both JSON texts are [`super::pack`]ed: the fragments every object repeats (field names, the conditions' types,
//! reasons and fixed messages) take one byte each, which halves a typical status.
//!
//! A reconcile gets the object back whole with [`CachedRoom::room`]: the same ZimRoom the slimmed watch object
//! was (a test holds the round trip to that), so the next status is still built from the cached one and compared
//! with it to skip writes. Conversion costs two small JSON parses per reconcile or probe, a few microseconds.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::Deserialize;

use crate::crd::{PAUSED_ANNOTATION, RECONCILE_REQUESTED_ANNOTATION, ZimRoom, ZimRoomSpec, ZimRoomStatus};
use crate::reconcile::decide;

/// A ZimRoom as the watch cache keeps it (see the module's documentation). It deserializes from a ZimRoom as the
/// API server sends it, so the watch lists and watches this type directly.
#[derive(Clone, Debug, Deserialize)]
#[serde(from = "ZimRoom")]
pub struct CachedRoom {
    pub(crate) metadata: ObjectMeta,
    /// Whether the `zim.zego.im/paused` annotation is `"true"`.
    pub(crate) paused: bool,
    /// The value of the `zim.zego.im/reconcile-requested-at` annotation.
    pub(crate) reconcile_requested: Option<Box<str>>,
    /// `spec.roomId`.
    room_id: Option<Box<str>>,
    /// `spec.credentialsSecretRef.name`.
    secret: Option<Box<str>>,
    /// `spec.managementPolicy` is `Observe` (claims leave observers out).
    pub(crate) observing: bool,
    /// The whole spec, as JSON ([`super::pack`]ed).
    spec: Box<str>,
    pub(crate) status: Option<PackedStatus>,
}

/// A ZimRoom's status as the cache keeps it.
#[derive(Clone, Debug)]
pub struct PackedStatus {
    /// `status.roomId`.
    pub(crate) room_id: Option<Box<str>>,
    /// `status.appId`.
    pub(crate) app_id: Option<u32>,
    /// [`decide::is_converged`] of the object.
    pub(crate) converged: bool,
    /// The whole status, as JSON ([`super::pack`]ed).
    json: Box<str>,
}

impl From<ZimRoom> for CachedRoom {
    fn from(mut room: ZimRoom) -> Self {
        super::cache::slim(&mut room);
        let converged = decide::is_converged(&room);
        let observing = room.is_observing();
        let mut annotations = room.metadata.annotations.take().unwrap_or_default();
        let paused = annotations.get(PAUSED_ANNOTATION).is_some_and(|v| v == "true");
        let reconcile_requested =
            annotations.remove(RECONCILE_REQUESTED_ANNOTATION).map(String::into_boxed_str);
        let status = room.status.map(|s| PackedStatus {
            room_id: s.room_id.as_deref().map(Box::from),
            app_id: s.app_id,
            converged,
            json: super::pack::pack(&serde_json::to_string(&s).expect("a status serializes")),
        });
        CachedRoom {
            metadata: room.metadata,
            paused,
            reconcile_requested,
            room_id: room.spec.room_id.as_deref().map(Box::from),
            secret: room.spec.credentials_secret_ref.as_ref().map(|r| Box::from(r.name.as_str())),
            observing,
            spec: super::pack::pack(&serde_json::to_string(&room.spec).expect("a spec serializes")),
            status,
        }
    }
}

impl CachedRoom {
    /// The object whole, as the watch delivered it after [`super::cache::slim`].
    pub(crate) fn room(&self) -> ZimRoom {
        let mut metadata = self.metadata.clone();
        let annotations: std::collections::BTreeMap<String, String> = [
            self.paused.then(|| (PAUSED_ANNOTATION.to_owned(), "true".to_owned())),
            self.reconcile_requested
                .as_ref()
                .map(|v| (RECONCILE_REQUESTED_ANNOTATION.to_owned(), v.to_string())),
        ]
        .into_iter()
        .flatten()
        .collect();
        metadata.annotations = (!annotations.is_empty()).then_some(annotations);
        let status = self.status.as_ref().map(|s| {
            serde_json::from_str::<ZimRoomStatus>(&super::pack::unpack(&s.json))
                .expect("the cache's own JSON of a status parses")
        });
        let spec = serde_json::from_str::<ZimRoomSpec>(&super::pack::unpack(&self.spec))
            .expect("the cache's own JSON of a spec parses");
        ZimRoom { metadata, spec, status }
    }

    /// The effective room ID: `spec.roomId`, else `metadata.name` (as [`ZimRoom::room_id_str`]).
    pub(crate) fn room_id_str(&self) -> &str {
        self.room_id.as_deref().or(self.metadata.name.as_deref()).unwrap_or_default()
    }

    /// The AppId the status records.
    pub(crate) fn app_id(&self) -> Option<u32> {
        self.status.as_ref().and_then(|s| s.app_id)
    }

    /// The room ID the status records.
    pub(crate) fn status_room_id(&self) -> Option<&str> {
        self.status.as_ref().and_then(|s| s.room_id.as_deref())
    }

    /// Whether the object is converged ([`decide::is_converged`]).
    pub(crate) fn is_converged(&self) -> bool {
        self.status.as_ref().is_some_and(|s| s.converged)
    }
}

/// A ZimRoom whole or as cached: what the lookups that serve both read.
pub(crate) trait Declared: Resource {
    /// `spec.credentialsSecretRef.name`.
    fn secret_name(&self) -> Option<&str>;
}

impl Declared for ZimRoom {
    fn secret_name(&self) -> Option<&str> {
        self.spec.credentials_secret_ref.as_ref().map(|r| r.name.as_str())
    }
}

impl Declared for CachedRoom {
    fn secret_name(&self) -> Option<&str> {
        self.secret.as_deref()
    }
}

impl Resource for CachedRoom {
    type DynamicType = ();
    type Scope = <ZimRoom as Resource>::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        ZimRoom::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        ZimRoom::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        ZimRoom::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        ZimRoom::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(paused: bool, requested: bool, status: bool) -> ZimRoom {
        let mut annotations = serde_json::json!({"kubectl.kubernetes.io/last-applied-configuration": "{}"});
        if paused {
            annotations[PAUSED_ANNOTATION] = "true".into();
        }
        if requested {
            annotations[RECONCILE_REQUESTED_ANNOTATION] = "2026-01-05T11:00:00Z".into();
        }
        let mut o = serde_json::json!({
            "apiVersion": "zim.zego.im/v1alpha1", "kind": "ZimRoom",
            "metadata": {
                "name": "lobby", "namespace": "chat", "uid": "9f6c0c4e-1b2a-4c39-9a0e-3d2f1e0b7a11",
                "resourceVersion": "123456", "generation": 2, "creationTimestamp": "2026-01-05T10:00:00Z",
                "finalizers": ["zim.zego.im/destroy-room"], "labels": {"team": "a"}, "annotations": annotations,
            },
            "spec": {"roomId": "lobby-1", "roomName": "Lobby", "destroyDelayTime": 3600,
                     "attributes": [{"key": "topic", "value": "x"}], "credentialsSecretRef": {"name": "zego"}},
        });
        if status {
            o["status"] = serde_json::json!({
                "roomId": "lobby-1", "appId": 880001, "observedGeneration": 2, "requestId": "r-1",
                "adopted": false, "managedAttributeKeys": ["topic"],
                "applied": {"roomId": "lobby-1", "roomName": "Lobby", "destroyDelayTime": 3600,
                            "attributesHash": "abc"},
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "Available", "message": "exists",
                     "lastTransitionTime": "2026-01-05T10:00:01Z", "observedGeneration": 2},
                    {"type": "Synced", "status": "True", "reason": "Available", "message": "",
                     "lastTransitionTime": "2026-01-05T10:00:01Z", "observedGeneration": 2},
                ],
            });
        }
        serde_json::from_value(o).unwrap()
    }

    /// Every combination of the annotations read and a status: what a reconcile gets back is the slimmed object.
    #[test]
    fn a_cached_room_gives_back_the_slimmed_object() {
        for (paused, requested, status) in
            [(false, false, false), (true, false, true), (false, true, true), (true, true, false)]
        {
            let served = served(paused, requested, status);
            let mut slimmed = served.clone();
            super::super::cache::slim(&mut slimmed);
            let cached = CachedRoom::from(served.clone());
            let back = cached.room();
            assert_eq!(
                serde_json::to_value(&back).unwrap(),
                serde_json::to_value(&slimmed).unwrap(),
                "paused {paused}, requested {requested}, status {status}"
            );
            assert_eq!(cached.metadata.annotations, None, "the cache holds no annotation map");
            assert_eq!(cached.paused, served.is_paused());
            assert_eq!(cached.room_id_str(), served.room_id_str());
            assert_eq!(cached.secret_name(), served.secret_name());
            assert_eq!(cached.app_id(), served.status.as_ref().and_then(|s| s.app_id));
            assert_eq!(cached.status_room_id(), served.status.as_ref().and_then(|s| s.room_id.as_deref()));
            assert_eq!(cached.is_converged(), decide::is_converged(&served));
        }
        assert!(
            CachedRoom::from(served(false, false, true)).is_converged(),
            "the test's converged object is one"
        );
    }

    /// The watch deserializes objects straight into the cached form.
    #[test]
    fn the_watch_reads_objects_as_cached_rooms() {
        let served = served(true, true, true);
        let cached: CachedRoom = serde_json::from_value(serde_json::to_value(&served).unwrap()).unwrap();
        assert!(cached.paused);
        assert_eq!(cached.reconcile_requested.as_deref(), Some("2026-01-05T11:00:00Z"));
        assert_eq!(cached.metadata.labels, None);
        assert_eq!(
            cached.metadata.resource_version.as_deref(),
            Some("123456"),
            "the watcher resumes from it"
        );
        assert_eq!(cached.room().status, served.status);
    }
}
