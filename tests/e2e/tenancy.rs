//! Tenancy, end to end: each threat of a shared operator, with the operator running under the chart's RBAC (a
//! token of the chart's ServiceAccount, the chart's Roles and ClusterRoles applied to the API server), and the
//! admin's policy as annotations on the Namespace. Each test shows the refusal costs no ZIM call, then (where it
//! applies) that the admin's consent — an annotation change, seen through the Namespace watch — lets it through.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use zim_operator::crd::DeletionPolicy;

use super::builder::room;
use super::harness::*;

const T: Duration = Duration::from_secs(30);

/// Sets (or with `None` removes) an annotation on namespace `ns`, as a cluster admin would.
async fn annotate_namespace(w: &World, ns: &str, key: &str, value: Option<&str>) {
    let namespaces: Api<Namespace> = Api::all(w.client.clone());
    let patch = serde_json::json!({"metadata": {"annotations": {key: value}}});
    namespaces.patch(ns, &PatchParams::default(), &Patch::Merge(&patch)).await.expect("annotate namespace");
}

/// The Ready message of `name` in `w`'s namespace.
async fn ready_message(w: &World, name: &str) -> String {
    w.get(name).await.unwrap().condition("Ready").unwrap().message.clone()
}

/// Events with `reason` in `w`'s namespace, their notes.
async fn events(w: &World, reason: &str) -> Vec<String> {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(w.client.clone(), &w.ns);
    let list = api.list(&Default::default()).await.unwrap();
    list.items.into_iter().filter(|e| e.reason.as_deref() == Some(reason)).filter_map(|e| e.note).collect()
}

/// Tenant A (roomIds `ta-`) declares tenant B's room: ForbiddenByPolicy with no ZIM call; B's room keeps its
/// attributes; deleting A's object destroys nothing. Extending A's prefixes (an admin's decision) lets it
/// through — the Namespace watch re-queues the object.
#[tokio::test]
async fn a_tenant_cannot_touch_another_tenant_s_room() {
    let w = World::new("e2e-tenant-a").await;
    let b = "e2e-tenant-b";
    let namespaces: Api<Namespace> = Api::all(w.client.clone());
    let ns_obj: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": b}})).unwrap();
    namespaces.create(&PostParams::default(), &ns_obj).await.expect("create namespace");
    annotate_namespace(&w, &w.ns, "zim.zego.im/room-id-prefixes", Some("ta-")).await;
    annotate_namespace(&w, b, "zim.zego.im/room-id-prefixes", Some("tb-")).await;
    w.create_secret("zego").await;
    let secrets: Api<Secret> = Api::namespaced(w.client.clone(), b);
    let s: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "zego"},
        "stringData": {"appId": APP.to_string(), "serverSecret": SECRET},
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &s).await.unwrap();
    let kc = w.chart_kubeconfig(&[]).await;
    let _op = w.operator_as(&kc, &["--namespaces", b]).await;

    // B's room, created by B's object.
    let b_rooms: Api<zim_operator::crd::ZimRoom> = Api::namespaced(w.client.clone(), b);
    let b_room = room("lobby").room_id("tb-lobby").secret_ref("zego").attribute("topic", "b").build();
    let mut value = serde_json::to_value(&b_room).unwrap();
    value.as_object_mut().unwrap().remove("status");
    b_rooms.patch("lobby", &PatchParams::apply("e2e-user").force(), &Patch::Apply(&value)).await.unwrap();
    eventually("B's room to be created", T, || async { w.sim.sim.room(APP, "tb-lobby") }).await;
    let before = w.last_seq();

    // A declares it, with deletionPolicy Delete and other attributes.
    w.apply_room(
        room("steal")
            .room_id("tb-lobby")
            .secret_ref("zego")
            .attribute("topic", "a")
            .deletion_policy(DeletionPolicy::Delete),
    )
    .await;
    w.wait_reason("steal", "ForbiddenByPolicy", T).await;
    let msg = ready_message(&w, "steal").await;
    assert!(msg.contains("roomId tb-lobby is outside") && msg.contains("ta-"), "{msg}");
    assert!(w.sim.sim.log_since(before).is_empty(), "no ZIM call for a forbidden roomId");
    let stalled = w.get("steal").await.unwrap();
    assert_eq!(
        stalled.condition("Stalled").map(|c| c.status.clone()),
        Some("True".into()),
        "Stalled for kstatus"
    );

    // Deleting A's object: no DestroyRoom, B's room and attributes intact.
    w.rooms().delete("steal", &DeleteParams::default()).await.unwrap();
    w.wait_gone("steal", T).await;
    // (B's object may re-check its own room when A's claim goes; nothing else is called.)
    let calls: Vec<String> = w.sim.sim.log_since(before).into_iter().map(|e| e.action).collect();
    assert!(calls.iter().all(|a| a == "QueryRoomUserList"), "deleting A's object changes nothing: {calls:?}");
    let kept = w.sim.sim.room(APP, "tb-lobby").expect("B's room still exists");
    assert_eq!(kept.attributes.get("topic").map(String::as_str), Some("b"));

    // A room inside A's prefix works; a prefix the admin adds later is picked up without a restart.
    w.apply_room(room("own").room_id("ta-own").secret_ref("zego")).await;
    w.wait_reason("own", "Available", T).await;
    w.apply_room(room("later").room_id("shared-later").secret_ref("zego")).await;
    w.wait_reason("later", "ForbiddenByPolicy", T).await;
    annotate_namespace(&w, &w.ns, "zim.zego.im/room-id-prefixes", Some("ta-,shared-")).await;
    w.wait_reason("later", "Available", T).await;
}

