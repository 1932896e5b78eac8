//! `RateLimiter` in one process: fixed-window counters in a bounded cache. At most `max_keys`
//! counters, each dropped when its window ends; when full, the least recently used counter
//! goes (O(1), no scans). LRU rather than frequency-based admission, so a new client's counter
//! is always kept and cannot dodge its limit by never being admitted.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kernel::rate::{RateDecision, RateLimiter, decide};
use kernel::{Clock, StoreError, SystemClock};

pub struct MemoryRateLimiter {
    windows: moka::sync::Cache<String, Arc<Mutex<Window>>>,
    clock: Arc<dyn Clock>,
}

#[derive(Clone, Copy)]
struct Window {
    started: DateTime<Utc>,
    hits: u64,
}

impl MemoryRateLimiter {
    /// Counters for windows of at most `window`, at most `max_keys` of them.
    #[must_use]
    pub fn new(window: Duration, max_keys: u64) -> Self {
        Self::with_clock(window, max_keys, Arc::new(SystemClock))
    }

    /// The same, with windows measured by `clock` (a test's clock moves at will).
    #[must_use]
    pub fn with_clock(window: Duration, max_keys: u64, clock: Arc<dyn Clock>) -> Self {
        Self {
            windows: moka::sync::Cache::builder()
                .max_capacity(max_keys)
                .time_to_live(window.max(Duration::from_millis(1)))
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .build(),
            clock,
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
impl RateLimiter for MemoryRateLimiter {
    async fn hit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, StoreError> {
        let now = self.clock.now();
        let counter = self.windows.get_with_by_ref(key, || {
            Arc::new(Mutex::new(Window {
                started: now,
                hits: 0,
            }))
        });
        let mut counter = counter.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = (now - counter.started).to_std().unwrap_or_default();
        if elapsed >= window {
            *counter = Window {
                started: now,
                hits: 0,
            };
        }
        counter.hits = counter.hits.saturating_add(1);
        let left = window.saturating_sub((now - counter.started).to_std().unwrap_or_default());
        Ok(decide(counter.hits, limit, left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    port_contracts::rate_limiter_contract!(|| async {
        ((), MemoryRateLimiter::new(Duration::from_secs(60), 1_000))
    });

    #[tokio::test]
    async fn many_distinct_clients_never_hold_more_than_the_cap() {
        let window = Duration::from_secs(60);
        let limiter = MemoryRateLimiter::new(window, 500);
        for client in 0..20_000_u32 {
            let decision = limiter.hit(&format!("general:{client}"), 1, window).await;
            assert_eq!(decision.ok(), Some(RateDecision::Allowed));
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
        let limiter = MemoryRateLimiter::new(window, 100);
        for client in 0..1_000_u32 {
            let _ = limiter.hit(&format!("general:{client}"), 1, window).await;
        }
        let hits = [
            limiter.hit("general:newcomer", 2, window).await.ok(),
            limiter.hit("general:newcomer", 2, window).await.ok(),
            limiter.hit("general:newcomer", 2, window).await.ok(),
        ];
        assert_eq!(hits[..2], [Some(RateDecision::Allowed); 2]);
        assert!(matches!(hits[2], Some(RateDecision::Limited { .. })));
    }
}
