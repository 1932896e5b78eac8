//! The durable job queue: a table in the same file, claimed with one atomic UPDATE that also
//! writes a fresh claim token, which every acknowledgement must match.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use kernel::{Page, PageRequest, StoreError};
use notify_core::jobs::{AckRef, Acked, Claim, ClaimToken, FailedAttempt, JobChange, Keep};
use notify_core::{Job, JobId, JobQueue, JobState, NewJob, QueueCounts, QueueError, QueueTotals};
use rusqlite::{OptionalExtension as _, Row, params};

use crate::db::{CachedStatements as _, SqliteStore, id, millis, time, time_opt};

const JOB_COLUMNS: &str = "id, queue, kind, payload, state, attempts, max_attempts, last_error, enqueued_at, run_at, finished_at, recipient, failures";

/// What a retry or a failure sets besides its state: the error (`?3`) as the last one, and the
/// attempt appended to the failures (`{"n", "at", "error"}`, SQLite's clock), the oldest
/// dropped past `FAILURES_KEPT` (10).
macro_rules! failure_recorded {
    () => {
        "last_error = ?3, failures = json_insert(
             CASE WHEN json_array_length(COALESCE(failures, '[]')) >= 10
                  THEN json_remove(failures, '$[0]') ELSE COALESCE(failures, '[]') END,
             '$[#]', json_object('n', attempts, 'at', CAST(unixepoch('subsec') * 1000 AS INTEGER), 'error', ?3))"
    };
}

fn job_from(row: &Row<'_>) -> rusqlite::Result<Job> {
    let state: String = row.get(4)?;
    Ok(Job {
        id: id(&row.get::<_, String>(0)?, JobId::parse)?,
        queue: row.get(1)?,
        kind: row.get(2)?,
        payload: row.get(3)?,
        state: JobState::parse(&state).unwrap_or(JobState::Failed),
        attempts: row.get(5)?,
        max_attempts: row.get(6)?,
        last_error: row.get(7)?,
        enqueued_at: time(row.get(8)?),
        run_at: time(row.get(9)?),
        finished_at: time_opt(row.get(10)?),
        recipient: row.get(11)?,
        failures: FailedAttempt::read_log(row.get::<_, Option<String>>(12)?.as_deref()),
    })
}

fn queue_error(error: StoreError) -> QueueError {
    QueueError(error.to_string())
}

/// Counts `event` for the queue of job `id` (or for `queue` when given), on the connection
/// that just made the change.
fn count_event(c: &rusqlite::Connection, event: &str, job: &str) -> rusqlite::Result<()> {
    c.execute_cached(
        "INSERT INTO job_totals (queue, event, count) SELECT queue, ?2, 1 FROM jobs WHERE id = ?1
         ON CONFLICT (queue, event) DO UPDATE SET count = count + 1",
        params![job, event],
    )
    .map(drop)
}

impl SqliteStore {
    /// Runs an administrator's change to job `id` of `queue` (`sql`, with `?1` the id, `?2` the
    /// queue and `?3` the time); when it changed nothing, says why: no such job, or its state.
    async fn change_job(
        &self,
        sql: &'static str,
        queue: &str,
        id: &JobId,
        now: DateTime<Utc>,
    ) -> Result<JobChange, QueueError> {
        let (queue, id) = (queue.to_owned(), id.clone());
        self.call(move |c| {
            if c.execute_cached(sql, params![id.as_str(), queue, millis(now)])? == 1 {
                return Ok(JobChange::Done);
            }
            let state: Option<String> = c
                .query_row_cached(
                    "SELECT state FROM jobs WHERE id = ?1 AND queue = ?2",
                    params![id.as_str(), queue],
                    |row| row.get(0),
                )
                .optional()?;
            Ok(state.map_or(JobChange::NotFound, |state| {
                JobChange::Refused(JobState::parse(&state).unwrap_or(JobState::Failed))
            }))
        })
        .await
        .map_err(queue_error)
    }