/// A room someone else created (the app's backend) is not adopted where the namespace denies adoption: only the
/// existence probe is made, the room's attributes stay, and the object is Stalled ForbiddenByPolicy.
#[tokio::test]
async fn adoption_needs_the_namespace_s_consent() {
    let w = World::new("e2e-tenant-adopt").await;
    annotate_namespace(&w, &w.ns, "zim.zego.im/adopt-existing-rooms", Some("deny")).await;
    w.create_secret("zego").await;
    w.sim.sim.seed_room(APP, "backend-room", "Backend", 600, &[("topic".into(), "backend".into())]);
    let kc = w.chart_kubeconfig(&[]).await;
    let _op = w.operator_as(&kc, &[]).await;
    w.apply_room(room("mine").room_id("backend-room").attribute("topic", "mine")).await;
    w.wait_reason("mine", "ForbiddenByPolicy", T).await;
    let msg = ready_message(&w, "mine").await;
    assert!(
        msg.contains("already exists and is not adopted") && msg.contains("adopt-existing-rooms"),
        "{msg}"
    );
    let actions: Vec<String> = w.log().into_iter().map(|e| e.action).collect();
    assert_eq!(actions, ["QueryRoomUserList"], "only the ownership probe");
    let r = w.sim.sim.room(APP, "backend-room").unwrap();
    assert_eq!(r.attributes.get("topic").map(String::as_str), Some("backend"), "attributes untouched");
    assert_eq!(w.get("mine").await.unwrap().status.unwrap().adopted, None, "not adopted");
}

