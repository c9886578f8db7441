//! The `ZimRoom` custom resource: spec, status, printer columns, schema limits, CEL rules, and the names of
//! conditions and reasons (stable: the Argo CD health check and the docs rely on them).
//!
//! What the schema cannot express — byte lengths of UTF-8 text, and immutability on clusters without CEL — is
//! checked by the operator itself before any ZIM call (see [`crate::reconcile::validate`]).

// kube's printcolumn(...) repeats `type_ = ...` per column, which clippy reads as a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::zim::limits;

/// The finalizer that makes deletion destroy (or deliberately orphan) the ZIM room.
pub const FINALIZER: &str = "zim.zego.im/destroy-room";
/// Annotation that pauses reconciliation when set to `"true"` (never blocks deletion).
pub const PAUSED_ANNOTATION: &str = "zim.zego.im/paused";
/// Annotation whose change forces a reconcile.
pub const RECONCILE_REQUESTED_ANNOTATION: &str = "zim.zego.im/reconcile-requested-at";

/// Condition types.
pub mod condition {
    /// The room exists in ZIM as declared.
    pub const READY: &str = "Ready";
    /// The last reconcile of the current spec succeeded.
    pub const SYNCED: &str = "Synced";
    /// kstatus: the operator is still working toward the current generation and expects to get there.
    pub const RECONCILING: &str = "Reconciling";
    /// kstatus: progress needs a person; the reason says why.
    pub const STALLED: &str = "Stalled";
}

/// Condition reasons.
pub mod reason {
    /// Ready: the room exists.
    pub const AVAILABLE: &str = "Available";
    /// Ready: CreateRoom is about to be (or was) called, outcome not yet known.
    pub const CREATING: &str = "Creating";
    /// Ready: the spec is invalid (or ZIM refused its parameters).
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// Ready: an immutable field changed after the room was created.
    pub const IMMUTABLE_FIELD_CHANGED: &str = "ImmutableFieldChanged";
    /// Ready: the credentials Secret does not exist.
    pub const CREDENTIALS_NOT_FOUND: &str = "CredentialsNotFound";
    /// Ready: the credentials Secret lacks or mangles appId/serverSecret.
    pub const CREDENTIALS_INVALID: &str = "CredentialsInvalid";
    /// Ready: ZIM rejected the signature, AppId or app configuration.
    pub const AUTH_FAILED: &str = "AuthFailed";
    /// Ready: the app's room quota is used up.
    pub const QUOTA_EXCEEDED: &str = "QuotaExceeded";
    /// Ready: ZIM rate-limited the call.
    pub const THROTTLED: &str = "Throttled";
    /// Ready: ZIM could not be reached or failed.
    pub const API_UNAVAILABLE: &str = "ApiUnavailable";
    /// Ready: the object is being deleted.
    pub const DELETING: &str = "Deleting";
    /// Ready: the deletion waits for the room to empty (`whenOccupied.policy: Wait`).
    pub const WAITING_FOR_EMPTY_ROOM: &str = "WaitingForEmptyRoom";
    /// Ready: the deletion drains the room: the members were told and are removed at the deadline.
    pub const DRAINING: &str = "Draining";
    /// Ready: an observed room (`managementPolicy: Observe`) does not exist; the operator does not create it.
    pub const ROOM_NOT_FOUND: &str = "RoomNotFound";
    /// Synced: an observed room's attributes differ from the declared ones (nothing is written).
    pub const DRIFTED: &str = "Drifted";
    /// Synced: an observed room is as declared.
    pub const OBSERVED: &str = "Observed";
    /// Ready: another ZimRoom owns the same room (same AppId and room ID); this one makes no call for it.
    pub const CONFLICT: &str = "Conflict";
    /// Ready: the credentials now resolve to another AppId than the one the room lives in.
    pub const APP_ID_CHANGED: &str = "AppIdChanged";
    /// Ready: the status's ownership record does not carry the operator's seal (a status writer other than the
    /// operator changed it); no ZIM call is made and deletion leaves the room.
    pub const UNVERIFIED_STATUS: &str = "UnverifiedStatus";
    /// Ready: the namespace's admin policy (annotations on the Namespace) does not allow what the object asks
    /// (its roomId, the default credentials, its fromUserId, adopting an existing room); no ZIM call is made.
    pub const FORBIDDEN_BY_POLICY: &str = "ForbiddenByPolicy";
    /// Reconciling: the room exists and an attribute change is not applied yet.
    pub const ATTRIBUTES_PENDING: &str = "AttributesPending";
    /// Stalled: ZIM refuses declared attributes for good (the room exists).
    pub const ATTRIBUTES_REFUSED: &str = "AttributesRefused";
    /// Reconciling/Stalled: the current generation is applied (both False).
    pub const CONVERGED: &str = "Converged";
    /// Synced: everything declared is in place.
    pub const RECONCILE_SUCCESS: &str = "ReconcileSuccess";
    /// Synced: the last reconcile failed.
    pub const RECONCILE_ERROR: &str = "ReconcileError";
    /// Synced: reconciliation is paused by annotation.
    pub const RECONCILE_PAUSED: &str = "ReconcilePaused";
}

