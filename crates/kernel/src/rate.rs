//! Fixed-window hit counting behind a port, so that a limit holds across every instance that
//! shares the counter store (Redis) and within one instance otherwise.

use std::time::Duration;

use async_trait::async_trait;

use crate::StoreError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateDecision {
    Allowed,
    /// Over the limit; the window resets in this many seconds (at least one).
    Limited {
        retry_after: u64,
    },
}

/// Counts hits per key in fixed windows: the first hit on a key starts its window, and the
/// key is forgotten when the window ends.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one hit on `key` and says whether it is within `limit` per `window`.
    ///
    /// # Errors
    /// [`StoreError`] when the counter store cannot be reached; the caller's rule for that
    /// limit decides what happens to the request.
    async fn hit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, StoreError>;
}

/// The decision for the `count`-th hit of a window with `left` of it to run.
#[must_use]
pub fn decide(count: u64, limit: u32, left: Duration) -> RateDecision {
    if count <= u64::from(limit) {
        RateDecision::Allowed
    } else {
        RateDecision::Limited {
            retry_after: (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_inclusive_and_retry_after_rounds_up_to_a_whole_second() {
        let left = Duration::from_millis(1_200);
        assert_eq!(decide(3, 3, left), RateDecision::Allowed);
        assert_eq!(decide(4, 3, left), RateDecision::Limited { retry_after: 2 });
        assert_eq!(
            decide(4, 3, Duration::ZERO),
            RateDecision::Limited { retry_after: 1 }
        );
    }
}
