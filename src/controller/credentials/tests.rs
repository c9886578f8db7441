//! Secrets → credentials, the caches and their bounds.

use super::*;
use k8s_openapi::ByteString;

#[test]
fn secret_parsing_names_the_problem_without_values() {
    let secret = |pairs: &[(&str, &[u8])]| Secret {
        data: Some(pairs.iter().map(|(k, v)| (k.to_string(), ByteString(v.to_vec()))).collect()),
        ..Default::default()
    };
    let ok = parse_secret("ns/s", &secret(&[("appId", b"123\n"), ("serverSecret", b"topsecret\n")])).unwrap();
    assert_eq!(ok.credentials.app_id, 123);
    assert_eq!(ok.credentials.secret.expose(), "topsecret");
    let err = parse_secret("ns/s", &secret(&[("appId", b"x1"), ("serverSecret", b"topsecret")])).unwrap_err();
    assert!(err.to_string().contains("appId is not a decimal number"));
    let err = parse_secret("ns/s", &secret(&[("appId", b"1")])).unwrap_err();
    assert!(err.to_string().contains("serverSecret is missing"));
    let err = parse_secret("ns/s", &secret(&[("appId", b"1"), ("serverSecret", b"\xff")])).unwrap_err();
    assert!(!err.to_string().contains("topsecret"));
}

fn creds(app: u32) -> ResolvedCredentials {
    ResolvedCredentials { credentials: Credentials::new(app, "s"), from_user_id: None }
}

#[tokio::test]
async fn last_good_credentials_go_when_their_deleted_secret_is_unused() {
    let client = Client::try_from(kube::Config::new("http://127.0.0.1:1".parse().unwrap())).unwrap();
    let cache = CredentialCache::new(client, None);
    let key = ("ns".to_string(), "zego".to_string());
    lock(&cache.last_good).insert(key.clone(), creds(7));
    lock(&cache.last_good_by_app).insert(("ns".into(), 7), creds(7));
    cache.deleted(&key);
    let mut used = std::collections::HashSet::new();
    used.insert(key.clone());
    // Still used by an object (e.g. one being deleted): kept.
    assert_eq!(cache.evict_unused(&used, &Default::default()), 0);
    assert!(lock(&cache.last_good).contains_key(&key));
    // Unused and the app recorded by no object: both go.
    assert_eq!(cache.evict_unused(&Default::default(), &Default::default()), 2);
    assert!(lock(&cache.last_good).is_empty() && lock(&cache.last_good_by_app).is_empty());
}

#[test]
fn read_errors_are_classified_by_what_happened() {
    let api = |code: u16| {
        kube::Error::Api(
            kube::core::Status::failure("no", if code == 404 { "NotFound" } else { "Forbidden" })
                .with_code(code)
                .boxed(),
        )
    };
    assert!(matches!(read_error("ns", "s", &api(404)), CredentialsError::NotFound(_)));
    let forbidden = read_error("ns", "s", &api(403));
    assert!(matches!(&forbidden, CredentialsError::Unreadable { .. }));
    assert!(forbidden.to_string().contains("RBAC"), "{forbidden}");
    assert!(matches!(read_error("ns", "s", &api(500)), CredentialsError::Unreadable { .. }));
}

/// A local API server stand-in over real HTTP that knows the Secrets `app-N` (appId N) in namespace `apps` and
/// answers 404 for every other Secret.
async fn secrets_server() -> Client {
    use axum::extract::Path;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    async fn get(Path((ns, name)): Path<(String, String)>) -> axum::response::Response {
        match name.strip_prefix("app-").filter(|_| ns == "apps") {
            Some(app) => axum::Json(serde_json::json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": name, "namespace": ns},
                "data": {"appId": hex_free_base64(app), "serverSecret": hex_free_base64("s"), "callbackSecret": hex_free_base64("cb")},
            }))
            .into_response(),
            None => (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({
                "apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404,
                "message": format!("secrets \"{name}\" not found"),
            })))
            .into_response(),
        }
    }
    fn hex_free_base64(s: &str) -> String {
        serde_json::to_value(ByteString(s.as_bytes().to_vec())).unwrap().as_str().unwrap().to_owned()
    }
    let app = axum::Router::new().route("/api/v1/namespaces/{ns}/secrets/{name}", axum::routing::get(get));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Client::try_from(kube::Config::new(format!("http://{addr}").parse().unwrap())).unwrap()
}

