//! The controller end to end on a real kube-apiserver + etcd and the ZIM simulator over HTTP, with the operator
//! as a separate process: create, edit, immutable edits, delete, orphan, late Secrets, resync recreation, SIGTERM
//! and quiet restarts, the crash window, leader election (and a leader cut off from the API server,
//! split_brain.rs), invalid, paused and nudged objects, and the admin endpoints; the alert rules and the dashboard
//! against a real Prometheus (alerting.rs). One API server per test binary (see harness.rs); each test has its own
//! namespace, simulator and operator.

mod alerting;
mod callbacks;
mod cel;
mod egress;
mod metrics_auth;
mod observe;
mod occupancy;
mod ownership;
mod reliability;
mod roomset;
mod split_brain;
mod status_contract;
mod status_records;
#[path = "../support/mod.rs"]
mod support;
mod tenancy;
mod trust;

use std::time::Duration;

use harness::*;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
pub(crate) use support::{harness, kstatus};
use zim_operator::crd::{DeletionPolicy, ZimRoom};
use zim_operator::sim::{Fault, FaultPlan};
pub(crate) use zim_operator::testing as builder;
use zim_operator::testing::{RoomBuilder, room};

const T: Duration = Duration::from_secs(30);

/// `NAME` with destroyDelayTime 600 and the attribute topic=general.
/// A valid Kubernetes name that is not a valid room ID (35 bytes, ZIM allows 32): without spec.roomId, an invalid
/// room the API server admits on every version.
const LONG_NAME: &str = "an-object-name-longer-than-32-bytes";

fn topic_room(name: &str) -> RoomBuilder {
    room(name).destroy_delay(600).attribute("topic", "general")
}

/// A world with the default Secret and an operator, where `lobby` (topic=general) has become Available.
async fn with_lobby(ns: &str) -> (World, Operator, ZimRoom) {
    let w = World::new(ns).await;
    w.create_secret("zego").await;
    let op = w.operator(&[]).await;
    w.apply_room(topic_room("lobby")).await;
    let r = w.wait_reason("lobby", "Available", T).await;
    (w, op, r)
}

/// apply → Ready and Synced for the current generation, created (not adopted), with the finalizer and attributes.
#[tokio::test]
async fn apply_makes_the_room_ready() {
    let (w, op, r) = with_lobby("e2e-create").await;
    let status = r.status.clone().unwrap();
    assert_eq!(status.observed_generation, r.metadata.generation);
    assert_eq!(r.condition("Synced").unwrap().reason, "ReconcileSuccess");
    assert_eq!(status.adopted, Some(false));
    assert!(r.metadata.finalizers.as_ref().unwrap().contains(&"zim.zego.im/destroy-room".to_string()));
    assert_eq!(
        w.sim.sim.room(APP, "lobby").unwrap().attributes.get("topic").map(String::as_str),
        Some("general")
    );
    assert!(!op.logs().contains(SECRET), "the server secret must never be logged");
}

/// An attribute edit converges with one ModifyRoomAttribute and a new requestId.
#[tokio::test]
async fn attribute_edit_converges() {
    let (w, op, r) = with_lobby("e2e-edit").await;
    let first_request = r.status.clone().unwrap().request_id;
    w.apply_room(topic_room("lobby").attribute("topic", "news")).await;
    let r = eventually("the attribute edit to converge", T, || async {
        let r = w.get("lobby").await?;
        (r.status.as_ref()?.observed_generation == Some(2) && r.condition("Synced")?.status == "True")
            .then_some(r)
    })
    .await;
    assert_ne!(r.status.as_ref().unwrap().request_id, first_request);
    assert_eq!(w.calls("ModifyRoomAttribute"), 1);
    assert_eq!(
        w.sim.sim.room(APP, "lobby").unwrap().attributes.get("topic").map(String::as_str),
        Some("news")
    );
    assert!(!op.logs().contains(SECRET), "the server secret must never be logged");
}

