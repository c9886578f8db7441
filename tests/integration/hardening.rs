//! A broken or hostile ZIM endpoint cannot hurt the operator: bodies are capped, ZIM's texts bounded, metric
//! labels bucketed, redirects never followed, and clear-text HTTP refused off loopback. Driven through the
//! simulator's hostile faults and small canned servers over real HTTP on 127.0.0.1.
//!
//! Enterprise egress: a corporate CA (`--ca-file`, or the system roots), and `HTTPS_PROXY` / `NO_PROXY`, through
//! the binary (`apply`) against the simulator behind a TLS front and a CONNECT proxy on 127.0.0.1.

use crate::support::net;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zim_operator::sim::{Fault, FaultPlan, RunningSim, SimConfig, Simulator};
use zim_operator::zim::error::MAX_MESSAGE_BYTES;
use zim_operator::zim::types::*;
use zim_operator::zim::{
    Action, CallObserver, Class, ClientConfig, Credentials, ServerSecret, ZimApi, ZimClient, ZimError,
};

use zim_operator::testing::{APP, SECRET};

fn creds() -> Credentials {
    Credentials::new(APP, SECRET)
}

fn client(endpoint: String) -> ZimClient {
    ZimClient::new(&ClientConfig {
        endpoint,
        calls_per_second: 0,
        timeout: Duration::from_secs(20),
        ..Default::default()
    })
    .unwrap()
}

fn create(id: &str) -> CreateRoomRequest {
    CreateRoomRequest {
        from_user_id: "zim-operator".into(),
        room_id: id.into(),
        room_name: None,
        destroy_delay_time: Some(60),
        attributes: vec![],
    }
}

async fn sim_with(fault: Fault) -> RunningSim {
    let sim = Simulator::new(SimConfig {
        apps: vec![(APP, ServerSecret::new(SECRET))],
        qps: 0,
        ..Default::default()
    })
    .start_local()
    .await
    .unwrap();
    let c = client(sim.endpoint());
    c.user_register(&creds(), &[UserInfo { user_id: "zim-operator".into(), ..Default::default() }])
        .await
        .unwrap();
    sim.sim.set_faults(FaultPlan { next: [fault].into(), ..Default::default() });
    sim
}

