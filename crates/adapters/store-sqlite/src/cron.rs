//! The cron ledger in the embedded file: a tick is a row whose primary key only one scheduler
//! can insert; runs are rows, the oldest beyond each task's allowance deleted as new ones come.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use kernel::StoreError;
use rusqlite::params;
use scheduler_core::{CronLedger, CronRun, LedgerError, RUNS_KEPT, RunOutcome, Trigger};

use crate::db::{CachedStatements as _, SqliteStore, millis, time};

fn ledger_error(error: StoreError) -> LedgerError {
    LedgerError(error.to_string())
}

/// How long a claimed tick is remembered: far longer than any scheduler runs late.
const TICK_MEMORY: TimeDelta = TimeDelta::days(2);

#[async_trait]
impl CronLedger for SqliteStore {
    async fn claim_tick(
        &self,
        task: &str,
        tick: DateTime<Utc>,
        runner: &str,
    ) -> Result<bool, LedgerError> {
        let (task, runner) = (task.to_owned(), runner.to_owned());
        self.call(move |c| {
            c.execute_cached(
                "DELETE FROM cron_ticks WHERE task = ?1 AND tick < ?2",
                params![task, millis(tick - TICK_MEMORY)],
            )?;
            c.execute_cached(
                "INSERT OR IGNORE INTO cron_ticks (task, tick, runner) VALUES (?1, ?2, ?3)",
                params![task, millis(tick), runner],
            )
            .map(|inserted| inserted == 1)
        })
        .await
        .map_err(ledger_error)
    }

    async fn record(&self, run: &CronRun) -> Result<(), LedgerError> {
        let run = run.clone();
        self.call(move |c| {
            c.execute_cached(
                "INSERT INTO cron_runs (task, tick, trigger, started_at, duration_ms, outcome, error, items, note, runner)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    run.task,
                    millis(run.tick),
                    run.trigger.as_str(),
                    millis(run.started_at),
                    i64::try_from(run.duration_ms).unwrap_or(i64::MAX),
                    run.outcome.as_str(),
                    run.error,
                    i64::try_from(run.items).unwrap_or(i64::MAX),
                    run.note,
                    run.runner
                ],
            )?;
            c.execute_cached(
                "DELETE FROM cron_runs WHERE task = ?1 AND id NOT IN
                     (SELECT id FROM cron_runs WHERE task = ?1 ORDER BY id DESC LIMIT ?2)",
                params![run.task, RUNS_KEPT as i64],
            )
            .map(drop)
        })
        .await
        .map_err(ledger_error)
    }

    async fn runs(&self, task: &str, limit: usize) -> Result<Vec<CronRun>, LedgerError> {
        let task = task.to_owned();
        self.read(move |c| {
            let mut statement = c.prepare_cached(
                "SELECT task, tick, trigger, started_at, duration_ms, outcome, error, items, note, runner
                 FROM cron_runs WHERE task = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = statement.query_map(
                params![task, i64::try_from(limit).unwrap_or(i64::MAX)],
                |row| {
                    Ok(CronRun {
                        task: row.get(0)?,
                        tick: time(row.get(1)?),
                        trigger: Trigger::parse(&row.get::<_, String>(2)?),
                        started_at: time(row.get(3)?),
                        duration_ms: u64::try_from(row.get::<_, i64>(4)?).unwrap_or(0),
                        outcome: RunOutcome::parse(&row.get::<_, String>(5)?),
                        error: row.get(6)?,
                        items: u64::try_from(row.get::<_, i64>(7)?).unwrap_or(0),
                        note: row.get(8)?,
                        runner: row.get(9)?,
                    })
                },
            )?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .await
        .map_err(ledger_error)
    }
}

#[cfg(test)]
mod tests {
    port_contracts::cron_ledger_contract!(|| async { crate::db::tests::store() });
}
