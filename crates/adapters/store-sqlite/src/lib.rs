//! The embedded default: users, accounts, sessions, portfolio items, settings documents and the job queue in one SQLite file under
//! `DATA_DIR`. Calls run on the blocking pool; one connection behind a mutex makes every
//! statement (including the compare-and-swap ones) atomic.

mod db;
mod identity;
mod jobs;
mod portfolio;

pub use db::SqliteStore;
