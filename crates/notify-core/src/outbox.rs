//! Queues emails; the only way the rest of the system sends one.

use std::sync::Arc;

use kernel::Clock;

use crate::EMAIL_QUEUE;
use crate::email::EmailJob;
use crate::jobs::{JobId, JobQueue, NewJob, QueueError, RetryPolicy};

#[derive(Clone)]
pub struct EmailOutbox {
    queue: Arc<dyn JobQueue>,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
}

impl EmailOutbox {
    #[must_use]
    pub fn new(queue: Arc<dyn JobQueue>, retry: RetryPolicy, clock: Arc<dyn Clock>) -> Self {
        Self {
            queue,
            retry,
            clock,
        }
    }

    /// # Errors
    /// [`QueueError`] when the queue refused the job.
    pub async fn enqueue(&self, email: &EmailJob) -> Result<JobId, QueueError> {
        let kind = email_kind(email);
        self.queue
            .enqueue(NewJob {
                queue: EMAIL_QUEUE.to_owned(),
                kind: kind.to_owned(),
                payload: email.to_payload(),
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