/// Declares a ZEGO ZIM room. The operator creates it with CreateRoom, keeps it (recreating it if ZEGO destroyed it
/// while empty) and keeps the declared attributes set.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "zim.zego.im",
    version = "v1alpha1",
    kind = "ZimRoom",
    plural = "zimrooms",
    shortname = "zr",
    category = "zim",
    namespaced,
    status = "ZimRoomStatus",
    doc = "A ZEGO ZIM chat room, declared: the operator creates it with CreateRoom, keeps it (recreating it when ZEGO destroys it while empty) and keeps its declared attributes set. Its conditions Ready, Synced, Reconciling and Stalled tell kubectl, Helm, Flux and Argo CD how it stands.",
    cel,
    printcolumn(
        name = "Room-ID",
        type_ = "string",
        json_path = ".status.roomId",
        description = "ZIM room ID"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the room exists as declared"
    ),
    printcolumn(
        name = "Synced",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Synced\")].status",
        description = "Whether the last reconcile succeeded"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        description = "Reason of the Ready condition"
    ),
    printcolumn(
        name = "Members",
        type_ = "integer",
        json_path = ".status.occupancy.members",
        description = "Members in the room, as last counted"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(
        name = "App-ID",
        type_ = "integer",
        json_path = ".status.appId",
        description = "ZEGO AppId the room belongs to",
        priority = 1
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message",
        description = "Message of the Ready condition: what happened, and what to do when something is wrong",
        priority = 1
    ),
    // `kubectl get zimrooms -A --field-selector spec.roomId=lobby`: which object declares room lobby;
    // `status.roomId=lobby` also finds one whose room ID defaults to its name (once reconciled);
    // `status.appId=...`: the rooms of one app. Kubernetes 1.31 and newer; older servers drop the field.
    selectable = ".spec.roomId",
    selectable = ".status.roomId",
    selectable = ".status.appId",
    // Immutable once the room exists (the status records what was applied, or a creation that may have
    // happened): before that, a bad value can still be corrected. At the root, where a rule can read the status.
    validation = Rule::new(concat!(
        "!(has(oldSelf.status) && (has(oldSelf.status.applied) || (has(oldSelf.status.pendingCreation) && oldSelf.status.pendingCreation)))",
        " || (has(self.spec.roomId) ? (has(oldSelf.spec.roomId) && self.spec.roomId == oldSelf.spec.roomId) : !has(oldSelf.spec.roomId))"
    ))
    .message("spec.roomId cannot change once the room exists: to use another room, create a new ZimRoom for it and delete this one (set spec.deletionPolicy: Orphan first to keep the old room)"),
    validation = Rule::new(concat!(
        "!(has(oldSelf.status) && (has(oldSelf.status.applied) || (has(oldSelf.status.pendingCreation) && oldSelf.status.pendingCreation)))",
        " || !has(self.spec.roomName) || (has(oldSelf.spec.roomName) && self.spec.roomName == oldSelf.spec.roomName)"
    ))
    .message("spec.roomName cannot be set or changed once the room exists: ZIM has no API to rename a room. Keep the old value (or remove the field), or delete and recreate the ZimRoom to recreate the room with the new name"),
    validation = Rule::new(concat!(
        "!(has(oldSelf.status) && (has(oldSelf.status.applied) || (has(oldSelf.status.pendingCreation) && oldSelf.status.pendingCreation)))",
        " || self.spec.destroyDelayTime == oldSelf.spec.destroyDelayTime"
    ))
    .message("spec.destroyDelayTime cannot change once the room exists: ZIM has no API for it. Keep the old value, or delete and recreate the ZimRoom to recreate the room with the new delay")
)]
#[serde(rename_all = "camelCase")]
pub struct ZimRoomSpec {
    /// The ZIM room ID. Defaults to metadata.name. At most 32 bytes of ASCII letters, digits and
    /// `!#$%&()+-:;<=.>?@[]^_ ,{}|~`. Immutable once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = limits::MAX_ID_BYTES), regex(pattern = limits::ID_PATTERN))]
    pub room_id: Option<String>,

