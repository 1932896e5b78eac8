//! Chooses the storage and queue adapters for the configuration.

use std::sync::Arc;

use async_trait::async_trait;
use auth_core::ports::{AccountRepository, SessionRepository, UserRepository};
use http_api::ReadinessProbe;
use notify_core::JobQueue;
use store_sqlite::SqliteStore;

use crate::config::Settings;

/// The storage ports, served by whichever adapters the configuration selects.
pub struct Storage {
    pub users: Arc<dyn UserRepository>,
    pub accounts: Arc<dyn AccountRepository>,
    pub sessions: Arc<dyn SessionRepository>,
    pub queue: Arc<dyn JobQueue>,
    pub probes: Vec<Arc<dyn ReadinessProbe>>,
    pub mode: &'static str,
}

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

/// # Errors
/// A message when a store cannot be opened.
pub fn open(settings: &Settings) -> Result<Storage, String> {
    let path = settings.data_dir.join(DATABASE_FILE);
    let store =
        SqliteStore::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let shared = Arc::new(store.clone());
    Ok(Storage {
        users: shared.clone(),
        accounts: shared.clone(),
        sessions: shared.clone(),
        queue: shared,
        probes: vec![
            Arc::new(SqliteProbe {
                name: "storage",
                store: store.clone(),
            }),
            Arc::new(SqliteProbe {
                name: "queue",
                store,
            }),
        ],
        mode: "embedded",
    })
}
