//! `ZimRoomSet`: many similar rooms from one template. The set controller ([`controller`]) only manages child
//! ZimRoom objects — owner reference with `controller: true`, a stable name derived from the set and the room
//! ID — and the ZimRoom controller does all ZIM work, so ownership, conflicts, tenancy, fairness and the rate limit
//! apply to children unchanged.
//!
//! This module is the resource and the pure part: which room IDs a set declares ([`expand`]), each child's name
//! and object ([`child`]), and what the set's status says ([`summarize`]).
// kube's printcolumn(...) repeats `type_ = ...` per column, which clippy reads as a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

pub mod controller;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, OwnerReference};
use kube::{CustomResource, KubeSchema, Resource};
use serde::{Deserialize, Serialize};

use crate::crd::{ZimRoom, ZimRoomSpec};
use crate::reconcile::validate::FieldError;
use crate::zim::limits;

/// The label every child carries: the name of its set.
pub const SET_LABEL: &str = "zim.zego.im/set";
/// At most this many rooms per set (a larger fleet is several sets).
pub const MAX_ROOMS: usize = 10_000;
/// At most this many children are named in `status.notReady`.
pub const MAX_LISTED: usize = 20;

/// Declares many similar ZEGO ZIM rooms: one ZimRoom per room ID, from a template.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "zim.zego.im",
    version = "v1alpha1",
    kind = "ZimRoomSet",
    plural = "zimroomsets",
    shortname = "zrs",
    category = "zim",
    namespaced,
    status = "ZimRoomSetStatus",
    doc = "Many similar ZEGO ZIM rooms from one template: one child ZimRoom per room ID (listed, or generated from a prefix and a numeric range). Children the set no longer wants are deleted by their own deletion rules (an occupied room waits, spec.whenOccupied) or released (scaleDown: Orphan). Its conditions Ready, Reconciling and Stalled tell kubectl, Helm, Flux and Argo CD how the fleet stands.",
    printcolumn(
        name = "Desired",
        type_ = "integer",
        json_path = ".status.desired",
        description = "Rooms the set declares"
    ),
    printcolumn(
        name = "Ready",
        type_ = "integer",
        json_path = ".status.ready",
        description = "Children Ready"
    ),
    printcolumn(
        name = "Occupied",
        type_ = "integer",
        json_path = ".status.occupied",
        description = "Children whose room has members"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        description = "Reason of the Ready condition"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct ZimRoomSetSpec {
    /// The rooms: `ids` (a list) or `range` (a prefix and numbers), exactly one.
    pub rooms: RoomIds,
    /// What each child gets: labels and annotations, and a ZimRoom spec without `roomId` (each child's roomId
    /// is one of the set's room IDs).
    pub template: ChildTemplate,
    /// What happens to a child the set no longer declares (removed from `ids`, a smaller `range`): `Delete` (the
    /// default) deletes the child, whose room then goes by the child's own rules — an occupied room waits until it
    /// is empty (`whenOccupied`, default Wait); `Orphan` deletes the child with `deletionPolicy: Orphan`, leaving the
    /// room in ZIM.
    #[serde(default)]
    pub scale_down: ScaleDown,
    /// At most this many children not Ready at once while the set creates children (absent: no bound). New
    /// children wait while as many are not Ready yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1), extend("format" = "int64"))]
    pub max_unready: Option<u32>,
}

/// The room IDs of a set.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomIds {
    /// The room IDs, listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<String>>,
    /// The room IDs `prefix` + each number from `start` to `end` (inclusive), zero-padded to `width` digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<IdRange>,
}

/// `prefix` + each number from `start` to `end`, zero-padded to `width` digits (e.g. `lobby-eu-` 1..40 width 2:
/// `lobby-eu-01` … `lobby-eu-40`).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdRange {
    /// Text before the number.
    // Skipped when empty, like `suffix`, so the schema carries no `default: ""`: Kubernetes 1.20 refuses a CRD with
    // an empty-string default ("in body must be of type string: \"null\"").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// The first number.
    #[schemars(extend("format" = "int64"))]
    pub start: u32,
    /// The last number (inclusive).
    #[schemars(extend("format" = "int64"))]
    pub end: u32,
    /// Digits, zero-padded (0: as many as the number has).
    #[serde(default)]
    #[schemars(extend("format" = "int64"))]
    pub width: u32,
    /// Text after the number.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub suffix: String,
}