    /// The room's display name, at most 64 bytes (bytes of UTF-8, not characters). Immutable once set: ZIM has
    /// no API to rename a room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_ROOM_NAME_BYTES))]
    #[x_kube(validation = Rule::new("bytes(self).size() <= 64").message("roomName must be at most 64 bytes of UTF-8; characters outside ASCII take 2 to 4 bytes each"))]
    pub room_name: Option<String>,

    /// Seconds the room survives once it has no users, 0 to 10800. Defaults to the maximum, 10800: ZEGO destroys
    /// an empty room at once when no delay is set, and a declared room nobody has joined yet would otherwise
    /// vanish and be recreated at every resync. Immutable: ZIM cannot change it after creation.
    #[serde(default = "default_destroy_delay_time")]
    #[schemars(range(min = 0, max = limits::MAX_DESTROY_DELAY_SECS), extend("format" = "int64"))]
    pub destroy_delay_time: u32,

    /// Room attributes, kept in sync after creation. At most 20, keys unique. The operator owns only the keys
    /// declared here and never touches attributes that room clients set themselves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = limits::MAX_ATTRIBUTES), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["key"]))]
    pub attributes: Vec<RoomAttribute>,

    /// The ZIM user the operator acts as (registered automatically; not added to the room). Defaults to the
    /// credentials Secret's `fromUserId`, then to the operator's `--from-user-id` (default `zim-operator`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = limits::MAX_ID_BYTES), regex(pattern = limits::ID_PATTERN))]
    pub from_user_id: Option<String>,

    /// A Secret in this object's namespace holding `appId` and `serverSecret` (and optionally `fromUserId`).
    /// Defaults to the operator's default credentials Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,

    /// What deletion of this object does to the room: `Delete` destroys it with DestroyRoom, `Orphan` leaves it.
    /// Defaults to `Delete` for rooms the operator created and `Orphan` for rooms that existed before (adopted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,

    /// What a deletion that would destroy the room does while people are in it. Defaults to `policy: Wait`: the
    /// operator looks first (QueryRoomUserList) and destroys the room only once it is empty, so a `kubectl delete`,
    /// an Argo CD prune or a Helm uninstall never throws members out by surprise. `Destroy` is the old behaviour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_occupied: Option<WhenOccupied>,

    /// `Manage` (the default): the operator creates the room, keeps it and its declared attributes, and may
    /// destroy it on deletion. `Observe`: it only reads — whether the room exists, its members and its attributes —
    /// and shows them on the status (declared attributes that differ: Synced=False `Drifted`); it never creates,
    /// changes, empties or destroys the room, whatever the other fields say, and deleting the object never touches
    /// ZIM. Switching to `Manage` adopts the room under the namespace's adoption policy; switching to `Observe`
    /// releases it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_policy: Option<ManagementPolicy>,
}

/// `Manage` (the default): the operator creates the room, keeps it and its declared attributes, and may destroy it
/// on deletion. `Observe`: it only reads — whether the room exists, its members and its attributes — and shows them
/// on the status (declared attributes that differ: Synced=False `Drifted`); it never creates, changes, empties or
/// destroys the room, whatever the other fields say, and deleting the object never touches ZIM. Switching to
/// `Manage` adopts the room under the namespace's adoption policy; switching to `Observe` releases it.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
pub enum ManagementPolicy {
    /// Create, keep, change and (on deletion) destroy the room.
    #[default]
    Manage,
    /// Only read the room; never write to ZIM.
    Observe,
}

