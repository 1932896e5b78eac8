//! The cron ledger in Redis, shared by every scheduler of a deployment: a tick is a key set
//! with `NX` (the first scheduler wins, the key expires after two days), runs a capped list per
//! job of JSON records.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fred::interfaces::{KeysInterface as _, ListInterface as _};
use fred::prelude::Pool;
use fred::types::{Expiration, SetOptions};
use scheduler_core::{CronLedger, CronRun, LedgerError, RUNS_KEPT, RunOutcome, Trigger};
use serde::{Deserialize, Serialize};

use crate::client::RedisConnection;

/// A run as stored (version 1).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunRecord {
    v: u32,
    task: String,
    tick: i64,
    trigger: String,
    started_at: i64,
    duration_ms: u64,
    outcome: String,
    error: Option<String>,
    items: u64,
    note: String,
    runner: String,
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

pub struct RedisCronLedger {
    pool: Pool,
    prefix: String,
}

impl RedisCronLedger {
    #[must_use]
    pub fn new(connection: &RedisConnection, prefix: &str) -> Self {
        Self {
            pool: connection.pool.clone(),
            prefix: format!("{{{prefix}}}"),
        }
    }
}

fn failed(error: impl std::fmt::Display) -> LedgerError {
    LedgerError(format!("Redis: {error}"))
}

const TICK_MEMORY_SECONDS: i64 = 2 * 24 * 3600;

#[async_trait]
impl CronLedger for RedisCronLedger {
    async fn claim_tick(
        &self,
        task: &str,
        tick: DateTime<Utc>,
        runner: &str,
    ) -> Result<bool, LedgerError> {
        let key = format!(
            "{}:cron:tick:{task}:{}",
            self.prefix,
            tick.timestamp_millis()
        );
        let set: Option<String> = self
            .pool
            .set(
                key,
                runner,
                Some(Expiration::EX(TICK_MEMORY_SECONDS)),
                Some(SetOptions::NX),
                false,
            )
            .await
            .map_err(failed)?;
        Ok(set.is_some())
    }

    async fn record(&self, run: &CronRun) -> Result<(), LedgerError> {
        let record = RunRecord {
            v: 1,
            task: run.task.clone(),
            tick: run.tick.timestamp_millis(),
            trigger: run.trigger.as_str().to_owned(),
            started_at: run.started_at.timestamp_millis(),
            duration_ms: run.duration_ms,
            outcome: run.outcome.as_str().to_owned(),
            error: run.error.clone(),
            items: run.items,
            note: run.note.clone(),
            runner: run.runner.clone(),
        };
        let json = serde_json::to_string(&record).map_err(failed)?;
        let key = format!("{}:cron:runs:{}", self.prefix, run.task);
        let client = self.pool.next();
        let pipeline = client.pipeline();
        let _: () = pipeline.lpush(&key, json).await.map_err(failed)?;
        let _: () = pipeline
            .ltrim(&key, 0, i64::try_from(RUNS_KEPT).unwrap_or(50) - 1)
            .await
            .map_err(failed)?;
        let _: Vec<fred::types::Value> = pipeline.all().await.map_err(failed)?;
        Ok(())
    }

    async fn runs(&self, task: &str, limit: usize) -> Result<Vec<CronRun>, LedgerError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let key = format!("{}:cron:runs:{task}", self.prefix);
        let stored: Vec<String> = self
            .pool
            .lrange(key, 0, i64::try_from(limit).unwrap_or(i64::MAX) - 1)
            .await
            .map_err(failed)?;
        stored
            .iter()
            .map(|json| {
                let r: RunRecord = serde_json::from_str(json).map_err(failed)?;
                Ok(CronRun {
                    task: r.task,
                    tick: at(r.tick),
                    trigger: Trigger::parse(&r.trigger),
                    started_at: at(r.started_at),
                    duration_ms: r.duration_ms,
                    outcome: RunOutcome::parse(&r.outcome),
                    error: r.error,
                    items: r.items,
                    note: r.note,
                    runner: r.runner,
                })
            })
            .collect()
    }
}