/// An immutable edit costs no ZIM call. On a current Kubernetes the CRD's CEL rule refuses it at apply, with the
/// rule's message, and the object stays as it was (Ready); on 1.20, which has no CEL, the operator refuses it
/// (ImmutableFieldChanged). The operator's own check is also tested without a cluster (tests/integration/reconcile.rs).
#[tokio::test]
async fn immutable_edit_is_refused_without_a_call() {
    let (w, op, _) = with_lobby("e2e-immutable").await;
    let before = w.last_seq();
    if on_floor() {
        w.apply_room(topic_room("lobby").destroy_delay(60)).await;
        let r = w.wait_reason("lobby", "ImmutableFieldChanged", T).await;
        assert!(r.condition("Ready").unwrap().message.contains("spec.destroyDelayTime"));
    } else {
        let refused = w.try_apply_room(topic_room("lobby").destroy_delay(60)).await;
        let Err(kube::Error::Api(e)) = refused else {
            panic!("the immutable edit was not refused: {refused:?}")
        };
        assert_eq!(e.code, 422, "{e:?}");
        assert!(e.message.contains("spec.destroyDelayTime cannot change once the room exists"), "{e:?}");
        let r = w.get("lobby").await.unwrap();
        assert_eq!(r.condition("Ready").unwrap().reason, "Available");
        assert_ne!(r.spec.destroy_delay_time, 60, "the refused edit changed nothing");
    }
    assert_eq!(w.last_seq(), before, "no ZIM call for an immutable change");
    assert!(!op.logs().contains(SECRET), "the server secret must never be logged");
}

/// Deleting the object destroys the room with DestroyRoom, then the finalizer goes.
#[tokio::test]
async fn delete_destroys_the_room() {
    let (w, op, _) = with_lobby("e2e-delete").await;
    w.rooms().delete("lobby", &DeleteParams::default()).await.unwrap();
    w.wait_gone("lobby", T).await;
    assert_eq!(w.calls("DestroyRoom"), 1);
    assert!(w.sim.sim.room(APP, "lobby").is_none());
    assert!(!op.logs().contains(SECRET), "the server secret must never be logged");
}

/// deletionPolicy Orphan: deleting the object leaves the room and calls nothing.
#[tokio::test]
async fn orphan_leaves_the_room() {
    let w = World::new("e2e-orphan").await;
    w.create_secret("zego").await;
    let _op = w.operator(&[]).await;
    w.apply_room(topic_room("keep").deletion_policy(DeletionPolicy::Orphan)).await;
    w.wait_reason("keep", "Available", T).await;
    w.rooms().delete("keep", &DeleteParams::default()).await.unwrap();
    w.wait_gone("keep", T).await;
    assert_eq!(w.calls("DestroyRoom"), 0);
    assert!(w.sim.sim.room(APP, "keep").is_some());
}

/// A Secret created after the ZimRoom: CredentialsNotFound first, then Ready without a restart (one sequence).
#[tokio::test]
async fn secret_created_late() {
    let w = World::new("e2e-late-secret").await;
    let _op = w.operator(&[]).await;
    w.apply_room(topic_room("late").secret_ref("late-creds")).await;
    let r = w.wait_reason("late", "CredentialsNotFound", T).await;
    assert!(r.condition("Ready").unwrap().message.contains("late-creds"));
    assert!(w.log().is_empty(), "no ZIM call without credentials");
    w.create_secret("late-creds").await;
    w.wait_reason("late", "Available", T).await;
}

/// A room ZEGO destroyed (here: removed in the simulator) is recreated at the next resync, with a Recreated event.
#[tokio::test]
async fn resync_recreates_vanished_room() {
    let w = World::new("e2e-resync").await;
    w.create_secret("zego").await;
    let op = w.operator(&["--resync-period", "1s"]).await;
    w.apply_room(topic_room("ephemeral")).await;
    w.wait_reason("ephemeral", "Available", T).await;
    let before = w.last_seq();
    assert!(w.sim.sim.remove_room(APP, "ephemeral"));
    eventually("the room to be recreated", T, || async { w.sim.sim.room(APP, "ephemeral") }).await;
    // One probe (the prober's) finds it gone; the recreation does not probe again.
    let calls: Vec<String> = w.sim.sim.log_since(before).into_iter().map(|e| e.action).collect();
    let create = calls.iter().position(|a| a == "CreateRoom").unwrap();
    assert_eq!(&calls[..create], ["QueryRoomUserList"], "one probe before the recreation: {calls:?}");
    assert_eq!(
        w.sim.sim.room(APP, "ephemeral").unwrap().attributes.get("topic").map(String::as_str),
        Some("general")
    );
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(w.client.clone(), &w.ns);
    eventually("a Recreated event", T, || async {
        let list = events.list(&Default::default()).await.ok()?;
        list.items.iter().any(|e| e.reason.as_deref() == Some("Recreated")).then_some(())
    })
    .await;
    assert!(op.metric("zim_operator_existence_probes_total{result=\"gone\"}").await >= 1.0);
}

