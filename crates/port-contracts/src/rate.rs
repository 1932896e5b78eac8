//! Contract of `RateLimiter`.

use std::time::Duration;

use futures_util::future::join_all;
use kernel::rate::{RateDecision, RateLimiter};

suite!($
    /// Runs the `RateLimiter` contract: one test per behaviour.
    rate_limiter_contract, rate::rate_limiter_behaviours, dyn RateLimiter, [
        exactly_the_limit_passes_in_a_window_and_keys_count_apart,
        a_window_that_ended_starts_afresh,
        hits_at_once_are_each_counted_once,
    ]
);

async fn hit(limiter: &dyn RateLimiter, key: &str, limit: u32, window: Duration) -> RateDecision {
    limiter
        .hit(key, limit, window)
        .await
        .unwrap_or_else(|e| panic!("hit {key}: {e}"))
}

async fn exactly_the_limit_passes_in_a_window_and_keys_count_apart(limiter: &dyn RateLimiter) {
    let window = Duration::from_secs(60);
    for _ in 0..3 {
        assert_eq!(
            hit(limiter, "auth:192.0.2.1", 3, window).await,
            RateDecision::Allowed
        );
    }
    let over = hit(limiter, "auth:192.0.2.1", 3, window).await;
    assert!(
        matches!(over, RateDecision::Limited { retry_after } if (1..=60).contains(&retry_after)),
        "{over:?}"
    );
    assert_eq!(
        hit(limiter, "auth:192.0.2.2", 3, window).await,
        RateDecision::Allowed,
        "another client"
    );
    assert_eq!(
        hit(limiter, "general:192.0.2.1", 3, window).await,
        RateDecision::Allowed,
        "another scope"
    );
}

async fn a_window_that_ended_starts_afresh(limiter: &dyn RateLimiter) {
    let window = Duration::from_millis(300);
    assert_eq!(hit(limiter, "k", 1, window).await, RateDecision::Allowed);
    assert!(matches!(
        hit(limiter, "k", 1, window).await,
        RateDecision::Limited { retry_after: 1 }
    ));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(hit(limiter, "k", 1, window).await, RateDecision::Allowed);
}

async fn hits_at_once_are_each_counted_once(limiter: &dyn RateLimiter) {
    let window = Duration::from_secs(60);
    let decisions = join_all((0..50).map(|_| hit(limiter, "burst", 20, window))).await;
    let allowed = decisions
        .iter()
        .filter(|d| **d == RateDecision::Allowed)
        .count();
    assert_eq!(allowed, 20, "{decisions:?}");
}
