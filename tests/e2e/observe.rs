//! Bringing existing rooms under GitOps safely, end to end: an observed room (`managementPolicy: Observe`) is only
//! read — over several periods, while a client keeps changing it — and shows drift; deleting it leaves the room;
//! switching to `Manage` adopts it under the namespace's adoption policy, and back to `Observe` releases it. An
//! `enforce: OnCreate` attribute is sent with CreateRoom only: a client's change is never rewritten and removing
//! it from the spec deletes nothing.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use zim_operator::zim::types::{AttributeAction, ModifyRoomAttribute, ModifyRoomAttributeRequest, UserInfo};
use zim_operator::zim::{Credentials, ZimApi};

use crate::builder::room;
use crate::harness::*;

const T: Duration = Duration::from_secs(30);
const WRITES: [&str; 5] =
    ["CreateRoom", "ModifyRoomAttribute", "DestroyRoom", "KickoutRoomUser", "SendRoomMessage"];

/// A client of the app sets `key` to `value` in `room_id` (another user than the operator's).
async fn client_sets(w: &World, room_id: &str, key: &str, value: &str) {
    let zim = w.sim.sim.in_memory();
    let creds = Credentials::new(APP, SECRET);
    zim.user_register(&creds, &[UserInfo { user_id: "app-backend".into(), ..Default::default() }])
        .await
        .unwrap();
    let request = ModifyRoomAttributeRequest {
        from_user_id: "app-backend".into(),
        room_id: room_id.into(),
        attributes: vec![ModifyRoomAttribute {
            action: AttributeAction::Set,
            key: key.into(),
            value: value.into(),
            auto_delete: 0,
            stop_on_error: 0,
        }],
    };
    zim.modify_room_attribute(&creds, &request).await.unwrap();
}

fn attribute(w: &World, room_id: &str, key: &str) -> Option<String> {
    w.sim.sim.room(APP, room_id)?.attributes.get(key).cloned()
}

fn writes_for(w: &World, since: u64, room_id: &str) -> Vec<String> {
    w.sim
        .sim
        .log_since(since)
        .into_iter()
        .filter(|e| e.room_id == room_id && WRITES.contains(&e.action.as_str()))
        .map(|e| e.action)
        .collect()
}

