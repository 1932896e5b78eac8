//! The contract's cron jobs, each one call of a service or a port, and the scheduler built
//! from the configuration (the same in every process, so `console-api` can report on jobs a
//! `console-scheduler` runs).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use auth_core::ports::{AccountRepository, SessionRepository};
use chrono::{DateTime, Utc};
use kernel::Clock;
use notify_core::{JobQueue, JobState, Keep, QUEUES};
use scheduler_core::{CronEntry, CronTask, Scheduler, TaskOutcome};
use store_redis::History;
use store_sqlite::SqliteStore;

use crate::backup::Backups;
use crate::config::{CronConfig, Settings};
use crate::storage::{self, Storage};

struct SampleJob;

#[async_trait]
impl CronTask for SampleJob {
    async fn run(&self, now: DateTime<Utc>) -> Result<TaskOutcome, String> {
        tracing::info!(%now, "sample job: the scheduler is alive");
        Ok(TaskOutcome {
            items: 0,
            note: "the scheduler is alive".to_owned(),
        })
    }
}

struct SessionCleanup(Arc<dyn SessionRepository>);

#[async_trait]
impl CronTask for SessionCleanup {
    async fn run(&self, now: DateTime<Utc>) -> Result<TaskOutcome, String> {
        let purged = self
            .0
            .purge_sessions(now)
            .await
            .map_err(|e| e.to_string())?;
        Ok(TaskOutcome {
            items: purged,
            note: format!("{purged} revoked or expired sessions deleted"),
        })
    }
}

struct EmailQueueMonitoring {
    queue: Arc<dyn JobQueue>,
    threshold: u64,
}

#[async_trait]
impl CronTask for EmailQueueMonitoring {
    async fn run(&self, _now: DateTime<Utc>) -> Result<TaskOutcome, String> {
        let counts = self
            .queue
            .counts(notify_core::EMAIL_QUEUE)
            .await
            .map_err(|e| e.to_string())?;
        let note = format!(
            "backlog {} (waiting {}, delayed {}), active {}, failed {}; threshold {}",
            counts.backlog(),
            counts.waiting,
            counts.delayed,
            counts.active,
            counts.failed,
            self.threshold
        );
        if counts.is_backed_up(self.threshold) {
            tracing::warn!(
                backlog = counts.backlog(),
                threshold = self.threshold,
                "email queue is backed up"
            );
        }
        Ok(TaskOutcome {
            items: counts.backlog(),
            note,
        })
    }
}

struct DeletionTokenCleanup(Arc<dyn AccountRepository>);

#[async_trait]
impl CronTask for DeletionTokenCleanup {
    async fn run(&self, now: DateTime<Utc>) -> Result<TaskOutcome, String> {
        let cleared = self
            .0
            .clear_expired_deletion_tokens(now)
            .await
            .map_err(|e| e.to_string())?;
        Ok(TaskOutcome {
            items: cleared,
            note: format!("{cleared} expired account-deletion tokens cleared"),
        })
    }
}

struct JobHistoryRetention {
    queue: Arc<dyn JobQueue>,
    history: History,
}

