//! Ownership end to end: two objects declaring one room (in two namespaces), an AppId change (another Secret, or
//! the Secret's appId edited), and attributes ZIM refuses for good — on the real API server with the operator.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use zim_operator::crd::{DeletionPolicy, ZimRoom};

use crate::builder::room;
use crate::harness::*;

const T: Duration = Duration::from_secs(30);

/// A second namespace for `w`'s operator, with the same credentials Secret `zego`.
async fn second_namespace(w: &World, ns: &str) {
    w.tenant_namespace(ns, APP, SECRET).await;
}

async fn apply_in(w: &World, ns: &str, r: ZimRoom) {
    let name = r.metadata.name.clone().unwrap();
    let mut value = serde_json::to_value(&r).unwrap();
    value["metadata"]["namespace"] = ns.into();
    value["metadata"].as_object_mut().unwrap().remove("generation");
    value.as_object_mut().unwrap().remove("status");
    let api: Api<ZimRoom> = Api::namespaced(w.client.clone(), ns);
    api.patch(&name, &PatchParams::apply("e2e-user").force(), &Patch::Apply(&value)).await.expect("apply");
}

async fn wait_reason_in(w: &World, ns: &str, name: &str, reason: &str) -> ZimRoom {
    let api: Api<ZimRoom> = Api::namespaced(w.client.clone(), ns);
    eventually(&format!("{ns}/{name} to reach {reason}"), T, || async {
        let r = api.get_opt(name).await.ok()??;
        (r.condition("Ready")?.reason == reason).then_some(r)
    })
    .await
}

fn writes(w: &World) -> usize {
    w.log()
        .iter()
        .filter(|e| matches!(e.action.as_str(), "CreateRoom" | "ModifyRoomAttribute" | "DestroyRoom"))
        .count()
}

/// Two namespaces declare one room: one CreateRoom overall, the second object is Conflict naming the owner and
/// writes nothing; deleting it (deletionPolicy Delete) leaves the room; deleting the owner leaves the room and the
/// second object takes it over as adopted.
#[tokio::test]
async fn two_namespaces_one_room() {
    let w = World::new("e2e-own-a").await;
    w.create_secret("zego").await;
    second_namespace(&w, "e2e-own-b").await;
    let _op = w.operator(&["--namespaces", "e2e-own-b"]).await;
    w.apply_room(room("lobby").secret_ref("zego").destroy_delay(600).attribute("topic", "a")).await;
    w.wait_reason("lobby", "Available", T).await;
    apply_in(
        &w,
        "e2e-own-b",
        room("lobby").secret_ref("zego").destroy_delay(600).attribute("topic", "b").build(),
    )
    .await;
    let b = wait_reason_in(&w, "e2e-own-b", "lobby", "Conflict").await;
    assert!(b.condition("Ready").unwrap().message.contains("e2e-own-a/lobby"), "{:?}", b.condition("Ready"));
    assert_eq!(w.calls("CreateRoom"), 1, "exactly one CreateRoom overall");
    assert_eq!(writes(&w), 1, "no write from the non-owner");
    assert_eq!(w.sim.sim.room(APP, "lobby").unwrap().attributes.get("topic").map(String::as_str), Some("a"));

    // A second non-owner with deletionPolicy Delete, deleted: the room stays, no DestroyRoom.
    apply_in(
        &w,
        "e2e-own-b",
        room("other")
            .room_id("lobby")
            .secret_ref("zego")
            .destroy_delay(600)
            .deletion_policy(DeletionPolicy::Delete)
            .build(),
    )
    .await;
    wait_reason_in(&w, "e2e-own-b", "other", "Conflict").await;
    let b_api: Api<ZimRoom> = Api::namespaced(w.client.clone(), "e2e-own-b");
    b_api.delete("other", &DeleteParams::default()).await.unwrap();
    eventually("e2e-own-b/other to be gone", T, || async {
        b_api.get_opt("other").await.ok()?.is_none().then_some(())
    })
    .await;
    assert_eq!(w.calls("DestroyRoom"), 0);
    assert!(w.sim.sim.room(APP, "lobby").is_some());

    // The owner goes: the room stays and the claimant adopts it.
    w.rooms().delete("lobby", &DeleteParams::default()).await.unwrap();
    w.wait_gone("lobby", T).await;
    let b = wait_reason_in(&w, "e2e-own-b", "lobby", "Available").await;
    assert_eq!(b.status.as_ref().unwrap().adopted, Some(true));
    assert_eq!(w.calls("DestroyRoom"), 0, "the owner's deletion handed the room over");
    assert_eq!(w.sim.sim.room(APP, "lobby").unwrap().attributes.get("topic").map(String::as_str), Some("b"));
}

