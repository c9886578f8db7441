//! SIGTERM stops `zim-operator run` within seconds whatever the API server does: refuses connections, or accepts
//! them and never answers; with and without leader election. (The end-to-end tier covers SIGTERM with a working
//! API server: in-flight work finishes and the lease is released.)

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// How long SIGTERM may take to stop the process in these states.
const PROMPT: Duration = Duration::from_secs(5);

/// A kubeconfig for `server` with a token (nothing is checked: the server never answers).
fn kubeconfig(dir: &Path, server: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"{server}\", \
             insecure-skip-tls-verify: true}}\nusers:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: x\n  \
             context: {{cluster: c, user: u}}\ncurrent-context: x\n"
        ),
    )
    .unwrap();
    path
}

/// An address where nothing listens.
pub(crate) fn closed_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A server that accepts connections and never answers (a black-holed API server); lives as long as the test.
async fn black_hole() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    addr
}

/// Starts `run` against `server`, waits until its admin server answers and `settle` has passed (so it is deep in
/// its retries), sends SIGTERM and returns how long it took to exit, and its status.
pub(crate) async fn sigterm_after(
    server: &str,
    leader_election: bool,
    settle: Duration,
) -> (Duration, std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), server);
    let admin = closed_port();
    let log = dir.path().join("operator.log");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_zim-operator"))
        .arg("run")
        .arg("--kubeconfig")
        .arg(&kc)
        .arg("--endpoint")
        .arg("http://127.0.0.1:9")
        .arg("--admin-addr")
        .arg(admin.to_string())
        .arg("--leader-election")
        .arg(leader_election.to_string())
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if tokio::net::TcpStream::connect(admin).await.is_ok() {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the operator exited before SIGTERM: {status:?}\n{}",
                std::fs::read_to_string(&log).unwrap()
            );
        }
        assert!(Instant::now() < deadline, "the admin server never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(settle).await;
    assert!(child.try_wait().unwrap().is_none(), "the operator must still be running before SIGTERM");
    let pid = child.id().unwrap().to_string();
    let sent = Instant::now();
    assert!(std::process::Command::new("kill").arg("-TERM").arg(&pid).status().unwrap().success());
    let status = match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
        Ok(status) => status.unwrap(),
        Err(_) => {
            panic!("still running 30 s after SIGTERM\n{}", std::fs::read_to_string(&log).unwrap_or_default())
        }
    };
    (sent.elapsed(), status, std::fs::read_to_string(&log).unwrap_or_default())
}

/// The API server refuses connections (the watches retry): SIGTERM exits 0 within seconds.
#[tokio::test]
async fn sigterm_while_the_api_server_refuses_connections() {
    let server = format!("https://{}", closed_port());
    let (took, status, log) = sigterm_after(&server, false, Duration::from_secs(3)).await;
    eprintln!("refused, no leader election: exited {took:?} after SIGTERM");
    assert!(status.success(), "{status:?}\n{log}");
    assert!(took < PROMPT, "took {took:?}\n{log}");
}

/// The API server accepts connections and never answers, without leader election (the watches hang): SIGTERM
/// exits 0 within seconds.
#[tokio::test]
async fn sigterm_while_the_api_server_never_answers() {
    let server = format!("https://{}", black_hole().await);
    let (took, status, log) = sigterm_after(&server, false, Duration::from_secs(3)).await;
    eprintln!("black hole, no leader election: exited {took:?} after SIGTERM");
    assert!(status.success(), "{status:?}\n{log}");
    assert!(took < PROMPT, "took {took:?}\n{log}");
}

/// The API server never answers while the Lease is being set up (leader election on): SIGTERM exits 0 within
/// seconds.
#[tokio::test]
async fn sigterm_while_setting_up_leader_election() {
    let server = format!("https://{}", black_hole().await);
    let (took, status, log) = sigterm_after(&server, true, Duration::from_secs(3)).await;
    eprintln!("black hole, leader election: exited {took:?} after SIGTERM");
    assert!(status.success(), "{status:?}\n{log}");
    assert!(took < PROMPT, "took {took:?}\n{log}");
}
