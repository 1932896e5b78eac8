//! Opening the database, migrations, and running statements off the executor.
//!
//! Writes go through one connection behind a mutex, reads through four read-only connections in
//! WAL mode, every call on the blocking pool. Commits are `synchronous = FULL` unless
//! `SQLITE_SYNCHRONOUS=normal` (`docs/adr/0006`); the file is 0600. `MIGRATIONS` is the schema,
//! one entry per version, applied forward from `PRAGMA user_version`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use kernel::StoreError;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension as _, TransactionBehavior};

/// The schema, one entry per version; a database is migrated forward at open.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL,
    first_name TEXT, last_name TEXT, display_name TEXT, avatar TEXT,
    role TEXT NOT NULL,
    bio TEXT, location TEXT, website TEXT,
    is_active INTEGER NOT NULL,
    last_login_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    email_verified INTEGER NOT NULL,
    verification_hash TEXT, verification_expires_at INTEGER,
    reset_hash TEXT, reset_expires_at INTEGER,
    is_active INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX accounts_user ON accounts (user_id);
CREATE INDEX accounts_verification ON accounts (verification_hash) WHERE verification_hash IS NOT NULL;
CREATE INDEX accounts_reset ON accounts (reset_hash) WHERE reset_hash IS NOT NULL;
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    user_agent TEXT, ip_address TEXT,
    device_type TEXT NOT NULL, device_name TEXT NOT NULL, browser TEXT NOT NULL, os TEXT NOT NULL,
    location TEXT,
    is_active INTEGER NOT NULL,
    refresh_hash TEXT NOT NULL,
    previous_refresh_hash TEXT,
    rotated_at INTEGER,
    last_activity_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id, is_active);
CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    last_error TEXT,
    enqueued_at INTEGER NOT NULL,
    run_at INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX jobs_due ON jobs (queue, state, run_at);
",
    r"
CREATE TABLE portfolio_items (
    id TEXT PRIMARY KEY,
    resource TEXT NOT NULL,
    owner TEXT NOT NULL,
    fields TEXT NOT NULL,
    slug TEXT,
    position INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE INDEX portfolio_items_owner ON portfolio_items (owner, resource, deleted_at);
CREATE UNIQUE INDEX portfolio_items_slug ON portfolio_items (resource, owner, slug) WHERE slug IS NOT NULL;
CREATE TABLE settings (
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    fields TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (kind, owner)
);
",
    r"
ALTER TABLE accounts ADD COLUMN deletion_hash TEXT;
ALTER TABLE accounts ADD COLUMN deletion_expires_at INTEGER;
",
    r"
ALTER TABLE jobs ADD COLUMN recipient TEXT;
CREATE INDEX jobs_recipient ON jobs (recipient);
",
    r"
ALTER TABLE jobs ADD COLUMN claim TEXT;
CREATE INDEX jobs_finished ON jobs (queue, state, finished_at);
CREATE TABLE cron_ticks (
    task TEXT NOT NULL,
    tick INTEGER NOT NULL,
    runner TEXT NOT NULL,
    PRIMARY KEY (task, tick)
);
CREATE TABLE cron_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task TEXT NOT NULL,
    tick INTEGER NOT NULL,
    trigger TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    items INTEGER NOT NULL,
    note TEXT NOT NULL,
    runner TEXT NOT NULL
);
CREATE INDEX cron_runs_task ON cron_runs (task, id);
CREATE TABLE job_totals (
    queue TEXT NOT NULL,
    event TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (queue, event)
);
",
    r"
ALTER TABLE jobs ADD COLUMN claimed_at INTEGER;
",
    // A random name given to a database when it is made, kept by its backups: processes that
    // share one through Redis check that they opened the same file.
    r"
CREATE TABLE database_identity (id TEXT NOT NULL);
INSERT INTO database_identity (id) VALUES (lower(hex(randomblob(16))));
",
    // The queues an administrator paused: none of their jobs is handed out.
    r"