/// An adopted room with deletionPolicy Delete is not destroyed unless the namespace allows it: the object is
/// released as Orphan with an event saying why. With the annotation, the next one is destroyed.
#[tokio::test]
async fn adopted_rooms_are_destroyed_only_with_the_namespace_s_consent() {
    let w = World::new("e2e-tenant-destroy").await;
    w.create_secret("zego").await;
    w.sim.sim.seed_room(APP, "backend-1", "Backend", 600, &[]);
    w.sim.sim.seed_room(APP, "backend-2", "Backend", 600, &[]);
    let kc = w.chart_kubeconfig(&[]).await;
    let op = w.operator_as(&kc, &[]).await;
    for (name, id) in [("one", "backend-1"), ("two", "backend-2")] {
        w.apply_room(room(name).room_id(id).deletion_policy(DeletionPolicy::Delete)).await;
        let r = w.wait_reason(name, "Available", T).await;
        assert_eq!(r.status.unwrap().adopted, Some(true));
    }
    w.rooms().delete("one", &DeleteParams::default()).await.unwrap();
    w.wait_gone("one", T).await;
    assert_eq!(w.calls("DestroyRoom"), 0, "an adopted room is not destroyed by default");
    assert!(w.sim.sim.room(APP, "backend-1").is_some());
    let notes = eventually("an Orphaned event", T, || async {
        let n = events(&w, "Orphaned").await;
        (!n.is_empty()).then_some(n)
    })
    .await;
    assert!(notes.iter().any(|n| n.contains("destroy-adopted-rooms")), "{notes:?}");

    // The annotation reaches the operator's Namespace cache before the deletion is decided: wait for the
    // re-queue it causes (a reconcile of "two" after the change).
    let success = "zim_operator_reconciles_total{result=\"success\"}";
    let seen = op.metric(success).await;
    annotate_namespace(&w, &w.ns, "zim.zego.im/destroy-adopted-rooms", Some("allow")).await;
    eventually("the annotation to re-queue the namespace's rooms", T, || async {
        (op.metric(success).await > seen).then_some(())
    })
    .await;
    w.rooms().delete("two", &DeleteParams::default()).await.unwrap();
    w.wait_gone("two", T).await;
    assert_eq!(w.calls("DestroyRoom"), 1);
    assert!(w.sim.sim.room(APP, "backend-2").is_none());
}

/// With `--default-credentials-namespaces annotated`, a namespace without the annotation gets no default
/// credentials (no ZIM call); annotating it `allow` lets its room through.
#[tokio::test]
async fn default_credentials_need_the_namespace_s_consent() {
    let w = World::new("e2e-tenant-defcreds").await;
    w.create_secret("zego").await;
    let kc = w.chart_kubeconfig(&[]).await;
    let _op = w.operator_as(&kc, &["--default-credentials-namespaces", "annotated"]).await;
    w.apply_room(room("plain")).await;
    w.wait_reason("plain", "ForbiddenByPolicy", T).await;
    let msg = ready_message(&w, "plain").await;
    assert!(msg.contains("default credentials are not available here"), "{msg}");
    assert!(w.log().is_empty(), "no ZIM call without permitted credentials");
    annotate_namespace(&w, &w.ns, "zim.zego.im/default-credentials", Some("allow")).await;
    w.wait_reason("plain", "Available", T).await;

    // A namespace annotated deny gets none even in the default `all` mode.
    let w2 = World::new("e2e-tenant-defcreds-deny").await;
    annotate_namespace(&w2, &w2.ns, "zim.zego.im/default-credentials", Some("deny")).await;
    w2.create_secret("zego").await;
    let kc2 = w2.chart_kubeconfig(&[]).await;
    let _op2 = w2.operator_as(&kc2, &[]).await;
    w2.apply_room(room("plain")).await;
    w2.wait_reason("plain", "ForbiddenByPolicy", T).await;
    assert!(w2.log().is_empty());
}

/// `spec.fromUserId` is refused unless it is the Secret's or on the namespace's allow-list.
#[tokio::test]
async fn from_user_id_needs_an_allow_list() {
    let w = World::new("e2e-tenant-from").await;
    w.create_secret("zego").await;
    let kc = w.chart_kubeconfig(&[]).await;
    let _op = w.operator_as(&kc, &[]).await;
    w.apply_room(room("boss").from_user("ceo")).await;
    w.wait_reason("boss", "ForbiddenByPolicy", T).await;
    assert!(ready_message(&w, "boss").await.contains("spec.fromUserId ceo is not allowed"));
    assert!(w.log().is_empty(), "no ZIM call (no UserRegister as ceo)");
    annotate_namespace(&w, &w.ns, "zim.zego.im/from-user-ids", Some("ceo,bot")).await;
    w.wait_reason("boss", "Available", T).await;
}

