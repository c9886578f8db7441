//! `/metrics` protected through the API server (`--metrics-auth kubernetes`, on its own `--metrics-addr`): no
//! token → 401, a token whose user may not `get` the non-resource URL /metrics → 403, a token of a
//! ServiceAccount bound to a ClusterRole allowing it → 200; probes stay open on the admin address.

use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Api;
use kube::api::PostParams;

use crate::harness::*;

/// A token of ServiceAccount `name` in `ns` (created here), valid for 10 minutes.
async fn service_account_token(w: &World, name: &str) -> String {
    let accounts: Api<ServiceAccount> = Api::namespaced(w.client.clone(), &w.ns);
    let sa: ServiceAccount = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    accounts.create(&PostParams::default(), &sa).await.expect("create ServiceAccount");
    let request = TokenRequest {
        spec: TokenRequestSpec { expiration_seconds: Some(600), ..Default::default() },
        ..Default::default()
    };
    let issued =
        accounts.create_token_request(name, &PostParams::default(), &request).await.expect("TokenRequest");
    issued.status.expect("token issued").token
}

/// Lets ServiceAccount `ns/name` get the non-resource URL /metrics (what a Prometheus would be given).
async fn allow_metrics(w: &World, name: &str) {
    let role_name = format!("{}-metrics-reader", w.ns);
    let roles: Api<ClusterRole> = Api::all(w.client.clone());
    let role: ClusterRole = serde_json::from_value(serde_json::json!({
        "metadata": {"name": role_name},
        "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}],
    }))
    .unwrap();
    roles.create(&PostParams::default(), &role).await.expect("create ClusterRole");
    let bindings: Api<ClusterRoleBinding> = Api::all(w.client.clone());
    let binding: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": role_name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": w.ns}],
    }))
    .unwrap();
    bindings.create(&PostParams::default(), &binding).await.expect("create ClusterRoleBinding");
}

async fn get_metrics(addr: SocketAddr, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(format!("http://{addr}/metrics"));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let r = request.send().await.expect("the metrics listener answers");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// Without a token, with a forbidden user's token, with a made-up token, and with an allowed token.
#[tokio::test]
async fn metrics_require_a_token_allowed_to_get_metrics() {
    let w = World::new("metrics-auth").await;
    w.create_secret("zego").await;
    let metrics: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let op = w.operator(&["--metrics-auth", "kubernetes", "--metrics-addr", &metrics.to_string()]).await;
    let scraper = service_account_token(&w, "scraper").await;
    let nobody = service_account_token(&w, "nobody").await;
    allow_metrics(&w, "scraper").await;

    assert_eq!(op.get("/healthz").await.as_deref(), Some("ok"), "probes need no token");
    assert_eq!(op.get("/metrics").await, None, "/metrics is not on the admin address");
    assert_eq!(get_metrics(metrics, None).await.0, 401);
    assert_eq!(get_metrics(metrics, Some("not-a-token")).await.0, 401);
    assert_eq!(get_metrics(metrics, Some(&nobody)).await.0, 403);
    // RBAC caches may take a moment to see the new binding.
    let body = eventually("the scraper's token to be allowed", Duration::from_secs(15), || async {
        let (status, body) = get_metrics(metrics, Some(&scraper)).await;
        (status == 200).then_some(body)
    })
    .await;
    assert!(body.contains("zim_operator_leader") && body.ends_with("# EOF\n"), "{body}");
    assert!(!op.logs().contains(&scraper) && !op.logs().contains(&nobody), "tokens never logged");
}
