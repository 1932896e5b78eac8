//! The `CronLedger` port: who runs a tick, and what each run did.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Why a run happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    /// Run once by hand (the CLI).
    Manual,
}

impl Trigger {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Manual => "manual",
        }
    }

    #[must_use]
    pub fn parse(raw: &str) -> Self {
        if raw == "manual" {
            Self::Manual
        } else {
            Self::Schedule
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    Succeeded,
    Failed,
}

impl RunOutcome {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    #[must_use]
    pub fn parse(raw: &str) -> Self {
        if raw == "succeeded" {
            Self::Succeeded
        } else {
            Self::Failed
        }
    }
}

/// One run of a cron job, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronRun {
    pub task: String,
    /// The tick it ran for (its start, for a manual run).
    pub tick: DateTime<Utc>,
    pub trigger: Trigger,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub outcome: RunOutcome,
    pub error: Option<String>,
    /// What the run touched: sessions purged, jobs deleted, files written…
    pub items: u64,
    /// A short summary for people.
    pub note: String,
    /// Which scheduler ran it (host and process).
    pub runner: String,
}

#[derive(Debug, thiserror::Error)]
#[error("cron ledger failure: {0}")]
pub struct LedgerError(pub String);

/// Where schedulers agree on who runs each tick and keep what every run did.
#[async_trait]
pub trait CronLedger: Send + Sync {
    /// Claims `tick` of `task` for `runner`: true for the first caller, false for every
    /// other, in any process sharing the ledger.
    ///
    /// # Errors
    /// [`LedgerError`] on store failure (the tick is then not run).
    async fn claim_tick(
        &self,
        task: &str,
        tick: DateTime<Utc>,
        runner: &str,
    ) -> Result<bool, LedgerError>;

    /// Keeps `run`; each task keeps its most recent runs only.
    ///
    /// # Errors
    /// [`LedgerError`] on store failure.
    async fn record(&self, run: &CronRun) -> Result<(), LedgerError>;

    /// The most recent runs of `task`, newest first, at most `limit`.
    ///
    /// # Errors
    /// [`LedgerError`] on store failure.
    async fn runs(&self, task: &str, limit: usize) -> Result<Vec<CronRun>, LedgerError>;
}

/// Runs each task keeps in a ledger.
pub const RUNS_KEPT: usize = 50;