/// `Always` (the default): the operator keeps the value as declared, rewriting it when a client changes it, and
/// deletes the key when it is removed from the spec. `OnCreate`: the value is sent with CreateRoom only — clients
/// own it afterwards (the operator never rewrites it, never deletes it, and does not list it in
/// `status.managedAttributeKeys`), e.g. a room's `topic` or `host` that the app changes at run time.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
pub enum Enforce {
    /// Kept as declared: set again whenever the room's value differs, deleted when removed from the spec.
    #[default]
    Always,
    /// Sent with CreateRoom only: never rewritten when clients change it, never deleted when removed from the
    /// spec, not a managed key.
    OnCreate,
}

/// What deleting this object does to an occupied room (one whose member count, by QueryRoomUserList, is not 0).
/// Applies only when deletion destroys the room (deletionPolicy Delete); an orphaned room is never touched.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, KubeSchema, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.timeoutSeconds) == has(self.afterTimeout)").message("whenOccupied.timeoutSeconds and whenOccupied.afterTimeout go together: after the timeout, the deletion does afterTimeout (Drain or Destroy)"))]
pub struct WhenOccupied {
    /// `Wait` (the default): keep the object Terminating with Ready=False `WaitingForEmptyRoom`, look again about
    /// once a minute, and destroy the room once it is empty. `Drain`: send `drainMessage` to the room, wait
    /// `drainGraceSeconds`, remove the members left (KickoutRoomUser), then destroy it. `Destroy`: destroy it at
    /// once, members or not.
    #[serde(default)]
    pub policy: OccupiedPolicy,
    /// With `policy: Wait`: how long to wait for the room to empty, in seconds, before `afterTimeout` applies.
    /// Absent: wait as long as it takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1), extend("format" = "int64"))]
    pub timeout_seconds: Option<u32>,
    /// What happens when `timeoutSeconds` has passed: `Drain` or `Destroy`. Required with `timeoutSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_timeout: Option<AfterTimeout>,
    /// The text the members get before they are removed (`Drain`), at most 1024 bytes. Defaults to "This room is
    /// closing."
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub drain_message: Option<String>,
    /// Seconds between the message and removing the members (`Drain`), 0 to 86400. Defaults to 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 86400), extend("format" = "int64"))]
    pub drain_grace_seconds: Option<u32>,
}

/// What a deletion does to an occupied room: `Wait`, `Drain` or `Destroy` (see `whenOccupied.policy`).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
pub enum OccupiedPolicy {
    /// Destroy the room once it is empty.
    #[default]
    Wait,
    /// Tell the members, wait the grace period, remove them, destroy the room.
    Drain,
    /// Destroy the room at once.
    Destroy,
}

/// What a `Wait` deletion does once `timeoutSeconds` has passed.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum AfterTimeout {
    /// Tell the members, wait the grace period, remove them, destroy the room.
    Drain,
    /// Destroy the room at once.
    Destroy,
}

/// The default seconds between a drain's message and removing the members.
pub const DEFAULT_DRAIN_GRACE_SECONDS: u32 = 300;

fn default_destroy_delay_time() -> u32 {
    limits::MAX_DESTROY_DELAY_SECS
}

/// One room attribute.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, KubeSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct RoomAttribute {
    /// Attribute key, 1 to 16 bytes, unique within the room.
    #[schemars(length(min = 1, max = limits::MAX_ATTRIBUTE_KEY_BYTES))]
    #[x_kube(validation = Rule::new("bytes(self).size() <= 16").message("an attribute key must be at most 16 bytes of UTF-8"))]
    pub key: String,
    /// Attribute value, at most 1024 bytes (all values of a room together at most 5120 bytes).
    #[schemars(length(max = limits::MAX_ATTRIBUTE_VALUE_BYTES))]
    #[x_kube(validation = Rule::new("bytes(self).size() <= 1024").message("an attribute value must be at most 1024 bytes of UTF-8"))]
    pub value: String,
    /// ZIM's AutoDelete: delete the attribute when the user who set it leaves the room. The operator's user never
    /// joins the room, so this rarely matters; defaults to false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_delete: bool,
    /// `Always` (the default): the operator keeps the value as declared, rewriting it when a client changes it,
    /// and deletes the key when it is removed from the spec. `OnCreate`: the value is sent with CreateRoom only —
    /// clients own it afterwards (the operator never rewrites it, never deletes it, and does not list it in
    /// `status.managedAttributeKeys`), e.g. a room's `topic` or `host` that the app changes at run time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforce: Option<Enforce>,
}

