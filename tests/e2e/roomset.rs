//! Fleets of rooms, end to end: a ZimRoomSet of 50 generated rooms converges (50 children Ready, 50 rooms in the
//! simulator, the set Ready); scaling to 30 with members in 5 of the removed rooms deletes 15 children and keeps 5
//! waiting until they empty (the set's status says so); a template attribute change reaches every child; a bad
//! generator change leaves every child in place with the set Stalled and a message.

use std::time::Duration;

use kube::Api;
use kube::api::{Patch, PatchParams};
use zim_operator::roomset::{ZimRoomSet, child_name};

use crate::harness::*;

const T: Duration = Duration::from_secs(60);

fn sets(w: &World) -> Api<ZimRoomSet> {
    Api::namespaced(w.client.clone(), &w.ns)
}

async fn apply_set(w: &World, body: serde_json::Value) {
    let mut body = body;
    body["apiVersion"] = "zim.zego.im/v1alpha1".into();
    body["kind"] = "ZimRoomSet".into();
    let name = body["metadata"]["name"].as_str().unwrap().to_owned();
    sets(w)
        .patch(&name, &PatchParams::apply("e2e-user").force(), &Patch::Apply(&body))
        .await
        .expect("apply set");
}

fn lobbies(end: u32, topic: &str) -> serde_json::Value {
    serde_json::json!({
        "metadata": {"name": "lobbies"},
        "spec": {
            "rooms": {"range": {"prefix": "lobby-", "start": 1, "end": end, "width": 2}},
            "template": {
                "metadata": {"labels": {"tier": "free"}},
                "spec": {"destroyDelayTime": 600, "credentialsSecretRef": {"name": "zego"},
                         "attributes": [{"key": "topic", "value": topic}]},
            },
        },
    })
}

async fn set_status(w: &World, what: &str, check: impl Fn(&ZimRoomSet) -> bool) -> ZimRoomSet {
    eventually(what, T, || async {
        let s = sets(w).get_opt("lobbies").await.ok()??;
        check(&s).then_some(s)
    })
    .await
}

/// What cli-utils' kstatus (Flux, Helm 4 `--wait`) reads for the set.
fn kstatus(s: &ZimRoomSet) -> String {
    let obj = serde_json::to_value(s).unwrap();
    crate::status_contract::cli_utils_kstatus(&[obj]).remove(0).0
}

fn ready_reason(s: &ZimRoomSet) -> Option<&str> {
    s.status.as_ref()?.conditions.iter().find(|c| c.type_ == "Ready").map(|c| c.reason.as_str())
}

fn room_count(w: &World) -> usize {
    w.sim.sim.rooms(APP).iter().filter(|r| r.room_id.starts_with("lobby-")).count()
}