/// Someone who may patch `zimrooms/status` points `status.roomId` at another room: deleting the object destroys
/// nothing (the spec names the room; the status must agree).
#[tokio::test]
async fn a_patched_status_room_id_destroys_nothing() {
    let w = World::new("e2e-tenant-status").await;
    w.create_secret("zego").await;
    w.sim.sim.seed_room(APP, "victim", "Victim", 600, &[]);
    let kc = w.chart_kubeconfig(&[]).await;
    let _op = w.operator_as(&kc, &[]).await;
    w.apply_room(room("mine").deletion_policy(DeletionPolicy::Delete)).await;
    w.wait_reason("mine", "Available", T).await;
    let patch = serde_json::json!({"status": {"roomId": "victim"}});
    w.rooms().patch_status("mine", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    assert_eq!(w.get("mine").await.unwrap().status.unwrap().room_id.as_deref(), Some("victim"));
    w.rooms().delete("mine", &DeleteParams::default()).await.unwrap();
    w.wait_gone("mine", T).await;
    assert_eq!(w.calls("DestroyRoom"), 0, "no room destroyed on the status' word");
    assert!(w.sim.sim.room(APP, "victim").is_some());
}

/// Under `rbac.secretNames` the operator reads and watches only the named Secrets (one watch per name): a
/// Secret created after its room is picked up without a restart, and nothing is forbidden.
#[tokio::test]
async fn named_secret_watches_work_under_resource_names_rbac() {
    let w = World::new("e2e-tenant-secretnames").await;
    w.create_secret("zego").await;
    let kc = w.chart_kubeconfig(&["rbac.secretNames={team-creds}", "credentials.existingSecret=zego"]).await;
    let op = w.operator_as(&kc, &["--secret-names", "team-creds"]).await;
    w.apply_room(room("late").secret_ref("team-creds")).await;
    w.wait_reason("late", "CredentialsNotFound", T).await;
    w.create_secret("team-creds").await;
    w.wait_reason("late", "Available", T).await;
    w.apply_room(room("default-creds")).await;
    w.wait_reason("default-creds", "Available", T).await;
    let logs = op.logs();
    assert!(!logs.to_lowercase().contains("forbidden"), "a request was forbidden:\n{logs}");
}

/// A policy an admin changes while the operator is down applies at its start: a converged room the namespace may
/// no longer declare is ForbiddenByPolicy at once, without a ZIM call, while the admitted one stays quiet with the
/// prober (no call either within the period).
#[tokio::test]
async fn a_policy_changed_while_the_operator_was_down_applies_at_its_start() {
    let w = World::new("e2e-tenant-restart").await;
    w.create_secret("zego").await;
    let kc = w.chart_kubeconfig(&[]).await;
    let mut op = w.operator_as(&kc, &[]).await;
    w.apply_room(room("kept").room_id("ta-kept")).await;
    w.apply_room(room("outside").room_id("tb-outside")).await;
    w.wait_reason("kept", "Available", T).await;
    w.wait_reason("outside", "Available", T).await;
    let status = op.terminate().await;
    assert!(status.success(), "SIGTERM exits 0: {status:?}");

    annotate_namespace(&w, &w.ns, "zim.zego.im/room-id-prefixes", Some("ta-")).await;
    let before = w.last_seq();
    let op = w.operator_as(&kc, &[]).await;
    w.wait_reason("outside", "ForbiddenByPolicy", T).await;
    let msg = ready_message(&w, "outside").await;
    assert!(msg.contains("zim.zego.im/room-id-prefixes"), "{msg}");
    eventually("the restarted operator to see both rooms", T, || async {
        (op.metric("zim_operator_reconciles_total").await >= 2.0).then_some(())
    })
    .await;
    assert_eq!(w.get("kept").await.unwrap().condition("Ready").unwrap().reason, "Available");
    assert!(w.sim.sim.log_since(before).is_empty(), "no ZIM call: {:?}", w.sim.sim.log_since(before));
    assert!(w.sim.sim.room(APP, "tb-outside").is_some(), "the room itself is left alone");
}

/// Issue 22, scenario 1: a tenant cannot delete with another namespace's credentials. Team B (its own namespace and
/// app) has a room `backend` made by its backend, and a ZimRoom of its own, so the operator has read B's Secret.
/// A tenant lets its object create `backend` in its own app, points the object at a missing Secret, writes B's
/// AppId into its status and deletes it. Before, the deletion fell back to the last good credentials of that app
/// from any Secret: DestroyRoom(backend) in B's app, signed with B's secret. Now no call reaches B's app; the
/// deletion is blocked and says how to release the room.
#[tokio::test]
async fn a_deletion_never_uses_another_namespace_s_credentials() {
    let w = World::new("e2e-tenant-borrow").await;
    let b = "e2e-tenant-borrow-b";
    w.tenant_namespace(b, APP_B, SECRET_B).await;
    w.sim.sim.seed_room(APP_B, "backend", "Backend", 600, &[]);
    w.create_secret("zego").await;
    let kc = w.chart_kubeconfig(&[]).await;
    let _op = w.operator_as(&kc, &["--namespaces", b]).await;

    let b_rooms: Api<zim_operator::crd::ZimRoom> = Api::namespaced(w.client.clone(), b);
    let mut own = serde_json::to_value(room("own").room_id("b-own").secret_ref("zego").build()).unwrap();
    own.as_object_mut().unwrap().remove("status");
    b_rooms.patch("own", &PatchParams::apply("e2e-user").force(), &Patch::Apply(&own)).await.unwrap();
    eventually("B's own room", T, || async { w.sim.sim.room(APP_B, "b-own") }).await;

    w.apply_room(room("x").room_id("backend").secret_ref("zego").deletion_policy(DeletionPolicy::Delete))
        .await;
    w.wait_reason("x", "Available", T).await;
    assert!(w.sim.sim.room(APP, "backend").is_some(), "x made backend in its own app");
    w.apply_room(room("x").room_id("backend").secret_ref("missing").deletion_policy(DeletionPolicy::Delete))
        .await;
    w.wait_reason("x", "CredentialsNotFound", T).await;
    let patch = serde_json::json!({"status": {"appId": APP_B}});
    w.rooms().patch_status("x", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    w.rooms().delete("x", &DeleteParams::default()).await.unwrap();

    w.wait_reason("x", "Deleting", T).await;
    let blocked = events(&w, "DeletionBlocked").await;
    assert!(blocked.iter().any(|m| m.contains("deletionPolicy: Orphan")), "{blocked:?}");
    assert_eq!(w.calls_in(APP_B, "DestroyRoom"), 0, "no DestroyRoom in B's app");
    assert!(w.sim.sim.room(APP_B, "backend").is_some(), "B's room is intact");
    let b_calls: Vec<String> = w
        .sim
        .sim
        .log()
        .into_iter()
        .filter(|e| e.app_id == APP_B && e.room_id == "backend")
        .map(|e| e.action)
        .collect();
    assert!(b_calls.is_empty(), "no call about backend in B's app: {b_calls:?}");

    // The way out the event names: release the room.
    let orphan = serde_json::json!({"spec": {"deletionPolicy": "Orphan"}});
    w.rooms().patch("x", &PatchParams::default(), &Patch::Merge(&orphan)).await.unwrap();
    w.wait_gone("x", T).await;
    assert_eq!(w.calls_in(APP_B, "DestroyRoom"), 0);
}
