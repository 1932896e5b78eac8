//! `RateLimiter` on Redis: one counter key per (scope, client), `{prefix}:rate:<key>`, counted
//! and given its expiry by one script, so every instance of a deployment spends one budget
//! and no key outlives its window.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fred::prelude::Pool;
use fred::types::scripts::Script;
use kernel::StoreError;
use kernel::rate::{RateDecision, RateLimiter, decide};

use crate::client::RedisConnection;

pub struct RedisRateLimiter {
    pool: Pool,
    script: Arc<Script>,
    /// `{prefix}:rate`.
    base: String,
}

impl RedisRateLimiter {
    #[must_use]
    pub fn new(connection: &RedisConnection, prefix: &str) -> Self {
        Self {
            pool: connection.pool.clone(),
            script: Arc::new(Script::from_lua(include_str!("lua/rate.lua"))),
            base: format!("{{{prefix}}}:rate"),
        }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn hit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, StoreError> {
        let window_ms = i64::try_from(window.as_millis().max(1)).unwrap_or(i64::MAX);
        let (hits, left_ms): (i64, i64) = self
            .script
            .evalsha_with_reload(
                self.pool.next(),
                vec![format!("{}:{key}", self.base)],
                vec![window_ms],
            )
            .await
            .map_err(|e| StoreError::message(format!("Redis: {e}")))?;
        let left = Duration::from_millis(u64::try_from(left_ms).unwrap_or(0));
        Ok(decide(u64::try_from(hits).unwrap_or(0), limit, left))
    }
}

#[cfg(test)]
mod tests {
    use testkit::{RedisCluster, RedisServer};

    use super::RedisRateLimiter;
    use crate::tests::{connect, connect_to};

    async fn fresh() -> (RedisServer, RedisRateLimiter) {
        let server = RedisServer::start().await;
        let connection = connect(&server).await;
        (server, RedisRateLimiter::new(&connection, "test"))
    }

    port_contracts::rate_limiter_contract!(needs "redis-server", fresh);

    mod on_a_cluster {
        use super::*;

        async fn fresh() -> (RedisCluster, RedisRateLimiter) {
            let cluster = RedisCluster::start().await;
            let connection = connect_to(cluster.url()).await;
            (cluster, RedisRateLimiter::new(&connection, "test"))
        }

        port_contracts::rate_limiter_contract!(needs "redis-server", fresh);
    }
}