/// This process's peak resident set so far (VmHWM), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// A 1 GiB answer body is a transport failure after at most 1 MiB read: the peak RSS stays flat and the call
/// ends in well under the time it takes to stream 1 GiB.
#[tokio::test]
async fn a_1_gib_body_is_refused_without_buffering_it() {
    let sim = sim_with(Fault::HugeBody { bytes: 1 << 30 }).await;
    let c = client(sim.endpoint());
    let before = peak_rss();
    let start = Instant::now();
    let err = c.create_room(&creds(), &create("big")).await.unwrap_err();
    let took = start.elapsed();
    let grown = peak_rss().saturating_sub(before);
    eprintln!("1 GiB body: refused after {took:?}, peak RSS grew by {} KiB", grown / 1024);
    assert!(matches!(err, ZimError::Transport { .. }), "{err:?}");
    assert_eq!(err.class(), Class::Transient);
    assert!(!err.outcome_known());
    assert!(err.to_string().contains("more than the 1048576 bytes"), "{err}");
    assert!(grown < 64 << 20, "peak RSS grew by {grown} bytes");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// An 8 MiB `Message` cannot reach a condition: the body is over the cap, so the call is a transport failure
/// whose text is short.
#[tokio::test]
async fn an_8_mib_message_is_refused() {
    let sim = sim_with(Fault::HugeMessage { bytes: 8 << 20 }).await;
    let err = client(sim.endpoint()).create_room(&creds(), &create("chatty")).await.unwrap_err();
    assert!(matches!(err, ZimError::Transport { .. }), "{err:?}");
    assert!(err.to_string().len() < 1024, "{} bytes", err.to_string().len());
}

/// A long `Message` under the body cap is kept as a ZIM answer, cut to MAX_MESSAGE_BYTES at a character
/// boundary, and the error's text stays short.
#[tokio::test]
async fn a_long_message_is_cut() {
    let sim = sim_with(Fault::HugeMessage { bytes: 200_000 }).await;
    let err = client(sim.endpoint()).create_room(&creds(), &create("chatty")).await.unwrap_err();
    match &err {
        ZimError::Api { code, message, .. } => {
            assert_eq!(*code, 660000001);
            assert!(message.len() <= MAX_MESSAGE_BYTES, "{}", message.len());
            assert!(message.ends_with("bytes]"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().len() < 1024);
}

/// A server that answers every connection with `response` and counts the requests it got.
async fn canned(response: String) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let response = response.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_owned();
                log.lock().unwrap().push(head);
                let _ = sock.write_all(response.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

fn json_response(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A 307 to another host is not followed: the signed POST is not re-sent there, and that host's `Code: 0`
/// does not count as success.
#[tokio::test]
async fn a_redirect_is_not_followed() {
    let (elsewhere, hits) = canned(json_response(r#"{"Code":0,"Message":"success","RequestId":"1"}"#)).await;
    let sim = sim_with(Fault::Redirect { status: 307, location: format!("{elsewhere}/") }).await;
    let err = client(sim.endpoint()).create_room(&creds(), &create("moved")).await.unwrap_err();
    assert!(matches!(err, ZimError::HttpStatus { status: 307, .. }), "{err:?}");
    assert_eq!(err.class(), Class::Transient);
    assert!(err.to_string().contains("never follows redirects"), "{err}");
    assert!(hits.lock().unwrap().is_empty(), "the redirect was followed: {:?}", hits.lock().unwrap());
    assert!(sim.sim.room(APP, "moved").is_none());
}

/// Records every call's label.
#[derive(Default)]
struct Labels(Mutex<Vec<String>>);

impl CallObserver for Labels {
    fn observe(&self, _action: Action, result: &str, _latency: Duration) {
        self.0.lock().unwrap().push(result.to_owned());
    }
    fn waited(&self, _action: Action, _wait: Duration) {}
}

/// Codes the table does not know, and unregistered HTTP statuses, are bucketed in the metric label; known
/// codes stay verbatim.
#[tokio::test]
async fn unknown_codes_are_bucketed_in_labels() {
    let labels = Arc::new(Labels::default());
    let mut seen = Vec::new();
    for (response, expected) in [
        (json_response(r#"{"Code":987654321,"Message":"x","RequestId":"1"}"#), "other"),
        (json_response(r#"{"Code":"-42","Message":"x","RequestId":"1"}"#), "other"),
        (json_response(r#"{"Code":660300015,"Message":"quota","RequestId":"1"}"#), "660300015"),
        (json_response(r#"{"Code":0,"Message":"ok","RequestId":"1"}"#), "0"),
        ("HTTP/1.1 599 Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(), "http_other"),
        ("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(), "http_502"),
    ] {
        let (endpoint, _) = canned(response).await;
        let c = client(endpoint).with_observer(labels.clone());
        let _ = c.destroy_room(&creds(), "r", None).await;
        seen.push(expected);
    }
    assert_eq!(*labels.0.lock().unwrap(), seen);
}

/// Clear-text HTTP to a host that is not loopback is refused when the client is built, saying why.
#[test]
fn plain_http_off_loopback_is_refused() {
    let built =
        ZimClient::new(&ClientConfig { endpoint: "http://zim-api.zego.im".into(), ..Default::default() });
    let Err(err) = built else { panic!("a clear-text endpoint off loopback was accepted") };
    let err = err.to_string();
    assert!(err.contains("only allowed for a loopback host"), "{err}");
}

/// The simulator behind a TLS front with a certificate from a fresh test CA; returns the running simulator, the
/// front's port, the PKI and its directory.
async fn tls_sim() -> (RunningSim, u16, net::Pki, tempfile::TempDir) {
    let sim = Simulator::new(SimConfig {
        apps: vec![(APP, ServerSecret::new(SECRET))],
        qps: 0,
        ..Default::default()
    })
    .start_local()
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pki = net::pki(dir.path(), "corp");
    let front = net::tls_front(&pki, sim.addr).await;
    (sim, front.port(), pki, dir)
}

/// Runs `zim-operator apply --attempts 1 -f <one room>` against `endpoint` with `args` and `env` (no proxy
/// variables besides those given); returns the exit code, stdout and stderr.
async fn apply(
    dir: &std::path::Path,
    endpoint: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let manifest = dir.join("room.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: zim.zego.im/v1alpha1\nkind: ZimRoom\nmetadata: {name: egress, namespace: chat}\nspec: {}\n",
    )
    .unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_zim-operator"));
    cmd.arg("apply")
        .arg("--attempts")
        .arg("1")
        .arg("--endpoint")
        .arg(endpoint)
        .arg("-f")
        .arg(&manifest)
        .args(args);
    for var in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("ZEGO_APP_ID", APP.to_string()).env("ZEGO_SERVER_SECRET", SECRET).envs(env.iter().copied());
    let out =
        tokio::time::timeout(Duration::from_secs(60), cmd.output()).await.expect("apply finishes").unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A corporate CA is not trusted by default: the TLS handshake fails with UnknownIssuer and no room is made.
#[tokio::test]
async fn a_corporate_ca_is_not_trusted_by_default() {
    let (sim, port, _pki, dir) = tls_sim().await;
    let (code, _, stderr) = apply(dir.path(), &format!("https://localhost:{port}"), &[], &[]).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");
    assert!(sim.sim.room(APP, "egress").is_none());
}

/// `--ca-file` adds the corporate CA to the compiled-in roots: the room is made over TLS.
#[tokio::test]
async fn ca_file_trusts_a_corporate_ca() {
    let (sim, port, pki, dir) = tls_sim().await;
    let ca = pki.ca.to_str().unwrap();
    let (code, _, stderr) =
        apply(dir.path(), &format!("https://localhost:{port}"), &["--ca-file", ca], &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(sim.sim.room(APP, "egress").is_some());
    // The same through the environment variable.
    let (code, _, stderr) =
        apply(dir.path(), &format!("https://127.0.0.1:{port}"), &[], &[("ZIM_CA_FILE", ca)]).await;
    assert_eq!(code, 0, "{stderr}");
}

/// `--tls-roots system` trusts the system's store, here SSL_CERT_FILE holding the corporate CA.
#[tokio::test]
async fn system_roots_come_from_ssl_cert_file() {
    let (sim, port, pki, dir) = tls_sim().await;
    let ca = pki.ca.to_str().unwrap();
    let endpoint = format!("https://localhost:{port}");
    let (code, _, stderr) = apply(
        dir.path(),
        &endpoint,
        &["--tls-roots", "system"],
        &[("SSL_CERT_FILE", ca), ("SSL_CERT_DIR", "/nonexistent")],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(sim.sim.room(APP, "egress").is_some());
}

/// HTTPS_PROXY carries the ZIM calls through a CONNECT proxy; NO_PROXY naming the endpoint's host bypasses it.
#[tokio::test]
async fn https_proxy_and_no_proxy_are_honoured() {
    let (sim, port, pki, dir) = tls_sim().await;
    let (proxy, tunnels) = net::connect_proxy().await;
    let proxy_url = format!("http://{proxy}");
    let endpoint = format!("https://localhost:{port}");
    let ca = pki.ca.to_str().unwrap();
    let (code, _, stderr) =
        apply(dir.path(), &endpoint, &["--ca-file", ca], &[("HTTPS_PROXY", proxy_url.as_str())]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(sim.sim.room(APP, "egress").is_some());
    let through: Vec<String> = tunnels.lock().unwrap().drain(..).collect();
    assert!(!through.is_empty() && through.iter().all(|t| *t == format!("localhost:{port}")), "{through:?}");

    let (code, _, stderr) = apply(
        dir.path(),
        &endpoint,
        &["--ca-file", ca],
        &[("HTTPS_PROXY", proxy_url.as_str()), ("NO_PROXY", "example.com,localhost")],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(tunnels.lock().unwrap().is_empty(), "{:?}", tunnels.lock().unwrap());
}

/// The server secret is not a command-line argument (argv is readable by every process on the node): the old
/// hidden `--server-secret-env VALUE` is refused, without echoing the value; the environment variable works.
#[tokio::test]
async fn the_server_secret_is_not_an_argument() {
    let sim = Simulator::new(SimConfig {
        apps: vec![(APP, ServerSecret::new(SECRET))],
        qps: 0,
        ..Default::default()
    })
    .start_local()
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) =
        apply(dir.path(), &sim.endpoint(), &["--server-secret-env", "0ddba11c0ffee0ddba11c0ffee0ddba1"], &[])
            .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--server-secret-env"), "{stderr}");
    assert!(!stderr.contains("0ddba11c0ffee"), "the refused value is echoed: {stderr}");
    let (code, _, stderr) = apply(dir.path(), &sim.endpoint(), &[], &[]).await;
    assert_eq!(code, 0, "ZEGO_SERVER_SECRET from the environment: {stderr}");
}