async fn assert_app_change_calls_nothing_and_deletes_in_first_app(
    w: &World,
    change: impl std::future::Future<Output = ()>,
) {
    let before = w.last_seq();
    change.await;
    let r = w.wait_reason("lobby", "AppIdChanged", T).await;
    assert!(r.condition("Ready").unwrap().message.contains(&APP.to_string()));
    assert!(w.log().iter().all(|e| e.app_id == APP), "no call may reach the second app");
    assert!(w.sim.sim.log_since(before).iter().all(|e| e.action != "CreateRoom"), "no false Recreated");
    w.rooms().delete("lobby", &DeleteParams::default()).await.unwrap();
    w.wait_gone("lobby", T).await;
    assert!(w.sim.sim.room(APP, "lobby").is_none(), "deletion destroys the room in the first app");
    assert!(w.log().iter().any(|e| e.action == "DestroyRoom" && e.app_id == APP));
}

/// Pointing the object at a Secret of another app: AppIdChanged, no call to that app, deletion in the first app.
#[tokio::test]
async fn app_id_change_by_another_secret() {
    let w = World::new("e2e-own-app1").await;
    w.create_secret("zego").await;
    let secrets: Api<Secret> = Api::namespaced(w.client.clone(), &w.ns);
    let other: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "other-app"},
        "stringData": {"appId": (APP + 1).to_string(), "serverSecret": SECRET},
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &other).await.unwrap();
    let _op = w.operator(&[]).await;
    w.apply_room(room("lobby").secret_ref("zego").destroy_delay(600)).await;
    w.wait_reason("lobby", "Available", T).await;
    assert_app_change_calls_nothing_and_deletes_in_first_app(&w, async {
        w.apply_room(room("lobby").secret_ref("other-app").destroy_delay(600)).await;
    })
    .await;
}