async fn annotate(w: &World, key: &str, value: &str) {
    let namespaces: Api<Namespace> = Api::all(w.client.clone());
    let patch = serde_json::json!({"metadata": {"annotations": {key: value}}});
    namespaces
        .patch(&w.ns, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotate namespace");
}

async fn set_policy(w: &World, name: &str, policy: &str) {
    let patch = serde_json::json!({"spec": {"managementPolicy": policy}});
    w.rooms().patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patch");
}

/// An observed room a client keeps changing: only reads over several periods, drift shown with its keys, the
/// room's attributes on the status; deleting the object leaves the room.
#[tokio::test]
async fn an_observed_room_is_only_read() {
    let w = World::new("e2e-observe-read").await;
    w.create_secret("zego").await;
    w.sim.sim.seed_room(
        APP,
        "legacy",
        "Legacy",
        600,
        &[("topic".into(), "news".into()), ("host".into(), "ann".into())],
    );
    let _op = w.operator(&["--resync-period", "2s"]).await;
    let before = w.last_seq();
    w.apply_room(room("legacy").secret_ref("zego").attribute("topic", "news").observe()).await;
    let r = w.wait_reason("legacy", "Available", T).await;
    let status = r.status.clone().unwrap();
    let observed = status.observed.clone().expect("what was found");
    assert!(observed.exists && observed.drifted_keys.is_empty(), "{observed:?}");
    assert_eq!(observed.attributes.iter().map(|a| a.key.as_str()).collect::<Vec<_>>(), ["host", "topic"]);
    assert_eq!(r.condition("Synced").unwrap().reason, "Observed");
    assert!(status.applied.is_none() && status.adopted.is_none() && status.managed_attribute_keys.is_empty());

    client_sets(&w, "legacy", "topic", "sports").await;
    let r = eventually("the drift to show", T, || async {
        let r = w.get("legacy").await?;
        (r.condition("Synced")?.reason == "Drifted").then_some(r)
    })
    .await;
    assert!(r.condition("Synced").unwrap().message.contains("topic"), "{:?}", r.condition("Synced"));
    assert_eq!(r.condition("Ready").unwrap().status, "True", "an existing observed room stays Ready");
    // Several more periods of reads, while the client changes the room again.
    client_sets(&w, "legacy", "host", "bob").await;
    let reads = w.calls("QueryRoomAttribute");
    eventually("three more looks", T, || async {
        (w.calls("QueryRoomAttribute") >= reads + 3).then_some(())
    })
    .await;
    // The simulator logs the client's two writes too (they reach it in process); the operator added none.
    assert_eq!(
        writes_for(&w, before, "legacy"),
        ["ModifyRoomAttribute", "ModifyRoomAttribute"],
        "only read calls from the operator for an observed room"
    );
    assert_eq!(attribute(&w, "legacy", "topic").as_deref(), Some("sports"), "the client's value stays");

    w.rooms().delete("legacy", &DeleteParams::default()).await.unwrap();
    w.wait_gone("legacy", T).await;
    assert!(w.sim.sim.room(APP, "legacy").is_some(), "deleting an observer leaves the room");
    assert_eq!(w.calls("DestroyRoom"), 0);
}

/// An observed room that does not exist is Ready=False RoomNotFound (Stalled) and is never created.
#[tokio::test]
async fn an_observed_room_that_is_missing_is_not_created() {
    let w = World::new("e2e-observe-missing").await;
    w.create_secret("zego").await;
    let _op = w.operator(&["--resync-period", "2s"]).await;
    w.apply_room(room("nowhere").secret_ref("zego").observe()).await;
    let r = w.wait_reason("nowhere", "RoomNotFound", T).await;
    assert_eq!(r.condition("Stalled").unwrap().status, "True");
    let probes = w.calls("QueryRoomUserList");
    eventually("two more looks", T, || async { (w.calls("QueryRoomUserList") >= probes + 2).then_some(()) })
        .await;
    assert_eq!(w.calls("CreateRoom"), 0);
    assert!(w.sim.sim.room(APP, "nowhere").is_none());
}

/// Observe → Manage adopts under the namespace's policy (refused while `adopt-existing-rooms: deny`), and sets
/// the declared attributes; Manage → Observe releases the room (no write, deletion leaves it).
#[tokio::test]
async fn switching_between_observe_and_manage() {
    let w = World::new("e2e-observe-switch").await;
    w.create_secret("zego").await;
    w.sim.sim.seed_room(APP, "lounge", "Lounge", 600, &[("topic".into(), "old".into())]);
    annotate(&w, "zim.zego.im/adopt-existing-rooms", "deny").await;
    let _op = w.operator(&["--resync-period", "2s"]).await;
    w.apply_room(room("lounge").secret_ref("zego").attribute("topic", "new").observe()).await;
    w.wait_reason("lounge", "Available", T).await;

    set_policy(&w, "lounge", "Manage").await;
    w.wait_reason("lounge", "ForbiddenByPolicy", T).await;
    assert_eq!(w.calls("ModifyRoomAttribute"), 0, "no write while adoption is denied");
    annotate(&w, "zim.zego.im/adopt-existing-rooms", "allow").await;
    let r = eventually("the adoption", T, || async {
        let r = w.get("lounge").await?;
        (r.status.as_ref()?.adopted == Some(true) && r.condition("Synced")?.status == "True").then_some(r)
    })
    .await;
    assert_eq!(r.condition("Ready").unwrap().reason, "Available");
    assert_eq!(
        attribute(&w, "lounge", "topic").as_deref(),
        Some("new"),
        "a managed room gets its declared value"
    );

    let before = w.last_seq();
    set_policy(&w, "lounge", "Observe").await;
    let r = eventually("the release", T, || async {
        let r = w.get("lounge").await?;
        (r.status.as_ref()?.adopted.is_none() && r.status.as_ref()?.observed.is_some()).then_some(r)
    })
    .await;
    assert!(r.status.unwrap().managed_attribute_keys.is_empty());
    w.rooms().delete("lounge", &DeleteParams::default()).await.unwrap();
    w.wait_gone("lounge", T).await;
    assert_eq!(
        writes_for(&w, before, "lounge"),
        Vec::<String>::new(),
        "released: nothing written, nothing destroyed"
    );
    assert!(w.sim.sim.room(APP, "lounge").is_some());
}

/// An `enforce: OnCreate` attribute is sent with CreateRoom, then left to the clients: their change is not
/// rewritten when the spec's other attributes are synced, it is not a managed key, and removing it from the spec
/// deletes nothing.
#[tokio::test]
async fn an_on_create_attribute_is_left_to_the_clients() {
    let w = World::new("e2e-observe-oncreate").await;
    w.create_secret("zego").await;
    let _op = w.operator(&[]).await;
    w.apply_room(
        room("stage").secret_ref("zego").attribute_on_create("topic", "welcome").attribute("level", "1"),
    )
    .await;
    let r = w.wait_reason("stage", "Available", T).await;
    assert_eq!(attribute(&w, "stage", "topic").as_deref(), Some("welcome"), "sent with CreateRoom");
    assert_eq!(r.status.unwrap().managed_attribute_keys, ["level"], "an OnCreate key is not managed");

    client_sets(&w, "stage", "topic", "late-night").await;
    client_sets(&w, "stage", "level", "9").await;
    // A spec change makes the operator read and sync the attributes: level is set back, topic is not touched.
    w.apply_room(
        room("stage").secret_ref("zego").attribute_on_create("topic", "welcome").attribute("level", "2"),
    )
    .await;
    eventually("level to be synced", T, || async { (attribute(&w, "stage", "level")? == "2").then_some(()) })
        .await;
    assert_eq!(attribute(&w, "stage", "topic").as_deref(), Some("late-night"), "the client's topic is kept");

    // Removed from the spec: nothing is deleted.
    w.apply_room(room("stage").secret_ref("zego").attribute("level", "2")).await;
    let r = eventually("the new generation to be applied", T, || async {
        let r = w.get("stage").await?;
        let s = r.status.as_ref()?;
        (s.observed_generation == r.metadata.generation && r.condition("Synced")?.status == "True")
            .then_some(r)
    })
    .await;
    assert_eq!(
        attribute(&w, "stage", "topic").as_deref(),
        Some("late-night"),
        "removing an OnCreate key deletes nothing"
    );
    assert_eq!(r.status.unwrap().managed_attribute_keys, ["level"]);
}

/// `zim-operator import` of rooms made elsewhere (and one that does not exist): its output, applied with kubectl
/// to the real API server, converges to Ready (Observe) with only read calls, names each object uniquely, and
/// carries no secret.
#[tokio::test]
async fn imported_rooms_converge_with_reads_only() {
    let w = World::new("e2e-observe-import").await;
    w.create_secret("zego").await;
    let ids = ["Lobby_A", "lobby-a", "ops room #1", "plain"];
    for id in ids {
        w.sim.sim.seed_room(APP, id, "Made elsewhere", 600, &[("topic".into(), format!("about {id}"))]);
    }
    let bin = env!("CARGO_BIN_EXE_zim-operator");
    let mut import = tokio::process::Command::new(bin);
    import
        .args([
            "import",
            "--endpoint",
            &w.sim.endpoint(),
            "--namespace",
            &w.ns,
            "--credentials-secret",
            "zego",
        ])
        .env("ZEGO_APP_ID", APP.to_string())
        .env("ZEGO_SERVER_SECRET", SECRET);
    for id in ids.iter().chain(&["missing-room"]) {
        import.args(["--room-id", id]);
    }
    let out = import.output().await.expect("import runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "a missing room: exit 1 ({})",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing-room"));
    let manifests = String::from_utf8(out.stdout).unwrap();
    assert!(!manifests.contains(SECRET), "no secret in the output");
    assert_eq!(manifests.matches("kind: ZimRoom").count(), 4, "{manifests}");

    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let mut apply = tokio::process::Command::new(&kubectl);
    apply
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .args(["apply", "-f", "-"])
        .stdin(std::process::Stdio::piped());
    apply.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = apply.spawn().expect("kubectl runs");
    {
        use tokio::io::AsyncWriteExt;
        child.stdin.take().unwrap().write_all(manifests.as_bytes()).await.unwrap();
    }
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "kubectl apply: {}", String::from_utf8_lossy(&out.stderr));

    let before = w.last_seq();
    let _op = w.operator(&[]).await;
    let rooms = eventually("the imported rooms to be Ready", T, || async {
        let rooms = w.list().await;
        (rooms.len() == 4 && rooms.iter().all(|r| r.condition("Ready").is_some_and(|c| c.status == "True")))
            .then_some(rooms)
    })
    .await;
    let names: std::collections::BTreeSet<_> =
        rooms.iter().map(|r| r.metadata.name.clone().unwrap()).collect();
    assert_eq!(names.len(), 4, "unique names: {names:?}");
    for r in &rooms {
        assert!(r.is_observing(), "imported as Observe");
        assert!(r.status.as_ref().unwrap().observed.as_ref().unwrap().drifted_keys.is_empty(), "as imported");
    }
    let writes: Vec<String> = w
        .sim
        .sim
        .log_since(before)
        .into_iter()
        .filter(|e| WRITES.contains(&e.action.as_str()))
        .map(|e| e.action)
        .collect();
    assert!(writes.is_empty(), "only read calls: {writes:?}");
}

