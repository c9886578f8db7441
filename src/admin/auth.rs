//! Protection of `/metrics` through the API server, the way kube-rbac-proxy does it (`--metrics-auth kubernetes`):
//! the request's bearer token is checked with a TokenReview, and the user it names with a SubjectAccessReview
//! for `get` on the non-resource URL `/metrics`.
//!
//! RBAC: the operator needs `create` on `tokenreviews.authentication.k8s.io` and
//! `subjectaccessreviews.authorization.k8s.io` (the chart's `system:auth-delegator`-like rules); a scraper needs a
//! ClusterRole with `nonResourceURLs: ["/metrics"], verbs: ["get"]` bound to its ServiceAccount.
//!
//! Decisions are cached per token (by its md5, never the token itself) for a minute when allowed and ten seconds
//! otherwise, and at most four reviews run at once, so a flood of made-up tokens costs the API server little.
//! Tokens are never logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use futures::future::BoxFuture;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;
use md5::{Digest, Md5};
use tokio::sync::Semaphore;
use tracing::warn;

use crate::lock;

/// What a request to `/metrics` may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The token is valid and its user may `get` `/metrics`.
    Allowed,
    /// No bearer token, or the API server does not accept it (401).
    Unauthenticated,
    /// A valid token whose user may not `get` `/metrics` (403).
    Forbidden,
    /// The API server could not be asked (503; not cached).
    Unavailable,
}

/// Decides a token: [`Decision::Allowed`], [`Decision::Unauthenticated`] or [`Decision::Forbidden`]; an error
/// when it cannot.
pub trait Reviewer: Send + Sync {
    /// Reviews `token`.
    fn review(&self, token: String) -> BoxFuture<'static, Result<Decision, String>>;
}

/// TokenReview + SubjectAccessReview on the API server.
pub struct KubeReviewer {
    client: kube::Client,
}

impl KubeReviewer {
    /// Reviews through `client`.
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }
}

