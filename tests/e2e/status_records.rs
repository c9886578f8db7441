//! Issue 22, scenario 2: the status is not proof. A status writer (here the test's admin client, as a tenant
//! granted `*` on its namespace would) forges the ownership record of a ZimRoom; the operator, running under the
//! chart's RBAC, acts only on records it sealed. Also: an upgrade from records without seals (they are sealed and
//! keep working), and the chart's aggregated edit role, which cannot write the status at all.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use zim_operator::crd::{AppliedState, ZimRoom, ZimRoomStatus};

use super::builder::room;
use super::harness::*;

const T: Duration = Duration::from_secs(30);

async fn annotate_namespace(w: &World, key: &str, value: &str) {
    let namespaces: Api<Namespace> = Api::all(w.client.clone());
    let patch = serde_json::json!({"metadata": {"annotations": {key: value}}});
    namespaces
        .patch(&w.ns, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotate namespace");
}

/// Merge-patches `name`'s status as a tenant with rights on the status subresource would.
async fn forge(w: &World, name: &str, status: serde_json::Value) {
    let patch = serde_json::json!({ "status": status });
    w.rooms()
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("forging the status of {name}: {e}"));
}

/// Asks for a reconcile of `name` now.
async fn poke(w: &World, name: &str, value: &str) {
    let patch =
        serde_json::json!({"metadata": {"annotations": {"zim.zego.im/reconcile-requested-at": value}}});
    w.rooms().patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
}

/// The actions the simulator received about `room_id` since `seq`.
fn actions_since(w: &World, room_id: &str, seq: u64) -> Vec<String> {
    w.sim.sim.log().into_iter().filter(|e| e.seq > seq && e.room_id == room_id).map(|e| e.action).collect()
}

/// An operator under the chart's RBAC, once its new seal key is marked swept (its legacy window, which trusts
/// records on objects as old as the key, is closed).
async fn chart_operator(w: &World) -> Operator {
    w.create_secret("zego").await;
    let kc = w.chart_kubeconfig(&["credentials.existingSecret=zego"]).await;
    let op = w.operator_as(&kc, &[]).await;
    wait_swept(w).await;
    op
}

async fn wait_swept(w: &World) {
    let secrets: Api<Secret> = Api::namespaced(w.client.clone(), &w.ns);
    let key_name = format!("{}-zim-operator-seal", w.ns);
    eventually("the seal key marked swept", T, || async {
        let key = secrets.get_opt(&key_name).await.ok().flatten()?;
        key.metadata.annotations?.contains_key("zim.zego.im/records-sealed").then_some(())
    })
    .await;
}

/// 2a: an adopted room (deletion leaves it, `destroy-adopted-rooms` is absent) whose record a tenant flips to
/// `adopted: false`. Before, deleting the object destroyed the room. Now the record does not verify: the
/// reconcile it asks for says UnverifiedStatus with no call, and the deletion leaves the room.
#[tokio::test]
async fn a_forged_adopted_flag_destroys_nothing() {
    let w = World::new("e2e-seal-adopted").await;
    w.sim.sim.seed_room(APP, "hall", "Hall", 600, &[]);
    let _op = chart_operator(&w).await;
    w.apply_room(room("hall")).await;
    let r = w.wait_reason("hall", "Available", T).await;
    assert_eq!(r.status.as_ref().unwrap().adopted, Some(true));
    assert!(r.status.as_ref().unwrap().seal.is_some(), "the operator seals its record");

    forge(&w, "hall", serde_json::json!({"adopted": false})).await;
    let seq = w.last_seq();
    poke(&w, "hall", "1").await;
    let r = w.wait_reason("hall", "UnverifiedStatus", T).await;
    let msg = &r.condition("Ready").unwrap().message;
    assert!(msg.contains("seal") && msg.contains("--subresource=status"), "{msg}");
    assert_eq!(r.condition("Stalled").unwrap().status, "True");
    assert!(actions_since(&w, "hall", seq).is_empty(), "no call for an unverified record");

    w.rooms().delete("hall", &DeleteParams::default()).await.unwrap();
    w.wait_gone("hall", T).await;
    assert_eq!(w.calls_in(APP, "DestroyRoom"), 0);
    assert!(w.sim.sim.room(APP, "hall").is_some(), "the adopted room is left in ZIM");
}