#[tokio::test]
async fn a_set_converges_scales_down_safely_and_follows_its_template() {
    let w = World::new("e2e-set").await;
    w.create_secret("zego").await;
    let _op = w.operator(&["--occupied-recheck", "1s"]).await;
    apply_set(&w, lobbies(50, "welcome")).await;
    let s = set_status(&w, "the set to be Ready with 50 children", |s| {
        ready_reason(s) == Some("AllReady") && s.status.as_ref().is_some_and(|st| st.ready == 50)
    })
    .await;
    assert_eq!(kstatus(&s), "Current", "a Ready set");
    let st = s.status.unwrap();
    assert_eq!((st.desired, st.existing, st.ready, st.deleting), (50, 50, 50, 0));
    assert_eq!(room_count(&w), 50, "50 rooms in the simulator");
    let child =
        w.get(&child_name("lobbies", "lobby-07")).await.expect("a child named after the set and the room");
    assert_eq!(child.spec.room_id.as_deref(), Some("lobby-07"));
    assert_eq!(child.metadata.labels.as_ref().unwrap()["tier"], "free");

    // Scale to 30 with people in 5 of the 20 removed rooms.
    let occupied = ["lobby-31", "lobby-35", "lobby-40", "lobby-45", "lobby-50"];
    for id in occupied {
        w.sim.sim.enter_room(APP, id, &["guest".to_owned()]).unwrap();
    }
    apply_set(&w, lobbies(30, "welcome")).await;
    let s = set_status(&w, "15 removed children gone and 5 waiting", |s| {
        s.status.as_ref().is_some_and(|st| st.existing == 35 && st.deleting == 5)
    })
    .await;
    assert_eq!(ready_reason(&s), Some("ScalingDown"), "{:?}", s.status);
    assert_eq!(kstatus(&s), "InProgress", "a set scaling down");
    assert_eq!(room_count(&w), 35, "the 5 occupied rooms stay while their children wait");
    for id in occupied {
        let waiting = w.get(&child_name("lobbies", id)).await.expect("the child waits");
        assert_eq!(waiting.condition("Ready").unwrap().reason, "WaitingForEmptyRoom", "{id}");
    }
    for id in occupied {
        w.sim.sim.leave_room(APP, id, &["guest".to_owned()]).unwrap();
    }
    set_status(&w, "the set Ready with 30", |s| {
        ready_reason(s) == Some("AllReady") && s.status.as_ref().is_some_and(|st| st.existing == 30)
    })
    .await;
    assert_eq!(room_count(&w), 30);

    // A template change reaches every child.
    apply_set(&w, lobbies(30, "tournament")).await;
    eventually("every room to carry the new topic", T, || async {
        let rooms = w.sim.sim.rooms(APP);
        let done = rooms
            .iter()
            .filter(|r| r.room_id.starts_with("lobby-"))
            .all(|r| r.attributes.get("topic").map(String::as_str) == Some("tournament"));
        done.then_some(())
    })
    .await;

    // A generator that cannot be computed changes nothing.
    let mut bad = lobbies(30, "tournament");
    bad["spec"]["rooms"]["range"]["start"] = 40.into();
    apply_set(&w, bad).await;
    let s = set_status(&w, "the set to be Stalled", |s| ready_reason(s) == Some("InvalidRooms")).await;
    let stalled = s.status.as_ref().unwrap().conditions.iter().find(|c| c.type_ == "Stalled").unwrap();
    assert_eq!(stalled.status, "True");
    assert!(stalled.message.contains("spec.rooms.range"), "{stalled:?}");
    assert_eq!(kstatus(&s), "Failed", "a set whose rooms cannot be computed");
    assert_eq!(s.status.as_ref().unwrap().existing, 30);
    assert_eq!(w.list().await.iter().filter(|r| r.metadata.deletion_timestamp.is_none()).count(), 30);
    assert_eq!(room_count(&w), 30, "no child deleted, no room destroyed");
}

/// A template the API server admits but the operator refuses (attribute values over 5120 bytes in all, which the
/// schema cannot express) makes the set Stalled at once, and nothing is created.
#[tokio::test]
async fn a_refused_template_stalls_the_set() {
    let w = World::new("e2e-set-refused").await;
    w.create_secret("zego").await;
    let _op = w.operator(&[]).await;
    let mut body = lobbies(3, "x");
    let big: Vec<serde_json::Value> =
        (0..6).map(|i| serde_json::json!({"key": format!("k{i}"), "value": "v".repeat(1000)})).collect();
    body["spec"]["template"]["spec"]["attributes"] = big.into();
    apply_set(&w, body).await;
    let s = set_status(&w, "the set to be Stalled", |s| {
        ready_reason(s) == Some("ChildrenStalled") || ready_reason(s) == Some("InvalidRooms")
    })
    .await;
    let st = s.status.unwrap();
    let stalled = st.conditions.iter().find(|c| c.type_ == "Stalled").unwrap();
    assert_eq!(stalled.status, "True", "{stalled:?}");
    assert!(stalled.message.contains("spec.template.spec.attributes"), "{stalled:?}");
    assert_eq!(w.calls("CreateRoom"), 0, "nothing was created in ZIM");
    assert!(w.list().await.is_empty(), "no child");
}

/// Children the API server refuses (here a template label value Kubernetes does not allow: the set's schema
/// cannot know label syntax) make the set Stalled `ChildrenRefused`, quoting the server, instead of a retry loop.
#[tokio::test]
async fn children_the_api_server_refuses_stall_the_set() {
    let w = World::new("e2e-set-apirefused").await;
    w.create_secret("zego").await;
    let _op = w.operator(&[]).await;
    let mut body = lobbies(2, "x");
    body["spec"]["template"]["metadata"]["labels"]["tier"] = "not a label value!".into();
    apply_set(&w, body).await;
    let s = set_status(&w, "the set to be Stalled", |s| ready_reason(s) == Some("ChildrenRefused")).await;
    let stalled = s.status.as_ref().unwrap().conditions.iter().find(|c| c.type_ == "Stalled").unwrap();
    assert_eq!(stalled.status, "True");
    assert!(
        stalled.message.contains("refuses 2 of 2 children") && stalled.message.contains("metadata.labels"),
        "{stalled:?}"
    );
    assert!(w.list().await.is_empty());
    assert_eq!(kstatus(&s), "Failed");
}
