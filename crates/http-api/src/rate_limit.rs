//! HTTP rate limits: a general limit per client on every API request, a stricter one on the
//! `POST /api/v1/auth/*` routes, and one of its own on uploads (each costs a file's worth of
//! bytes, disk and decoding). Each is attached to the routes they guard (the API scope
//! and the auth scope), so a request is classified by the route that matched it, never by how
//! its path was spelled. Counting sits behind [`RateLimiter`] so that several instances can
//! share counts (Redis) while one instance counts in memory.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web;
use async_trait::async_trait;

use crate::client::ClientIpPolicy;
use crate::problem::{ApiError, ErrorCode};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateDecision {
    Allowed,
    /// Over the limit; the window resets in this many seconds.
    Limited {
        retry_after: u64,
    },
}

/// Which limit a hit counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitScope {
    General,
    Auth,
    Upload,
}

/// Who is counted: an IPv4 address, or the /64 network of an IPv6 address (one subscriber
/// usually holds a whole /64, so counting single v6 addresses would let one client rotate
/// through billions of keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientKey {
    V4([u8; 4]),
    V6Network([u8; 8]),
    Unknown,
}

impl From<Option<IpAddr>> for ClientKey {
    fn from(ip: Option<IpAddr>) -> Self {
        match ip.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V4(v4)) => Self::V4(v4.octets()),
            Some(IpAddr::V6(v6)) => {
                let mut network = [0; 8];
                network.copy_from_slice(&v6.octets()[..8]);
                Self::V6Network(network)
            }
            None => Self::Unknown,
        }
    }
}

/// `203.0.113.9`, `2001:db8:0:1::/64`, `unknown`.
impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(octets) => write!(f, "{}", std::net::Ipv4Addr::from(*octets)),
            Self::V6Network(network) => {
                let mut octets = [0; 16];
                octets[..8].copy_from_slice(network);
                write!(f, "{}/64", std::net::Ipv6Addr::from(octets))
            }
            Self::Unknown => f.write_str("unknown"),
        }
    }
}

/// One counter: a scope and a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateKey {
    pub scope: LimitScope,
    pub client: ClientKey,
}

/// `general:203.0.113.9`, `auth:2001:db8:0:1::/64`: the spelling a shared counter store uses.
impl fmt::Display for RateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scope = match self.scope {
            LimitScope::General => "general",
            LimitScope::Auth => "auth",
            LimitScope::Upload => "upload",
        };
        write!(f, "{scope}:{}", self.client)
    }
}

/// Counts hits per key in fixed windows.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one hit on `key` and says whether it is within `limit` per `window`.
    ///
    /// # Errors
    /// A message when the counter store is unreachable (the caller lets the request through).
    async fn hit(&self, key: RateKey, limit: u32, window: Duration)
    -> Result<RateDecision, String>;
}

/// Process-local fixed-window counters in a bounded cache: at most `max_keys` counters, each
/// dropped when its window ends; when full, the least recently used counter goes (O(1), no
/// scans). LRU rather than frequency-based admission, so a new client's counter is always
/// kept and cannot dodge its limit by never being admitted.
pub struct InMemoryRateLimiter {
    windows: moka::sync::Cache<RateKey, Arc<Mutex<Window>>>,
}

#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    hits: u32,
}

impl InMemoryRateLimiter {
    /// Counters for windows of `window`, at most `max_keys` of them.
    #[must_use]
    pub fn new(window: Duration, max_keys: u64) -> Self {
        Self {
            windows: moka::sync::Cache::builder()
                .max_capacity(max_keys)
                .time_to_live(window.max(Duration::from_millis(1)))
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .build(),
        }
    }

    /// How many counters are held (after pending evictions are applied).
    #[cfg(test)]
    fn counters(&self) -> u64 {
        self.windows.run_pending_tasks();
        self.windows.entry_count()
    }
}

#[async_trait]
impl RateLimiter for InMemoryRateLimiter {
    async fn hit(
        &self,
        key: RateKey,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, String> {
        let now = Instant::now();
        let counter = self.windows.get_with(key, || {
            Arc::new(Mutex::new(Window {
                started: now,
                hits: 0,
            }))
        });
        let mut counter = counter.lock().unwrap_or_else(PoisonError::into_inner);
        if now.duration_since(counter.started) >= window {
            *counter = Window {
                started: now,
                hits: 0,
            };
        }
        counter.hits = counter.hits.saturating_add(1);
        if counter.hits <= limit {
            Ok(RateDecision::Allowed)
        } else {
            let left = window.saturating_sub(now.duration_since(counter.started));
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
    pub upload_limit: u32,
}

/// Middleware of the API scope: every request but CORS preflights counts once.
pub async fn general_limit<B: MessageBody + 'static>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let counted = request.method() != Method::OPTIONS;
    limit_then_call(request, next, counted.then_some(LimitScope::General)).await
}

/// Middleware of the auth scope: its writes count against the stricter limit.
pub async fn auth_limit<B: MessageBody + 'static>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let counted = request.method() == Method::POST;
    limit_then_call(request, next, counted.then_some(LimitScope::Auth)).await
}

/// Middleware of each upload route: every upload counts against the upload limit (as well as
/// the general one).
pub async fn upload_limit<B: MessageBody + 'static>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let counted = request.method() == Method::POST;
    limit_then_call(request, next, counted.then_some(LimitScope::Upload)).await
}

