//! The job model shared by every queue adapter: states, attempts, backoff, and the port.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use kernel::{Page, PageRequest};

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

    /// Whether the job is done with: completed or failed.
    #[must_use]
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
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
    /// Its failed attempts, oldest first, the last [`FAILURES_KEPT`] of them.
    pub failures: Vec<FailedAttempt>,
}

/// A failed attempt of a job: which, when it ended, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FailedAttempt {
    #[serde(rename = "n")]
    pub attempt: u32,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub at: DateTime<Utc>,
    pub error: String,
}

/// Failed attempts a job keeps, the most recent: enough to read a pattern, bounded however
/// often a failed job is retried.
pub const FAILURES_KEPT: usize = 10;

impl FailedAttempt {
    /// The failure log as the stores keep it: a JSON array of `{"n", "at" (ms), "error"}`,
    /// oldest first. What cannot be read is an empty log, never an error: the log is for people.
    #[must_use]
    pub fn read_log(stored: Option<&str>) -> Vec<Self> {
        stored
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub waiting: u64,
    pub delayed: u64,
    pub active: u64,
    pub completed: u64,
    pub failed: u64,
}

/// What a queue has seen since its store was created: running totals that cleaning history
/// never lowers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueTotals {
    pub enqueued: u64,
    pub completed: u64,
    /// Jobs kept as failed (each time one fails for good).
    pub failed: u64,
    /// Retries scheduled after a failed attempt.
    pub retried: u64,
    /// Milliseconds the completed and failed jobs spent held by a worker, each from its last
    /// claim to its outcome: with `completed + failed`, the mean processing time.
    pub processing_ms: u64,
}

impl QueueCounts {
    /// Jobs not yet done with: waiting, or delayed for a retry.
    #[must_use]
    pub fn backlog(&self) -> u64 {
        self.waiting + self.delayed
    }

    /// Whether the backlog is above `threshold`, the point where someone should look.
    #[must_use]
    pub fn is_backed_up(&self, threshold: u64) -> bool {
        self.backlog() > threshold
    }
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

kernel::typed_id!(
    /// Names one hand-out of a job to a worker. Every acknowledgement carries it, so a worker
    /// whose lease ran out and whose job went to another worker cannot complete, retry or fail
    /// what is no longer its claim.
    ClaimToken
);

/// A job handed to a worker, with the claim its acknowledgements must present.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub job: Job,
    pub token: ClaimToken,
}

impl Claim {
    /// What an acknowledgement names: the job and the claim that holds it.
    #[must_use]
    pub fn ack(&self) -> AckRef {
        AckRef {
            job: self.job.id.clone(),
            token: self.token.clone(),
        }
    }
}

/// The job and claim an acknowledgement is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AckRef {
    pub job: JobId,
    pub token: ClaimToken,
}

/// What became of an acknowledgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Acked {
    /// The claim still held the job; the job moved on.
    Applied,
    /// The claim no longer holds the job (it was handed out again, finished by another worker,
    /// retried from failed, or deleted); nothing changed.
    Stale,
}

/// Which finished jobs [`JobQueue::clean`] keeps: the `newest` most recently finished among
/// those finished at or after `since` (every one when `since` is `None`); the rest go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keep {
    pub newest: u64,
    pub since: Option<DateTime<Utc>>,
}

impl Keep {
    /// Keeps nothing.
    pub const NONE: Self = Self {
        newest: 0,
        since: None,
    };
}

/// What an administrator's change to one job ([`JobQueue::retry_failed`],
/// [`JobQueue::remove`], [`JobQueue::promote`]) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobChange {
    /// The job changed as asked.
    Done,
    /// No job of that id in that queue.
    NotFound,
    /// The job is in a state the change does not apply to.
    Refused(JobState),
}

