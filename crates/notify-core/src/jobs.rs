//! The job model shared by every queue adapter: states, attempts, backoff, and the port.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

kernel::typed_id!(
    /// Identifies a queued job.
    JobId
);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Ready to run.
    Waiting,
    /// Waiting for its `run_at` (a retry with backoff).
    Delayed,
    /// Held by a worker until its lease ends.
    Active,
    Completed,
    /// Gave up after its last attempt; kept with its error.
    Failed,
}

impl JobState {
    pub const ALL: [Self; 5] = [
        Self::Waiting,
        Self::Delayed,
        Self::Active,
        Self::Completed,
        Self::Failed,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Delayed => "delayed",
            Self::Active => "active",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == raw)
    }
}

/// A job to enqueue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJob {
    pub queue: String,
    pub kind: String,
    pub payload: String,
    /// The address the job concerns, so that an erased account's jobs can be found.
    pub recipient: Option<String>,
    pub max_attempts: u32,
    pub run_at: DateTime<Utc>,
}

/// A job as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: JobId,
    pub queue: String,
    pub kind: String,
    pub payload: String,
    pub recipient: Option<String>,
    pub state: JobState,
    /// Deliveries so far, counting the current one.
    pub attempts: u32,
    pub max_attempts: u32,
    pub last_error: Option<String>,
    pub enqueued_at: DateTime<Utc>,
    /// When the job may next run (waiting/delayed) or when its lease ends (active).
    pub run_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub waiting: u64,
    pub delayed: u64,
    pub active: u64,
    pub completed: u64,
    pub failed: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("job queue failure: {0}")]
pub struct QueueError(pub String);

/// How often and how patiently a job is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    /// Delay before the first retry; each later retry waits twice as long.
    pub first_backoff: TimeDelta,
    /// How long a delivered job may stay unacknowledged before another worker gets it.
    pub visibility_timeout: TimeDelta,
}

impl RetryPolicy {
    /// The delay after failed attempt number `attempt` (1-based).
    #[must_use]
    pub fn backoff_after(&self, attempt: u32) -> TimeDelta {
        let doublings = attempt.saturating_sub(1).min(20);
        self.first_backoff * 2_i32.pow(doublings)
    }
}

/// A durable, at-least-once job queue.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Stores a job; once this returns, the job is not lost while the store is up.
    ///
    /// # Errors
    /// [`QueueError`] when the store refused it.
    async fn enqueue(&self, job: NewJob) -> Result<JobId, QueueError>;

    /// Hands out the oldest job of `queue` that is due: waiting, delayed past its `run_at`, or
    /// active past its lease (its worker died). The job becomes active until `now + lease`,
    /// and its attempt count goes up by one. Two callers never get the same job at once.
    ///
    /// # Errors
    /// [`QueueError`] on store failure.
    async fn reserve(
        &self,
        queue: &str,
        now: DateTime<Utc>,
        lease: TimeDelta,
    ) -> Result<Option<Job>, QueueError>;

    /// Marks the job done and erases its payload and recipient: a sent email's address, name
    /// and link have no business staying in the queue's history.
    ///
    /// # Errors
    /// [`QueueError`] on store failure.
    async fn complete(&self, id: &JobId, now: DateTime<Utc>) -> Result<(), QueueError>;

    /// Makes the job delayed until `run_at`, keeping `error` as its last error.
    ///
    /// # Errors
    /// [`QueueError`] on store failure.
    async fn retry_at(
        &self,
        id: &JobId,
        error: &str,
        run_at: DateTime<Utc>,
    ) -> Result<(), QueueError>;

    /// Marks the job failed for good, keeping `error`.
    ///
    /// # Errors
    /// [`QueueError`] on store failure.
    async fn fail(&self, id: &JobId, error: &str, now: DateTime<Utc>) -> Result<(), QueueError>;

    /// # Errors
    /// [`QueueError`] on store failure.
    async fn find_job(&self, id: &JobId) -> Result<Option<Job>, QueueError>;

    /// How many jobs of `queue` are in each state.
    ///
    /// # Errors
    /// [`QueueError`] on store failure.
    async fn counts(&self, queue: &str) -> Result<QueueCounts, QueueError>;

    /// Deletes every job about `recipient` that no worker holds at the moment (waiting,
    /// delayed, completed, failed), and returns how many: an erased account leaves no
    /// address, name or token behind in the queue. Active jobs finish as they are.
    ///
    /// # Errors
    /// [`QueueError`] on store failure.
    async fn forget_recipient(
        &self,
        recipient: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, QueueError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_first_delay() {
        let policy = RetryPolicy {
            max_attempts: 5,
            first_backoff: TimeDelta::milliseconds(2000),
            visibility_timeout: TimeDelta::seconds(30),
        };
        let delays: Vec<i64> = (1..=4)
            .map(|a| policy.backoff_after(a).num_milliseconds())
            .collect();
        assert_eq!(delays, [2000, 4000, 8000, 16000]);
    }
}
