//! Uninstall never destroys rooms: deleting the ZimRoom CRD while the operator runs releases every object as
//! Orphan — no DestroyRoom reaches ZIM — and the deletion completes. Its own test binary: it deletes the CRD that
//! the other end-to-end tests would share.

#[path = "../support/mod.rs"]
mod support;

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::DeleteParams;
use support::harness::*;
use zim_operator::testing::room;

/// Deleting the CRD with the operator running: every room stays in ZIM (no DestroyRoom, even for rooms the
/// operator created with the default policy Delete), each object gets an `Orphaned` event, and the CRD goes.
#[tokio::test]
async fn deleting_the_crd_destroys_no_room() {
    let w = World::new("uninstall").await;
    w.create_secret("zego").await;
    let _op = w.operator(&[]).await;
    w.apply_rooms((0..5).map(|i| room(&format!("room-{i}")).destroy_delay(600).build()).collect()).await;
    for i in 0..5 {
        w.wait_reason(&format!("room-{i}"), "Available", Duration::from_secs(30)).await;
    }
    let crds: Api<CustomResourceDefinition> = Api::all(w.client.clone());
    crds.delete("zimrooms.zim.zego.im", &DeleteParams::default()).await.expect("delete the CRD");
    eventually("the CRD deletion to complete", Duration::from_secs(60), || async {
        crds.get_opt("zimrooms.zim.zego.im").await.ok()?.is_none().then_some(())
    })
    .await;
    assert_eq!(w.calls("DestroyRoom"), 0, "an uninstall must not destroy rooms");
    assert_eq!(w.sim.sim.rooms(APP).len(), 5, "every room is still in ZIM");
}
