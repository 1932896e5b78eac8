//! Chooses the storage and queue adapters for the configuration.

use std::sync::Arc;

use async_trait::async_trait;
use auth_core::ports::{AccountRepository, SessionRepository, UserRepository};
use http_api::ReadinessProbe;
use kernel::settings::{SettingsKind, SettingsRepository};
use notify_core::JobQueue;
use portfolio_core::ports::PortfolioRepository;
use secrecy::ExposeSecret as _;
use store_mongo::MongoStore;
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
/// else the embedded file; the job queue is the embedded file's durable table.
///
/// # Errors
/// A message when a store cannot be opened.
pub async fn open(settings: &Settings) -> Result<Storage, String> {
    let path = settings.data_dir.join(DATABASE_FILE);
    let embedded = SqliteStore::open(&path, settings.sqlite_durability)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let queue_probe: Arc<dyn ReadinessProbe> = Arc::new(SqliteProbe {
        name: "queue",
        store: embedded.clone(),
    });
    let queue: Arc<dyn JobQueue> = Arc::new(embedded.clone());
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
        return Ok(serving(Arc::new(mongo), queue, probes, "mongodb"));
    }
    let probes: Vec<Arc<dyn ReadinessProbe>> = vec![
        Arc::new(SqliteProbe {
            name: "storage",
            store: embedded.clone(),
        }),
        queue_probe,
    ];
    Ok(serving(Arc::new(embedded), queue, probes, "embedded"))
}

/// `store` serving every storage port but the queue.
fn serving<S>(
    store: Arc<S>,
    queue: Arc<dyn JobQueue>,
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
        queue,
        probes,
        mode,
    }
}
