//! The composition root: turns [`Settings`] into adapters and core services, and runs the
//! three processes. It is the only crate that knows which adapter serves which port.

mod account_export;
mod background;
mod backup;
mod chat;
mod command_line;
pub mod config;
mod cron_jobs;
mod dev_secrets;
mod directory;
mod geolocation;
mod identity;
mod invalidation;
mod media;
mod notifier;
mod owned_data;
mod process;
mod scheduler_loop;
mod storage;
mod telemetry;
pub mod worker_loop;

pub use config::{Environment, Settings};
pub use process::{Api, Process, run, shutdown_signal};