impl RoomAttribute {
    /// Whether the operator keeps this attribute as declared after creation (`enforce: Always`, the default).
    pub fn is_enforced(&self) -> bool {
        self.enforce.unwrap_or_default() == Enforce::Always
    }
}

/// A reference to a Secret in the same namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, KubeSchema, Default)]
pub struct SecretRef {
    /// The Secret's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// What deleting this ZimRoom does to its ZIM room. Values: `Delete` (destroy the room with DestroyRoom) or
/// `Orphan` (leave it in ZIM). Default: `Delete` for a room the operator created, `Orphan` for a room that existed
/// before (adopted). A room another ZimRoom still declares, or a room this object does not own, is never
/// destroyed; nor is any room while the ZimRoom CRD itself is being deleted.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum DeletionPolicy {
    /// Destroy the room with DestroyRoom.
    Delete,
    /// Leave the room in ZIM.
    Orphan,
}

/// The observed state of a ZimRoom. A new object gets `observedGeneration: 0` from the schema's default, so
/// kstatus reads an object the operator has not handled yet as InProgress (without a status it reads Current).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": 0}))]
pub struct ZimRoomStatus {
    /// The ZIM room ID this object manages; recorded before the first CreateRoom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// The AppId of the ZEGO app the room lives in; recorded with the room ID and fixed once the object holds a
    /// room (deletion acts in this app).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "int64"))]
    pub app_id: Option<u32>,
    /// True while a CreateRoom of this object may have created the room without the answer being known (a
    /// timeout, a broken connection, a crash): a later "room already exists" then means the room is its own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending_creation: bool,
    /// The metadata.generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The RequestId of the last ZIM write call (CreateRoom, ModifyRoomAttribute); changes only when a call is
    /// made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// True when the room already existed before this object first asked for it (found by the existence probe
    /// before the first CreateRoom, or handed over by another object). deletionPolicy then defaults to Orphan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted: Option<bool>,
    /// The attribute keys this object owns (those it has written); other keys are never touched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_attribute_keys: Vec<String>,
    /// What was applied to ZIM: the values of the immutable fields and a fingerprint of the attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<AppliedState>,
    /// `Ready` (the room exists as declared) and `Synced` (the last reconcile succeeded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The operator's seal over the ownership record above (roomId, appId, pendingCreation, adopted,
    /// managedAttributeKeys, applied) and the object's UID, made with a key only the operator reads. A record
    /// whose seal does not verify was not written by the operator: the object then makes no ZIM call and its
    /// deletion leaves the room in ZIM (Ready=False UnverifiedStatus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<String>,
    /// The room's members as the operator last counted them (QueryRoomUserList's `Count`, at the existence
    /// probes it makes anyway: about once per resync period, and at each reconcile that probes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occupancy: Option<Occupancy>,
    /// While the deletion of an occupied room waits or drains (see `spec.whenOccupied`): the phase, since when,
    /// and its deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion: Option<DeletionProgress>,
    /// With `managementPolicy: Observe`: what the last look found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<ObservedRoom>,
}

/// What an observing object last found in ZIM.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedRoom {
    /// Whether the room exists.
    pub exists: bool,
    /// The room's attributes (at most 20, as ZIM keeps them; values cut to 1024 bytes), sorted by key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub attributes: Vec<ObservedAttribute>,
    /// The declared attributes whose value in the room differs or that the room lacks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drifted_keys: Vec<String>,
}

/// One attribute as read from ZIM.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, KubeSchema)]
pub struct ObservedAttribute {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
}

/// A room's member count, as last counted.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Occupancy {
    /// Members in the room.
    #[schemars(extend("format" = "int64"))]
    pub members: u64,
    /// When the count was first seen at this value (the operator counts at its probes, so a change is seen up to
    /// one resync period late).
    pub last_change_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
}

/// Where the deletion of an occupied room stands.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletionProgress {
    /// `Waiting` (for the room to empty), `Draining` (the message was sent; the members are removed at the
    /// deadline) or `Removing` (removing the members, then destroying the room).
    pub phase: DeletionPhase,
    /// When this phase began.
    pub since: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
    /// When this phase ends: the wait's timeout, or the end of the drain's grace period. Absent: no deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}