CREATE TABLE queue_pauses (queue TEXT PRIMARY KEY);
",
    // Each job's failed attempts, a JSON array (FailedAttempt's stored form).
    r"
ALTER TABLE jobs ADD COLUMN failures TEXT;
",
];

/// One writing connection (so writes, including compare-and-swap updates, are serialised) and
/// a few read-only ones: in WAL mode readers never wait for the writer, and each statement sees
/// every write committed before it began.
#[derive(Clone)]
pub struct SqliteStore {
    writer: Arc<Mutex<Connection>>,
    readers: Arc<[Arc<Mutex<Connection>>]>,
    next_reader: Arc<AtomicUsize>,
    /// A shared lock on `<file>.open` while the store is open, which a restore's
    /// [`ExclusiveHold`] waits for no process to hold.
    _in_use: Arc<std::fs::File>,
}

/// The file a database's users hold a shared lock on while it is open.
fn in_use_marker(path: &Path) -> PathBuf {
    let mut marker = path.as_os_str().to_owned();
    marker.push(".open");
    PathBuf::from(marker)
}

/// The database file at a path, held so that no process opens it meanwhile: one that tries
/// waits until the hold is dropped.
pub struct ExclusiveHold {
    _marker: std::fs::File,
}

impl ExclusiveHold {
    /// Holds the database at `path`; `None` while a process has it open.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the marker file cannot be created or locked.
    pub fn try_take(path: &Path) -> Result<Option<Self>, StoreError> {
        if let Some(parent) = path.parent() {
            create_private_dir(parent).map_err(StoreError::backend)?;
        }
        let marker = std::fs::File::create(in_use_marker(path)).map_err(StoreError::backend)?;
        match marker.try_lock() {
            Ok(()) => Ok(Some(Self { _marker: marker })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(error)) => Err(StoreError::backend(error)),
        }
    }
}

/// Writes a consistent, compacted copy of the database at `from` (closed: see
/// [`ExclusiveHold`]) to `to` (which must not exist), readable by the owner only, after checking
/// that `from` is whole and is a database of this store; answers its identity (see
/// [`SqliteStore::identity`]; `None` for a database from before identities).
///
/// # Errors
/// [`StoreError::Backend`] when `from` is no readable database of this store, fails SQLite's
/// integrity check, or `to` cannot be written.
pub fn copy_database(from: &Path, to: &Path) -> Result<Option<String>, StoreError> {
    let source = open_existing(from)?;
    let check: String = source
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .map_err(|error| StoreError::message(format!("{}: {error}", from.display())))?;
    if check != "ok" {
        return Err(StoreError::message(format!(
            "{} fails SQLite's integrity check: {check}",
            from.display()
        )));
    }
    if !has_table(&source, "users")? {
        return Err(StoreError::message(format!(
            "{} is no database of this service (it has no users table)",
            from.display()
        )));
    }
    let identity = identity_of(&source)?;
    source
        .execute("VACUUM INTO ?1", [to.to_string_lossy()])
        .map_err(|error| StoreError::message(format!("{}: {error}", to.display())))?;
    restrict_to_owner(to).map_err(StoreError::backend)?;
    Ok(identity)
}

/// The identity of the database at `path` (closed), `None` when it has none yet; no file is
/// created.
///
/// # Errors
/// [`StoreError::Backend`] when the file is no readable database.
pub fn database_identity(path: &Path) -> Result<Option<String>, StoreError> {
    identity_of(&open_existing(path)?)
}

/// A connection to the closed database at `path`, opened for writing (so that what a crash
/// left in its write-ahead log is read), never created.
fn open_existing(path: &Path) -> Result<Connection, StoreError> {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|error| StoreError::message(format!("{}: {error}", path.display())))
}

fn has_table(connection: &Connection, name: &str) -> Result<bool, StoreError> {
    connection
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [name],
            |row| row.get(0),
        )
        .map_err(StoreError::backend)
}

