//! Queues emails; the only way the rest of the system sends one.

use std::sync::Arc;

use kernel::Clock;

use crate::EMAIL_QUEUE;
use crate::email::EmailJob;
use crate::jobs::{JobId, JobQueue, NewJob, QueueError, RetryPolicy};
use crate::sealing::PayloadSealer;

#[derive(Clone)]
pub struct EmailOutbox {
    queue: Arc<dyn JobQueue>,
    sealer: Arc<dyn PayloadSealer>,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
}

impl EmailOutbox {
    #[must_use]
    pub fn new(
        queue: Arc<dyn JobQueue>,
        sealer: Arc<dyn PayloadSealer>,
        retry: RetryPolicy,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            queue,
            sealer,
            retry,
            clock,
        }
    }

    /// Queues `email`, its payload sealed; only the recipient's address stays readable (so an
    /// erased account's jobs can be found, and the admin console can say whom a job is for).
    ///
    /// # Errors
    /// [`QueueError`] when the queue refused the job.
    pub async fn enqueue(&self, email: &EmailJob) -> Result<JobId, QueueError> {
        let kind = email_kind(email);
        let payload = self
            .sealer
            .seal(&email.to_payload(), EMAIL_QUEUE)
            .map_err(|e| QueueError(format!("cannot seal the payload: {e}")))?;
        self.queue
            .enqueue(NewJob {
                queue: EMAIL_QUEUE.to_owned(),
                kind: kind.to_owned(),
                payload,
                recipient: Some(email.recipient().to_owned()),
                max_attempts: self.retry.max_attempts,
                run_at: self.clock.now(),
            })
            .await
    }
}

impl EmailOutbox {
    /// Drops every queued or kept email to `recipient` that is not being sent right now.
    ///
    /// # Errors
    /// [`QueueError`] on store failure.
    pub async fn forget_recipient(&self, recipient: &str) -> Result<u64, QueueError> {
        self.queue
            .forget_recipient(recipient, self.clock.now())
            .await
    }
}

fn email_kind(email: &EmailJob) -> &'static str {
    match email {
        EmailJob::Welcome { .. } => "welcome",
        EmailJob::VerifyEmail { .. } => "verifyEmail",
        EmailJob::PasswordReset { .. } => "passwordReset",
        EmailJob::PasswordChanged { .. } => "passwordChanged",
        EmailJob::AccountDeletionRequested { .. } => "accountDeletionRequested",
        EmailJob::AccountDeleted { .. } => "accountDeleted",
        EmailJob::NewSignIn { .. } => "newSignIn",
        EmailJob::RefreshTokenReused { .. } => "refreshTokenReused",
    }
}
