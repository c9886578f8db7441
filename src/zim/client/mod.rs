//! The ZIM server-API client: request building, signing, rate limiting and response checking.
//!
//! `Action` and the public parameters always go in the query string; a GET puts its business parameters there
//! too (arrays as repeated `Key[]=v`), a POST sends them as a JSON body with `Content-Type: application/json`.
//! One `reqwest` client (rustls, connection reuse, timeouts) serves every call. URLs are never logged or put in an
//! error, because they carry the signature.
//!
//! The endpoint is not trusted to behave: a body is read up to [`MAX_BODY_BYTES`] and a longer one is a transport
//! failure (it is never buffered whole); redirects are never followed (a 3xx is a transport failure, so a signed
//! request is never re-sent elsewhere); plain `http://` is refused unless the host is loopback (the simulator,
//! tests); ZIM's texts are cut to a bounded length in [`ZimError`], and the metric label of each call comes from a
//! fixed set.
//!
//! TLS: rustls with the `ring` provider. The trusted roots are the compiled-in webpki roots (the default) or the
//! system's ([`TlsRoots`]), plus an optional PEM bundle ([`ClientConfig::ca_file`]) for a corporate CA or a
//! TLS-inspecting proxy. Proxies come from `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` and `NO_PROXY`, as curl reads
//! them.
//!
//! [`HttpClient`] is the wire implementation of [`ZimApi`]; [`ZimClient`] is what the operator uses: the HTTP
//! client behind the rate-limiting decorator ([`RateLimited`]).
//!
//! (Over 400 lines: request building, signing placement and answer checking belong together; a third is tests.)

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::debug;
use url::Url;

use super::api::CallObserver;
use super::api::Transport;
use super::codes;
use super::error::ZimError;
use super::sign::{Credentials, PublicParams, new_nonce};
use super::types::*;

/// ZEGO's unified, region-independent endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://zim-api.zego.im";

/// The longest response body read from the endpoint. ZIM's largest answers (a page of 500 users, 20 attributes)
/// are tens of kilobytes; a longer body is a transport failure, and is not read past this.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Which root certificates the client trusts (besides [`ClientConfig::ca_file`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsRoots {
    /// The Mozilla roots compiled into the binary (webpki-roots): no CA bundle needed in the image.
    #[default]
    Webpki,
    /// The system's roots: `SSL_CERT_FILE` / `SSL_CERT_DIR`, else the distribution's bundle.
    System,
}

/// The wall clock, in Unix seconds; injected so tests can sign at chosen times.
pub trait Clock: Send + Sync {
    /// Now, in Unix seconds.
    fn unix_seconds(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn unix_seconds(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default()
    }
}

/// How to build a [`ZimClient`].
#[derive(Clone)]
pub struct ClientConfig {
    /// Base URL, e.g. `https://zim-api.zego.im` or `http://127.0.0.1:8080` for the simulator.
    pub endpoint: String,
    /// Calls per second per (AppId, Action); 0 disables the limiter.
    pub calls_per_second: u32,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// The root certificates trusted.
    pub roots: TlsRoots,
    /// A PEM bundle of extra root certificates trusted besides `roots` (a corporate CA, a TLS-inspecting proxy).
    pub ca_file: Option<PathBuf>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            calls_per_second: 20,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            roots: TlsRoots::Webpki,
            ca_file: None,
        }
    }
}

