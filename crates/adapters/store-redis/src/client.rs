//! The one Redis connection pool of a process, and what the health endpoints ask of it.

use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::prelude::{Builder, ClientLike as _, Config, Pool, ReconnectPolicy};
use fred::types::InfoKind;

/// How to reach Redis.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    /// `redis://[user:password@]host:port/db` (or `rediss://` for TLS-less deployments only).
    pub url: String,
    /// Connections in the pool; commands are pipelined on each.
    pub pool_size: usize,
    /// Longest wait for a connection or a command before it fails.
    pub timeout: Duration,
}

/// A connected pool that reconnects with exponential backoff when Redis goes away.
#[derive(Clone)]
pub struct RedisConnection {
    pub(crate) pool: Pool,
    config: Config,
    timeout: Duration,
}

/// Clients as every part of a process makes them: with its timeouts and reconnection policy.
fn builder(config: &Config, timeout: Duration) -> Builder {
    let mut builder = Builder::from_config(config.clone());
    builder
        .with_connection_config(|c| {
            c.connection_timeout = timeout;
            c.internal_command_timeout = timeout;
        })
        .with_performance_config(|p| p.default_command_timeout = timeout)
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 10_000, 2));
    builder
}

impl RedisConnection {
    /// Connects and waits for the first connection.
    ///
    /// # Errors
    /// A message when the URL is malformed or Redis cannot be reached.
    pub async fn connect(settings: &RedisSettings) -> Result<Self, String> {
        let config = Config::from_url(&settings.url).map_err(|e| format!("REDIS_URL: {e}"))?;
        let pool = builder(&config, settings.timeout)
            .build_pool(settings.pool_size.max(1))
            .map_err(|e| format!("Redis client: {e}"))?;
        pool.init()
            .await
            .map_err(|e| format!("cannot connect to Redis: {e}"))?;
        Ok(Self {
            pool,
            config,
            timeout: settings.timeout,
        })
    }

    /// A connection of its own for pub/sub (a subscribed connection can send nothing else),
    /// which subscribes again after a reconnect.
    pub(crate) async fn subscriber(&self) -> Result<SubscriberClient, fred::error::Error> {
        let subscriber = builder(&self.config, self.timeout).build_subscriber_client()?;
        subscriber.init().await?;
        // The task ends with the client.
        drop(subscriber.manage_subscriptions());
        Ok(subscriber)
    }

    /// Whether Redis answers.
    ///
    /// # Errors
    /// The client's error when it does not.
    pub async fn ping(&self) -> Result<(), String> {
        self.pool
            .next()
            .ping::<String>(None)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// A few facts from `INFO` (version, memory, clients) for the health endpoint.
    ///
    /// # Errors
    /// The client's error when Redis does not answer.
    pub async fn facts(&self) -> Result<Vec<(String, String)>, String> {
        let info: String = self
            .pool
            .next()
            .info(Some(InfoKind::Default))
            .await
            .map_err(|e| e.to_string())?;
        Ok(info
            .lines()
            .filter_map(|line| line.split_once(':'))
            .filter(|(key, _)| {
                [
                    "redis_version",
                    "uptime_in_seconds",
                    "connected_clients",
                    "used_memory",
                    "maxmemory",
                    "maxmemory_policy",
                ]
                .contains(key)
            })
            .map(|(key, value)| (key.to_owned(), value.trim().to_owned()))
            .collect())
    }

    /// Closes every connection.
    pub async fn quit(&self) {
        let _ = self.pool.quit().await;
    }
}