    /// Runs an acknowledgement `UPDATE` (with `?1` the job id and `?2` the claim token and
    /// further parameters after them) only where the claim still holds the job.
    async fn acknowledge(
        &self,
        set: &'static str,
        event: &'static str,
        claim: &AckRef,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Acked, QueueError> {
        let (job, token, error) = (
            claim.job.clone(),
            claim.token.clone(),
            error.map(str::to_owned),
        );
        self.call(move |c| {
            let transaction = c.unchecked_transaction()?;
            let changed = transaction.execute_cached(
                &format!(
                    "UPDATE jobs SET claim = NULL, {set}
                     WHERE id = ?1 AND claim = ?2 AND state = 'active'"
                ),
                params![job.as_str(), token.as_str(), error, millis(at)],
            )?;
            if changed != 1 {
                return Ok(Acked::Stale);
            }
            count_event(&transaction, event, job.as_str())?;
            if event != "retried" {
                // An outcome: the time since the claim is processing time.
                transaction.execute_cached(
                    "INSERT INTO job_totals (queue, event, count)
                     SELECT queue, 'processing_ms', MAX(0, COALESCE(?2 - claimed_at, 0)) FROM jobs WHERE id = ?1
                     ON CONFLICT (queue, event) DO UPDATE SET count = count + excluded.count",
                    params![job.as_str(), millis(at)],
                )?;
            }
            transaction.commit()?;
            Ok(Acked::Applied)
        })
        .await
        .map_err(queue_error)
    }
}

#[async_trait]
impl JobQueue for SqliteStore {
    async fn enqueue(&self, job: NewJob) -> Result<JobId, QueueError> {
        let id = JobId::generate();
        let job_id = id.clone();
        self.call(move |c| {
            let transaction = c.unchecked_transaction()?;
            transaction.execute_cached(
                &format!("INSERT INTO jobs ({JOB_COLUMNS}) VALUES (?1, ?2, ?3, ?4, 'waiting', 0, ?5, NULL, ?6, ?6, NULL, ?7, NULL)"),
                params![job_id.as_str(), job.queue, job.kind, job.payload, job.max_attempts, millis(job.run_at), job.recipient],
            )?;
            count_event(&transaction, "enqueued", job_id.as_str())?;
            transaction.commit()
        })
        .await
        .map_err(queue_error)?;
        Ok(id)
    }

    async fn reserve(
        &self,
        queue: &str,
        now: DateTime<Utc>,
        lease: TimeDelta,
    ) -> Result<Option<Claim>, QueueError> {
        let queue = queue.to_owned();
        let token = ClaimToken::generate();
        let claim_token = token.clone();
        let job = self
            .call(move |c| {
                c.query_row_cached(
                    &format!(
                        "UPDATE jobs SET state = 'active', attempts = attempts + 1, run_at = ?3, claim = ?4, claimed_at = ?2
                         WHERE id = (SELECT id FROM jobs WHERE queue = ?1 AND state IN ('waiting', 'delayed', 'active') AND run_at <= ?2
                                     AND NOT EXISTS (SELECT 1 FROM queue_pauses WHERE queue = ?1)
                                     ORDER BY run_at, id LIMIT 1)
                         RETURNING {JOB_COLUMNS}"
                    ),
                    params![queue, millis(now), millis(now + lease), claim_token.as_str()],
                    job_from,
                )
                .optional()
            })
            .await
            .map_err(queue_error)?;
        Ok(job.map(|job| Claim { job, token }))
    }

    async fn complete(&self, claim: &AckRef, now: DateTime<Utc>) -> Result<Acked, QueueError> {
        self.acknowledge(
            "state = 'completed', finished_at = ?4, payload = '', recipient = NULL",
            "completed",
            claim,
            None,
            now,
        )
        .await
    }

    async fn retry_at(
        &self,
        claim: &AckRef,
        error: &str,
        run_at: DateTime<Utc>,
    ) -> Result<Acked, QueueError> {
        self.acknowledge(
            concat!("state = 'delayed', run_at = ?4, ", failure_recorded!()),
            "retried",
            claim,
            Some(error),
            run_at,
        )
        .await
    }

