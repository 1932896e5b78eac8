//! HTTP rate limits: a general limit per client on every API request, and a stricter one on
//! `POST /api/v1/auth/*`. Counting sits behind [`RateLimiter`] so that several instances can
//! share counts (Redis) while one instance counts in memory.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web;
use async_trait::async_trait;

use crate::client::ClientIpPolicy;
use crate::problem::ApiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateDecision {
    Allowed,
    /// Over the limit; the window resets in this many seconds.
    Limited {
        retry_after: u64,
    },
}

/// Counts hits per key in fixed windows.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one hit on `key` and says whether it is within `limit` per `window`.
    ///
    /// # Errors
    /// A message when the counter store is unreachable (the caller lets the request through).
    async fn hit(&self, key: &str, limit: u32, window: Duration) -> Result<RateDecision, String>;
}

/// Process-local fixed-window counters, in shards so that workers rarely wait on each other.
#[derive(Default)]
pub struct InMemoryRateLimiter {
    shards: [Mutex<HashMap<String, (Instant, u32)>>; SHARDS],
}

const SHARDS: usize = 16;
const SWEEP_ABOVE: usize = 50_000 / SHARDS;

#[async_trait]
impl RateLimiter for InMemoryRateLimiter {
    async fn hit(&self, key: &str, limit: u32, window: Duration) -> Result<RateDecision, String> {
        let now = Instant::now();
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let shard = &self.shards[(hasher.finish() as usize) % SHARDS];
        let mut windows = shard.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, (started, _)| now.duration_since(*started) < window);
        }
        // Look up before inserting: the common case allocates no key.
        if !windows.contains_key(key) {
            windows.insert(key.to_owned(), (now, 0));
        }
        let Some(entry) = windows.get_mut(key) else {
            return Ok(RateDecision::Allowed);
        };
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        if entry.1 <= limit {
            Ok(RateDecision::Allowed)
        } else {
            let left = window.saturating_sub(now.duration_since(entry.0));
            Ok(RateDecision::Limited {
                retry_after: left.as_secs() + u64::from(left.subsec_nanos() > 0),
            })
        }
    }
}

/// The configured limits.
#[derive(Clone)]
pub struct RateLimits {
    pub limiter: Arc<dyn RateLimiter>,
    pub window: Duration,
    pub general_limit: u32,
    pub auth_limit: u32,
}

fn exempt(request: &ServiceRequest) -> bool {
    let path = request.path();
    request.method() == Method::OPTIONS
        || path.starts_with("/api/v1/health")
        || path.starts_with("/api/v1/docs")
        || path == "/metrics"
}

pub async fn rate_limit<B: MessageBody + 'static>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limits = request.app_data::<web::Data<RateLimits>>().cloned();
    let Some(limits) = limits.filter(|_| !exempt(&request)) else {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let ip_policy = request
        .app_data::<web::Data<ClientIpPolicy>>()
        .cloned()
        .unwrap_or_default();
    let client = ip_policy.client_ip(request.request());
    let client: &dyn std::fmt::Display = match &client {
        Some(ip) => ip,
        None => &"unknown",
    };
    let mut checks = vec![(format!("general:{client}"), limits.general_limit)];
    if request.method() == Method::POST && request.path().starts_with("/api/v1/auth/") {
        checks.push((format!("auth:{client}"), limits.auth_limit));
    }
    for (key, limit) in checks {
        match limits.limiter.hit(&key, limit, limits.window).await {
            Ok(RateDecision::Allowed) => {}
            Ok(RateDecision::Limited { retry_after }) => {
                let error = ApiError {
                    retry_after: Some(retry_after.max(1)),
                    ..ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "TOO_MANY_REQUESTS",
                        "Too many requests, try again later",
                    )
                };
                let (request, _) = request.into_parts();
                return Ok(ServiceResponse::from_err(error, request));
            }
            Err(reason) => {
                tracing::warn!(%reason, "rate limiter unavailable; letting the request through")
            }
        }
    }
    next.call(request)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_limit_allows_exactly_n_hits_per_window() {
        let limiter = InMemoryRateLimiter::default();
        let window = Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(limiter.hit("k", 3, window).await, Ok(RateDecision::Allowed));
        }
        assert!(
            matches!(limiter.hit("k", 3, window).await, Ok(RateDecision::Limited { retry_after }) if (1..=60).contains(&retry_after))
        );
        assert_eq!(
            limiter.hit("other", 3, window).await,
            Ok(RateDecision::Allowed),
            "keys are counted apart"
        );
    }

    #[tokio::test]
    async fn a_new_window_starts_afresh() {
        let limiter = InMemoryRateLimiter::default();
        let window = Duration::from_millis(20);
        assert_eq!(limiter.hit("k", 1, window).await, Ok(RateDecision::Allowed));
        assert!(matches!(
            limiter.hit("k", 1, window).await,
            Ok(RateDecision::Limited { .. })
        ));
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(limiter.hit("k", 1, window).await, Ok(RateDecision::Allowed));
    }
}
