//! The durable job queue: a table in the same file, claimed with one atomic UPDATE.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use kernel::StoreError;
use notify_core::{Job, JobId, JobQueue, JobState, NewJob, QueueCounts, QueueError};
use rusqlite::{OptionalExtension as _, Row, params};

use crate::db::{CachedStatements as _, SqliteStore, id, millis, time, time_opt};

const JOB_COLUMNS: &str = "id, queue, kind, payload, state, attempts, max_attempts, last_error, enqueued_at, run_at, finished_at, recipient";

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
    })
}

fn queue_error(error: StoreError) -> QueueError {
    QueueError(error.to_string())
}

impl SqliteStore {
    async fn set_job_state(
        &self,
        id: &JobId,
        state: JobState,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), QueueError> {
        let (id, error) = (id.clone(), error.map(str::to_owned));
        let finished = state == JobState::Failed;
        self.call(move |c| {
            c.execute_cached(
                "UPDATE jobs SET state = ?2, last_error = COALESCE(?3, last_error),
                        run_at = CASE WHEN ?5 THEN run_at ELSE ?4 END,
                        finished_at = CASE WHEN ?5 THEN ?4 ELSE finished_at END
                 WHERE id = ?1",
                params![id.as_str(), state.as_str(), error, millis(at), finished],
            )
            .map(drop)
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
            c.execute_cached(
                &format!("INSERT INTO jobs ({JOB_COLUMNS}) VALUES (?1, ?2, ?3, ?4, 'waiting', 0, ?5, NULL, ?6, ?6, NULL, ?7)"),
                params![job_id.as_str(), job.queue, job.kind, job.payload, job.max_attempts, millis(job.run_at), job.recipient],
            )
            .map(drop)
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
    ) -> Result<Option<Job>, QueueError> {
        let queue = queue.to_owned();
        self.call(move |c| {
            c.query_row_cached(
                &format!(
                    "UPDATE jobs SET state = 'active', attempts = attempts + 1, run_at = ?3
                     WHERE id = (SELECT id FROM jobs WHERE queue = ?1 AND state IN ('waiting', 'delayed', 'active') AND run_at <= ?2
                                 ORDER BY run_at, id LIMIT 1)
                     RETURNING {JOB_COLUMNS}"
                ),
                params![queue, millis(now), millis(now + lease)],
                job_from,
            )
            .optional()
        })
        .await
        .map_err(queue_error)
    }

    async fn complete(&self, id: &JobId, now: DateTime<Utc>) -> Result<(), QueueError> {
        let id = id.clone();
        self.call(move |c| {
            c.execute_cached(
                "UPDATE jobs SET state = 'completed', finished_at = ?2, payload = '', recipient = NULL
                 WHERE id = ?1",
                params![id.as_str(), millis(now)],
            )
            .map(drop)
        })
        .await
        .map_err(queue_error)
    }

    async fn retry_at(
        &self,
        id: &JobId,
        error: &str,
        run_at: DateTime<Utc>,
    ) -> Result<(), QueueError> {
        self.set_job_state(id, JobState::Delayed, Some(error), run_at)
            .await
    }

    async fn fail(&self, id: &JobId, error: &str, now: DateTime<Utc>) -> Result<(), QueueError> {
        self.set_job_state(id, JobState::Failed, Some(error), now)
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