/// A durable, at-least-once job queue.
///
/// Acknowledgements (`complete`, `retry_at`, `fail`) name the claim that [`JobQueue::reserve`]
/// returned; an acknowledgement whose claim no longer holds the job changes nothing and
/// answers [`Acked::Stale`]. A claim whose lease ran out still holds its job until the job is
/// handed out again.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Stores a job; once this returns, the job is not lost while the store is up.
    ///
    /// # Errors
    /// [`QueueError`] when the store refused it.
    async fn enqueue(&self, job: NewJob) -> Result<JobId, QueueError>;

    /// Hands out the oldest job of `queue` that is due: waiting, delayed past its `run_at`, or
    /// active past its lease (its worker died); nothing while the queue is paused. The job becomes active until `now + lease`,
    /// its attempt count goes up by one, and it gets a new claim token, which ends the old
    /// claim. Two callers never get the same job at once.
    ///
    /// # Errors
    /// [`QueueError`] on store failure.
    async fn reserve(
        &self,
        queue: &str,
        now: DateTime<Utc>,
        lease: TimeDelta,
    ) -> Result<Option<Claim>, QueueError>;

    /// Up to `max` due jobs at once, each as [`JobQueue::reserve`] would hand it out. Adapters
    /// that can fetch several in one round trip do.
    ///
    /// # Errors
    /// [`QueueError`] on store failure; the jobs already claimed come back after their lease.
    async fn reserve_batch(
        &self,
        queue: &str,
        now: DateTime<Utc>,
        lease: TimeDelta,
        max: usize,
    ) -> Result<Vec<Claim>, QueueError> {
        let mut claims = Vec::new();
        while claims.len() < max {
            match self.reserve(queue, now, lease).await? {
                Some(claim) => claims.push(claim),
                None => break,
            }
        }
        Ok(claims)
    }

    /// Marks the job done and erases its payload and recipient: a sent email's address, name
    /// and link have no business staying in the queue's history.
    ///
    /// # Errors
    /// [`QueueError`] on store failure.
    async fn complete(&self, claim: &AckRef, now: DateTime<Utc>) -> Result<Acked, QueueError>;

    /// [`JobQueue::complete`] for several claims, in order; adapters that can, in one round trip.
    ///
    /// # Errors
    /// [`QueueError`] on store failure; claims not acknowledged come back after their lease.
    async fn complete_batch(
        &self,
        claims: &[AckRef],
        now: DateTime<Utc>,
    ) -> Result<Vec<Acked>, QueueError> {
        let mut acks = Vec::with_capacity(claims.len());
        for claim in claims {
            acks.push(self.complete(claim, now).await?);
        }
        Ok(acks)
    }

    /// Makes the job delayed until `run_at`, keeping `error` as its last error and adding the
    /// attempt to its failures (the oldest beyond [`FAILURES_KEPT`] dropped).
    ///
    /// # Errors
    /// [`QueueError`] on store failure.
    async fn retry_at(
        &self,
        claim: &AckRef,
        error: &str,
        run_at: DateTime<Utc>,
    ) -> Result<Acked, QueueError>;

    /// Marks the job failed for good, keeping `error` (as its last error and among its
    /// failures), its attempts and its payload (what a retry from failed needs).
    ///
    /// # Errors
    /// [`QueueError`] on store failure.
    async fn fail(
        &self,
        claim: &AckRef,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<Acked, QueueError>;

    /// # Errors
    /// [`QueueError`] on store failure.
    async fn find_job(&self, id: &JobId) -> Result<Option<Job>, QueueError>;

    /// How many jobs of `queue` are in each state.
    ///
    /// # Errors
    /// [`QueueError`] on store failure.
    async fn counts(&self, queue: &str) -> Result<QueueCounts, QueueError>;

    /// The running totals of `queue`: enqueued, and acknowledgements applied (completed,
    /// failed, retried). Stale acknowledgements count for nothing.
    ///
    /// # Errors
    /// [`QueueError`] on store failure.
    async fn totals(&self, queue: &str) -> Result<QueueTotals, QueueError>;

    /// The jobs of `queue` in `state`, a page at a time: finished jobs most recently finished
    /// first, the others in the order they will run.
    ///
    /// # Errors
    /// [`QueueError`] on store failure.
    async fn list(
        &self,
        queue: &str,
        state: JobState,
        page: PageRequest,
    ) -> Result<Page<Job>, QueueError>;

    /// Puts a failed job of `queue` back to waiting (due `now`, attempts from zero, its last
    /// error kept until it runs).
    ///
    /// # Errors
    /// [`QueueError`] on store failure.
    async fn retry_failed(
        &self,
        queue: &str,
        id: &JobId,
        now: DateTime<Utc>,
    ) -> Result<JobChange, QueueError>;

    /// Deletes a job of `queue` that no worker holds: waiting, delayed, completed or failed, or
    /// active past its lease (its worker died). An active job in its lease is refused: its
    /// worker would complete what no longer exists.
    ///
    /// # Errors
    /// [`QueueError`] on store failure.
    async fn remove(
        &self,
        queue: &str,
        id: &JobId,
        now: DateTime<Utc>,
    ) -> Result<JobChange, QueueError>;

    /// Makes a delayed job of `queue` due `now`, ahead of its backoff; other states are refused.
    ///
    /// # Errors
    /// [`QueueError`] on store failure.
    async fn promote(
        &self,
        queue: &str,
        id: &JobId,
        now: DateTime<Utc>,
    ) -> Result<JobChange, QueueError>;

    /// Pauses `queue` (no job of it is handed out; jobs held finish, and enqueueing goes on)
    /// or resumes it. Every process sharing the store sees the same state.
    ///
    /// # Errors
    /// [`QueueError`] on store failure.
    async fn set_paused(&self, queue: &str, paused: bool) -> Result<(), QueueError>;

    /// Whether `queue` is paused.
    ///
    /// # Errors
    /// [`QueueError`] on store failure.
    async fn is_paused(&self, queue: &str) -> Result<bool, QueueError>;

    /// Deletes the finished jobs of `queue` in `state` (completed or failed; other states
    /// delete nothing) that `keep` does not keep, and returns how many.
    ///
    /// # Errors
    /// [`QueueError`] on store failure.
    async fn clean(&self, queue: &str, state: JobState, keep: Keep) -> Result<u64, QueueError>;

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