/// 2b: adoption denied (the namespace does not adopt), then the tenant records `pendingCreation: true` so that
/// the next "room already exists" would count as its own creation. Before, the object then wrote its attributes
/// into the room and destroyed it on deletion. Now: no CreateRoom, no attribute write, no DestroyRoom.
#[tokio::test]
async fn a_forged_pending_creation_claims_nothing() {
    let w = World::new("e2e-seal-pending").await;
    annotate_namespace(&w, "zim.zego.im/adopt-existing-rooms", "deny").await;
    w.sim.sim.seed_room(APP, "stage", "Stage", 600, &[("owner".into(), "them".into())]);
    let _op = chart_operator(&w).await;
    w.apply_room(room("stage").attribute("owner", "us")).await;
    w.wait_reason("stage", "ForbiddenByPolicy", T).await;

    forge(&w, "stage", serde_json::json!({"roomId": "stage", "appId": APP, "pendingCreation": true})).await;
    let seq = w.last_seq();
    poke(&w, "stage", "1").await;
    w.wait_reason("stage", "UnverifiedStatus", T).await;
    assert!(actions_since(&w, "stage", seq).is_empty(), "no call for an unverified record");

    w.rooms().delete("stage", &DeleteParams::default()).await.unwrap();
    w.wait_gone("stage", T).await;
    assert_eq!(w.calls_in(APP, "CreateRoom"), 0);
    assert_eq!(w.calls_in(APP, "ModifyRoomAttribute"), 0);
    assert_eq!(w.calls_in(APP, "DestroyRoom"), 0);
    let left = w.sim.sim.room(APP, "stage").expect("the room is left in ZIM");
    assert_eq!(left.attributes.get("owner").map(String::as_str), Some("them"));
}

/// 2c: the tenant lists a client's attribute key in `managedAttributeKeys`. Before, the next attribute sync
/// deleted that attribute (managed, no longer declared). Now the reconcile makes no call and the attribute stays;
/// removing the status, the way out the message names, has the room adopted afresh with only its own keys.
#[tokio::test]
async fn a_forged_managed_key_deletes_no_attribute() {
    let w = World::new("e2e-seal-keys").await;
    // A client's attribute in a room the object adopts.
    w.sim.sim.seed_room(APP, "lobby", "Lobby", 600, &[("score".into(), "42".into())]);
    let _op = chart_operator(&w).await;
    w.apply_room(room("lobby").attribute("topic", "general")).await;
    let r = w.wait_reason("lobby", "Available", T).await;
    assert_eq!(r.status.as_ref().unwrap().managed_attribute_keys, ["topic"]);

    forge(&w, "lobby", serde_json::json!({"managedAttributeKeys": ["score", "topic"]})).await;
    let seq = w.last_seq();
    // A spec change: the attributes are synced (before, `score` was deleted as a managed key no longer declared).
    w.apply_room(room("lobby").attribute("topic", "news")).await;
    w.wait_reason("lobby", "UnverifiedStatus", T).await;
    assert!(actions_since(&w, "lobby", seq).is_empty(), "no call for an unverified record");
    let now = w.sim.sim.room(APP, "lobby").unwrap();
    assert_eq!(now.attributes.get("score").map(String::as_str), Some("42"));
    assert_eq!(now.attributes.get("topic").map(String::as_str), Some("general"));

    // Remove the status: the object is examined afresh and, the namespace adopting, adopts its room again.
    forge(&w, "lobby", serde_json::Value::Null).await;
    poke(&w, "lobby", "2").await;
    let r = w.wait_reason("lobby", "Available", T).await;
    assert_eq!(r.status.as_ref().unwrap().managed_attribute_keys, ["topic"]);
    let now = w.sim.sim.room(APP, "lobby").unwrap();
    assert_eq!(now.attributes.get("score").map(String::as_str), Some("42"));
    assert_eq!(now.attributes.get("topic").map(String::as_str), Some("news"));
}