/// Errors building the client.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The endpoint is not an absolute http(s) URL.
    #[error("invalid ZIM endpoint {endpoint:?}: {reason}")]
    Endpoint {
        /// The endpoint given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA bundle could not be read or holds no certificate.
    #[error("CA bundle {path} (--ca-file, ZIM_CA_FILE): {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `--tls-roots system` found no usable root certificate.
    #[error(
        "no system root certificates found ({0}); mount a CA bundle and set SSL_CERT_FILE, or use --tls-roots webpki"
    )]
    SystemRoots(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

/// Whether `host` is a loopback host: `localhost`, 127.0.0.0/8 or ::1.
fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        url::Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

/// Reads the PEM certificates of `path`.
fn read_ca_file(path: &PathBuf) -> Result<Vec<reqwest::Certificate>, ConfigError> {
    let fail = |reason: String| ConfigError::CaFile { path: path.clone(), reason };
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    // A bundle of every public root is about 200 KB.
    if meta.len() > 16 << 20 {
        return Err(fail(format!("{} bytes; at most 16 MiB is read", meta.len())));
    }
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("no PEM certificate (-----BEGIN CERTIFICATE-----) in the file".into()));
    }
    Ok(certs)
}

/// The ZIM server API over HTTP: signing, placement of parameters, and response checking. No rate limiting (see
/// [`RateLimited`]). Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct HttpClient {
    http: reqwest::Client,
    endpoint: Url,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    observer: Option<Arc<dyn CallObserver>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").field("endpoint", &self.endpoint.as_str()).finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Builds an HTTP client for `config` (its `calls_per_second` is the decorator's business, not read here).
    pub fn new(config: &ClientConfig) -> Result<Self, ConfigError> {
        let endpoint = Url::parse(&config.endpoint).map_err(|e| ConfigError::Endpoint {
            endpoint: config.endpoint.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
            return Err(ConfigError::Endpoint {
                endpoint: config.endpoint.clone(),
                reason: "must be an http:// or https:// URL with a host".into(),
            });
        }
        if endpoint.query().is_some() {
            return Err(ConfigError::Endpoint {
                endpoint: config.endpoint.clone(),
                reason: "must not carry a query string".into(),
            });
        }
        // Requests carry the signature in the URL: never in clear text over a network.
        if endpoint.scheme() == "http" && !endpoint.host().as_ref().is_some_and(is_loopback) {
            return Err(ConfigError::Endpoint {
                endpoint: config.endpoint.clone(),
                reason: "plain http:// is only allowed for a loopback host (127.0.0.0/8, ::1, localhost), such as \
                         the simulator; use https://"
                    .into(),
            });
        }
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("zim-operator/", env!("CARGO_PKG_VERSION")))
            .tls_built_in_webpki_certs(config.roots == TlsRoots::Webpki)
            .tls_built_in_native_certs(config.roots == TlsRoots::System);
        if config.roots == TlsRoots::System {
            // reqwest silently trusts nothing when the system has no roots; say so instead.
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                let why = found.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                return Err(ConfigError::SystemRoots(if why.is_empty() { "none found".into() } else { why }));
            }
        }
        if let Some(path) = &config.ca_file {
            for cert in read_ca_file(path)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| ConfigError::Http(e.without_url().to_string()))?;
        Ok(Self { http, endpoint, timeout: config.timeout, clock: Arc::new(SystemClock), observer: None })
    }

    /// Uses `clock` for request timestamps.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Reports every call to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The endpoint's base URL.
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    /// Builds the signed URL of one request. Never log its result.
    fn signed_url(&self, credentials: &Credentials, action: Action, query: &[(&str, String)]) -> Url {
        let params = PublicParams::sign(credentials, self.clock.unix_seconds(), new_nonce());
        let mut url = self.endpoint.clone();
        if url.path().is_empty() {
            url.set_path("/");
        }
        {
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("Action", action.as_str());
            for (k, v) in params.query_pairs() {
                pairs.append_pair(k, &v);
            }
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    async fn send<B, R>(
        &self,
        credentials: &Credentials,
        action: Action,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<R, ZimError>
    where
        B: Serialize + Sync + ?Sized,
        R: DeserializeOwned + HasEnvelope + Send,
    {
        // The signature is made as late as possible, after any wait for the limiter (the decorator waits before
        // calling in).
        let url = self.signed_url(credentials, action, query);
        let request = if action.is_post() {
            let bytes = serde_json::to_vec(&body).map_err(|e| ZimError::decode(action, &e.to_string()))?;
            self.http.post(url).header(reqwest::header::CONTENT_TYPE, "application/json").body(bytes)
        } else {
            self.http.get(url)
        };
        let response = request.send().await.map_err(|e| self.transport_error(action, e))?;
        let status = response.status();
        if !status.is_success() {
            // Not a ZIM answer (a redirect is not followed either): its body is not read.
            return Err(ZimError::HttpStatus { action, status: status.as_u16() });
        }
        let bytes = self.read_body(action, response).await?;
        decode_answer(action, &bytes)
    }

    /// Reads the body, at most [`MAX_BODY_BYTES`]: a declared or actual longer body is a transport failure, and
    /// the connection is dropped rather than drained.
    async fn read_body(&self, action: Action, mut response: reqwest::Response) -> Result<Vec<u8>, ZimError> {
        let too_long = |what: String| {
            ZimError::transport(
                action,
                &format!(
                    "the answer's body is {what}, more than the {MAX_BODY_BYTES} bytes a ZIM answer may have"
                ),
            )
        };
        if let Some(length) = response.content_length().filter(|l| *l > MAX_BODY_BYTES as u64) {
            return Err(too_long(format!("{length} bytes (Content-Length)")));
        }
        let mut body = Vec::with_capacity(response.content_length().unwrap_or(0) as usize);
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport_error(action, e))? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_long(format!("over {} bytes", body.len() + chunk.len())));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn transport_error(&self, action: Action, e: reqwest::Error) -> ZimError {
        if e.is_timeout() {
            return ZimError::Timeout { action, timeout_ms: self.timeout.as_millis() as u64 };
        }
        ZimError::transport(action, &error_chain(e))
    }
}

/// A failed request in words: the error and its sources, without the URL (`without_url` drops it, and with it
/// the signature, from the error and its sources).
pub(crate) fn error_chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    detail
}