/// A world whose operator (resync 1 h) has made r1, r2 and r3 Available; their resource versions.
async fn with_three_rooms(ns: &str) -> (World, Operator, Vec<Option<String>>) {
    let w = World::new(ns).await;
    w.create_secret("zego").await;
    let op = w.operator(&["--resync-period", "1h"]).await;
    for name in ["r1", "r2", "r3"] {
        w.apply_room(topic_room(name)).await;
    }
    let mut versions = Vec::new();
    for name in ["r1", "r2", "r3"] {
        versions.push(w.wait_reason(name, "Available", T).await.metadata.resource_version);
    }
    (w, op, versions)
}

/// SIGTERM makes the operator exit 0 and release its lease.
#[tokio::test]
async fn sigterm_exits_cleanly_and_releases_the_lease() {
    let (w, mut op, _) = with_three_rooms("e2e-sigterm").await;
    let status = op.terminate().await;
    assert!(status.success(), "SIGTERM exits 0: {status:?}\n{}", op.logs());
    let leases: Api<Lease> = Api::namespaced(w.client.clone(), &w.ns);
    let lease = leases.get("zim-operator").await.unwrap();
    assert!(lease.spec.and_then(|s| s.holder_identity).is_none_or(|h| h.is_empty()), "the lease is released");
}

/// Restarting the operator with converged rooms costs no ZIM call from the reconcile workers and no status write:
/// the rooms go to the prober, which re-checks each once within its period (here shortened to 3 s after the
/// restart: exactly one probe per room in the first period).
#[tokio::test]
async fn restart_is_quiet() {
    let (w, mut op, versions) = with_three_rooms("e2e-restart").await;
    let status = op.terminate().await;
    assert!(status.success(), "SIGTERM exits 0: {status:?}\n{}", op.logs());

    let before = w.last_seq();
    let op2 = w.operator(&["--resync-period", "4s"]).await;
    op2.wait_ready().await;
    eventually("the restarted operator to see each room", T, || async {
        (op2.metric("zim_operator_reconciles_total").await >= 3.0).then_some(())
    })
    .await;
    let probes =
        || w.sim.sim.log_since(before).into_iter().filter(|e| e.action == "QueryRoomUserList").count();
    eventually("the prober to re-check every room", T, || async { (probes() >= 3).then_some(()) }).await;
    let calls: Vec<String> = w.sim.sim.log_since(before).into_iter().map(|e| e.action).collect();
    assert!(calls.iter().all(|a| a == "QueryRoomUserList"), "only existence probes: {calls:?}");
    let mut per_room: std::collections::HashMap<String, usize> = Default::default();
    for e in w.sim.sim.log_since(before) {
        *per_room.entry(e.room_id).or_default() += 1;
    }
    assert!(per_room.values().all(|n| *n <= 2), "about one probe per room per period: {per_room:?}");
    assert_eq!(op2.metric("zim_operator_status_writes_total").await, 0.0);
    for (name, v) in ["r1", "r2", "r3"].iter().zip(versions) {
        assert_eq!(w.get(name).await.unwrap().metadata.resource_version, v, "{name} was not written");
    }
}

/// Killed between CreateRoom and its status write: after a restart the room is Ready and not adopted.
#[tokio::test]
async fn crash_between_create_and_status_write() {
    let w = World::new("e2e-crash").await;
    w.create_secret("zego").await;
    let mut op = w.operator(&[]).await;
    w.sim.sim.set_faults(FaultPlan {
        next: [Fault::DelayReply { ms: 5000 }].into(),
        actions: vec!["CreateRoom".into()],
        ..Default::default()
    });
    w.apply_room(topic_room("crashy")).await;
    eventually("CreateRoom to take effect in ZIM", T, || async { w.sim.sim.room(APP, "crashy") }).await;
    op.kill().await;
    let r = w.get("crashy").await.unwrap();
    assert_eq!(r.condition("Ready").unwrap().reason, "Creating", "only the intent was written");
    w.sim.sim.set_faults(FaultPlan::default());
    let _op2 = w.operator(&[]).await;
    let r = w.wait_reason("crashy", "Available", T).await;
    assert_eq!(r.status.unwrap().adopted, Some(false));
}

