//! The rate limit as ZIM sees it (issue 22, item 12): the client behind a proxy that makes every new connection
//! wait 300 ms (`tests/support/wire_proxy.rs`), against the simulator limited to 20 calls/s per action. After each
//! idle period the proxy has closed every connection, so the first calls of a burst wait for new connections while
//! later ones may find a freed connection at once. The measure is taken at the receiving side: the instants the
//! proxy forwarded each request, over every sliding one-second window (ZEGO does not say its window is aligned on
//! seconds, so the strictest reading is held), and the simulator's own verdict (it refuses the 21st call of any
//! sliding second with 660300005).

use std::time::{Duration, Instant};

use zim_operator::sim::{RunningSim, SimConfig, Simulator};
use zim_operator::zim::codes;
use zim_operator::zim::types::*;
use zim_operator::zim::{ClientConfig, Credentials, ServerSecret, ZimApi, ZimClient};

use crate::support::wire_proxy::{WireProxy, most_in_any_window};
use zim_operator::testing::{APP, SECRET};

const OPERATOR: &str = "ops-bot";
const LIMIT: usize = 20;
const NEW_CONNECTION: Duration = Duration::from_millis(300);

async fn sim() -> RunningSim {
    Simulator::new(SimConfig {
        apps: vec![(APP, ServerSecret::new(SECRET))],
        qps: LIMIT as u32,
        room_quota: 10_000,
        ..Default::default()
    })
    .start_local()
    .await
    .expect("simulator starts")
}

fn room(id: &str) -> CreateRoomRequest {
    CreateRoomRequest {
        from_user_id: OPERATOR.into(),
        room_id: id.into(),
        room_name: None,
        destroy_delay_time: Some(3600),
        attributes: Vec::new(),
    }
}

/// Calls per second between the first and the last of `sends`.
fn rate(sends: &[Instant]) -> f64 {
    let span = sends.last().unwrap().duration_since(sends[0]).as_secs_f64();
    (sends.len() - 1) as f64 / span
}

/// Three bursts of 50 CreateRoom and 50 QueryRoomUserList calls at once, each after an idle period in which every
/// connection was closed: no sliding second at the server carries more than 20 calls of one action, and none is
/// throttled.
#[tokio::test]
async fn no_second_at_the_server_carries_more_than_the_limit_after_idle_periods() {
    let sim = sim().await;
    let proxy = WireProxy::start(sim.addr, NEW_CONNECTION).await;
    let client = ZimClient::new(&ClientConfig {
        endpoint: proxy.endpoint(),
        calls_per_second: LIMIT as u32,
        timeout: Duration::from_secs(10),
        ..Default::default()
    })
    .unwrap();
    let creds = Credentials::new(APP, SECRET);
    client
        .user_register(&creds, &[UserInfo { user_id: OPERATOR.into(), ..Default::default() }])
        .await
        .unwrap();
    let mut results = Vec::new();
    let mut rounds = Vec::new();
    for round in 0..3 {
        proxy.drop_connections();
        // The idle period under test (the proxy closed every connection; the client notices while idle).
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let connections = proxy.connections();
        let since = proxy.forwarded().len();
        let creates = (0..50).map(|i| {
            let (c, creds) = (client.clone(), creds.clone());
            async move { c.create_room(&creds, &room(&format!("w{round}-{i}"))).await.map(|_| ()) }
        });
        let probes = (0..50).map(|i| {
            let (c, creds) = (client.clone(), creds.clone());
            async move { c.room_exists(&creds, &format!("w{round}-probe-{i}")).await.map(|_| ()) }
        });
        let (created, probed) =
            tokio::join!(futures::future::join_all(creates), futures::future::join_all(probes));
        results.extend(created.into_iter().chain(probed));
        let forwarded = &proxy.forwarded()[since..];
        let of = |action: &str| -> Vec<Instant> {
            forwarded.iter().filter(|f| f.action == action).map(|f| f.at).collect()
        };
        rounds.push((
            proxy.connections() - connections,
            rate(&of("CreateRoom")),
            rate(&of("QueryRoomUserList")),
        ));
    }
    let creates = proxy.sends("CreateRoom");
    let probes = proxy.sends("QueryRoomUserList");
    let one_s = Duration::from_secs(1);
    let (most_creates, most_probes) =
        (most_in_any_window(&creates, one_s), most_in_any_window(&probes, one_s));
    let log = sim.sim.log();
    let throttled = log
        .iter()
        .filter(|e| {
            [codes::RATE_LIMITED_APP, codes::RATE_LIMITED_ROOM, codes::REGISTER_RATE_LIMITED]
                .contains(&e.code)
        })
        .count();
    let failed: Vec<String> =
        results.iter().filter_map(|r| r.as_ref().err().map(ToString::to_string)).collect();
    for (i, (opened, create_rate, probe_rate)) in rounds.iter().enumerate() {
        println!(
            "round {i}: {opened} new connections; CreateRoom {create_rate:.2}/s, QueryRoomUserList {probe_rate:.2}/s \
             between the first and last send"
        );
    }
    println!(
        "most calls in any 1 s window at the server: CreateRoom {most_creates}, QueryRoomUserList {most_probes} \
         (limit {LIMIT}); {throttled} throttled; {} of {} calls failed",
        failed.len(),
        results.len()
    );
    assert!(rounds.iter().all(|(opened, ..)| *opened >= 2), "each burst opened new connections: {rounds:?}");
    assert_eq!(creates.len(), 150);
    assert_eq!(probes.len(), 150);
    assert!(most_creates <= LIMIT, "{most_creates} CreateRoom calls reached the server within one second");
    assert!(
        most_probes <= LIMIT,
        "{most_probes} QueryRoomUserList calls reached the server within one second"
    );
    assert_eq!(throttled, 0);
    assert!(failed.is_empty(), "{failed:?}");
}

/// The window measure slides: it is not fooled by aligned seconds, and calls one second apart are in different
/// windows (the simulator forgets a call one second after it).
#[test]
fn the_window_measure_slides() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let one_s = Duration::from_secs(1);
    assert_eq!(most_in_any_window(&[at(0), at(600), at(900), at(1100), at(1500)], one_s), 4);
    assert_eq!(most_in_any_window(&[at(0), at(1000)], one_s), 1);
    assert_eq!(most_in_any_window(&[at(0), at(999)], one_s), 2);
    assert_eq!(most_in_any_window(&[], one_s), 0);
}
