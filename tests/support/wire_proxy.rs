//! A TCP proxy on 127.0.0.1 in front of an HTTP/1.1 server (the ZIM simulator) that makes new connections slow,
//! and records each request the moment it forwards it: the sends as the server receives them.
//!
//! Every new connection waits `connect_delay` before its first byte is passed on. The client's TCP connect
//! completes at once and its request is written at once, so the client cannot see the delay: it models the worst
//! case of connection set-up after an idle period (DNS, TCP and TLS towards ZEGO, or a sidecar or TLS-inspecting
//! proxy that connects upstream only when the first bytes come). [`WireProxy::drop_connections`] closes every open
//! connection, as a server or load balancer closes idle keep-alive connections, so that the next calls need new
//! ones.
//!
//! The proxy reads request heads (and skips `Content-Length` bodies) to know where each request starts; it
//! forwards every byte unchanged.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// One request as forwarded to the server.
#[derive(Clone, Debug)]
pub struct Forwarded {
    /// When its head was passed on.
    pub at: Instant,
    /// Its `Action` query parameter (empty if none).
    pub action: String,
}

#[derive(Default)]
struct Shared {
    forwarded: Vec<Forwarded>,
    connections: usize,
    open: CancellationToken,
}

/// The proxy; it stops when dropped.
pub struct WireProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: CancellationToken,
}

impl WireProxy {
    /// A proxy to `backend` whose new connections wait `connect_delay`.
    pub async fn start(backend: SocketAddr, connect_delay: Duration) -> WireProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stop = CancellationToken::new();
        let (state, stopped) = (shared.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let client = tokio::select! {
                    _ = stopped.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((client, _)) => client,
                        Err(_) => return,
                    },
                };
                let open = {
                    let mut s = state.lock().unwrap();
                    s.connections += 1;
                    s.open.clone()
                };
                let (state, stopped) = (state.clone(), stopped.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = open.cancelled() => {}
                        _ = stopped.cancelled() => {}
                        _ = relay(client, backend, connect_delay, state) => {}
                    }
                });
            }
        });
        WireProxy { addr, shared, stop }
    }

    /// The base URL to give a client.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request forwarded so far, in order.
    pub fn forwarded(&self) -> Vec<Forwarded> {
        self.shared.lock().unwrap().forwarded.clone()
    }

    /// The instants at which requests of `action` were forwarded, in order.
    pub fn sends(&self, action: &str) -> Vec<Instant> {
        self.forwarded().into_iter().filter(|f| f.action == action).map(|f| f.at).collect()
    }

    /// How many connections clients have opened.
    pub fn connections(&self) -> usize {
        self.shared.lock().unwrap().connections
    }

    /// Closes every open connection (later ones are not affected).
    pub fn drop_connections(&self) {
        let mut s = self.shared.lock().unwrap();
        std::mem::take(&mut s.open).cancel();
    }
}

impl Drop for WireProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The most instants of `sorted` in any window of `span`, over every window (sliding, not aligned on seconds): the
/// largest set whose first and last instants are less than `span` apart, as a server counts "`span` before now".
pub fn most_in_any_window(sorted: &[Instant], span: Duration) -> usize {
    let mut most = 0;
    let mut first = 0;
    for (last, t) in sorted.iter().enumerate() {
        while t.duration_since(sorted[first]) >= span {
            first += 1;
        }
        most = most.max(last + 1 - first);
    }
    most
}

/// One connection: waits, connects to the backend, then relays both ways.
async fn relay(client: TcpStream, backend: SocketAddr, delay: Duration, state: Arc<Mutex<Shared>>) {
    tokio::time::sleep(delay).await;
    let Ok(server) = TcpStream::connect(backend).await else { return };
    let (client_read, mut client_write) = client.into_split();
    let (mut server_read, server_write) = server.into_split();
    let up = forward_requests(client_read, server_write, state);
    let down = tokio::io::copy(&mut server_read, &mut client_write);
    let _ = tokio::join!(up, down);
}

/// Passes the client's bytes to the server, recording each request head as it goes.
async fn forward_requests(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, state: Arc<Mutex<Shared>>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut body_left = 0usize;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            if body_left > 0 {
                let k = body_left.min(buf.len());
                if k == 0 || to.write_all(&buf[..k]).await.is_err() {
                    break;
                }
                buf.drain(..k);
                body_left -= k;
                continue;
            }
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4) else { break };
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            body_left = content_length(&head);
            let action = action_of(&head);
            state.lock().unwrap().forwarded.push(Forwarded { at: Instant::now(), action });
            if to.write_all(&buf[..end]).await.is_err() {
                return;
            }
            buf.drain(..end);
        }
    }
    let _ = to.shutdown().await;
}

fn content_length(head: &str) -> usize {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

fn action_of(head: &str) -> String {
    let target = head.lines().next().unwrap_or("").split_whitespace().nth(1).unwrap_or("");
    let query = target.split_once('?').map_or("", |(_, q)| q);
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}