/// What each child gets.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChildTemplate {
    /// Labels and annotations for each child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ChildMetadata>,
    /// A ZimRoom spec without `roomId`.
    pub spec: ZimRoomSpec,
}

/// Labels and annotations for each child.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, KubeSchema)]
pub struct ChildMetadata {
    /// Labels for each child (the set adds `zim.zego.im/set`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations for each child.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// What happens to a child the set no longer declares.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
pub enum ScaleDown {
    /// Delete the child; its room goes by the child's rules (an occupied room waits, `whenOccupied`).
    #[default]
    Delete,
    /// Delete the child with `deletionPolicy: Orphan`: the room stays in ZIM.
    Orphan,
}

/// The observed state of a set.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": 0}))]
pub struct ZimRoomSetStatus {
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Rooms the set declares.
    #[serde(default)]
    #[schemars(extend("format" = "int64"))]
    pub desired: u32,
    /// Children that exist (declared or still going).
    #[serde(default)]
    #[schemars(extend("format" = "int64"))]
    pub existing: u32,
    /// Declared children that are Ready.
    #[serde(default)]
    #[schemars(extend("format" = "int64"))]
    pub ready: u32,
    /// Children whose room had members when last counted.
    #[serde(default)]
    #[schemars(extend("format" = "int64"))]
    pub occupied: u32,
    /// Children whose room another object owns (Ready=False Conflict).
    #[serde(default)]
    #[schemars(extend("format" = "int64"))]
    pub conflicting: u32,
    /// Children no longer declared whose deletion waits (an occupied room) or runs.
    #[serde(default)]
    #[schemars(extend("format" = "int64"))]
    pub deleting: u32,
    /// Declared children not Ready: `name: reason` (at most 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ready: Vec<String>,
    /// `Ready`, `Reconciling` and `Stalled`, as for ZimRoom.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// The room IDs `set` declares, in order, each checked as a roomId; every problem names its field. Nothing is
/// created or deleted from a set whose room IDs cannot be computed.
pub fn expand(spec: &ZimRoomSetSpec) -> Result<Vec<String>, Vec<FieldError>> {
    let err = |path: &str, message: String| FieldError { path: path.into(), message };
    let ids: Vec<String> = match (&spec.rooms.ids, &spec.rooms.range) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(vec![err("spec.rooms", "exactly one of ids and range is required".into())]);
        }
        (Some(ids), None) => ids.clone(),
        (None, Some(r)) => {
            if r.end < r.start {
                return Err(vec![err(
                    "spec.rooms.range",
                    format!("end {} is before start {}", r.end, r.start),
                )]);
            }
            let count = (r.end - r.start) as usize + 1;
            if count > MAX_ROOMS {
                return Err(vec![err(
                    "spec.rooms.range",
                    format!("declares {count} rooms, at most {MAX_ROOMS}"),
                )]);
            }
            let width = r.width as usize;
            (r.start..=r.end).map(|n| format!("{}{n:0width$}{}", r.prefix, r.suffix)).collect()
        }
    };
    let mut errors = Vec::new();
    if ids.len() > MAX_ROOMS {
        errors.push(err("spec.rooms.ids", format!("has {} entries, at most {MAX_ROOMS}", ids.len())));
    }
    let mut seen = BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        let path =
            if spec.rooms.ids.is_some() { format!("spec.rooms.ids[{i}]") } else { "spec.rooms.range".into() };
        if let Err(e) = limits::check_id(id) {
            errors.push(err(&path, format!("room ID {id:?}: {e}")));
        } else if !seen.insert(id.as_str()) {
            errors.push(err(&path, format!("room ID {id:?} is listed twice")));
        }
    }
    if spec.template.spec.room_id.is_some() {
        errors.push(err(
            "spec.template.spec.roomId",
            "must not be set: each child's roomId is one of the set's".into(),
        ));
    }
    let problems = crate::reconcile::validate::validate_spec(
        "template",
        &ZimRoomSpec {
            room_id: Some(ids.first().cloned().unwrap_or_else(|| "x".into())),
            ..spec.template.spec.clone()
        },
    );
    errors.extend(problems.into_iter().filter(|p| p.path != "spec.roomId").map(|p| FieldError {
        path: p.path.replacen("spec.", "spec.template.spec.", 1),
        message: p.message,
    }));
    if errors.is_empty() { Ok(ids) } else { Err(errors) }
}

