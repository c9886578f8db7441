//! A TCP proxy on 127.0.0.1 that a test can cut, and that notes what clients send: put between one operator and
//! the API server, it partitions that operator from the API server alone; put between one operator and ZIM, it
//! tells that operator's ZIM calls from another's (the simulator's log cannot).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What one connection's client sent: its bytes, and when each read of them arrived.
#[derive(Default)]
struct Sent {
    bytes: Vec<u8>,
    /// (offset in `bytes`, arrival) of each read.
    reads: Vec<(usize, Instant)>,
}

/// A proxy to one backend. Dropping it stops accepting; connections end with the test's runtime.
pub struct Proxy {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
    sent: Arc<Mutex<Vec<Arc<Mutex<Sent>>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Proxy {
    /// Starts forwarding each connection to `backend`.
    pub async fn start(backend: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, cut_rx) = watch::channel(false);
        let sent: Arc<Mutex<Vec<Arc<Mutex<Sent>>>>> = Arc::default();
        let log = sent.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let cut_rx = cut_rx.clone();
                let record = Arc::new(Mutex::new(Sent::default()));
                log.lock().unwrap().push(record.clone());
                tokio::spawn(async move {
                    if *cut_rx.borrow() {
                        // A partition: the connection is accepted (the kernel does that anyway) and hears nothing.
                        hold(client).await;
                        return;
                    }
                    let Ok(upstream) = TcpStream::connect(backend).await else { return };
                    let (client_read, client_write) = client.into_split();
                    let (upstream_read, upstream_write) = upstream.into_split();
                    tokio::join!(
                        pipe(client_read, upstream_write, cut_rx.clone(), Some(record)),
                        pipe(upstream_read, client_write, cut_rx, None),
                    );
                });
            }
        });
        Proxy { addr, cut, sent, accept }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// From now on nothing passes either way: open connections stay open and carry nothing (no reset, no answer,
    /// as when the network between two hosts fails), new ones are accepted and hear nothing.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// When each occurrence of `needle` in what clients sent arrived, in order, with the bytes that follow it up
    /// to the next `&`, space or line end (for `?Action=`: the ZIM action).
    pub fn occurrences(&self, needle: &[u8]) -> Vec<(Instant, String)> {
        let mut found = Vec::new();
        for record in self.sent.lock().unwrap().iter() {
            let record = record.lock().unwrap();
            let mut from = 0;
            while let Some(at) = find(&record.bytes[from..], needle).map(|i| from + i) {
                let arrived = record.reads.iter().rev().find(|(offset, _)| *offset <= at).map(|(_, t)| *t);
                let rest = &record.bytes[at + needle.len()..];
                let end =
                    rest.iter().position(|b| matches!(b, b'&' | b' ' | b'\r' | b'\n')).unwrap_or(rest.len());
                if let Some(arrived) = arrived {
                    found.push((arrived, String::from_utf8_lossy(&rest[..end]).into_owned()));
                }
                from = at + needle.len();
            }
        }
        found.sort_by_key(|(t, _)| *t);
        found
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Copies `from` to `to` until either ends or the proxy is cut; once cut, holds both open and silent.
async fn pipe(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut cut: watch::Receiver<bool>,
    record: Option<Arc<Mutex<Sent>>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if *cut.borrow_and_update() {
            hold((from, to)).await;
            return;
        }
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            _ = cut.changed() => continue,
        };
        if *cut.borrow() {
            // Read just as the cut came: dropped, as the network would.
            continue;
        }
        if let Some(record) = &record {
            let mut r = record.lock().unwrap();
            let offset = r.bytes.len();
            r.reads.push((offset, Instant::now()));
            r.bytes.extend_from_slice(&buf[..n]);
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Keeps `what` (sockets) open and silent until the test's runtime ends.
async fn hold<T>(what: T) {
    let _what = what;
    std::future::pending::<()>().await;
}