async fn limit_then_call<B: MessageBody + 'static>(
    request: ServiceRequest,
    next: Next<B>,
    scope: Option<LimitScope>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limits = request.app_data::<web::Data<RateLimits>>().cloned();
    let (Some(scope), Some(limits)) = (scope, limits) else {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let client = request.app_data::<web::Data<ClientIpPolicy>>().map_or_else(
        || request.peer_addr().map(|a| a.ip()),
        |policy| policy.client_ip(request.request()),
    );
    let key = RateKey {
        scope,
        client: ClientKey::from(client),
    };
    let limit = match scope {
        LimitScope::General => limits.general_limit,
        LimitScope::Auth => limits.auth_limit,
        LimitScope::Upload => limits.upload_limit,
    };
    match limits.limiter.hit(key, limit, limits.window).await {
        Ok(RateDecision::Allowed) => {}
        Ok(RateDecision::Limited { retry_after }) => {
            let error = ApiError {
                retry_after: Some(retry_after.max(1)),
                ..ApiError::new(
                    ErrorCode::TooManyRequests,
                    "Too many requests, try again later",
                )
            };
            let (request, _) = request.into_parts();
            return Ok(ServiceResponse::from_err(error, request));
        }
        Err(reason) => {
            tracing::warn!(%reason, "rate limiter unavailable; letting the request through");
        }
    }
    next.call(request)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(last: u8) -> RateKey {
        RateKey {
            scope: LimitScope::General,
            client: ClientKey::V4([192, 0, 2, last]),
        }
    }

    #[tokio::test]
    async fn the_limit_allows_exactly_n_hits_per_window() {
        let window = Duration::from_secs(60);
        let limiter = InMemoryRateLimiter::new(window, 1_000);
        for _ in 0..3 {
            assert_eq!(
                limiter.hit(key(1), 3, window).await,
                Ok(RateDecision::Allowed)
            );
        }
        assert!(
            matches!(limiter.hit(key(1), 3, window).await, Ok(RateDecision::Limited { retry_after }) if (1..=60).contains(&retry_after))
        );
        assert_eq!(
            limiter.hit(key(2), 3, window).await,
            Ok(RateDecision::Allowed),
            "keys are counted apart"
        );
    }

    #[tokio::test]
    async fn a_new_window_starts_afresh() {
        let window = Duration::from_millis(20);
        let limiter = InMemoryRateLimiter::new(window, 1_000);
        assert_eq!(
            limiter.hit(key(1), 1, window).await,
            Ok(RateDecision::Allowed)
        );
        assert!(matches!(
            limiter.hit(key(1), 1, window).await,
            Ok(RateDecision::Limited { .. })
        ));
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(
            limiter.hit(key(1), 1, window).await,
            Ok(RateDecision::Allowed)
        );
    }

    #[tokio::test]
    async fn many_distinct_clients_never_hold_more_than_the_cap() {
        let window = Duration::from_secs(60);
        let limiter = InMemoryRateLimiter::new(window, 500);
        for client in 0..20_000_u32 {
            let key = RateKey {
                scope: LimitScope::General,
                client: ClientKey::V4(client.to_be_bytes()),
            };
            assert_eq!(limiter.hit(key, 1, window).await, Ok(RateDecision::Allowed));
        }
        assert!(
            limiter.counters() <= 500,
            "{} counters held",
            limiter.counters()
        );
    }

    #[tokio::test]
    async fn a_new_client_is_counted_even_when_the_cache_is_full() {
        let window = Duration::from_secs(60);
        let limiter = InMemoryRateLimiter::new(window, 100);
        for client in 0..1_000_u32 {
            let key = RateKey {
                scope: LimitScope::General,
                client: ClientKey::V4(client.to_be_bytes()),
            };
            let _ = limiter.hit(key, 1, window).await;
        }
        let newcomer = key(250);
        assert_eq!(
            limiter.hit(newcomer, 2, window).await,
            Ok(RateDecision::Allowed)
        );
        assert_eq!(
            limiter.hit(newcomer, 2, window).await,
            Ok(RateDecision::Allowed)
        );
        assert!(matches!(
            limiter.hit(newcomer, 2, window).await,
            Ok(RateDecision::Limited { .. })
        ));
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_network() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        let same_net: IpAddr = "2001:db8:1:2:ffff:1:2:3"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        let other_net: IpAddr = "2001:db8:1:3::1".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(ClientKey::from(Some(one)), ClientKey::from(Some(same_net)));
        assert_ne!(ClientKey::from(Some(one)), ClientKey::from(Some(other_net)));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(ClientKey::from(Some(mapped)), ClientKey::V4([192, 0, 2, 7]));
        let key = RateKey {
            scope: LimitScope::Auth,
            client: ClientKey::from(Some(one)),
        };
        assert_eq!(key.to_string(), "auth:2001:db8:1:2::/64");
    }
}
