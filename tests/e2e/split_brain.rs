//! 22.3, split brain: two replicas, and the leader loses the API server (through a proxy that the test cuts)
//! while it keeps ZIM. It must stop before the standby can take over: no ZIM call after the renew deadline, none
//! after the new leader's first, and never again without the Lease — so a room the new leader destroys on
//! purpose stays destroyed. Each replica reaches ZIM through a proxy of its own, which tells their calls apart.

use std::time::{Duration, Instant};

use super::builder::room;
use super::harness::*;
use super::support::proxy::Proxy;

const T: Duration = Duration::from_secs(30);

/// The harness's `--lease-duration` (10 s) and the renew deadline derived from it: two thirds.
const LEASE_DURATION: Duration = Duration::from_secs(10);
const RENEW_DEADLINE: Duration = Duration::from_millis(6667);

/// Time for a process to act on its deadline: its timer firing late on a busy machine, and the exit.
const SLACK: Duration = Duration::from_millis(500);

/// A copy of the harness's kubeconfig whose server is `proxy` (same certificate: it names 127.0.0.1).
fn kubeconfig_via(proxy: &Proxy, dir: &std::path::Path) -> std::path::PathBuf {
    let mut kc = kube::config::Kubeconfig::read_from(kubeconfig()).expect("kubeconfig");
    for cluster in &mut kc.clusters {
        let c = cluster.cluster.as_mut().expect("cluster");
        c.server = Some(format!("https://{}", proxy.addr()));
    }
    let path = dir.join("via-proxy.kubeconfig");
    std::fs::write(&path, serde_json::to_vec(&kc).unwrap()).unwrap();
    path
}

/// The API server's address, from the harness's kubeconfig.
fn api_server() -> std::net::SocketAddr {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig()).expect("kubeconfig");
    let server = kc.clusters[0].cluster.as_ref().unwrap().server.clone().unwrap();
    let url = url::Url::parse(&server).unwrap();
    format!("{}:{}", url.host_str().unwrap(), url.port().unwrap()).parse().unwrap()
}

/// Starts an operator whose ZIM calls go through `zim` (the harness gives each operator the world's simulator).
async fn operator_via(
    w: &mut World,
    zim: &Proxy,
    kubeconfig: Option<&std::path::Path>,
    extra: &[&str],
) -> Operator {
    let sim = std::mem::replace(&mut w.sim.addr, zim.addr());
    let op = Operator::start_with(w, kubeconfig, extra, &[]).await;
    w.sim.addr = sim;
    op
}

/// The ZIM calls a replica made through its proxy after `since`, as (seconds after `since`, action).
fn calls_after(zim: &Proxy, since: Instant) -> Vec<(f64, String)> {
    zim.occurrences(b"Action=")
        .into_iter()
        .filter(|(at, _)| *at > since)
        .map(|(at, action)| (((at - since).as_secs_f64() * 1000.0).round() / 1000.0, action))
        .collect()
}