/// Two operators: only the leader calls ZIM; when it is killed the other takes over (one sequence: failover needs
/// a leader first).
#[tokio::test]
async fn leader_election() {
    let w = World::new("e2e-leader").await;
    w.create_secret("zego").await;
    let mut ops = [w.operator(&["--identity", "a"]).await, w.operator(&["--identity", "b"]).await];
    let leader = eventually("one leader", T, || async {
        let (a, b) = (ops[0].metric("zim_operator_leader").await, ops[1].metric("zim_operator_leader").await);
        match (a, b) {
            (1.0, 0.0) => Some(0),
            (0.0, 1.0) => Some(1),
            _ => None,
        }
    })
    .await;
    let standby = 1 - leader;
    w.apply_room(topic_room("one")).await;
    w.wait_reason("one", "Available", T).await;
    assert!(ops[leader].metric("zim_operator_zim_calls_total").await >= 1.0);
    assert_eq!(ops[standby].metric("zim_operator_zim_calls_total").await, 0.0, "the standby never calls ZIM");
    eventually("the other to stand by", T, || async {
        let body = ops[standby].get("/readyz").await;
        (body.as_deref() == Some("standby: waiting for the leader lease")).then_some(())
    })
    .await;

    ops[leader].kill().await;
    w.apply_room(topic_room("two")).await;
    w.wait_reason("two", "Available", T).await;
    assert_eq!(ops[standby].metric("zim_operator_leader").await, 1.0, "the standby took over");
}

/// An invalid room that the API server admits is InvalidSpec naming the field, with no ZIM call: an object name
/// of 35 bytes without spec.roomId (a valid Kubernetes name, but the room ID defaults to it and ZIM allows 32
/// bytes). On 1.20, which has no CEL, also a roomName of 33 two-byte characters (within the schema's 64
/// characters, over ZIM's 64 bytes); a current server refuses that one at apply.
#[tokio::test]
async fn invalid_spec_costs_no_zim_call() {
    let w = World::new("e2e-invalid").await;
    w.create_secret("zego").await;
    let _op = w.operator(&[]).await;
    w.apply_room(room(LONG_NAME).destroy_delay(600)).await;
    let r = w.wait_reason(LONG_NAME, "InvalidSpec", T).await;
    assert!(r.condition("Ready").unwrap().message.contains("metadata.name"), "{r:?}");
    let bytes = w.try_apply_room(topic_room("bytes").room_name(&"é".repeat(33))).await;
    if on_floor() {
        bytes.expect("1.20 admits the byte length");
        let r = w.wait_reason("bytes", "InvalidSpec", T).await;
        assert!(r.condition("Ready").unwrap().message.contains("spec.roomName"));
    } else {
        let Err(kube::Error::Api(e)) = bytes else { panic!("the byte length was admitted: {bytes:?}") };
        assert!(e.message.contains("roomName must be at most 64 bytes of UTF-8"), "{e:?}");
    }
    assert!(w.log().is_empty(), "no ZIM call for an invalid room: {:?}", w.log());
}

