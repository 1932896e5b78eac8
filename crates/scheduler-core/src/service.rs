//! The `Scheduler`: which jobs exist and how each tick is run and recorded.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::FutureExt as _;
use kernel::Clock;

use crate::ledger::{CronLedger, CronRun, LedgerError, RunOutcome, Trigger};
use crate::schedule::Schedule;

/// What a task reports when it succeeds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskOutcome {
    pub items: u64,
    pub note: String,
}

/// The work of one cron job: one call of a service.
#[async_trait]
pub trait CronTask: Send + Sync {
    /// # Errors
    /// Why the run failed (recorded, and logged).
    async fn run(&self, now: DateTime<Utc>) -> Result<TaskOutcome, String>;
}

/// A job as configured.
#[derive(Clone)]
pub struct CronEntry {
    pub name: &'static str,
    pub description: &'static str,
    pub schedule: Schedule,
    pub enabled: bool,
    pub task: Arc<dyn CronTask>,
}

/// A job and what it did lately, for the admin console.
#[derive(Clone, Debug)]
pub struct CronStatus {
    pub name: &'static str,
    pub description: &'static str,
    pub schedule: String,
    pub enabled: bool,
    pub next_run: Option<DateTime<Utc>>,
    /// Newest first.
    pub history: Vec<CronRun>,
}

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("no cron job is named {0:?}")]
    UnknownTask(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

pub struct Scheduler {
    entries: Vec<CronEntry>,
    ledger: Arc<dyn CronLedger>,
    clock: Arc<dyn Clock>,
    runner: String,
}

impl Scheduler {
    #[must_use]
    pub fn new(
        entries: Vec<CronEntry>,
        ledger: Arc<dyn CronLedger>,
        clock: Arc<dyn Clock>,
        runner: String,
    ) -> Self {
        Self {
            entries,
            ledger,
            clock,
            runner,
        }
    }

    #[must_use]
    pub fn entries(&self) -> &[CronEntry] {
        &self.entries
    }

    fn entry(&self, name: &str) -> Result<&CronEntry, SchedulerError> {
        self.entries
            .iter()
            .find(|entry| entry.name == name)
            .ok_or_else(|| SchedulerError::UnknownTask(name.to_owned()))
    }

    /// Runs `tick` of the job named `name` if this scheduler is the first to claim it, and
    /// records the run. `None`: another scheduler has the tick.
    ///
    /// # Errors
    /// [`SchedulerError`] for an unknown job or a ledger failure (the tick is then skipped).
    #[tracing::instrument(skip(self))]
    pub async fn run_tick(
        &self,
        name: &str,
        tick: DateTime<Utc>,
    ) -> Result<Option<CronRun>, SchedulerError> {
        let entry = self.entry(name)?;
        if !self.ledger.claim_tick(name, tick, &self.runner).await? {
            tracing::debug!(job = name, %tick, "tick run by another scheduler");
            return Ok(None);
        }
        self.execute(entry, tick, Trigger::Schedule).await.map(Some)
    }

    /// Runs the job named `name` once, now, whatever its schedule and switch say (the CLI),
    /// and records the run.
    ///
    /// # Errors
    /// [`SchedulerError`] for an unknown job or a ledger failure.
    pub async fn run_now(&self, name: &str) -> Result<CronRun, SchedulerError> {
        let entry = self.entry(name)?;
        self.execute(entry, self.clock.now(), Trigger::Manual).await
    }

    async fn execute(
        &self,
        entry: &CronEntry,
        tick: DateTime<Utc>,
        trigger: Trigger,
    ) -> Result<CronRun, SchedulerError> {
        let started_at = self.clock.now();
        let result = AssertUnwindSafe(entry.task.run(started_at))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                Err(format!(
                    "the job panicked: {}",
                    kernel::panic_message(panic.as_ref())
                ))
            });
        let duration_ms =
            u64::try_from((self.clock.now() - started_at).num_milliseconds().max(0)).unwrap_or(0);
        let (outcome, error, items, note) = match result {
            Ok(done) => {
                tracing::info!(job = entry.name, items = done.items, duration_ms, note = %done.note, "cron job succeeded");
                (RunOutcome::Succeeded, None, done.items, done.note)
            }
            Err(error) => {
                tracing::error!(job = entry.name, %error, duration_ms, "cron job failed");
                (RunOutcome::Failed, Some(error), 0, String::new())
            }
        };
        let run = CronRun {
            task: entry.name.to_owned(),
            tick,
            trigger,
            started_at,
            duration_ms,
            outcome,
            error,
            items,
            note,
            runner: self.runner.clone(),
        };
        self.ledger.record(&run).await?;
        Ok(run)
    }

    /// Every job with its schedule, switch, next tick and its last `history` runs.
    ///
    /// # Errors
    /// [`LedgerError`] when the runs cannot be read.
    pub async fn status(&self, history: usize) -> Result<Vec<CronStatus>, LedgerError> {
        let now = self.clock.now();
        let mut statuses = Vec::with_capacity(self.entries.len());
        for entry in &self.entries {
            statuses.push(CronStatus {
                name: entry.name,
                description: entry.description,
                schedule: entry.schedule.as_str().to_owned(),
                enabled: entry.enabled,
                next_run: entry
                    .enabled
                    .then(|| entry.schedule.next_after(now))
                    .flatten(),
                history: self.ledger.runs(entry.name, history).await?,
            });
        }
        Ok(statuses)
    }
}