/// An upgrade: a record written by a version without seals, on an object older than the key. The operator's
/// first start creates the key, trusts and seals that record, and marks the key; the room is then destroyed on
/// deletion like any room the object created. A record without a seal on an object created after the key is
/// unverified.
#[tokio::test]
async fn records_from_before_the_key_are_sealed_and_kept() {
    let w = World::new("e2e-seal-upgrade").await;
    w.create_secret("zego").await;
    w.sim.sim.seed_room(APP, "old", "Old", 600, &[]);
    w.apply_room(room("old")).await;
    // What the previous version wrote for a room it created.
    let legacy = ZimRoomStatus {
        room_id: Some("old".into()),
        app_id: Some(APP),
        adopted: Some(false),
        observed_generation: Some(1),
        applied: Some(AppliedState {
            room_id: "old".into(),
            destroy_delay_time: 600,
            attributes_hash: Some(zim_operator::reconcile::plan::attributes_hash(&[])),
            ..Default::default()
        }),
        ..Default::default()
    };
    forge(&w, "old", serde_json::to_value(&legacy).unwrap()).await;

    let kc = w.chart_kubeconfig(&["credentials.existingSecret=zego"]).await;
    let _op = w.operator_as(&kc, &[]).await;
    wait_swept(&w).await;
    let r = w.get("old").await.unwrap();
    assert!(r.status.as_ref().unwrap().seal.is_some(), "the legacy record is sealed");

    // A new object with an unsealed record, now that the key exists: unverified.
    w.apply_room(room("new")).await;
    w.wait_reason("new", "Available", T).await;
    forge(&w, "new", serde_json::json!({"seal": null})).await;
    poke(&w, "new", "1").await;
    w.wait_reason("new", "UnverifiedStatus", T).await;

    w.rooms().delete("old", &DeleteParams::default()).await.unwrap();
    w.wait_gone("old", T).await;
    assert!(w.sim.sim.room(APP, "old").is_none(), "the legacy record's room, its own, is destroyed");
}

/// The chart's aggregated edit role (what `edit`/`admin` gain) manages ZimRooms but cannot write their status;
/// its view role reads them. The test binds the chart's ClusterRoles directly (there is no controller manager
/// here to aggregate them).
#[tokio::test]
async fn the_edit_role_cannot_write_the_status() {
    let w = World::new("e2e-seal-edit").await;
    w.create_secret("zego").await;
    let _kc = w.chart_kubeconfig(&["credentials.existingSecret=zego"]).await;
    let accounts: Api<ServiceAccount> = Api::namespaced(w.client.clone(), &w.ns);
    let sa: ServiceAccount =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "tenant"}})).unwrap();
    accounts.create(&PostParams::default(), &sa).await.unwrap();
    let binding: RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "tenant-edit"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("{}-zim-operator-edit", w.ns)},
        "subjects": [{"kind": "ServiceAccount", "name": "tenant", "namespace": w.ns}],
    }))
    .unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(w.client.clone(), &w.ns);
    bindings.create(&PostParams::default(), &binding).await.unwrap();
    let client = w.client_as("tenant").await;
    let rooms: Api<ZimRoom> = Api::namespaced(client, &w.ns);
    let created = rooms.create(&PostParams::default(), &room("mine").build()).await;
    assert!(created.is_ok(), "edit creates ZimRooms: {created:?}");
    let patch = serde_json::json!({"status": {"adopted": false}});
    let status = rooms.patch_status("mine", &PatchParams::default(), &Patch::Merge(&patch)).await;
    assert!(
        matches!(&status, Err(kube::Error::Api(e)) if e.code == 403),
        "status is not editable: {status:?}"
    );
    rooms.delete("mine", &DeleteParams::default()).await.expect("edit deletes ZimRooms");
}
