//! Chooses the storage and queue adapters for the configuration.
//!
//! The stores are the embedded SQLite file under `DATA_DIR`, or MongoDB when `MONGODB_URI` is set;
//! the job queue and the cron ledger are Redis when `REDIS_URL` or `REDIS_HOST` is set, else the
//! embedded file, which is opened only when something lives there.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use async_trait::async_trait;
use auth_core::ports::{AccountRepository, SessionRepository, UserRepository};
use http_api::{ReadinessProbe, ServerFacts};
use kernel::settings::{SettingsKind, SettingsRepository};
use notify_core::JobQueue;
use portfolio_core::ports::PortfolioRepository;
use scheduler_core::CronLedger;
use secrecy::ExposeSecret as _;
use store_mongo::MongoStore;
use store_redis::{History, RedisConnection, RedisCronLedger, RedisJobQueue, RedisSettings};
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
    /// Where schedulers record the ticks they claimed and the runs.
    pub ledger: Arc<dyn CronLedger>,
    pub probes: Vec<Arc<dyn ReadinessProbe>>,
    /// The store of accounts, as the admin metrics report it.
    pub database: Arc<dyn ServerFacts>,
    /// Where accounts live: `embedded` or `mongodb`.
    pub mode: &'static str,
    /// The Redis connection when jobs go through Redis (distributed mode); `None`: the embedded
    /// file's job table, drained and scheduled inside `console-api`.
    pub redis: Option<RedisConnection>,
    /// The embedded database, open when something lives there: the stores without MongoDB,
    /// the job table and cron ledger without Redis. What the maintenance job backs up.
    pub embedded: Option<SqliteStore>,
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

/// Redis as the health and admin endpoints report it.
pub struct RedisFacts(pub RedisConnection);

#[async_trait]
impl ServerFacts for RedisFacts {
    async fn facts(&self) -> Result<Vec<(String, String)>, String> {
        self.0.facts().await
    }
}

#[async_trait]
impl ServerFacts for SqliteProbe {
    async fn facts(&self) -> Result<Vec<(String, String)>, String> {
        self.store.facts().await.map_err(|e| e.to_string())
    }
}

