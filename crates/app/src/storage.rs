//! Chooses the storage and queue adapters for the configuration.
//!
//! The stores are the embedded SQLite file under `DATA_DIR`, or MongoDB when `MONGODB_URI` is set;
//! the job queue is Redis when `REDIS_URL` or `REDIS_HOST` is set, else the embedded file.

use std::sync::Arc;

use async_trait::async_trait;
use auth_core::ports::{AccountRepository, SessionRepository, UserRepository};
use http_api::ReadinessProbe;
use kernel::settings::{SettingsKind, SettingsRepository};
use notify_core::JobQueue;
use portfolio_core::ports::PortfolioRepository;
use secrecy::ExposeSecret as _;
use store_mongo::MongoStore;
use store_redis::{History, RedisConnection, RedisJobQueue, RedisSettings};
use store_sqlite::SqliteStore;

use crate::config::Settings;

/// The storage ports, served by whichever adapters the configuration selects.
pub struct Storage {
    pub users: Arc<dyn UserRepository>,
    pub accounts: Arc<dyn AccountRepository>,
    pub sessions: Arc<dyn SessionRepository>,
    pub portfolio: Arc<dyn PortfolioRepository>,
    pub settings: Arc<dyn SettingsRepository>,
    pub queue: Arc<dyn JobQueue>,
    pub probes: Vec<Arc<dyn ReadinessProbe>>,
    /// Where accounts live: `embedded` or `mongodb`.
    pub mode: &'static str,
    /// The Redis connection when jobs go through Redis (distributed mode); `None`: the embedded
    /// file's job table, drained and scheduled inside `console-api`.
    pub redis: Option<RedisConnection>,
    /// The embedded database, always open: the job table and cron ledger when Redis is not
    /// configured, and what the maintenance job backs up.
    pub embedded: SqliteStore,
}

/// Every kind of settings document a user can have.
pub const SETTINGS_KINDS: [&SettingsKind; 4] = [
    &portfolio_core::resources::PROFILE,
    &auth_core::preferences::APP_PREFERENCES,
    &notify_core::preferences::NOTIFICATION_PREFERENCES,
    &notify_core::preferences::EMAIL_PREFERENCES,
];

/// The embedded database file under `DATA_DIR`.
pub const DATABASE_FILE: &str = "console.db";

struct SqliteProbe {
    name: &'static str,
    store: SqliteStore,
}

#[async_trait]
impl ReadinessProbe for SqliteProbe {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn check(&self) -> Result<(), String> {
        self.store.ping().await.map_err(|e| e.to_string())
    }
}

struct RedisProbe(Arc<RedisJobQueue>);

#[async_trait]
impl ReadinessProbe for RedisProbe {
    fn name(&self) -> &'static str {
        "queue"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.reachable().await.map_err(|e| e.to_string())
    }
}

/// Redis as the health endpoint reports it.
pub struct RedisFacts(pub RedisConnection);

#[async_trait]
impl http_api::RedisInfo for RedisFacts {
    async fn facts(&self) -> Result<Vec<(String, String)>, String> {
        self.0.facts().await
    }
}

struct MongoProbe(MongoStore);

#[async_trait]
impl ReadinessProbe for MongoProbe {
    fn name(&self) -> &'static str {
        "storage"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|e| e.to_string())
    }
}

/// Opens the stores: MongoDB for accounts, portfolios and settings when `MONGODB_URI` is set,
/// else the embedded file; the job queue is Redis when configured, else the embedded file's
/// durable table.
///
/// # Errors
/// A message when a store cannot be opened.
pub async fn open(settings: &Settings) -> Result<Storage, String> {
    let path = settings.data_dir.join(DATABASE_FILE);
    let embedded = SqliteStore::open(&path, settings.sqlite_durability)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let (queue, queue_probe, redis) = match &settings.redis {
        Some(config) => {
            let connection = RedisConnection::connect(&RedisSettings {
                url: config.url.expose_secret().to_owned(),
                tls_ca_file: config.tls_ca_file.clone(),
                pool_size: config.pool_size,
                timeout: config.timeout,
            })
            .await?;
            let redis_queue = Arc::new(
                RedisJobQueue::new(&connection, &config.key_prefix, history(settings))
                    .replicated_to(config.wait_replicas),
            );
            let probe: Arc<dyn ReadinessProbe> = Arc::new(RedisProbe(Arc::clone(&redis_queue)));
            let queue: Arc<dyn JobQueue> = redis_queue;
            (queue, probe, Some(connection))
        }
        None => {
            let probe: Arc<dyn ReadinessProbe> = Arc::new(SqliteProbe {
                name: "queue",
                store: embedded.clone(),
            });
            let queue: Arc<dyn JobQueue> = Arc::new(embedded.clone());
            (queue, probe, None)
        }
    };
    let jobs = Jobs {
        queue,
        redis,
        embedded: embedded.clone(),
    };
    if let Some(uri) = &settings.mongodb_uri {
        let mongo = MongoStore::connect(
            uri.expose_secret(),
            settings.mongodb_database.as_deref(),
            &SETTINGS_KINDS,
        )
        .await
        .map_err(|e| format!("cannot connect to MongoDB: {e}"))?;
        let probes: Vec<Arc<dyn ReadinessProbe>> =
            vec![Arc::new(MongoProbe(mongo.clone())), queue_probe];
        return Ok(serving(Arc::new(mongo), jobs, probes, "mongodb"));
    }
    let probes: Vec<Arc<dyn ReadinessProbe>> = vec![
        Arc::new(SqliteProbe {
            name: "storage",
            store: embedded.clone(),
        }),
        queue_probe,
    ];
    Ok(serving(Arc::new(embedded), jobs, probes, "embedded"))
}

/// The finished-job history bounds of the configuration.
pub fn history(settings: &Settings) -> History {
    let age =
        |d: std::time::Duration| chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX);
    History {
        completed_count: settings.history_completed_max,
        completed_age: age(settings.history_completed_age),
        failed_count: settings.history_failed_max,
        failed_age: age(settings.history_failed_age),
    }
}

/// The queue and what serves it.
struct Jobs {
    queue: Arc<dyn JobQueue>,
    redis: Option<RedisConnection>,
    embedded: SqliteStore,
}

/// `store` serving every storage port but the queue.
fn serving<S>(
    store: Arc<S>,
    jobs: Jobs,
    probes: Vec<Arc<dyn ReadinessProbe>>,
    mode: &'static str,
) -> Storage
where
    S: UserRepository
        + AccountRepository
        + SessionRepository
        + PortfolioRepository
        + SettingsRepository
        + 'static,
{
    Storage {
        users: store.clone(),
        accounts: store.clone(),
        sessions: store.clone(),
        portfolio: store.clone(),
        settings: store,
        queue: jobs.queue,
        probes,
        mode,
        redis: jobs.redis,
        embedded: jobs.embedded,
    }
}