fn room_using(ns: &str, secret: &str) -> ZimRoom {
    let mut r = ZimRoom::new("r", Default::default());
    r.metadata.namespace = Some(ns.into());
    r.spec.credentials_secret_ref = Some(crate::crd::SecretRef { name: secret.into() });
    r
}

/// 10 000 distinct Secret names that do not exist and 1 000 short-lived apps (a Secret each, read, then deleted)
/// go through the cache; once no object refers to them, every map is back at its baseline (empty).
#[tokio::test]
async fn missing_secrets_and_short_lived_apps_leave_nothing_behind() {
    let cache = CredentialCache::new(secrets_server().await, None);
    let baseline = cache.sizes();
    assert_eq!(baseline, [0; 6]);
    for i in 0..10_000 {
        let err = cache.for_room(&room_using("tenant", &format!("missing-{i}"))).await.unwrap_err();
        assert!(matches!(err, CredentialsError::NotFound(_)), "{err}");
    }
    for app in 1..=1_000u32 {
        let got = cache.for_room(&room_using("apps", &format!("app-{app}"))).await.unwrap();
        assert_eq!(got.credentials.app_id, app);
    }
    let [entries, fingerprints, callback, last_good, by_app, _] = cache.sizes();
    assert_eq!((entries, fingerprints, callback, last_good, by_app), (11_000, 1_000, 1_000, 1_000, 1_000));
    for app in 1..=1_000u32 {
        cache.deleted(&("apps".into(), format!("app-{app}")));
    }
    // The prober's pass: no cached object refers to any of these Secrets, and no status records these apps.
    let evicted = cache.evict_unused(&Default::default(), &Default::default());
    assert!(evicted >= 11_000, "{evicted}");
    assert_eq!(cache.sizes(), baseline);
}

/// What objects still use stays: their cached reads, their Secrets' last good credentials, their apps.
#[tokio::test]
async fn what_objects_use_is_kept() {
    let cache = CredentialCache::new(secrets_server().await, None);
    let used_key: SecretKey = ("apps".into(), "app-7".into());
    cache.for_room(&room_using("apps", "app-7")).await.unwrap();
    cache.for_room(&room_using("apps", "app-8")).await.unwrap();
    let _ = cache.for_room(&room_using("tenant", "missing")).await;
    cache.evict_unused(&[used_key].into(), &[8].into());
    // app-7's reads stay (in use); app-8's last good credentials stay (a status records app 8).
    assert_eq!(cache.sizes(), [1, 1, 1, 2, 2, 0]);
    assert_eq!(cache.secrets(7).len(), 1, "the callback secret of an app in use");
}

/// A deletion uses only credentials of the object's own namespace: an object whose Secret is missing and whose
/// status records another namespace's AppId gets none (before: the last good credentials of that app from any
/// Secret — another team's), while an object of the namespace that holds them gets them.
#[tokio::test]
async fn deletion_never_borrows_another_namespace_s_credentials() {
    let cache = CredentialCache::new(secrets_server().await, None);
    // Team "apps" has app 8 (its Secret apps/app-8 was read once).
    assert_eq!(cache.for_room(&room_using("apps", "app-8")).await.unwrap().credentials.app_id, 8);
    let recording = |ns: &str, secret: &str| {
        let mut r = room_using(ns, secret);
        r.status = Some(crate::crd::ZimRoomStatus { app_id: Some(8), ..Default::default() });
        r
    };
    let err = cache.for_deletion(&recording("tenant", "missing")).await.unwrap_err();
    assert!(err.contains("not found"), "{err}");
    // The owner namespace's other objects may use the namespace's last good credentials of the app.
    let own = cache.for_deletion(&recording("apps", "missing")).await.unwrap();
    assert_eq!(own.credentials.app_id, 8);
}