#[async_trait]
impl CronTask for JobHistoryRetention {
    async fn run(&self, now: DateTime<Utc>) -> Result<TaskOutcome, String> {
        let h = &self.history;
        let mut removed = 0;
        for queue in QUEUES {
            for (state, newest, age) in [
                (JobState::Completed, h.completed_count, h.completed_age),
                (JobState::Failed, h.failed_count, h.failed_age),
            ] {
                let keep = Keep {
                    newest,
                    since: Some(now - age),
                };
                removed += self
                    .queue
                    .clean(queue, state, keep)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(TaskOutcome {
            items: removed,
            note: format!("{removed} finished jobs past their retention deleted"),
        })
    }
}

/// A backup of the embedded database and the local upload folder (see [`crate::backup`]), the
/// oldest beyond `keep` deleted, then `PRAGMA optimize`. With MongoDB as the store, accounts
/// and portfolios are not in the embedded file: the run says so (back MongoDB up with its own
/// tools) and still backs up what the file holds; with MongoDB and Redis there is no file, and
/// the run says that.
pub struct DatabaseMaintenance {
    store: Option<SqliteStore>,
    backups: Backups,
    keep: usize,
    mongodb: bool,
}

#[async_trait]
impl CronTask for DatabaseMaintenance {
    async fn run(&self, now: DateTime<Utc>) -> Result<TaskOutcome, String> {
        let Some(store) = &self.store else {
            return Ok(TaskOutcome {
                items: 0,
                note: "no embedded database: MongoDB holds the data (back it up with mongodump) and Redis the jobs".to_owned(),
            });
        };
        let copy = |path: PathBuf| async move {
            store
                .backup_into(path.clone())
                .await
                .with_context(|| format!("backup to {}", path.display()))
        };
        let path = self
            .backups
            .take(now, copy)
            .await
            .map_err(|e| format!("{e:#}"))?;
        store.optimize().await.map_err(|e| e.to_string())?;
        let kept = self
            .backups
            .keep_newest(self.keep)
            .map_err(|e| format!("{e:#}"))?;
        let mut note = format!("backed up to {}; {kept} backups kept", path.display());
        if self.mongodb {
            note.push_str("; accounts and portfolios are in MongoDB: back it up with mongodump");
        }
        Ok(TaskOutcome { items: 1, note })
    }
}

/// This process's name in run records: host and process id.
fn runner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "host".to_owned());
    format!("{host}-{}", std::process::id())
}

fn entry(
    name: &'static str,
    description: &'static str,
    config: &CronConfig,
    task: Arc<dyn CronTask>,
) -> Option<CronEntry> {
    Some(CronEntry {
        name,
        description,
        schedule: config.schedule.clone()?,
        enabled: config.enabled,
        task,
    })
}

/// The scheduler of the configuration, on the storage's ledger.
pub fn scheduler(settings: &Settings, storage: &Storage, clock: Arc<dyn Clock>) -> Scheduler {
    let maintenance = DatabaseMaintenance {
        store: storage.embedded.clone(),
        backups: Backups::of(settings),
        keep: settings.database_backup_keep as usize,
        mongodb: storage.mode == "mongodb",
    };
    let entries = [
        entry(
            "sample-job",
            "Logs a line: the scheduler is alive",
            &settings.sample_job,
            Arc::new(SampleJob),
        ),
        entry(
            "session-cleanup",
            "Deletes revoked and expired sessions",
            &settings.session_cleanup,
            Arc::new(SessionCleanup(Arc::clone(&storage.sessions))),
        ),
        entry(
            "email-queue-monitoring",
            "Warns when the email backlog passes its threshold",
            &settings.email_queue_monitoring,
            Arc::new(EmailQueueMonitoring {
                queue: Arc::clone(&storage.queue),
                threshold: settings.email_queue_warning_threshold,
            }),
        ),
        entry(
            "account-deletion-token-cleanup",
            "Clears expired account-deletion tokens",
            &settings.account_deletion_token_cleanup,
            Arc::new(DeletionTokenCleanup(Arc::clone(&storage.accounts))),
        ),
        entry(
            "job-history-retention",
            "Deletes finished jobs beyond the history bounds",
            &settings.job_history_retention,
            Arc::new(JobHistoryRetention {
                queue: Arc::clone(&storage.queue),
                history: storage::history(settings),
            }),
        ),
        entry(
            "database-maintenance",
            "Backs the embedded database up (VACUUM INTO) and optimizes it",
            &settings.database_maintenance,
            Arc::new(maintenance),
        ),
    ];
    Scheduler::new(
        entries.into_iter().flatten().collect(),
        Arc::clone(&storage.ledger),
        clock,
        runner(),
    )
}