    async fn fail(
        &self,
        claim: &AckRef,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<Acked, QueueError> {
        self.acknowledge(
            concat!("state = 'failed', finished_at = ?4, ", failure_recorded!()),
            "failed",
            claim,
            Some(error),
            now,
        )
        .await
    }

    async fn find_job(&self, id: &JobId) -> Result<Option<Job>, QueueError> {
        let id = id.clone();
        self.read(move |c| {
            c.query_row_cached(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                [id.as_str()],
                job_from,
            )
            .optional()
        })
        .await
        .map_err(queue_error)
    }

    async fn counts(&self, queue: &str) -> Result<QueueCounts, QueueError> {
        let queue = queue.to_owned();
        let rows = self
            .read(move |c| {
                let mut statement = c.prepare_cached(
                    "SELECT state, COUNT(*) FROM jobs WHERE queue = ?1 GROUP BY state",
                )?;
                let rows = statement.query_map([queue], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, u64>(1)?))
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await
            .map_err(queue_error)?;
        let mut counts = QueueCounts::default();
        for (state, count) in rows {
            match JobState::parse(&state) {
                Some(JobState::Waiting) => counts.waiting = count,
                Some(JobState::Delayed) => counts.delayed = count,
                Some(JobState::Active) => counts.active = count,
                Some(JobState::Completed) => counts.completed = count,
                Some(JobState::Failed) | None => counts.failed += count,
            }
        }
        Ok(counts)
    }

    async fn totals(&self, queue: &str) -> Result<QueueTotals, QueueError> {
        let queue = queue.to_owned();
        let rows = self
            .read(move |c| {
                let mut statement =
                    c.prepare_cached("SELECT event, count FROM job_totals WHERE queue = ?1")?;
                let rows = statement.query_map([queue], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await
            .map_err(queue_error)?;
        let mut totals = QueueTotals::default();
        for (event, count) in rows {
            let count = u64::try_from(count).unwrap_or(0);
            match event.as_str() {
                "enqueued" => totals.enqueued = count,
                "completed" => totals.completed = count,
                "failed" => totals.failed = count,
                "retried" => totals.retried = count,
                "processing_ms" => totals.processing_ms = count,
                _ => {}
            }
        }
        Ok(totals)
    }

    async fn list(
        &self,
        queue: &str,
        state: JobState,
        page: PageRequest,
    ) -> Result<Page<Job>, QueueError> {
        let queue = queue.to_owned();
        let order = if state.is_finished() {
            "finished_at DESC, id DESC"
        } else {
            "run_at, id"
        };
        let (items, total) = self
            .read(move |c| {
                let total: u64 = c.query_row_cached(
                    "SELECT COUNT(*) FROM jobs WHERE queue = ?1 AND state = ?2",
                    params![queue, state.as_str()],
                    |row| row.get(0),
                )?;
                let mut statement = c.prepare_cached(&format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE queue = ?1 AND state = ?2
                     ORDER BY {order} LIMIT ?3 OFFSET ?4"
                ))?;
                let items = statement
                    .query_map(
                        params![
                            queue,
                            state.as_str(),
                            page.limit,
                            i64::try_from(page.offset()).unwrap_or(i64::MAX)
                        ],
                        job_from,
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok((items, total))
            })
            .await
            .map_err(queue_error)?;
        Ok(Page {
            items,
            total,
            request: page,
        })
    }

    async fn retry_failed(
        &self,
        queue: &str,
        id: &JobId,
        now: DateTime<Utc>,
    ) -> Result<JobChange, QueueError> {
        self.change_job(
            "UPDATE jobs SET state = 'waiting', attempts = 0, run_at = ?3, finished_at = NULL, claim = NULL
             WHERE id = ?1 AND queue = ?2 AND state = 'failed'",
            queue,
            id,
            now,
        )
        .await
    }

    async fn remove(
        &self,
        queue: &str,
        id: &JobId,
        now: DateTime<Utc>,
    ) -> Result<JobChange, QueueError> {
        self.change_job(
            "DELETE FROM jobs WHERE id = ?1 AND queue = ?2 AND NOT (state = 'active' AND run_at > ?3)",
            queue,
            id,
            now,
        )
        .await
    }

    async fn promote(
        &self,
        queue: &str,
        id: &JobId,
        now: DateTime<Utc>,
    ) -> Result<JobChange, QueueError> {
        self.change_job(
            "UPDATE jobs SET state = 'waiting', run_at = ?3 WHERE id = ?1 AND queue = ?2 AND state = 'delayed'",
            queue,
            id,
            now,
        )
        .await
    }

    async fn set_paused(&self, queue: &str, paused: bool) -> Result<(), QueueError> {
        let queue = queue.to_owned();
        let sql = if paused {
            "INSERT OR IGNORE INTO queue_pauses (queue) VALUES (?1)"
        } else {
            "DELETE FROM queue_pauses WHERE queue = ?1"
        };
        self.call(move |c| c.execute_cached(sql, [queue]).map(drop))
            .await
            .map_err(queue_error)
    }

    async fn is_paused(&self, queue: &str) -> Result<bool, QueueError> {
        let queue = queue.to_owned();
        self.read(move |c| {
            c.query_row_cached(
                "SELECT EXISTS (SELECT 1 FROM queue_pauses WHERE queue = ?1)",
                [queue],
                |row| row.get(0),
            )
        })
        .await
        .map_err(queue_error)
    }

    async fn clean(&self, queue: &str, state: JobState, keep: Keep) -> Result<u64, QueueError> {
        if !state.is_finished() {
            return Ok(0);
        }
        let queue = queue.to_owned();
        let since = keep.since.map_or(i64::MIN, millis);
        let newest = i64::try_from(keep.newest).unwrap_or(i64::MAX);
        self.call(move |c| {
            c.execute_cached(
                "DELETE FROM jobs WHERE queue = ?1 AND state = ?2 AND id NOT IN (
                     SELECT id FROM jobs WHERE queue = ?1 AND state = ?2 AND finished_at >= ?3
                     ORDER BY finished_at DESC, id DESC LIMIT ?4)",
                params![queue, state.as_str(), since, newest],
            )
        })
        .await
        .map(|deleted| deleted as u64)
        .map_err(queue_error)
    }

    async fn forget_recipient(
        &self,
        recipient: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, QueueError> {
        let recipient = recipient.to_owned();
        self.call(move |c| {
            c.execute_cached(
                "DELETE FROM jobs WHERE recipient = ?1 AND NOT (state = 'active' AND run_at > ?2)",
                params![recipient, millis(now)],
            )
        })
        .await
        .map(|deleted| deleted as u64)
        .map_err(queue_error)
    }
}