fn identity_of(connection: &Connection) -> Result<Option<String>, StoreError> {
    if !has_table(connection, "database_identity")? {
        return Ok(None);
    }
    connection
        .query_row("SELECT id FROM database_identity", [], |row| row.get(0))
        .optional()
        .map_err(StoreError::backend)
}

const READERS: usize = 4;
// The busy timeout first: another process opening the same file may hold the lock that
// switching to WAL takes.
const PRAGMAS: &str =
    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;";

/// How far a commit is on disk before it is acknowledged (SQLite's `synchronous`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Every commit is fsynced: a write answered 2xx survives a power loss.
    #[default]
    Full,
    /// Commits are fsynced at checkpoints only: the last writes before a power loss (not a
    /// process crash) may be lost, in exchange for cheaper commits.
    Normal,
}

impl std::str::FromStr for Durability {
    type Err = ();

    fn from_str(raw: &str) -> Result<Self, ()> {
        match raw.to_ascii_lowercase().as_str() {
            "full" => Ok(Self::Full),
            "normal" => Ok(Self::Normal),
            _ => Err(()),
        }
    }
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Self::Full => "PRAGMA synchronous = FULL;",
            Self::Normal => "PRAGMA synchronous = NORMAL;",
        }
    }
}

impl SqliteStore {
    /// Opens (creating when absent) the database file and migrates it.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the file cannot be opened or migrated.
    /// The file (and the WAL files SQLite creates beside it, which inherit its mode) is
    /// readable by its owner only; a directory this creates is too.
    pub fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent() {
            create_private_dir(parent).map_err(StoreError::backend)?;
        }
        // Before anything touches the file: a restore holding it (see ExclusiveHold) is waited
        // for, so no connection is ever opened on the file it replaces.
        let in_use = std::fs::File::create(in_use_marker(path)).map_err(StoreError::backend)?;
        in_use.lock_shared().map_err(StoreError::backend)?;
        restrict_to_owner(path).map_err(StoreError::backend)?;
        // One process at a time sets the file up: SQLite answers "busy" at once, without
        // waiting, to two connections that both switch a new file to WAL.
        let mut lock_path = path.as_os_str().to_owned();
        lock_path.push(".lock");
        let setting_up = std::fs::File::create(&lock_path).map_err(StoreError::backend)?;
        setting_up.lock().map_err(StoreError::backend)?;
        let mut writer = Connection::open(path).map_err(StoreError::backend)?;
        writer.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        writer.execute_batch(PRAGMAS).map_err(StoreError::backend)?;
        writer
            .execute_batch(durability.pragma())
            .map_err(StoreError::backend)?;
        migrate(&mut writer)?;
        drop(setting_up);
        let readers = (0..READERS)
            .map(|_| {
                let reader = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                reader.execute_batch("PRAGMA busy_timeout = 5000;")?;
                reader.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                Ok(Arc::new(Mutex::new(reader)))
            })
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(StoreError::backend)?;
        Ok(Self {
            writer: Arc::new(Mutex::new(writer)),
            readers: readers.into(),
            next_reader: Arc::new(AtomicUsize::new(0)),
            _in_use: Arc::new(in_use),
        })
    }

    /// Runs `work` with the writing connection on the blocking pool.
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        run(Arc::clone(&self.writer), work).await
    }

    /// Runs read-only `work` on one of the reading connections on the blocking pool.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let index = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        run(Arc::clone(&self.readers[index]), work).await
    }

    /// Whether the database answers.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when it does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.call(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }

    /// A few facts for the admin metrics: SQLite's version, the file's size and free pages,
    /// the journal mode.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the database does not answer.
    pub async fn facts(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|c| {
            let version: String = c.query_row("SELECT sqlite_version()", [], |row| row.get(0))?;
            let pragma = |name: &str| -> rusqlite::Result<i64> {
                c.query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
            };
            let journal: String = c.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
            Ok(vec![
                ("sqlite_version".to_owned(), version),
                (
                    "size_bytes".to_owned(),
                    (pragma("page_count")? * pragma("page_size")?).to_string(),
                ),
                (
                    "free_pages".to_owned(),
                    pragma("freelist_count")?.to_string(),
                ),
                ("journal_mode".to_owned(), journal),
            ])
        })
        .await
    }

    /// Writes a consistent copy of the whole database to `path` (which must not exist) while
    /// the database stays in use: `VACUUM INTO` reads one snapshot on a reading connection, so
    /// writers are not held up. The copy is compacted and readable by the owner only.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the copy cannot be written.
    pub async fn backup_into(&self, path: PathBuf) -> Result<(), StoreError> {
        if let Some(parent) = path.parent() {
            create_private_dir(parent).map_err(StoreError::backend)?;
        }
        let target = path.clone();
        self.read(move |c| {
            c.execute("VACUUM INTO ?1", [target.to_string_lossy()])
                .map(drop)
        })
        .await?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(StoreError::backend)?;
        }
        Ok(())
    }

    /// The database's identity: random, given when the file was made, the same in its backups.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the database does not answer.
    pub async fn identity(&self) -> Result<String, StoreError> {
        self.read(|c| c.query_row("SELECT id FROM database_identity", [], |row| row.get(0)))
            .await
    }

    /// Lets SQLite refresh the statistics its query planner uses (`PRAGMA optimize`).
    ///
    /// # Errors
    /// [`StoreError::Backend`] on failure.
    pub async fn optimize(&self) -> Result<(), StoreError> {
        self.call(|c| c.execute_batch("PRAGMA optimize;")).await
    }
}