/// An object may not observe a room another namespace manages (it would read that namespace's attributes and
/// member counts): it is Conflict, naming the manager, and reads nothing; in the manager's own namespace it may.
#[tokio::test]
async fn a_room_another_namespace_manages_cannot_be_observed() {
    let w = World::new("e2e-observe-other").await;
    w.create_secret("zego").await;
    let other = "e2e-observe-other-b";
    w.tenant_namespace(other, APP, SECRET).await;
    let _op = w.operator(&["--namespaces", other]).await;
    w.apply_room(room("shared").secret_ref("zego").attribute("topic", "private")).await;
    w.wait_reason("shared", "Available", T).await;
    let reads = w.calls("QueryRoomAttribute");
    w.apply_room_in(other, room("peek").room_id("shared").secret_ref("zego").observe()).await;
    let r = w.wait_reason_in(other, "peek", "Conflict", T).await;
    let ready = r.condition("Ready").unwrap();
    assert!(ready.message.contains("e2e-observe-other/shared"), "{ready:?}");
    assert!(r.status.as_ref().unwrap().observed.is_none(), "nothing observed");
    assert_eq!(w.calls("QueryRoomAttribute"), reads, "no attribute read for the other namespace");
    // The manager's own namespace may observe it.
    w.apply_room(room("watch").room_id("shared").secret_ref("zego").observe()).await;
    let r = w.wait_reason("watch", "Available", T).await;
    assert!(r.status.unwrap().observed.unwrap().exists);
}
