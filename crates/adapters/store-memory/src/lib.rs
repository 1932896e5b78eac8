//! In-memory adapters of every storage port: fast, process-local, for tests, and the chat
//! bus, history and presence of the embedded mode. They obey the same contract suites as the
//! durable and distributed adapters.

mod chat;
mod cron;
mod identity;
mod jobs;
mod portfolio;
mod rate;

pub use chat::{MemoryChatBus, MemoryChatHistory, MemoryPresence};
pub use cron::MemoryCronLedger;
pub use identity::MemoryIdentityStore;
pub use jobs::MemoryJobQueue;
pub use portfolio::MemoryPortfolioStore;
pub use rate::MemoryRateLimiter;
