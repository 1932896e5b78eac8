//! The email job handler: take jobs, open and render them, send them, and acknowledge, retry
//! with backoff, or fail them for good. One step at a time, so tests can drive it; a step takes
//! a batch of jobs when asked, sends them concurrently and acknowledges the sent ones together.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::FutureExt as _;
use kernel::record::Value;
use kernel::settings::SettingsService;
use kernel::{Clock, UserId};
use tracing::{info, warn};

use crate::EMAIL_QUEUE;
use crate::email::{EmailJob, Links, OutgoingEmail, render};
use crate::jobs::{AckRef, Acked, Claim, Job, JobQueue, QueueError, RetryPolicy};
use crate::preferences::EMAIL_PREFERENCES;
use crate::sealing::PayloadSealer;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Worth another attempt (connection refused, 4xx from the server, timeout).
    #[error("temporary mail failure: {0}")]
    Transient(String),
    /// No attempt will succeed (malformed address, 5xx rejection).
    #[error("permanent mail failure: {0}")]
    Permanent(String),
}

/// Delivers rendered emails.
#[async_trait]
pub trait MailTransport: Send + Sync {
    /// # Errors
    /// [`MailError`] saying whether a retry may help.
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError>;
}

/// What one job's handling did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Empty,
    Sent(Job),
    /// Completed without sending: the recipient's email preferences turned it off.
    Suppressed(Job),
    Retrying(Job),
    Failed(Job),
    /// Handled, but its claim had ended meanwhile (its lease ran out and another worker took
    /// it): the acknowledgement changed nothing.
    Overtaken(Job),
}

/// What to tell the queue about one handled job.
enum Verdict {
    Complete { suppressed: bool },
    Retry { error: String, at: DateTime<Utc> },
    Fail(String),
}

pub struct EmailWorker {
    queue: Arc<dyn JobQueue>,
    transport: Arc<dyn MailTransport>,
    sealer: Arc<dyn PayloadSealer>,
    links: Links,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
    preferences: SettingsService,
}

/// What an [`EmailWorker`] needs.
pub struct EmailWorkerPorts {
    pub queue: Arc<dyn JobQueue>,
    pub transport: Arc<dyn MailTransport>,
    pub sealer: Arc<dyn PayloadSealer>,
    pub clock: Arc<dyn Clock>,
    pub preferences: SettingsService,
}

impl EmailWorker {
    #[must_use]
    pub fn new(ports: EmailWorkerPorts, links: Links, retry: RetryPolicy) -> Self {
        Self {
            queue: ports.queue,
            transport: ports.transport,
            sealer: ports.sealer,
            links,
            retry,
            clock: ports.clock,
            preferences: ports.preferences,
        }
    }

    /// Whether the recipient turned this (optional) email off. A failure to read the
    /// preferences sends the email rather than losing it.
    async fn suppressed(&self, email: &EmailJob) -> bool {
        let Some((user, field)) = email.optional_for() else {
            return false;
        };
        let Ok(user) = UserId::parse(user) else {
            return false;
        };
        match self.preferences.get(&EMAIL_PREFERENCES, &user).await {
            Ok(document) => document.fields.get(field) == Some(&Value::Bool(false)),
            Err(error) => {
                warn!(%error, "email preferences unreadable; sending");
                false
            }
        }
    }

    /// Processes at most one due email job.
    ///
    /// # Errors
    /// [`QueueError`] when the queue itself fails; mail failures are recorded on the job.
    #[tracing::instrument(skip_all)]
    pub async fn try_process_one(&self) -> Result<Step, QueueError> {
        let now = self.clock.now();
        let Some(claim) = self
            .queue
            .reserve(EMAIL_QUEUE, now, self.retry.visibility_timeout)
            .await?
        else {
            return Ok(Step::Empty);
        };
        let verdict = self.judge(&claim).await;
        self.acknowledge(claim, verdict).await
    }

