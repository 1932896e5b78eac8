//! HTTP rate limits: a general limit per client on every API request, a stricter one on the
//! `POST /api/v1/auth/*` routes, and one of its own on uploads (each costs a file's worth of
//! bytes, disk and decoding). Each is attached to the routes they guard (the API scope
//! and the auth scope), so a request is classified by the route that matched it, never by how
//! its path was spelled. Counting sits behind kernel's `RateLimiter` port, so that several
//! instances share one budget (Redis) while one instance counts in memory.
//!
//! When the shared counters cannot be reached, each limit has its rule: the auth limit fails
//! closed (503 `NOT_READY`: guessing passwords unlimited is worse than a pause), the general
//! and upload limits count in this process meanwhile (each instance then allows the limit).

use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web;
use kernel::rate::{RateDecision, RateLimiter};

use crate::client::ClientIpPolicy;
use crate::problem::{ApiError, ErrorCode};

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

/// Seconds a client is asked to wait when the auth limit cannot be counted.
const UNREACHABLE_RETRY_AFTER: u64 = 5;

/// How long the shared counters are left alone after they failed: while Redis is down each
/// ask waits out the client's timeout, so meanwhile each limit's rule applies at once, and
/// after the pause one request alone asks again.
const OUTAGE_PAUSE: Duration = Duration::from_secs(2);

/// The longest a request waits for the shared counters before its limit's outage rule
/// applies (a hung Redis must not hold every request for `REDIS_TIMEOUT_MS`).
const SHARED_COUNTER_WAIT: Duration = Duration::from_millis(250);

/// The configured limits.
#[derive(Clone)]
pub struct RateLimits {
    /// The deployment's counters (Redis), or this process's.
    pub limiter: Arc<dyn RateLimiter>,
    /// This process's counters, for the general and upload limits while `limiter` cannot be
    /// reached; `None` when `limiter` is already this process's.
    pub fallback: Option<Arc<dyn RateLimiter>>,
    pub window: Duration,
    pub general_limit: u32,
    pub auth_limit: u32,
    pub upload_limit: u32,
    /// When `limiter` last failed.
    pub outage: Arc<Outage>,
}

/// Whether the shared counters are thought down: since when, and whether a request is
/// asking them again.
#[derive(Default)]
pub struct Outage {
    since: Mutex<Option<Instant>>,
    probing: AtomicBool,
}

impl Outage {
    fn began(&self) {
        *self.since.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }

    fn ended(&self) {
        *self.since.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Whether this request may ask the shared counters: always while they are up; during an
    /// outage only once the pause is over, and only one request at a time.
    fn may_ask(&self) -> Option<Probe<'_>> {
        let since = *self.since.lock().unwrap_or_else(PoisonError::into_inner);
        match since {
            None => Some(Probe(None)),
            Some(at) if at.elapsed() >= OUTAGE_PAUSE => self
                .probing
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .ok()
                .map(|_| Probe(Some(&self.probing))),
            Some(_) => None,
        }
    }
}

/// The right to ask the shared counters, given back when dropped.
struct Probe<'a>(Option<&'a AtomicBool>);

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        if let Some(probing) = self.0 {
            probing.store(false, Ordering::Release);
        }
    }
}

/// A request the limits refuse.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// Over the limit: 429.
    Limited { retry_after: u64 },
    /// The auth limit could not be counted: 503.
    Uncounted,
}

impl RateLimits {
    fn limit(&self, scope: LimitScope) -> u32 {
        match scope {
            LimitScope::General => self.general_limit,
            LimitScope::Auth => self.auth_limit,
            LimitScope::Upload => self.upload_limit,
        }
    }