impl Reviewer for KubeReviewer {
    fn review(&self, token: String) -> BoxFuture<'static, Result<Decision, String>> {
        let client = self.client.clone();
        Box::pin(async move {
            let review = TokenReview {
                spec: TokenReviewSpec { token: Some(token), audiences: None },
                ..Default::default()
            };
            let review = Api::<TokenReview>::all(client.clone())
                .create(&PostParams::default(), &review)
                .await
                .map_err(|e| format!("TokenReview: {e}"))?;
            let status = review.status.unwrap_or_default();
            let Some(user) = status.user.filter(|_| status.authenticated == Some(true)) else {
                return Ok(Decision::Unauthenticated);
            };
            let access = SubjectAccessReview {
                spec: SubjectAccessReviewSpec {
                    user: user.username,
                    uid: user.uid,
                    groups: user.groups,
                    extra: user.extra,
                    non_resource_attributes: Some(NonResourceAttributes {
                        path: Some("/metrics".into()),
                        verb: Some("get".into()),
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            let access = Api::<SubjectAccessReview>::all(client)
                .create(&PostParams::default(), &access)
                .await
                .map_err(|e| format!("SubjectAccessReview: {e}"))?;
            let allowed = access.status.is_some_and(|s| s.allowed);
            Ok(if allowed { Decision::Allowed } else { Decision::Forbidden })
        })
    }
}

/// How long an allowed token is trusted without asking again.
const ALLOWED_TTL: Duration = Duration::from_secs(60);
/// How long a refused token stays refused without asking again.
const REFUSED_TTL: Duration = Duration::from_secs(10);
/// Cached decisions at most (then the cache starts over).
const CACHE_ENTRIES: usize = 4096;
/// Reviews running at once at most.
const CONCURRENT_REVIEWS: usize = 4;
/// How long one review (waiting for a slot included) may take.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(5);
/// Longer bearer tokens are refused without a review (service-account tokens are about 1 KiB).
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The `/metrics` gate: a reviewer with a cache and a bound on concurrent reviews.
pub struct MetricsAuth {
    reviewer: Arc<dyn Reviewer>,
    cache: Mutex<HashMap<[u8; 16], (Decision, Instant)>>,
    slots: Semaphore,
}

impl MetricsAuth {
    /// A gate asking `reviewer`.
    pub fn new(reviewer: Arc<dyn Reviewer>) -> Self {
        Self { reviewer, cache: Mutex::new(HashMap::new()), slots: Semaphore::new(CONCURRENT_REVIEWS) }
    }

    /// The decision for a request with `headers`.
    pub async fn check(&self, headers: &HeaderMap) -> Decision {
        let Some(token) = bearer(headers) else { return Decision::Unauthenticated };
        if token.len() > MAX_TOKEN_BYTES {
            return Decision::Unauthenticated;
        }
        let key: [u8; 16] = Md5::digest(token.as_bytes()).into();
        if let Some((decision, until)) = lock(&self.cache).get(&key).copied()
            && Instant::now() < until
        {
            return decision;
        }
        let reviewed = tokio::time::timeout(REVIEW_TIMEOUT, async {
            let _slot = self.slots.acquire().await.map_err(|e| e.to_string())?;
            self.reviewer.review(token.to_owned()).await
        })
        .await;
        let decision = match reviewed {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => {
                warn!(error = %e, "cannot review a /metrics token");
                return Decision::Unavailable;
            }
            Err(_) => {
                warn!("reviewing a /metrics token timed out");
                return Decision::Unavailable;
            }
        };
        let ttl = if decision == Decision::Allowed { ALLOWED_TTL } else { REFUSED_TTL };
        let mut cache = lock(&self.cache);
        if cache.len() >= CACHE_ENTRIES {
            let now = Instant::now();
            cache.retain(|_, (_, until)| *until > now);
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(key, (decision, Instant::now() + ttl));
        decision
    }
}

/// The bearer token of `Authorization`, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Allows `good`, forbids `other`, refuses anything else; counts reviews.
    struct Fake(AtomicUsize);

    impl Reviewer for Fake {
        fn review(&self, token: String) -> BoxFuture<'static, Result<Decision, String>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                Ok(match token.as_str() {
                    "good" => Decision::Allowed,
                    "other" => Decision::Forbidden,
                    "down" => return Err("API server unreachable".into()),
                    _ => Decision::Unauthenticated,
                })
            })
        }
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    /// Tokens are read from `Authorization: Bearer`, each decision is the reviewer's, and a repeated token is
    /// answered from the cache (an unavailable API server is not cached).
    #[tokio::test]
    async fn decisions_come_from_the_reviewer_and_are_cached() {
        let fake = Arc::new(Fake(AtomicUsize::new(0)));
        let auth = MetricsAuth::new(fake.clone());
        assert_eq!(auth.check(&HeaderMap::new()).await, Decision::Unauthenticated);
        assert_eq!(auth.check(&headers("Basic Zm9v")).await, Decision::Unauthenticated);
        assert_eq!(fake.0.load(Ordering::SeqCst), 0, "no review without a bearer token");
        assert_eq!(auth.check(&headers("Bearer good")).await, Decision::Allowed);
        assert_eq!(auth.check(&headers("bearer good")).await, Decision::Allowed);
        assert_eq!(auth.check(&headers("Bearer other")).await, Decision::Forbidden);
        assert_eq!(auth.check(&headers("Bearer made-up")).await, Decision::Unauthenticated);
        assert_eq!(fake.0.load(Ordering::SeqCst), 3, "the second `good` came from the cache");
        assert_eq!(auth.check(&headers("Bearer down")).await, Decision::Unavailable);
        assert_eq!(auth.check(&headers("Bearer down")).await, Decision::Unavailable);
        assert_eq!(fake.0.load(Ordering::SeqCst), 5, "unavailable is asked again");
        let huge = format!("Bearer {}", "x".repeat(MAX_TOKEN_BYTES + 1));
        assert_eq!(auth.check(&headers(&huge)).await, Decision::Unauthenticated);
        assert_eq!(fake.0.load(Ordering::SeqCst), 5, "an oversized token is not reviewed");
    }

    /// The cache stays bounded however many distinct tokens arrive.
    #[tokio::test]
    async fn the_cache_is_bounded() {
        let auth = MetricsAuth::new(Arc::new(Fake(AtomicUsize::new(0))));
        for i in 0..(CACHE_ENTRIES * 2 + 10) {
            auth.check(&headers(&format!("Bearer t{i}"))).await;
        }
        assert!(lock(&auth.cache).len() <= CACHE_ENTRIES);
    }
}