/// Creates `dir` (and missing parents) readable by the owner only; an existing one is left as
/// the operator set it.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates the database file when absent, and makes it readable and writable by the owner only.
fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    drop(options.open(path)?);
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(())
}

/// Statements through each connection's cache, so SQLite parses a distinct SQL text once per
/// connection rather than once per call.
pub(crate) trait CachedStatements {
    fn query_row_cached<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        row: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T>;

    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
}

impl CachedStatements for Connection {
    fn query_row_cached<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        row: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, row)
    }

    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }
}

/// Room for every distinct statement the adapter runs (about fifty).
const STATEMENT_CACHE: usize = 128;

async fn run<T: Send + 'static>(
    connection: Arc<Mutex<Connection>>,
    work: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(move || {
        let connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
        work(&connection)
    })
    .await
    .map_err(StoreError::backend)?
    .map_err(translate)
}

/// Applies the migrations the file lacks, each in its own transaction. The version is read
/// after the write lock is taken, so processes opening one file at once apply each migration
/// once: the others wait for the lock, then see the new version.
fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    loop {
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::backend)?;
        let version: usize = transaction
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(StoreError::backend)?;
        let Some(migration) = MIGRATIONS.get(version) else {
            return Ok(());
        };
        transaction
            .execute_batch(&format!(
                "{migration} PRAGMA user_version = {};",
                version + 1
            ))
            .map_err(StoreError::backend)?;
        transaction.commit().map_err(StoreError::backend)?;
    }
}

fn translate(error: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, Some(message)) = &error
        && failure.code == ErrorCode::ConstraintViolation
    {
        if message.contains("users.username") {
            return StoreError::Duplicate { key: "username" };
        }
        if message.contains("accounts.email") {
            return StoreError::Duplicate { key: "email" };
        }
        if message.contains("portfolio_items.slug") {
            return StoreError::Duplicate { key: "slug" };
        }
    }
    StoreError::backend(error)
}

pub(crate) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub(crate) fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

pub(crate) fn time_opt(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.map(time)
}

