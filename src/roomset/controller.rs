//! The set controller: keeps each ZimRoomSet's children as it declares them, and its status. It runs on the leader
//! beside the ZimRoom controller and makes no ZIM call.
//!
//! One reconcile of a set:
//! 1. the room IDs ([`super::expand`]); a set whose IDs cannot be computed (a bad range, an invalid ID, a
//!    template with a roomId) changes nothing — no child is created, changed or deleted — and is Stalled with the
//!    problems;
//! 2. its children: the ZimRooms of its namespace labelled with its name and controlled by it (owner reference);
//! 3. each declared room without a child gets one (server-side apply, field manager `zim-operator-set`), at most
//!    `maxUnready` not Ready at once; a child whose labels, annotations or spec differ from the template is applied
//!    again (a template change reaches every child); a child the API server refuses for good (an admission policy,
//!    a CEL rule, RBAC) makes the set Stalled `ChildrenRefused` with the server's message;
//! 4. each child the set no longer declares is deleted (`scaleDown: Delete`: the child's own rules apply, so an
//!    occupied room waits, `whenOccupied`) or, with `scaleDown: Orphan`, set to `deletionPolicy: Orphan` and then
//!    deleted;
//! 5. the status: counts, the children not Ready, and Ready / Reconciling / Stalled as for ZimRoom (kstatus, Helm 4
//!    `--wait`, Flux and Argo CD read them the same way).
//!
//! A child whose room another object owns is `Conflict` like any ZimRoom and is counted in `conflicting`; the set
//! never adopts by force.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use tracing::{debug, info, warn};

use super::{ChildState, SET_LABEL, ScaleDown, ZimRoomSet, ZimRoomSetStatus, child, expand, summarize};
use crate::crd::{DeletionPolicy, ZimRoom, condition, reason};
use crate::reconcile::conditions;

/// The field manager of the set controller's writes (children and the set's status).
pub const FIELD_MANAGER: &str = "zim-operator-set";

/// Set reasons (Ready / Reconciling / Stalled).
pub mod set_reason {
    /// Ready: every declared child is Ready and none is going.
    pub const ALL_READY: &str = "AllReady";
    /// Ready: some declared children are not Ready yet.
    pub const CHILDREN_NOT_READY: &str = "ChildrenNotReady";
    /// Ready: children the set no longer declares are still going (an occupied room waits).
    pub const SCALING_DOWN: &str = "ScalingDown";
    /// Stalled: some declared children are Stalled (a refused template, a conflict, a policy refusal).
    pub const CHILDREN_STALLED: &str = "ChildrenStalled";
    /// Stalled: the room IDs cannot be computed; nothing was changed.
    pub const INVALID_ROOMS: &str = "InvalidRooms";
    /// Stalled: the API server refuses some children (an admission policy, a CEL rule, RBAC).
    pub const CHILDREN_REFUSED: &str = "ChildrenRefused";
}

/// What the set controller needs.
pub struct SetContext {
    /// The Kubernetes client.
    pub client: Client,
}

/// Why a set reconcile failed (retried with a short backoff).
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    /// A Kubernetes call failed.
    #[error("{what}: {source}")]
    Kube {
        /// What was being done.
        what: String,
        /// The failure.
        #[source]
        source: kube::Error,
    },
}

fn kube_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> SetError {
    let what = what.into();
    move |source| SetError::Kube { what, source }
}

/// Runs the set controller for `scope` (a namespace, or every namespace) until `shutdown`.
pub async fn run(ctx: Arc<SetContext>, scope: Option<String>, shutdown: tokio_util::sync::CancellationToken) {
    let (sets, rooms): (Api<ZimRoomSet>, Api<ZimRoom>) = match &scope {
        Some(ns) => (Api::namespaced(ctx.client.clone(), ns), Api::namespaced(ctx.client.clone(), ns)),
        None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
    };
    Controller::new(sets, watcher::Config::default())
        .owns(rooms, watcher::Config::default().labels(SET_LABEL))
        .with_config(kube::runtime::controller::Config::default().debounce(Duration::from_millis(500)))
        .graceful_shutdown_on(async move { shutdown.cancelled().await })
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            if let Err(e) = result {
                debug!(error = %e, "set controller event");
            }
            futures::future::ready(())
        })
        .await;
}