/// Decodes an HTTP 200 body as the answer to `action`: a JSON object with a `Code` (anything else — a proxy's
/// `{}`, an HTML page — is not a ZIM answer and never reads as success), and a non-zero `Code` is
/// [`ZimError::Api`]. Shared by the HTTP client and the simulator's in-memory backend.
pub fn decode_answer<R>(action: Action, bytes: &[u8]) -> Result<R, ZimError>
where
    R: DeserializeOwned + HasEnvelope,
{
    let undecodable =
        |detail: String| ZimError::decode(action, &format!("{detail} (body of {} bytes)", bytes.len()));
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| undecodable(e.to_string()))?;
    if value.get("Code").is_none_or(|c| !(c.is_i64() || c.is_u64() || c.is_string())) {
        return Err(undecodable("no Code field".into()));
    }
    let decoded: R = serde_json::from_value(value).map_err(|e| undecodable(e.to_string()))?;
    let envelope = decoded.envelope();
    if envelope.code != codes::OK {
        return Err(ZimError::api(action, envelope.code, &envelope.message, &envelope.request_id));
    }
    Ok(decoded)
}

impl Transport for HttpClient {
    async fn call<B, R>(
        &self,
        credentials: &Credentials,
        action: Action,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<R, ZimError>
    where
        B: Serialize + Sync + ?Sized,
        R: DeserializeOwned + HasEnvelope + Send,
    {
        let start = Instant::now();
        let result: Result<R, ZimError> = self.send(credentials, action, query, body).await;
        let latency = start.elapsed();
        let label = match &result {
            Ok(r) => codes::code_label(r.envelope().code).into_owned(),
            Err(e) => e.result_label(),
        };
        debug!(action = %action, result = %label, latency_ms = latency.as_millis() as u64, "zim call");
        if let Some(observer) = &self.observer {
            observer.observe(action, &label, latency);
        }
        result
    }
}

#[cfg(test)]
mod tests;
