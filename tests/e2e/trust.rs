//! Issue 22's scenarios that concern the periodic prober, end to end on the real API server with the simulator:
//! the prober acts only in the AppId an object's status records, and a probe failure a person must fix reaches
//! the status (and so the not-Ready alerts).

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};

use super::builder::room;
use super::harness::*;

const T: Duration = Duration::from_secs(30);

/// Scenario 6: the Secret's appId changes while the operator is down, to an app that happens to have a room with
/// the same ID. Before, the start handed the converged room to the prober, which probed the other app (a call
/// there, and a room that stays Ready for good). Now the start reports `AppIdChanged` and no call reaches the
/// other app, at the start or over the probe periods that follow.
#[tokio::test]
async fn a_start_does_not_probe_another_app_after_the_secret_changed() {
    let w = World::new("e2e-trust-appid").await;
    w.create_secret("zego").await;
    let mut op = w.operator(&["--resync-period", "2s"]).await;
    w.apply_room(room("lobby")).await;
    w.wait_reason("lobby", "Available", T).await;
    assert!(op.terminate().await.success());

    w.sim.sim.seed_room(APP_B, "lobby", "Lobby", 600, &[]);
    let secrets: Api<Secret> = Api::namespaced(w.client.clone(), &w.ns);
    let patch = serde_json::json!({"stringData": {"appId": APP_B.to_string(), "serverSecret": SECRET_B}});
    secrets.patch("zego", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();

    let _op = w.operator(&["--resync-period", "2s"]).await;
    let r = w.wait_reason("lobby", "AppIdChanged", T).await;
    let msg = &r.condition("Ready").unwrap().message;
    assert!(msg.contains(&format!("AppId {APP}")), "{msg}");
    // A witness room in the new app, converged and probed twice: the prober has made passes since; none of them
    // touched `lobby` in the other app.
    w.apply_room(room("witness")).await;
    w.wait_reason("witness", "Available", T).await;
    let probes_of = |id: &str| {
        w.sim
            .sim
            .log()
            .into_iter()
            .filter(|e| e.app_id == APP_B && e.room_id == id)
            .map(|e| e.action)
            .collect::<Vec<_>>()
    };
    let created_at = probes_of("witness").len();
    eventually("two probes of the witness by the prober", T, || async {
        (probes_of("witness").len() >= created_at + 2).then_some(())
    })
    .await;
    let other = probes_of("lobby");
    assert!(other.is_empty(), "no call about lobby in the other app: {other:?}");
}

/// Scenario 7: the server secret is revoked in the console (the simulator takes a new one). Every probe of the
/// converged room is refused; before, only `zim_operator_existence_probes_total{result="error"}` counted them and the room
/// stayed `Ready=True` for good, so no alert fired. Now the first refused probe hands the room to a reconcile,
/// which turns Ready to `AuthFailed`; once the Secret carries the new secret the room is Ready again.
#[tokio::test]
async fn revoked_credentials_reach_the_status_through_the_prober() {
    let w = World::new("e2e-trust-revoked").await;
    w.create_secret("zego").await;
    let op = w.operator(&["--resync-period", "2s"]).await;
    w.apply_room(room("lobby")).await;
    w.wait_reason("lobby", "Available", T).await;

    let fresh = "0123456789abcdef0123456789abcdef";
    w.sim.sim.set_app_secret(APP, fresh);
    let r = w.wait_reason("lobby", "AuthFailed", T).await;
    assert_eq!(r.condition("Ready").unwrap().status, "False");
    assert!(op.metric("zim_operator_existence_probes_total{result=\"error\"}").await >= 1.0);

    let secrets: Api<Secret> = Api::namespaced(w.client.clone(), &w.ns);
    let patch = serde_json::json!({"stringData": {"serverSecret": fresh}});
    secrets.patch("zego", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    w.wait_reason("lobby", "Available", T).await;
}