    /// Counts one hit of `key` and decides. While the shared counters cannot be reached, the
    /// auth limit fails closed and the others count in this process.
    async fn admit(&self, key: RateKey) -> Result<(), Refusal> {
        let (limit, name) = (self.limit(key.scope), key.to_string());
        let shared = match self.outage.may_ask() {
            None => None,
            Some(probe) => {
                let asked = tokio::time::timeout(
                    SHARED_COUNTER_WAIT,
                    self.limiter.hit(&name, limit, self.window),
                )
                .await;
                match asked {
                    Ok(Ok(decision)) => {
                        if probe.0.is_some() {
                            self.outage.ended();
                        }
                        Some(decision)
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "rate limiter unreachable: sign-in refused, other limits counted in this process");
                        self.outage.began();
                        None
                    }
                    Err(_) => {
                        tracing::warn!(
                            "rate limiter did not answer in time: sign-in refused, other limits counted in this process"
                        );
                        self.outage.began();
                        None
                    }
                }
            }
        };
        let decision = match (shared, &self.fallback) {
            (Some(decision), _) => decision,
            (None, _) if key.scope == LimitScope::Auth => return Err(Refusal::Uncounted),
            (None, Some(local)) => local
                .hit(&name, limit, self.window)
                .await
                .unwrap_or(RateDecision::Allowed),
            (None, None) => RateDecision::Allowed,
        };
        match decision {
            RateDecision::Allowed => Ok(()),
            RateDecision::Limited { retry_after } => Err(Refusal::Limited { retry_after }),
        }
    }
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
    let error = match limits.admit(key).await {
        Ok(()) => {
            return next
                .call(request)
                .await
                .map(ServiceResponse::map_into_boxed_body);
        }
        Err(Refusal::Limited { retry_after }) => ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(
                ErrorCode::TooManyRequests,
                "Too many requests, try again later",
            )
        },
        Err(Refusal::Uncounted) => ApiError {
            retry_after: Some(UNREACHABLE_RETRY_AFTER),
            ..ApiError::new(
                ErrorCode::NotReady,
                "Sign-in attempts cannot be counted right now; try again shortly",
            )
        },
    };
    let (request, _) = request.into_parts();
    Ok(ServiceResponse::from_err(error, request))
}

#[cfg(test)]
mod tests {
    use kernel::StoreError;

    use super::*;

    /// Counters that cannot be reached, counting how often they were asked.
    #[derive(Default)]
    struct Unreachable(std::sync::atomic::AtomicU32);

    #[async_trait::async_trait]
    impl RateLimiter for Unreachable {
        async fn hit(&self, _: &str, _: u32, _: Duration) -> Result<RateDecision, StoreError> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(StoreError::message("Redis: connection refused"))
        }
    }

    fn limits(shared: Arc<Unreachable>) -> RateLimits {
        RateLimits {
            limiter: shared,
            fallback: Some(Arc::new(store_memory::MemoryRateLimiter::new(
                Duration::from_secs(60),
                100,
            ))),
            window: Duration::from_secs(60),
            general_limit: 2,
            auth_limit: 2,
            upload_limit: 2,
            outage: Arc::default(),
        }
    }

    fn key(scope: LimitScope) -> RateKey {
        RateKey {
            scope,
            client: ClientKey::V4([192, 0, 2, 1]),
        }
    }

    #[tokio::test]
    async fn while_the_shared_counters_are_down_sign_in_fails_closed_and_the_rest_counts_here() {
        let shared = Arc::new(Unreachable::default());
        let limits = limits(Arc::clone(&shared));
        assert_eq!(
            limits.admit(key(LimitScope::Auth)).await,
            Err(Refusal::Uncounted)
        );
        for _ in 0..2 {
            assert_eq!(limits.admit(key(LimitScope::General)).await, Ok(()));
        }
        assert!(matches!(
            limits.admit(key(LimitScope::General)).await,
            Err(Refusal::Limited { .. })
        ));
        assert_eq!(limits.admit(key(LimitScope::Upload)).await, Ok(()));
        assert_eq!(
            shared.0.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "after a failure the shared counters are left alone for a while"
        );
    }

    /// Counters that never answer (a Redis that hangs).
    struct Hung;

    #[async_trait::async_trait]
    impl RateLimiter for Hung {
        async fn hit(&self, _: &str, _: u32, _: Duration) -> Result<RateDecision, StoreError> {
            std::future::pending().await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_counter_store_holds_one_request_a_quarter_second_and_the_next_not_at_all() {
        let limits = RateLimits {
            limiter: Arc::new(Hung),
            ..limits(Arc::new(Unreachable::default()))
        };
        let started = tokio::time::Instant::now();
        assert_eq!(limits.admit(key(LimitScope::General)).await, Ok(()));
        assert_eq!(started.elapsed(), SHARED_COUNTER_WAIT);
        assert_eq!(
            limits.admit(key(LimitScope::Auth)).await,
            Err(Refusal::Uncounted),
            "in the pause: refused at once"
        );
        assert_eq!(started.elapsed(), SHARED_COUNTER_WAIT);
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
