//! The one Redis connection pool of a process, and what the health endpoints ask of it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::prelude::{Builder, ClientLike as _, Config, Pool, ReconnectPolicy};
use fred::prelude::{EventInterface as _, KeysInterface as _, PubsubInterface as _};
use fred::rustls::pki_types::CertificateDer;
use fred::rustls::pki_types::pem::PemObject as _;
use fred::rustls::{ClientConfig, RootCertStore, crypto::ring};
use fred::types::InfoKind;
use fred::types::SetOptions;
use fred::types::config::TlsConnector;
use futures_util::StreamExt as _;
use futures_util::stream::{self, BoxStream};
use tokio::sync::broadcast::error::RecvError;

/// How to reach Redis.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    /// One server (`redis://[user:password@]host:port/db`), a Cluster
    /// (`redis-cluster://host:port?node=host:port…`) or the master a Sentinel group names
    /// (`redis-sentinel://host:port/db?sentinelServiceName=name&node=host:port…`); each over
    /// TLS as `rediss…://` (the server's certificate checked against the system's roots, or
    /// `tls_ca_file`).
    pub url: String,
    /// PEM file of the certificate authorities a `rediss://` server's certificate must chain to,
    /// instead of the system's roots.
    pub tls_ca_file: Option<PathBuf>,
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
    pub(crate) timeout: Duration,
}

/// The URL schemes [`RedisSettings::url`] accepts.
const URL_SCHEMES: [&str; 6] = [
    "redis",
    "rediss",
    "redis-cluster",
    "rediss-cluster",
    "redis-sentinel",
    "rediss-sentinel",
];

/// Checks a Redis URL as a connection would read it.
///
/// # Errors
/// What is wrong with it, never the URL itself (it may hold a password).
pub fn check_url(url: &str) -> Result<(), String> {
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    if !URL_SCHEMES.contains(&scheme) {
        return Err(format!(
            "expected a URL whose scheme is one of {}",
            URL_SCHEMES.join(", ")
        ));
    }
    Config::from_url(url)
        .map(drop)
        .map_err(|e| e.details().to_string())
}

/// Published messages a subscriber may hold before its reader takes them.
const SUBSCRIBER_BUFFER: usize = 1 << 14;

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

/// A TLS connector that trusts the certificate authorities of the PEM file at `path` only.
fn trusting(path: &Path) -> Result<TlsConnector, String> {
    let problem = |e: &dyn std::fmt::Display| format!("REDIS_TLS_CA_FILE {}: {e}", path.display());
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(path).map_err(|e| problem(&e))? {
        roots
            .add(certificate.map_err(|e| problem(&e))?)
            .map_err(|e| problem(&e))?;
    }
    if roots.is_empty() {
        return Err(problem(&"no certificate in the file"));
    }
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| problem(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(config))
}

impl RedisConnection {
    /// Connects and waits for the first connection.
    ///
    /// # Errors
    /// A message when the URL is malformed or Redis cannot be reached.
    pub async fn connect(settings: &RedisSettings) -> Result<Self, String> {
        let mut config = Config::from_url(&settings.url).map_err(|e| format!("REDIS_URL: {e}"))?;
        if let Some(ca_file) = &settings.tls_ca_file {
            let Some(tls) = config.tls.as_mut() else {
                return Err("REDIS_TLS_CA_FILE: needs a rediss:// URL".to_owned());
            };
            tls.connector = trusting(ca_file)?;
        }
        // Redis down when the process starts is waited for, with the same backoff as a
        // reconnection, rather than ending the process (a service manager gives up restarting
        // one that keeps exiting).
        config.fail_fast = false;
        let pool = builder(&config, settings.timeout)
            .build_pool(settings.pool_size.max(1))
            .map_err(|e| format!("Redis client: {e}"))?;
        let at = format!("{:?}", config.server);
        if let Some(first) = pool.clients().first() {
            let at = at.clone();
            // The task ends with the client.
            drop(first.on_error(move |(error, server)| {
                let at = at.clone();
                async move {
                    let server = server.map_or(at, |server| server.to_string());
                    tracing::warn!(%server, %error, "Redis connection failed; retrying");
                    Ok(())
                }
            }));
        }
        tracing::info!(server = %at, "connecting to Redis");
        pool.init()
            .await
            .map_err(|e| format!("cannot connect to Redis at {at}: {e}"))?;
        Ok(Self {
            pool,
            config,
            timeout: settings.timeout,
        })
    }