/// The phase of an occupied room's deletion.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum DeletionPhase {
    /// Waiting for the room to empty.
    Waiting,
    /// The members were told; they are removed at the deadline.
    Draining,
    /// Removing the members, then destroying the room.
    Removing,
}

/// What the operator applied to ZIM, to detect changes without asking ZIM.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppliedState {
    /// The room ID the room was created under.
    pub room_id: String,
    /// The room name it was created with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_name: Option<String>,
    /// The DestroyDelayTime it was created with.
    #[schemars(extend("format" = "int64"))]
    pub destroy_delay_time: u32,
    /// Fingerprint of the attributes last applied in full; absent while attributes still need applying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes_hash: Option<String>,
}

impl ZimRoomSpec {
    /// The attributes the operator keeps as declared after creation (`enforce: Always`); `OnCreate` ones are only
    /// sent with CreateRoom.
    pub fn enforced_attributes(&self) -> Vec<RoomAttribute> {
        self.attributes.iter().filter(|a| a.is_enforced()).cloned().collect()
    }

    /// Whether `key` is declared with `enforce: OnCreate` (the operator then never rewrites nor deletes it).
    pub fn is_on_create(&self, key: &str) -> bool {
        self.attributes.iter().any(|a| a.key == key && !a.is_enforced())
    }
}

impl ZimRoom {
    /// The effective room ID: `spec.roomId`, else `metadata.name`.
    pub fn room_id(&self) -> String {
        self.room_id_str().to_owned()
    }

    /// The effective room ID, borrowed (for comparisons over the whole cache without copying).
    pub fn room_id_str(&self) -> &str {
        self.spec.room_id.as_deref().or(self.metadata.name.as_deref()).unwrap_or_default()
    }

    /// Whether the object only observes its room (`spec.managementPolicy: Observe`).
    pub fn is_observing(&self) -> bool {
        self.spec.management_policy == Some(ManagementPolicy::Observe)
    }

    /// Whether the paused annotation is `"true"`.
    pub fn is_paused(&self) -> bool {
        self.metadata.annotations.as_ref().and_then(|a| a.get(PAUSED_ANNOTATION)).is_some_and(|v| v == "true")
    }

    /// The condition of `type_`, if present.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_)
    }
}

/// The CRD as the cluster gets it: the derived one without `nullable` (every optional field is left out rather
/// than sent as null, and Kubernetes publishes a nullable field to OpenAPI v2 without a type, which
/// `kubectl explain` then shows as `<>`), and with descriptions as paragraphs: the line breaks of our doc comments
/// are joined (a blank line still separates paragraphs), so `kubectl explain` wraps the text to the terminal
/// instead of breaking it at our source's line ends.
pub fn crd() -> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    use kube::CustomResourceExt;
    tidy(ZimRoom::crd())
}

/// The ZimRoomSet CRD as the cluster gets it (tidied as [`crd`]).
pub fn set_crd()
-> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    use kube::CustomResourceExt;
    tidy(crate::roomset::ZimRoomSet::crd())
}

fn tidy(
    crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    fn paragraphs(text: &str) -> String {
        text.split("\n\n")
            .map(|p| p.split('\n').map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" "))
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("\n\n")
    }
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                map.remove("nullable");
                if let Some(serde_json::Value::String(d)) = map.get_mut("description") {
                    *d = paragraphs(d);
                }
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(crd).expect("the CRD serializes");
    for version in value["spec"]["versions"].as_array_mut().into_iter().flatten() {
        strip(&mut version["schema"]["openAPIV3Schema"]);
    }
    serde_json::from_value(value).expect("the CRD deserializes")
}

/// The CRD as YAML, exactly as committed under `crds/`.
pub fn crd_yaml() -> String {
    let yaml = crate::yaml::to_yaml(&crd()).expect("the CRD serializes");
    format!("# Generated by `zim-operator crd`; do not edit.\n{yaml}")
}

/// The ZimRoomSet CRD as YAML, exactly as committed under `crds/`.
pub fn set_crd_yaml() -> String {
    let yaml = crate::yaml::to_yaml(&set_crd()).expect("the CRD serializes");
    format!("# Generated by `zim-operator crd`; do not edit.\n{yaml}")
}
