//! The ZIM client the operator uses: the HTTP transport ([`super::client`]) behind the rate limiter
//! ([`super::limiter`]). Composed here so that neither of the two knows the other.

use std::sync::Arc;

use super::api::CallObserver;
use super::client::{ClientConfig, Clock, ConfigError, HttpClient};
use super::limiter::{RateLimited, RateLimiter};

/// The ZIM client the operator uses: HTTP behind the per-(AppId, Action) rate limiter. Cheap to clone; clones
/// share the connection pool and the limiter.
pub type ZimClient = RateLimited<HttpClient>;

impl ZimClient {
    /// Builds a rate-limited HTTP client for `config`.
    pub fn new(config: &ClientConfig) -> Result<Self, ConfigError> {
        let http = HttpClient::new(config)?;
        Ok(RateLimited::wrap(http, Arc::new(RateLimiter::new(config.calls_per_second))))
    }

    /// Uses `clock` for request timestamps.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        self.map_inner(|http| http.with_clock(clock))
    }

    /// Reports every call (and every limiter wait) to `observer`.
    pub fn with_observer(self, observer: Arc<dyn CallObserver>) -> Self {
        self.map_inner(|http| http.with_observer(observer.clone())).with_wait_observer(observer)
    }

    /// The endpoint's base URL.
    pub fn endpoint(&self) -> &str {
        self.inner().endpoint()
    }
}