/// A paused room costs no ZIM call; removing the annotation reconciles it (one sequence: pause, then unpause).
#[tokio::test]
async fn paused_room_waits_until_unpaused() {
    let w = World::new("e2e-paused").await;
    w.create_secret("zego").await;
    let _op = w.operator(&[]).await;
    w.apply_room(topic_room("paused").paused()).await;
    eventually("the paused room to say so", T, || async {
        let r = w.get("paused").await?;
        (r.condition("Synced")?.reason == "ReconcilePaused").then_some(())
    })
    .await;
    assert!(w.log().is_empty(), "no ZIM call for a paused room: {:?}", w.log());

    let patch = serde_json::json!({"metadata": {"annotations": {"zim.zego.im/paused": null}}});
    w.rooms().patch("paused", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    w.wait_reason("paused", "Available", T).await;
}

/// A change of the reconcile-requested-at annotation makes the operator re-check the room at once.
#[tokio::test]
async fn reconcile_requested_at_annotation_probes_the_room() {
    let (w, _op, _) = with_lobby("e2e-requested").await;
    let before = w.last_seq();
    let patch =
        serde_json::json!({"metadata": {"annotations": {"zim.zego.im/reconcile-requested-at": "now"}}});
    w.rooms().patch("lobby", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    eventually("the requested reconcile to probe the room", T, || async {
        w.sim.sim.log_since(before).iter().any(|e| e.action == "QueryRoomUserList").then_some(())
    })
    .await;
}

/// The admin server answers /healthz and /readyz, and /metrics serves every metric docs/monitoring.md lists, without
/// per-object labels (here with one invalid and one Ready room).
#[tokio::test]
async fn admin_endpoints_serve_health_and_documented_metrics() {
    let w = World::new("e2e-admin").await;
    w.create_secret("zego").await;
    let op = w.operator(&["--resync-period", "2s"]).await;
    w.apply_room(room(LONG_NAME).destroy_delay(600)).await;
    w.apply_room(topic_room("steady")).await;
    w.wait_reason(LONG_NAME, "InvalidSpec", T).await;
    w.wait_reason("steady", "Available", T).await;
    // A member in the room, so the occupancy families have a series (they have one only while non-zero).
    w.sim.sim.enter_room(APP, "steady", &["guest".to_owned()]).unwrap();
    eventually("the member to be counted", T, || async {
        (op.metric("zim_operator_rooms_occupied{room_namespace=\"e2e-admin\"}").await == 1.0).then_some(())
    })
    .await;

    assert_eq!(op.get("/healthz").await.as_deref(), Some("ok"));
    assert_eq!(op.get("/readyz").await.as_deref(), Some("ok"));
    let metrics = op.get("/metrics").await.unwrap();
    for name in [
        "zim_operator_reconciles_total",
        "zim_operator_reconcile_failures_total{category=\"invalid_spec\"}",
        "zim_operator_reconcile_duration_seconds",
        "zim_operator_zim_calls_total{action=\"CreateRoom\",code=\"0\"}",
        "zim_operator_zim_call_duration_seconds",
        "zim_operator_zim_limiter_wait_seconds",
        "zim_operator_rooms{ready=\"true\"}",
        "zim_operator_rooms{ready=\"false\"}",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    assert!(!metrics.contains("steady") && !metrics.contains(LONG_NAME), "no per-object labels");
    // Every metric the metrics table of docs/monitoring.md lists is served.
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/monitoring.md")).unwrap();
    let listed: Vec<&str> = page
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter(|l| l.starts_with("zim_operator_") || l.starts_with("process_"))
        .filter_map(|l| l.split('`').next())
        .collect();
    assert!(listed.len() >= 20, "docs/monitoring.md lists the metrics");
    for name in listed {
        assert!(
            // A family of that name (counters are listed with `_total`, which their family name lacks).
            metrics.contains(&format!("# TYPE {} ", name.trim_end_matches("_total"))),
            "docs/monitoring.md lists {name}, /metrics lacks it"
        );
    }
}

/// A credentials Secret whose labels change re-queues nothing (no ZIM call); a change of its data re-queues its
/// rooms (one probe each).
#[tokio::test]
async fn only_a_secret_data_change_requeues_its_rooms() {
    use k8s_openapi::api::core::v1::Secret;
    let (w, op, _) = with_lobby("e2e-secret-data").await;
    let secrets: Api<Secret> = Api::namespaced(w.client.clone(), &w.ns);
    let before = w.last_seq();
    let label = serde_json::json!({"metadata": {"labels": {"team": "chat"}}});
    secrets.patch("zego", &PatchParams::default(), &Patch::Merge(&label)).await.unwrap();
    eventually("the operator to see the label change", T, || async {
        op.logs().contains("changed without a data change").then_some(())
    })
    .await;
    assert!(w.sim.sim.log_since(before).is_empty(), "a label change costs no ZIM call");
    let data = serde_json::json!({"stringData": {"note": "rotated"}});
    secrets.patch("zego", &PatchParams::default(), &Patch::Merge(&data)).await.unwrap();
    eventually("the data change to re-check the room", T, || async {
        w.sim.sim.log_since(before).iter().any(|e| e.action == "QueryRoomUserList").then_some(())
    })
    .await;
}

/// Field selectors on a current Kubernetes: `spec.roomId` finds the object that declares a room, `status.roomId`
/// also the one whose room ID defaults to its name, `status.appId` every room of an app — across namespaces,
/// exactly the declaring objects. Kubernetes 1.20 refuses such a selector (the CRD's selectable fields need 1.31).
#[tokio::test]
async fn field_selectors_find_the_declaring_object() {
    use kube::api::ListParams;
    let (w, _op, _) = with_lobby("e2e-fields").await;
    w.apply_room(room("hall").room_id("e2e-fields-hall").destroy_delay(600)).await;
    w.wait_reason("hall", "Available", T).await;
    let all: Api<ZimRoom> = Api::all(w.client.clone());
    let names = |selector: &str| {
        let (all, selector) = (all.clone(), selector.to_owned());
        async move {
            let list = all.list(&ListParams::default().fields(&selector)).await;
            list.map(|l| {
                l.items
                    .iter()
                    .map(|r| {
                        format!(
                            "{}/{}",
                            r.metadata.namespace.as_deref().unwrap(),
                            r.metadata.name.as_deref().unwrap()
                        )
                    })
                    .collect::<Vec<_>>()
            })
        }
    };
    if on_floor() {
        let refused = names("spec.roomId=e2e-fields-hall").await;
        assert!(matches!(&refused, Err(kube::Error::Api(e)) if e.code == 400), "{refused:?}");
        return;
    }
    assert_eq!(names("spec.roomId=e2e-fields-hall").await.unwrap(), ["e2e-fields/hall"]);
    assert_eq!(names("status.roomId=e2e-fields-hall").await.unwrap(), ["e2e-fields/hall"]);
    assert!(names("spec.roomId=lobby").await.unwrap().is_empty(), "lobby declares no spec.roomId");
    let lobbies = names("status.roomId=lobby").await.unwrap();
    assert!(lobbies.contains(&"e2e-fields/lobby".to_owned()), "{lobbies:?}");
    assert!(lobbies.iter().all(|n| n.ends_with("/lobby")), "{lobbies:?}");
    let mut of_app = names(&format!("status.appId={APP}")).await.unwrap();
    of_app.retain(|n| n.starts_with("e2e-fields/"));
    of_app.sort();
    assert_eq!(of_app, ["e2e-fields/hall", "e2e-fields/lobby"]);
    let refused = names("spec.roomName=x").await;
    assert!(matches!(&refused, Err(kube::Error::Api(e)) if e.code == 400), "not selectable: {refused:?}");
}

/// No warning from the API server for what the operator writes: a status with every field the operator can set
/// (the same shape and server-side apply its status writes use) is accepted with strict field validation, where
/// any field the schema did not know would be an error instead of a warning. Every spec the tests apply is
/// strict too (`World::try_apply_room`).
#[tokio::test]
async fn the_operator_s_writes_fit_the_schema_strictly() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use zim_operator::crd::{AppliedState, ZimRoomStatus};
    let w = World::new("e2e-strict").await;
    w.apply_room(topic_room("full").room_id("full-id").room_name("Full").from_user("ops")).await;
    let now = Time(jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap());
    let condition = |t: &str, s: &str| Condition {
        type_: t.into(),
        status: s.into(),
        reason: "Available".into(),
        message: "every field set".into(),
        observed_generation: Some(1),
        last_transition_time: now.clone(),
    };
    let status = ZimRoomStatus {
        room_id: Some("full-id".into()),
        app_id: Some(APP),
        pending_creation: true,
        observed_generation: Some(1),
        request_id: Some("123".into()),
        adopted: Some(false),
        managed_attribute_keys: vec!["topic".into()],
        applied: Some(AppliedState {
            room_id: "full-id".into(),
            room_name: Some("Full".into()),
            destroy_delay_time: 600,
            attributes_hash: Some("0".repeat(32)),
        }),
        conditions: vec![
            condition("Ready", "True"),
            condition("Synced", "True"),
            condition("Reconciling", "False"),
            condition("Stalled", "False"),
        ],
        seal: Some(format!("v1:{}", "0".repeat(64))),
        occupancy: Some(zim_operator::crd::Occupancy { members: 12, last_change_time: now.clone() }),
        deletion: Some(zim_operator::crd::DeletionProgress {
            phase: zim_operator::crd::DeletionPhase::Draining,
            since: now.clone(),
            deadline: Some(now.clone()),
        }),
        observed: Some(zim_operator::crd::ObservedRoom {
            exists: true,
            attributes: vec![zim_operator::crd::ObservedAttribute { key: "topic".into(), value: "x".into() }],
            drifted_keys: vec!["topic".into()],
        }),
    };
    let patch =
        serde_json::json!({"apiVersion": "zim.zego.im/v1alpha1", "kind": "ZimRoom", "status": status});
    let mut params = PatchParams::apply("zim-operator").force();
    params.field_validation = Some(kube::api::ValidationDirective::Strict);
    let written = w.rooms().patch_status("full", &params, &Patch::Apply(&patch)).await;
    let written = written.unwrap_or_else(|e| panic!("a full status is refused under strict validation: {e}"));
    assert_eq!(written.status.as_ref(), Some(&status), "the server kept every field as written");
}