    /// Takes up to `max` due jobs, handles them concurrently, and acknowledges the completed
    /// ones in one call. An empty answer means no job was due.
    ///
    /// # Errors
    /// [`QueueError`] when the queue itself fails; the jobs not acknowledged come back after
    /// the visibility timeout.
    #[tracing::instrument(skip_all)]
    pub async fn try_process_batch(&self, max: usize) -> Result<Vec<Step>, QueueError> {
        let now = self.clock.now();
        let claims = self
            .queue
            .reserve_batch(EMAIL_QUEUE, now, self.retry.visibility_timeout, max)
            .await?;
        let verdicts =
            futures_util::future::join_all(claims.iter().map(|claim| self.judge(claim))).await;
        let mut steps = Vec::with_capacity(claims.len());
        let mut completed: Vec<(AckRef, Job, bool)> = Vec::new();
        for (claim, verdict) in claims.into_iter().zip(verdicts) {
            match verdict {
                Verdict::Complete { suppressed } => {
                    completed.push((claim.ack(), claim.job, suppressed));
                }
                other => steps.push(self.acknowledge(claim, other).await?),
            }
        }
        if !completed.is_empty() {
            let acks: Vec<AckRef> = completed.iter().map(|(ack, _, _)| ack.clone()).collect();
            let answers = self.queue.complete_batch(&acks, self.clock.now()).await?;
            for ((_, job, suppressed), acked) in completed.into_iter().zip(answers) {
                steps.push(completion(job, suppressed, acked));
            }
        }
        Ok(steps)
    }

    /// Decides what becomes of a claimed job; a panic while handling it fails the job, not the
    /// worker.
    async fn judge(&self, claim: &Claim) -> Verdict {
        match AssertUnwindSafe(self.handle(&claim.job))
            .catch_unwind()
            .await
        {
            Ok(verdict) => verdict,
            Err(panic) => {
                let message = kernel::panic_message(panic.as_ref());
                warn!(job_id = %claim.job.id, %message, "job handler panicked; job failed");
                Verdict::Fail(format!("the job handler panicked: {message}"))
            }
        }
    }

    async fn handle(&self, job: &Job) -> Verdict {
        if job.attempts > job.max_attempts {
            return Verdict::Fail(format!(
                "abandoned: its worker stopped during the last of {} attempts",
                job.max_attempts
            ));
        }
        let plain = match self.sealer.open(&job.payload, &job.queue) {
            Ok(plain) => plain,
            // Most likely sealed with a key this worker lacks (a rotation half done): another
            // worker, or this one restarted with the key, may open it, so it is retried, and a
            // failed one stays retryable from the admin console.
            Err(error) => {
                return self.retry_or_fail(job, format!("payload cannot be opened: {error}"));
            }
        };
        let email = match EmailJob::from_payload(&plain) {
            Ok(email) => email,
            Err(error) => return Verdict::Fail(error),
        };
        if self.suppressed(&email).await {
            return Verdict::Complete { suppressed: true };
        }
        match self.transport.send(&render(&email, &self.links)).await {
            Ok(()) => Verdict::Complete { suppressed: false },
            Err(MailError::Transient(error)) => self.retry_or_fail(job, error),
            Err(error) => Verdict::Fail(error.to_string()),
        }
    }

    /// Another attempt after the backoff, while the job has attempts left.
    fn retry_or_fail(&self, job: &Job, error: String) -> Verdict {
        if job.attempts < job.max_attempts {
            Verdict::Retry {
                error,
                at: self.clock.now() + self.retry.backoff_after(job.attempts),
            }
        } else {
            Verdict::Fail(error)
        }
    }

    async fn acknowledge(&self, claim: Claim, verdict: Verdict) -> Result<Step, QueueError> {
        let ack = claim.ack();
        let job = claim.job;
        let now = self.clock.now();
        Ok(match verdict {
            Verdict::Complete { suppressed } => {
                let acked = self.queue.complete(&ack, now).await?;
                completion(job, suppressed, acked)
            }
            Verdict::Retry { error, at } => {
                warn!(job_id = %job.id, attempt = job.attempts, %error, "email failed; will retry");
                match self.queue.retry_at(&ack, &error, at).await? {
                    Acked::Applied => Step::Retrying(job),
                    Acked::Stale => overtaken(job),
                }
            }
            Verdict::Fail(error) => {
                warn!(job_id = %job.id, attempt = job.attempts, %error, "email failed for good");
                match self.queue.fail(&ack, &error, now).await? {
                    Acked::Applied => Step::Failed(job),
                    Acked::Stale => overtaken(job),
                }
            }
        })
    }
}

fn completion(job: Job, suppressed: bool, acked: Acked) -> Step {
    match (acked, suppressed) {
        (Acked::Stale, _) => overtaken(job),
        (Acked::Applied, true) => {
            info!(job_id = %job.id, kind = %job.kind, "email not sent: turned off in the recipient's preferences");
            Step::Suppressed(job)
        }
        (Acked::Applied, false) => {
            info!(job_id = %job.id, kind = %job.kind, "email sent");
            Step::Sent(job)
        }
    }
}

fn overtaken(job: Job) -> Step {
    warn!(job_id = %job.id, "job handled after its lease went to another worker; acknowledgement ignored");
    Step::Overtaken(job)
}