fn error_policy(set: Arc<ZimRoomSet>, error: &SetError, _ctx: Arc<SetContext>) -> Action {
    warn!(set = %set.name_any(), error = %error, "ZimRoomSet reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

fn is_child_of(room: &ZimRoom, set: &ZimRoomSet) -> bool {
    let uid = set.metadata.uid.as_deref();
    room.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && Some(o.uid.as_str()) == uid)
}

fn state_of(room: &ZimRoom) -> ChildState {
    let current = |c: &&k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition| {
        c.observed_generation.is_none() || c.observed_generation == room.metadata.generation
    };
    let ready = room.condition(condition::READY).filter(current);
    ChildState {
        name: room.name_any(),
        room_id: room.room_id(),
        ready: ready.is_some_and(|c| c.status == "True"),
        reason: ready.filter(|c| c.status != "True").map(|c| c.reason.clone()),
        occupied: room.status.as_ref().and_then(|s| s.occupancy.as_ref()).is_some_and(|o| o.members > 0),
        deleting: room.metadata.deletion_timestamp.is_some(),
    }
}

fn stalled(room: &ZimRoom) -> bool {
    room.metadata.deletion_timestamp.is_none()
        && room
            .condition(condition::STALLED)
            .is_some_and(|c| c.status == "True" && c.observed_generation == room.metadata.generation)
}

/// Whether `have` already carries what `want` (the child as the template makes it) declares.
fn up_to_date(have: &ZimRoom, want: &ZimRoom) -> bool {
    let contains = |have: &Option<BTreeMap<String, String>>, want: &Option<BTreeMap<String, String>>| {
        want.iter().flatten().all(|(k, v)| have.as_ref().and_then(|h| h.get(k)) == Some(v))
    };
    have.spec == want.spec
        && contains(&have.metadata.labels, &want.metadata.labels)
        && contains(&have.metadata.annotations, &want.metadata.annotations)
}

async fn reconcile(set: Arc<ZimRoomSet>, ctx: Arc<SetContext>) -> Result<Action, SetError> {
    let ns = set.namespace().unwrap_or_default();
    let name = set.name_any();
    if set.metadata.deletion_timestamp.is_some() {
        // Kubernetes' garbage collector deletes the children (each by its own rules); nothing to do here.
        return Ok(Action::await_change());
    }
    let rooms: Api<ZimRoom> = Api::namespaced(ctx.client.clone(), &ns);
    let listed = rooms
        .list(&ListParams::default().labels(&format!("{SET_LABEL}={name}")))
        .await
        .map_err(kube_err(format!("listing the children of ZimRoomSet {ns}/{name}")))?;
    let children: Vec<ZimRoom> = listed.items.into_iter().filter(|r| is_child_of(r, &set)).collect();
    let ids = match expand(&set.spec) {
        Ok(ids) => ids,
        Err(problems) => {
            let message = format!(
                "the room IDs cannot be computed, so no child was created, changed or deleted: {}",
                problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
            );
            let previous = set.status.as_ref().map_or(0, |s| s.desired);
            let kept: Vec<String> = children.iter().map(ZimRoom::room_id).collect();
            let mut status = summarize(&kept, &children.iter().map(state_of).collect::<Vec<_>>());
            status.desired = previous;
            set_conditions(&mut status, &set, Verdict::Stuck(set_reason::INVALID_ROOMS, message));
            write_status(&ctx, &set, &status).await?;
            return Ok(Action::await_change());
        }
    };
    let wanted: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    let by_room: BTreeMap<String, &ZimRoom> = children
        .iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .map(|c| (c.room_id(), c))
        .collect();
    let apply = PatchParams::apply(FIELD_MANAGER).force();
    let mut unready =
        children.iter().filter(|c| wanted.contains(c.room_id().as_str()) && !state_of(c).ready).count()
            as u64;
    let bound = set.spec.max_unready.map(u64::from);
    let (mut created, mut updated, mut removed) = (0usize, 0usize, 0usize);
    let mut refused: Vec<String> = Vec::new();
    for id in &ids {
        let want = child(&set, id);
        let child_name = want.metadata.name.clone().unwrap_or_default();
        match by_room.get(id) {
            Some(have) if up_to_date(have, &want) => continue,
            Some(_) => updated += 1,
            None => {
                if bound.is_some_and(|b| unready >= b) {
                    continue;
                }
                unready += 1;
                created += 1;
            }
        }
        let mut body = serde_json::to_value(&want).expect("a ZimRoom serializes");
        body.as_object_mut().map(|o| o.remove("status"));
        match rooms.patch(&child_name, &apply, &Patch::Apply(&body)).await {
            Ok(_) => {}
            // The API server refuses the child for good (its schema, CEL rules, an admission policy such as the
            // namespace's room-id prefixes, RBAC): said on the set's status, not retried blindly.
            Err(kube::Error::Api(e)) if matches!(e.code, 400 | 403 | 422) => {
                refused
                    .push(format!("{child_name}: {}", crate::controller::status::truncate(&e.message, 300)));
            }
            Err(e) => {
                return Err(kube_err(format!("applying child {ns}/{child_name} of ZimRoomSet {name}"))(e));
            }
        }
    }
    for c in children.iter().filter(|c| c.metadata.deletion_timestamp.is_none()) {
        if wanted.contains(c.room_id().as_str()) {
            continue;
        }
        let child_name = c.name_any();
        if set.spec.scale_down == ScaleDown::Orphan && c.spec.deletion_policy != Some(DeletionPolicy::Orphan)
        {
            let patch = serde_json::json!({"spec": {"deletionPolicy": "Orphan"}});
            rooms
                .patch(&child_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(kube_err(format!("releasing child {ns}/{child_name}")))?;
        }
        match rooms.delete(&child_name, &DeleteParams::default()).await {
            Ok(_) => removed += 1,
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(kube_err(format!("deleting child {ns}/{child_name}"))(e)),
        }
    }
    if created + updated + removed > 0 {
        info!(set = %format!("{ns}/{name}"), created, updated, removed, "ZimRoomSet children changed");
    }
    let states: Vec<ChildState> = children.iter().map(state_of).collect();
    let mut status = summarize(&ids, &states);
    let stuck: Vec<String> = children
        .iter()
        .filter(|c| wanted.contains(c.room_id().as_str()) && stalled(c))
        .map(|c| {
            format!("{}: {}", c.name_any(), c.condition(condition::READY).map_or("", |r| r.reason.as_str()))
        })
        .collect();
    let missing = ids.len().saturating_sub(by_room.len());
    let verdict = if !refused.is_empty() {
        Verdict::Stuck(
            set_reason::CHILDREN_REFUSED,
            format!(
                "the API server refuses {} of {} children: {}",
                refused.len(),
                ids.len(),
                first(&refused)
            ),
        )
    } else if !stuck.is_empty() {
        Verdict::Stuck(
            set_reason::CHILDREN_STALLED,
            format!("{} of {} children need a person: {}", stuck.len(), ids.len(), first(&stuck)),
        )
    } else if status.ready as usize == ids.len() && missing == 0 && status.deleting == 0 && removed == 0 {
        Verdict::Done
    } else if status.ready as usize == ids.len() && missing == 0 {
        let going = status.deleting as usize + removed;
        Verdict::Working(
            set_reason::SCALING_DOWN,
            format!(
                "{going} children the set no longer declares are going (an occupied room waits until it is empty)"
            ),
        )
    } else {
        Verdict::Working(
            set_reason::CHILDREN_NOT_READY,
            format!("{} of {} children Ready", status.ready, ids.len()),
        )
    };
    set_conditions(&mut status, &set, verdict);
    write_status(&ctx, &set, &status).await?;
    Ok(Action::await_change())
}

fn first(items: &[String]) -> String {
    let mut shown: Vec<&str> = items.iter().take(5).map(String::as_str).collect();
    if items.len() > 5 {
        shown.push("…");
    }
    shown.join(", ")
}

enum Verdict {
    Done,
    Working(&'static str, String),
    Stuck(&'static str, String),
}

fn set_conditions(status: &mut ZimRoomSetStatus, set: &ZimRoomSet, verdict: Verdict) {
    let generation = set.metadata.generation;
    let now = Time(jiff::Timestamp::now());
    let mut conds = set.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
    let mut put =
        |t: &str, ok: bool, r: &str, m: &str| conditions::set(&mut conds, t, ok, r, m, generation, &now);
    match &verdict {
        Verdict::Done => {
            let message = format!("all {} children Ready", status.desired);
            put(condition::READY, true, set_reason::ALL_READY, &message);
            put(condition::RECONCILING, false, reason::CONVERGED, "not reconciling");
            put(condition::STALLED, false, reason::CONVERGED, "not stalled");
        }
        Verdict::Working(r, m) => {
            put(condition::READY, false, r, m);
            put(condition::RECONCILING, true, r, m);
            put(condition::STALLED, false, r, "not stalled");
        }
        Verdict::Stuck(r, m) => {
            put(condition::READY, false, r, m);
            put(condition::RECONCILING, false, r, "not reconciling");
            put(condition::STALLED, true, r, m);
        }
    }
    for c in &mut conds {
        c.observed_generation = generation;
    }
    status.conditions = conds;
    status.observed_generation = generation;
}

async fn write_status(ctx: &SetContext, set: &ZimRoomSet, status: &ZimRoomSetStatus) -> Result<(), SetError> {
    if set.status.as_ref() == Some(status) {
        return Ok(());
    }
    let api: Api<ZimRoomSet> = Api::namespaced(ctx.client.clone(), &set.namespace().unwrap_or_default());
    let body =
        serde_json::json!({"apiVersion": "zim.zego.im/v1alpha1", "kind": "ZimRoomSet", "status": status});
    api.patch_status(&set.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&body))
        .await
        .map_err(kube_err(format!("writing the status of ZimRoomSet {}", set.name_any())))?;
    Ok(())
}