/// The name of `set`'s child for `room_id`: the set's name, a dash, and the room ID made a valid object name
/// (lower case; characters other than letters, digits, `-` and `.` become `-`), with a short hash of the room ID
/// when that changed anything or the name would be too long — so it is stable and two room IDs never share one.
pub fn child_name(set: &str, room_id: &str) -> String {
    let clean: String = room_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c.to_ascii_lowercase() } else { '-' })
        .collect();
    let exact = clean == room_id && !room_id.starts_with(['-', '.']) && !room_id.ends_with(['-', '.']);
    let mut name = format!("{set}-{}", clean.trim_matches(['-', '.']));
    if !exact || name.len() > 63 {
        use md5::{Digest, Md5};
        let hash = hex::encode(Md5::digest(room_id.as_bytes()));
        name.truncate(63 - 9);
        let name = name.trim_end_matches(['-', '.']);
        return format!("{name}-{}", &hash[..8]);
    }
    name
}

/// The child ZimRoom of `set` for `room_id`: the template's labels (plus [`SET_LABEL`]) and annotations, its spec
/// with `roomId`, and an owner reference to the set with `controller: true`.
pub fn child(set: &ZimRoomSet, room_id: &str) -> ZimRoom {
    let set_name = set.metadata.name.clone().unwrap_or_default();
    let template = set.spec.template.metadata.clone().unwrap_or_default();
    let mut labels = template.labels;
    labels.insert(SET_LABEL.into(), set_name.clone());
    let owner = OwnerReference {
        api_version: ZimRoomSet::api_version(&()).into_owned(),
        kind: ZimRoomSet::kind(&()).into_owned(),
        name: set_name.clone(),
        uid: set.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    ZimRoom {
        metadata: ObjectMeta {
            name: Some(child_name(&set_name, room_id)),
            namespace: set.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: (!template.annotations.is_empty()).then_some(template.annotations),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: ZimRoomSpec { room_id: Some(room_id.to_owned()), ..set.spec.template.spec.clone() },
        status: None,
    }
}

/// One child as the set sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildState {
    /// The child's name.
    pub name: String,
    /// Its roomId.
    pub room_id: String,
    /// Ready=True for its current generation.
    pub ready: bool,
    /// Its Ready reason.
    pub reason: Option<String>,
    /// Its room had members when last counted.
    pub occupied: bool,
    /// It is being deleted.
    pub deleting: bool,
}

/// The counts and the list of not-Ready children, for `desired` room IDs and the children that exist.
pub fn summarize(desired: &[String], children: &[ChildState]) -> ZimRoomSetStatus {
    let wanted: BTreeSet<&str> = desired.iter().map(String::as_str).collect();
    let declared: Vec<&ChildState> =
        children.iter().filter(|c| !c.deleting && wanted.contains(c.room_id.as_str())).collect();
    let mut not_ready: Vec<String> = declared
        .iter()
        .filter(|c| !c.ready)
        .map(|c| format!("{}: {}", c.name, c.reason.as_deref().unwrap_or("not reconciled yet")))
        .collect();
    not_ready.sort();
    not_ready.truncate(MAX_LISTED);
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    ZimRoomSetStatus {
        desired: count(desired.len()),
        existing: count(children.len()),
        ready: count(declared.iter().filter(|c| c.ready).count()),
        occupied: count(children.iter().filter(|c| c.occupied).count()),
        conflicting: count(
            declared.iter().filter(|c| c.reason.as_deref() == Some(crate::crd::reason::CONFLICT)).count(),
        ),
        deleting: count(children.iter().filter(|c| c.deleting).count()),
        not_ready,
        ..ZimRoomSetStatus::default()
    }
}

#[cfg(test)]
mod tests;
