//! A cron ledger in memory: one process's scheduler (tests, and nothing shared).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use scheduler_core::{CronLedger, CronRun, LedgerError, RUNS_KEPT};

#[derive(Default)]
pub struct MemoryCronLedger {
    ticks: Mutex<HashSet<(String, DateTime<Utc>)>>,
    runs: Mutex<HashMap<String, VecDeque<CronRun>>>,
}

impl MemoryCronLedger {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CronLedger for MemoryCronLedger {
    async fn claim_tick(
        &self,
        task: &str,
        tick: DateTime<Utc>,
        _runner: &str,
    ) -> Result<bool, LedgerError> {
        let mut ticks = self.ticks.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(ticks.insert((task.to_owned(), tick)))
    }

    async fn record(&self, run: &CronRun) -> Result<(), LedgerError> {
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        let kept = runs.entry(run.task.clone()).or_default();
        kept.push_front(run.clone());
        kept.truncate(RUNS_KEPT);
        Ok(())
    }

    async fn runs(&self, task: &str, limit: usize) -> Result<Vec<CronRun>, LedgerError> {
        let runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(runs
            .get(task)
            .map(|kept| kept.iter().take(limit).cloned().collect())
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryCronLedger;

    port_contracts::cron_ledger_contract!(|| async { ((), MemoryCronLedger::new()) });
}