/// Reads an id column; a corrupt id surfaces as a conversion error, not a panic.
pub(crate) fn id<T>(
    raw: &str,
    parse: fn(&str) -> Result<T, kernel::ParseIdError>,
) -> rusqlite::Result<T> {
    parse(raw).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::{Durability, SqliteStore};

    /// A fresh database in a temporary directory (kept alive by the returned guard).
    pub(crate) fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = SqliteStore::open(&dir.path().join("console.db"), Durability::Full)
            .unwrap_or_else(|e| panic!("{e}"));
        (dir, store)
    }

    #[tokio::test]
    async fn a_database_keeps_its_identity_which_its_backups_share_and_no_other_has() {
        let (dir, original) = store();
        let id = original.identity().await.unwrap_or_default();
        assert_eq!(id.len(), 32, "{id:?}");
        let backup = dir.path().join("backup.db");
        original
            .backup_into(backup.clone())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        drop(original);
        let reopened = SqliteStore::open(&dir.path().join("console.db"), Durability::Full)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reopened.identity().await.ok().as_ref(), Some(&id));
        let restored =
            SqliteStore::open(&backup, Durability::Full).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(restored.identity().await.ok().as_ref(), Some(&id));
        let (_other_dir, other) = store();
        assert_ne!(other.identity().await.ok().as_ref(), Some(&id));
    }

    #[test]
    fn processes_opening_a_new_file_at_once_migrate_it_once() {
        for _ in 0..10 {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let path = dir.path().join("console.db");
            let opened: Vec<_> = std::thread::scope(|scope| {
                let openers: Vec<_> = (0..4)
                    .map(|_| scope.spawn(|| SqliteStore::open(&path, Durability::Full).map(drop)))
                    .collect();
                openers
                    .into_iter()
                    .map(|opener| {
                        opener
                            .join()
                            .unwrap_or_else(|_| panic!("an opener panicked"))
                    })
                    .collect()
            });
            assert!(
                opened.iter().all(Result::is_ok),
                "{:?}",
                opened
                    .iter()
                    .filter_map(|o| o.as_ref().err())
                    .collect::<Vec<_>>()
            );
        }
    }
}

#[cfg(all(test, unix))]
mod permission_tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::{Durability, SqliteStore};

    fn mode(path: &std::path::Path) -> u32 {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    }

    #[tokio::test]
    async fn the_database_and_its_directory_are_private_to_the_owner() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let data = dir.path().join("data");
        let path = data.join("console.db");
        let store = SqliteStore::open(&path, Durability::Full).unwrap_or_else(|e| panic!("{e}"));
        store.ping().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mode(&data), 0o700);
        for file in ["console.db", "console.db-wal", "console.db-shm"] {
            let file = data.join(file);
            if file.exists() {
                assert_eq!(mode(&file), 0o600, "{}", file.display());
            }
        }
        assert!(data.join("console.db-wal").exists(), "WAL mode is on");
    }

    #[tokio::test]
    async fn a_backup_is_a_private_readable_copy_taken_while_in_use() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = SqliteStore::open(&dir.path().join("console.db"), Durability::Full)
            .unwrap_or_else(|e| panic!("{e}"));
        store
            .call(|c| c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (42);"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let copy = dir.path().join("backups").join("copy.db");
        store
            .backup_into(copy.clone())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        store.optimize().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mode(&copy), 0o600);
        let restored = SqliteStore::open(&copy, Durability::Full).unwrap_or_else(|e| panic!("{e}"));
        let x: i64 = restored
            .call(|c| c.query_row("SELECT x FROM t", [], |row| row.get(0)))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(x, 42);
    }

    #[tokio::test]
    async fn commits_are_fsynced_unless_relaxed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for (durability, expected) in [(Durability::Full, 2), (Durability::Normal, 1)] {
            let path = dir.path().join(format!("{durability:?}.db"));
            let store = SqliteStore::open(&path, durability).unwrap_or_else(|e| panic!("{e}"));
            let level: i64 = store
                .call(|c| c.query_row("PRAGMA synchronous", [], |row| row.get(0)))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(level, expected, "{durability:?}");
        }
    }
}
