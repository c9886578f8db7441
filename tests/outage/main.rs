//! R2: the API server goes away for 30 s mid-run, then etcd briefly. The operator keeps running, reports
//! not-ready while it cannot watch, and converges after both return, without a restart. Its own test binary: it
//! stops the API server that the other end-to-end tests would share. The operator runs without leader election: a
//! leader exits when it cannot renew its Lease within the renew deadline (22.3, tests/e2e/split_brain.rs), and
//! this test is about the watches surviving the outage.

#[path = "../support/mod.rs"]
mod support;

use std::time::Duration;

use support::harness::*;
use zim_operator::testing::room;

/// R2: the operator survives an API server outage and then an etcd outage and converges after each, without a
/// restart (one sequence: the outages follow each other against one operator).
#[tokio::test]
async fn r2_api_server_and_etcd_outage() {
    let w = World::new("r2-outage").await;
    w.create_secret("zego").await;
    let mut op = w.operator(&["--leader-election", "false"]).await;
    op.wait_ready().await;
    w.apply_room(room("before").destroy_delay(600)).await;
    w.wait_reason("before", "Available", Duration::from_secs(30)).await;

    control("stop-apiserver");
    eventually("the operator to report not-ready without an API server", Duration::from_secs(60), || async {
        op.get("/readyz").await.is_none().then_some(())
    })
    .await;
    // The outage itself lasts 30 s (a duration under test, not a wait for a condition).
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(op.child.try_wait().unwrap().is_none(), "the operator survived the outage");
    assert_eq!(op.get("/healthz").await.as_deref(), Some("ok"), "still alive");
    control("start-apiserver");
    op.wait_ready().await;
    w.apply_room(room("after-apiserver").destroy_delay(600)).await;
    w.wait_reason("after-apiserver", "Available", Duration::from_secs(60)).await;

    control("stop-etcd");
    tokio::time::sleep(Duration::from_secs(5)).await;
    control("start-etcd");
    w.apply_room(room("after-etcd").destroy_delay(600)).await;
    w.wait_reason("after-etcd", "Available", Duration::from_secs(90)).await;
    op.wait_ready().await;
    assert!(op.child.try_wait().unwrap().is_none(), "converged without a restart");
    op.kill().await;
}
