//! Enterprise egress for the Kubernetes client: `run --kubeconfig` with `HTTPS_PROXY` reaches the API server
//! through the proxy (kube-rs needs its `http-proxy` feature for that; without it the operator refused to
//! start), and `NO_PROXY` naming the API server sends it direct — matched against the API server, not against
//! the proxy's own address as kube-rs 5 does.

use std::time::Duration;

use crate::builder::room;
use crate::harness::*;

use crate::support::net;

const T: Duration = Duration::from_secs(30);

/// `host:port` of the test API server, from its kubeconfig.
fn api_server() -> String {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig()).expect("kubeconfig");
    let server = kc.clusters[0].cluster.as_ref().and_then(|c| c.server.clone()).expect("a server URL");
    let uri: http::Uri = server.parse().unwrap();
    format!("{}:{}", uri.host().unwrap(), uri.port_u16().unwrap_or(443))
}

/// With HTTPS_PROXY, every connection to the API server is a tunnel through the proxy, and the operator works.
#[tokio::test]
async fn kube_client_goes_through_https_proxy() {
    let (proxy, tunnels) = net::connect_proxy().await;
    let w = World::new("egress-proxy").await;
    w.create_secret("zego").await;
    let proxy_url = format!("http://localhost:{}", proxy.port());
    let _op = w.operator_env(&[], &[("HTTPS_PROXY", proxy_url.as_str())]).await;
    w.apply_room(room("through")).await;
    w.wait_reason("through", "Available", T).await;
    let seen = tunnels.lock().unwrap().clone();
    assert!(!seen.is_empty(), "no tunnel through the proxy");
    assert!(seen.iter().all(|t| *t == api_server()), "{seen:?}");
}

/// NO_PROXY naming the API server's address bypasses the proxy (here the proxy is reached as `localhost`, the API
/// server as 127.0.0.1: kube-rs alone would have matched 127.0.0.1 against `localhost` and kept the proxy).
#[tokio::test]
async fn no_proxy_naming_the_api_server_goes_direct() {
    let (proxy, tunnels) = net::connect_proxy().await;
    let w = World::new("egress-no-proxy").await;
    w.create_secret("zego").await;
    let proxy_url = format!("http://localhost:{}", proxy.port());
    let host = api_server().rsplit_once(':').unwrap().0.to_owned();
    let no_proxy = format!("example.com,{host}");
    let _op =
        w.operator_env(&[], &[("HTTPS_PROXY", proxy_url.as_str()), ("NO_PROXY", no_proxy.as_str())]).await;
    w.apply_room(room("direct")).await;
    w.wait_reason("direct", "Available", T).await;
    assert!(tunnels.lock().unwrap().is_empty(), "{:?}", tunnels.lock().unwrap());
}
