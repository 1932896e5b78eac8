//! In-memory adapters of every storage port: fast, process-local, for tests. They obey the same
//! contract suites as the durable adapters.

mod cron;
mod identity;
mod jobs;
mod portfolio;

pub use cron::MemoryCronLedger;
pub use identity::MemoryIdentityStore;
pub use jobs::MemoryJobQueue;
pub use portfolio::MemoryPortfolioStore;
