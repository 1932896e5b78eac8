//! The embedded default: users, accounts, sessions, portfolio items, settings documents, the
//! job queue and the cron ledger in one SQLite file under `DATA_DIR`. Calls run on the blocking pool; every
//! write goes through one connection behind a mutex, which makes each statement (the
//! compare-and-swap ones included) atomic, while reads use a few read-only connections.

mod cron;
mod db;
mod identity;
mod jobs;
mod portfolio;

pub use db::{Durability, ExclusiveHold, SqliteStore, copy_database, database_identity};
