//! The one home of the tests' helpers, included by every integration-test binary (`integration`, `e2e`, `outage`,
//! `uninstall`): a simulator and a reconciler for the simulator-over-HTTP tier, the object builder and the fixture app
//! (from `zim_operator::testing`, which the unit tests in `src/` use too), the kstatus port, the TLS and proxy fixtures
//! ([`net`]), a TCP proxy that can be cut ([`proxy`]), one that makes new connections slow and records what the server
//! receives ([`wire_proxy`]), and, for the tiers with a kube-apiserver, the end-to-end harness.
#![allow(dead_code)] // each binary uses part of it

#[cfg(feature = "e2e")]
pub mod harness;
pub mod kstatus;
pub mod markdown;
pub mod net;
pub mod proxy;
pub mod wire_proxy;

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use zim_operator::crd::ZimRoom;
use zim_operator::reconcile::{Facts, NoSink, Outcome, Reconciler, ResolvedCredentials};
use zim_operator::sim::{LogEntry, RunningSim, SimConfig, Simulator};
use zim_operator::zim::{ClientConfig, Credentials, ServerSecret, ZimClient};

pub use zim_operator::testing::*;

pub async fn sim(qps: u32, quota: usize) -> RunningSim {
    Simulator::new(SimConfig {
        apps: vec![(APP, ServerSecret::new(SECRET))],
        qps,
        room_quota: quota,
        ..Default::default()
    })
    .start_local()
    .await
    .expect("simulator starts")
}

pub fn reconciler(sim: &RunningSim) -> Reconciler {
    let client = ZimClient::new(&ClientConfig {
        endpoint: sim.endpoint(),
        calls_per_second: 0,
        timeout: Duration::from_millis(1500),
        ..Default::default()
    })
    .unwrap();
    Reconciler::new(client, "zim-operator")
}

pub fn creds() -> ResolvedCredentials {
    ResolvedCredentials { credentials: Credentials::new(APP, SECRET), from_user_id: None }
}

pub fn now() -> Time {
    Time(jiff::Timestamp::now())
}

pub async fn run(rec: &Reconciler, room: &mut ZimRoom) -> Outcome {
    let out = rec.reconcile(room, &Facts::owner(Ok(creds())), &NoSink, now()).await;
    room.status = Some(out.status.clone());
    out
}

/// The actions logged after `since`, in order.
pub fn actions_since(sim: &RunningSim, since: u64) -> Vec<String> {
    sim.sim.log_since(since).into_iter().map(|e: LogEntry| e.action).collect()
}

pub fn last_seq(sim: &RunningSim) -> u64 {
    sim.sim.log().last().map_or(0, |e| e.seq)
}

pub fn ready(room: &ZimRoom) -> (String, String) {
    let c = room.condition("Ready").expect("Ready condition");
    (c.status.clone(), c.reason.clone())
}