#[async_trait]
impl ServerFacts for MongoProbe {
    async fn facts(&self) -> Result<Vec<(String, String)>, String> {
        self.0.server_status().await.map_err(|e| e.to_string())
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
/// else the embedded file; the job queue and the cron ledger are Redis when configured, else
/// the embedded file's tables. A process whose stores and queue are all elsewhere does not
/// open the embedded file.
///
/// # Errors
/// A message when a store cannot be opened, or when this process's embedded database is not
/// the one the deployment's other processes use.
pub async fn open(settings: &Settings) -> anyhow::Result<Storage> {
    let path = settings.data_dir.join(DATABASE_FILE);
    let embedded = match (&settings.mongodb_uri, &settings.redis) {
        (Some(_), Some(_)) => None,
        _ => Some(
            SqliteStore::open(&path, settings.sqlite_durability)
                .with_context(|| format!("cannot open {}", path.display()))?,
        ),
    };
    let jobs = match &settings.redis {
        Some(config) => {
            let connection = RedisConnection::connect(&RedisSettings {
                url: config.url.expose_secret().to_owned(),
                tls_ca_file: config.tls_ca_file.clone(),
                pool_size: config.pool_size,
                timeout: config.timeout,
            })
            .await
            .map_err(anyhow::Error::msg)
            .context("cannot connect to Redis")?;
            if let (None, Some(database)) = (&settings.mongodb_uri, &embedded) {
                agree_on_the_database(&connection, &config.key_prefix, database, &path).await?;
            }
            let redis_queue = Arc::new(
                RedisJobQueue::new(&connection, &config.key_prefix, history(settings))
                    .replicated_to(config.wait_replicas),
            );
            Jobs {
                probe: Arc::new(RedisProbe(Arc::clone(&redis_queue))),
                queue: redis_queue,
                ledger: Arc::new(RedisCronLedger::new(&connection, &config.key_prefix)),
                redis: Some(connection),
            }
        }
        None => {
            let database = opened(&embedded)?;
            Jobs {
                probe: Arc::new(SqliteProbe {
                    name: "queue",
                    store: database.clone(),
                }),
                queue: Arc::new(database.clone()),
                ledger: Arc::new(database),
                redis: None,
            }
        }
    };
    if let Some(uri) = &settings.mongodb_uri {
        let mongo = connect_to_mongodb(uri.expose_secret(), settings).await;
        let probe = Arc::new(MongoProbe(mongo.clone()));
        return Ok(serving(Arc::new(mongo), probe, jobs, embedded, "mongodb"));
    }
    let database = opened(&embedded)?;
    let probe = Arc::new(SqliteProbe {
        name: "storage",
        store: database.clone(),
    });
    Ok(serving(
        Arc::new(database),
        probe,
        jobs,
        embedded,
        "embedded",
    ))
}

/// MongoDB, waited for while it does not answer (a process started with it down serves once
/// it is back, rather than exiting), retrying with backoff up to every ten seconds. Each failed
/// attempt is logged with the driver's error, which names the servers it tried.
async fn connect_to_mongodb(uri: &str, settings: &Settings) -> MongoStore {
    let mut wait = std::time::Duration::from_millis(500);
    loop {
        match MongoStore::connect(uri, settings.mongodb_database.as_deref(), &SETTINGS_KINDS).await
        {
            Ok(mongo) => return mongo,
            Err(error) => {
                tracing::warn!(%error, ?wait, "cannot connect to MongoDB; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(10));
            }
        }
    }
}

/// The embedded database, which [`open`] opens whenever a store or the queue lives there.
fn opened(embedded: &Option<SqliteStore>) -> anyhow::Result<SqliteStore> {
    embedded
        .clone()
        .context("the embedded database was not opened")
}

/// Without MongoDB, accounts live in the embedded database, and every process of a deployment
/// must open the same file (a worker reads the preferences there, a scheduler cleans it). The
/// first process records its database's identity in Redis; a process that opened another one
/// (another `DATA_DIR`, another host) refuses to start.
async fn agree_on_the_database(
    connection: &RedisConnection,
    prefix: &str,
    database: &SqliteStore,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let id = database
        .identity()
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    let key = format!("{{{prefix}}}:embedded-database-id");
    let recorded = connection
        .set_once(&key, &id)
        .await
        .map_err(anyhow::Error::msg)
        .context("cannot record the embedded database's identity in Redis")?;
    if recorded == id {
        return Ok(());
    }
    bail!(
        "DATA_DIR: {} (database {id}) is not this deployment's embedded database (database {recorded}, recorded in Redis at {key}). Without MONGODB_URI, every process works on the api's database: run console-worker and console-scheduler on the api's host with its DATA_DIR, or set MONGODB_URI on every process. If this database replaced the deployment's on purpose (a restore keeps the identity; a new file does not), delete that key.",
        path.display()
    )
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

/// The queue, the cron ledger and what serves them.
struct Jobs {
    queue: Arc<dyn JobQueue>,
    ledger: Arc<dyn CronLedger>,
    probe: Arc<dyn ReadinessProbe>,
    redis: Option<RedisConnection>,
}

/// `store` serving every storage port but the queue.
fn serving<S, P>(
    store: Arc<S>,
    store_probe: Arc<P>,
    jobs: Jobs,
    embedded: Option<SqliteStore>,
    mode: &'static str,
) -> Storage
where
    S: UserRepository
        + AccountRepository
        + SessionRepository
        + PortfolioRepository
        + SettingsRepository
        + 'static,
    P: ReadinessProbe + ServerFacts + 'static,
{
    Storage {
        users: store.clone(),
        accounts: store.clone(),
        sessions: store.clone(),
        portfolio: store.clone(),
        settings: store,
        queue: jobs.queue,
        ledger: jobs.ledger,
        database: Arc::clone(&store_probe) as Arc<dyn ServerFacts>,
        probes: vec![store_probe, jobs.probe],
        mode,
        redis: jobs.redis,
        embedded,
    }
}