/// The leader loses the API server but keeps ZIM: after the renew deadline it makes no ZIM call, it never
/// overlaps with the new leader, a restarted process does nothing without the Lease, and the other replica
/// converges — the room it destroys on purpose is not recreated by the old leader.
#[tokio::test]
async fn a_leader_cut_off_from_the_api_server_stops_before_the_standby_leads() {
    let mut w = World::new("e2e-split-brain").await;
    w.create_secret("zego").await;
    let dir = tempfile::tempdir().unwrap();
    let api = Proxy::start(api_server()).await;
    let via_proxy = kubeconfig_via(&api, dir.path());
    let (zim_a, zim_b) = (Proxy::start(w.sim.addr).await, Proxy::start(w.sim.addr).await);
    // Every converged room probed every second: a replica that still acts is seen doing so at once.
    let a_args = ["--identity", "a", "--resync-period", "1s"];
    let mut a = operator_via(&mut w, &zim_a, Some(&via_proxy), &a_args).await;
    eventually("a to lead", T, || async { (a.metric("zim_operator_leader").await == 1.0).then_some(()) })
        .await;
    let b = operator_via(&mut w, &zim_b, None, &["--identity", "b", "--resync-period", "1s"]).await;
    eventually("b to stand by", T, || async {
        let body = b.get("/readyz").await;
        (body.as_deref() == Some("standby: waiting for the leader lease")).then_some(())
    })
    .await;
    for name in ["kept", "victim"] {
        w.apply_room(room(name).destroy_delay(600)).await;
    }
    for name in ["kept", "victim"] {
        w.wait_reason(name, "Available", T).await;
    }
    let converged = Instant::now();
    eventually("a to re-check the converged rooms", T, || async {
        calls_after(&zim_a, converged).iter().any(|(_, action)| action == "QueryRoomUserList").then_some(())
    })
    .await;
    assert!(zim_b.occurrences(b"Action=").is_empty(), "the standby never calls ZIM");

    api.cut();
    let cut = Instant::now();
    eventually("b to take over", T, || async {
        (b.metric("zim_operator_leader").await == 1.0).then_some(())
    })
    .await;
    let took_over = cut.elapsed();
    // The new leader destroys a room on purpose: its object is deleted.
    w.rooms().delete("victim", &Default::default()).await.unwrap();
    w.wait_gone("victim", T).await;
    let destroyed = Instant::now();
    assert!(w.sim.sim.room(APP, "victim").is_none(), "b destroyed the room");
    w.apply_room(room("after").destroy_delay(600)).await;
    w.wait_reason("after", "Available", T).await;

    // How the old leader ends. It is due to exit at the renew deadline; a replica that still leads would re-check
    // `victim` within a second of its destruction, so 5 s after it is as long as a running one needs to show it.
    let until = destroyed + Duration::from_secs(5);
    let exit = loop {
        if let Some(status) = a.child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > until {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let a_calls = calls_after(&zim_a, cut);
    let late = (RENEW_DEADLINE + SLACK).as_secs_f64();
    let a_late: Vec<_> = a_calls.iter().filter(|(at, _)| *at > late).collect();
    let b_calls = calls_after(&zim_b, cut);
    eprintln!(
        "cut at 0 s; b leads {:.2} s after; a's ZIM calls after the cut: {a_calls:?}; b's first: {:?}",
        took_over.as_secs_f64(),
        b_calls.first()
    );
    assert!(
        a_late.is_empty(),
        "the cut-off leader made {} ZIM calls after the renew deadline ({RENEW_DEADLINE:?} + {SLACK:?} after the \
         cut; seconds after the cut, action): {a_late:?}",
        a_late.len()
    );
    if let (Some((a_last, _)), Some((b_first, _))) = (a_calls.last(), b_calls.first()) {
        assert!(
            a_last < b_first,
            "the leaders overlapped: a's last call at {a_last} s, b's first at {b_first} s"
        );
    }
    assert!(
        w.sim.sim.room(APP, "victim").is_none(),
        "the room the new leader destroyed was recreated by the old one; a's calls: {a_calls:?}"
    );
    let status = exit.expect("the cut-off leader is still running");
    assert_eq!(status.code(), Some(1), "{status:?}");
    assert!(a.logs().contains("lost the leader lease"), "{}", a.logs());
    assert!(
        took_over >= LEASE_DURATION - RENEW_DEADLINE / 5,
        "b waited for the Lease to expire: {took_over:?}"
    );

    // Restarted (as the kubelet would), still without the API server: a standby, which does nothing.
    let restarted_at = Instant::now();
    let a2 = operator_via(&mut w, &zim_a, Some(&via_proxy), &a_args).await;
    eventually("the restarted replica to report standby", T, || async {
        (a2.get("/readyz").await.as_deref() == Some("standby: waiting for the leader lease")).then_some(())
    })
    .await;
    // b converges and stays the only one calling ZIM: a new room, and a re-check of every room after the restart.
    w.apply_room(room("later").destroy_delay(600)).await;
    w.wait_reason("later", "Available", T).await;
    let later = Instant::now();
    eventually("b to re-check the rooms", T, || async {
        let probes = calls_after(&zim_b, later);
        (probes.iter().filter(|(_, action)| action == "QueryRoomUserList").count() >= 3).then_some(())
    })
    .await;
    let restarted_calls = calls_after(&zim_a, restarted_at);
    assert!(
        restarted_calls.is_empty(),
        "the restarted replica called ZIM without the Lease: {restarted_calls:?}"
    );
    assert_eq!(a2.metric("zim_operator_leader").await, 0.0);
    assert!(w.sim.sim.room(APP, "kept").is_some() && w.sim.sim.room(APP, "victim").is_none());
}