/// Editing the Secret's appId: AppIdChanged, no call to the new app, deletion in the first app.
#[tokio::test]
async fn app_id_change_by_editing_the_secret() {
    let w = World::new("e2e-own-app2").await;
    w.create_secret("zego").await;
    let _op = w.operator(&[]).await;
    w.apply_room(room("lobby").secret_ref("zego").destroy_delay(600)).await;
    w.wait_reason("lobby", "Available", T).await;
    let secrets: Api<Secret> = Api::namespaced(w.client.clone(), &w.ns);
    assert_app_change_calls_nothing_and_deletes_in_first_app(&w, async {
        let patch = serde_json::json!({"stringData": {"appId": (APP + 1).to_string()}});
        secrets.patch("zego", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    })
    .await;
}

/// A room whose clients hold 20 attributes and one more declared key: Ready=True, Synced=False naming the key,
/// the key not owned, and no hot retry (one ModifyRoomAttribute over a 10 s window).
#[tokio::test]
async fn refused_attribute_keeps_ready_and_retries_slowly() {
    let w = World::new("e2e-own-attrs").await;
    w.create_secret("zego").await;
    let client_keys: Vec<(String, String)> = (0..20).map(|i| (format!("c{i}"), "x".into())).collect();
    w.sim.sim.seed_room(APP, "lobby", "", 600, &client_keys);
    let _op = w.operator(&[]).await;
    w.apply_room(room("lobby").secret_ref("zego").destroy_delay(600).attribute("mine", "v")).await;
    w.wait_reason("lobby", "Available", T).await;
    let r = eventually("Synced=False naming the key", T, || async {
        let r = w.get("lobby").await?;
        let s = r.condition("Synced")?;
        (s.status == "False" && s.message.contains("mine")).then_some(r)
    })
    .await;
    assert!(!r.status.as_ref().unwrap().managed_attribute_keys.contains(&"mine".to_string()));
    let window = Instant::now();
    while window.elapsed() < Duration::from_secs(10) {
        assert_eq!(
            w.calls("ModifyRoomAttribute"),
            1,
            "a refused attribute must not be retried on the fast schedule"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Issue 22, scenario 4: objects that are refused never claim a room. A `ForbiddenByPolicy` object (its roomId
/// outside its namespace's prefixes) and an object whose Secret names the app with a secret ZIM refuses both
/// declare `shared` before a legitimate object in a third namespace does. Before, the legitimate one was `Conflict`
/// ("owned by" the refused one) for good, and deleting it orphaned the room. Now it creates the room, and deleting
/// it (deletionPolicy Delete) destroys it.
#[tokio::test]
async fn refused_objects_claim_no_room() {
    let w = World::new("e2e-own-refused-a").await;
    let (b, c) = ("e2e-own-refused-b", "e2e-own-refused-c");
    second_namespace(&w, b).await;
    w.tenant_namespace(c, APP, "00000000000000000000000000000000").await;
    w.create_secret("zego").await;
    let namespaces: Api<Namespace> = Api::all(w.client.clone());
    let prefixes = serde_json::json!({"metadata": {"annotations": {"zim.zego.im/room-id-prefixes": "ta-"}}});
    namespaces.patch(&w.ns, &PatchParams::default(), &Patch::Merge(&prefixes)).await.unwrap();
    let _op = w.operator(&["--namespaces", b, "--namespaces", c]).await;

    w.apply_room(room("steal").room_id("shared").secret_ref("zego")).await;
    w.wait_reason("steal", "ForbiddenByPolicy", T).await;
    apply_in(&w, c, room("junk").room_id("shared").secret_ref("zego").build()).await;
    wait_reason_in(&w, c, "junk", "AuthFailed").await;
    // The legitimate object is younger by at least a second (claims compare creation seconds).
    let older = w.get("steal").await.unwrap().metadata.creation_timestamp.unwrap().0.as_second();
    eventually("a later second", T, || async { (jiff::Timestamp::now().as_second() > older).then_some(()) })
        .await;

    apply_in(&w, b, room("shared").secret_ref("zego").deletion_policy(DeletionPolicy::Delete).build()).await;
    wait_reason_in(&w, b, "shared", "Available").await;
    assert!(w.sim.sim.room(APP, "shared").is_some());

    let b_api: Api<ZimRoom> = Api::namespaced(w.client.clone(), b);
    b_api.delete("shared", &DeleteParams::default()).await.unwrap();
    eventually("e2e-own-refused-b/shared to be gone", T, || async {
        b_api.get_opt("shared").await.ok()?.is_none().then_some(())
    })
    .await;
    assert_eq!(w.calls("DestroyRoom"), 1, "the owner's deletion destroyed its room: no refused successor");
    assert!(w.sim.sim.room(APP, "shared").is_none());
}

/// Issue 22, scenario 9: two objects with one roomId created at the same moment in two namespaces (the one with
/// the higher `namespace/name` first, so it decides before the other is in the cache, and the other, winning the
/// tie on the same creation second, decided it owned the room too). For each of 12 such pairs: exactly one owner
/// (Available), the other `Conflict`, one write to ZIM for the room (the CreateRoom, which carries the
/// attributes), and the room holds the owner's attributes.
#[tokio::test]
async fn simultaneous_claims_have_one_owner() {
    let w = World::new("e2e-own-race-b").await;
    let a = "e2e-own-race-a";
    second_namespace(&w, a).await;
    w.create_secret("zego").await;
    let op = w.operator(&["--namespaces", a]).await;
    let pairs = 12;
    for i in 0..pairs {
        let id = format!("race-{i}");
        let later = room(&id).secret_ref("zego").attribute("topic", "from-b").build();
        let sooner = room(&id).secret_ref("zego").attribute("topic", "from-a").build();
        tokio::join!(w.apply_room(later), async {
            tokio::time::sleep(Duration::from_millis(3)).await;
            apply_in(&w, a, sooner).await
        });
    }
    let a_api: Api<ZimRoom> = Api::namespaced(w.client.clone(), a);
    for i in 0..pairs {
        let id = format!("race-{i}");
        let seen = std::sync::Mutex::new(String::new());
        let settle = async {
            eventually(&format!("both objects of {id} to settle"), T, || async {
                let r = |o: Option<ZimRoom>| o.and_then(|o| o.condition("Ready").map(|c| c.reason.clone()));
                let mine = r(w.get(&id).await);
                let theirs = r(a_api.get_opt(&id).await.ok().flatten());
                *seen.lock().unwrap() = format!("{mine:?} / {theirs:?}");
                let settled = |x: &Option<String>| matches!(x.as_deref(), Some("Available" | "Conflict"));
                (settled(&mine) && settled(&theirs)).then(|| (mine.unwrap(), theirs.unwrap()))
            })
            .await
        };
        let (mine, theirs) = match tokio::time::timeout(T - Duration::from_secs(1), settle).await {
            Ok(v) => v,
            Err(_) => {
                let logs: Vec<String> = op
                    .logs()
                    .lines()
                    .filter(|l| l.contains(&id) || l.contains("WARN") || l.contains("ERROR"))
                    .map(String::from)
                    .collect();
                panic!("{id}: {}\n{}", seen.lock().unwrap(), logs.join("\n"))
            }
        };
        let owners = [&mine, &theirs].iter().filter(|r| r.as_str() == "Available").count();
        assert_eq!(owners, 1, "{id}: exactly one owner ({mine} / {theirs})");
        let writes: Vec<String> = w
            .log()
            .into_iter()
            .filter(|e| e.room_id == id && matches!(e.action.as_str(), "CreateRoom" | "ModifyRoomAttribute"))
            .map(|e| format!("{} {}", e.action, e.code))
            .collect();
        assert_eq!(writes, ["CreateRoom 0"], "{id}: one write, from the owner");
        let topic = w.sim.sim.room(APP, &id).unwrap().attributes.get("topic").cloned();
        let owner_topic = if mine == "Available" { "from-b" } else { "from-a" };
        assert_eq!(topic.as_deref(), Some(owner_topic), "{id}");
    }
}