    /// The messages published on `channel` from now on, as text, through a connection of
    /// their own. Plain pub/sub on a Cluster too: every node relays a publication, so a
    /// subscriber on any node (a replica included) hears it, and fred subscribes again after a
    /// reconnect. A sharded subscription is dropped by the server when its slot moves or fails
    /// over, and fred 10 does not take it up again: the channel would go silent. `what` names
    /// the subscriber in the warning about messages lost when its reader fell behind.
    pub(crate) async fn messages(
        &self,
        channel: String,
        what: &'static str,
    ) -> Result<BoxStream<'static, String>, fred::error::Error> {
        let subscriber = self.subscriber().await?;
        let messages = subscriber.message_rx();
        subscriber.subscribe(channel).await?;
        // The subscriber travels with the stream: dropping the stream closes its connection.
        let stream = stream::unfold(
            (subscriber, messages),
            move |(subscriber, mut messages)| async move {
                loop {
                    match messages.recv().await {
                        Ok(message) => {
                            if let Some(text) = message.value.as_string() {
                                return Some((text, (subscriber, messages)));
                            }
                        }
                        Err(RecvError::Lagged(missed)) => {
                            tracing::warn!(
                                missed,
                                "the {what} subscriber fell behind; messages were lost"
                            );
                        }
                        Err(RecvError::Closed) => return None,
                    }
                }
            },
        );
        Ok(stream.boxed())
    }

    /// A connection of its own for pub/sub (a subscribed connection can send nothing else),
    /// which subscribes again after a reconnect.
    async fn subscriber(&self) -> Result<SubscriberClient, fred::error::Error> {
        let mut builder = builder(&self.config, self.timeout);
        // fred hands published messages over a broadcast channel of 32 by default, and drops
        // the oldest when a burst outruns its reader: room for the bursts of a busy chat.
        builder.with_performance_config(|p| p.broadcast_channel_capacity = SUBSCRIBER_BUFFER);
        let subscriber = builder.build_subscriber_client()?;
        subscriber.init().await?;
        // The task ends with the client.
        drop(subscriber.manage_subscriptions());
        Ok(subscriber)
    }

    /// Sets `key` to `value` unless it has a value; answers the value it then has.
    ///
    /// # Errors
    /// The client's error when Redis does not answer.
    pub async fn set_once(&self, key: &str, value: &str) -> Result<String, String> {
        let before: Option<String> = self
            .pool
            .next()
            .set(key, value, None, Some(SetOptions::NX), true)
            .await
            .map_err(|e| e.to_string())?;
        Ok(before.unwrap_or_else(|| value.to_owned()))
    }

    /// Sets `key` to `value`.
    ///
    /// # Errors
    /// The client's error when Redis does not answer.
    pub async fn set(&self, key: &str, value: &str) -> Result<(), String> {
        self.pool
            .next()
            .set::<(), _, _>(key, value, None, None, false)
            .await
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
                    "used_memory_peak",
                    "maxmemory",
                    "maxmemory_policy",
                    "blocked_clients",
                    "total_connections_received",
                    "total_commands_processed",
                    "instantaneous_ops_per_sec",
                    "keyspace_hits",
                    "keyspace_misses",
                    "evicted_keys",
                    "role",
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

#[cfg(test)]
mod tests {
    use testkit::RedisServer;

    use super::*;

    fn settings(url: String, tls_ca_file: Option<PathBuf>) -> RedisSettings {
        RedisSettings {
            url,
            tls_ca_file,
            pool_size: 1,
            timeout: Duration::from_secs(2),
        }
    }

    /// Connects, giving up after a few seconds (fred retries a failed connection).
    async fn try_connect(settings: &RedisSettings) -> Result<RedisConnection, String> {
        tokio::time::timeout(Duration::from_secs(5), RedisConnection::connect(settings))
            .await
            .unwrap_or_else(|_| Err("no connection in 5 s".to_owned()))
    }

    #[tokio::test]
    async fn a_rediss_url_speaks_tls_to_a_server_whose_certificate_it_trusts() {
        testkit::needs!("redis-server");
        let server = RedisServer::start_tls().await;
        let folder = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ca_file = folder.path().join("ca.pem");
        std::fs::write(&ca_file, server.ca_pem().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        let connection = try_connect(&settings(server.url(), Some(ca_file.clone())))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(connection.facts().await.is_ok());
        // The system's roots do not know the test CA: no connection, rather than an unchecked one.
        assert!(try_connect(&settings(server.url(), None)).await.is_err());
        // Plain text to a TLS port gets nowhere either.
        let plain = server.url().replacen("rediss://", "redis://", 1);
        assert!(try_connect(&settings(plain, None)).await.is_err());
    }

    #[tokio::test]
    async fn a_ca_file_needs_a_rediss_url_and_a_certificate() {
        testkit::needs!("redis-server");
        let server = RedisServer::start().await;
        let folder = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let empty = folder.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap_or_else(|e| panic!("{e}"));
        let refused = try_connect(&settings(server.url(), Some(empty.clone()))).await;
        assert_eq!(
            refused.err().as_deref(),
            Some("REDIS_TLS_CA_FILE: needs a rediss:// URL")
        );
        let tls_url = server.url().replacen("redis://", "rediss://", 1);
        let refused = try_connect(&settings(tls_url, Some(empty))).await;
        assert!(
            refused.err().is_some_and(|e| e.contains("no certificate")),
            "an empty CA file"
        );
    }
}
