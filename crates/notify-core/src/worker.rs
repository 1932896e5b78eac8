//! The email job handler: take one job, render it, send it, and acknowledge, retry with
//! backoff, or fail it for good. One step at a time, so tests can drive it.

use std::sync::Arc;

use async_trait::async_trait;
use kernel::record::Value;
use kernel::settings::SettingsService;
use kernel::{Clock, UserId};
use tracing::{info, warn};

use crate::EMAIL_QUEUE;
use crate::email::{EmailJob, Links, OutgoingEmail, render};
use crate::jobs::{Job, JobQueue, QueueError, RetryPolicy};
use crate::preferences::EMAIL_PREFERENCES;

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

/// What one step of the worker did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Empty,
    Sent(Job),
    /// Completed without sending: the recipient's email preferences turned it off.
    Suppressed(Job),
    Retrying(Job),
    Failed(Job),
}

pub struct EmailWorker {
    queue: Arc<dyn JobQueue>,
    transport: Arc<dyn MailTransport>,
    links: Links,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
    preferences: SettingsService,
}

impl EmailWorker {
    #[must_use]
    pub fn new(
        queue: Arc<dyn JobQueue>,
        transport: Arc<dyn MailTransport>,
        links: Links,
        retry: RetryPolicy,
        clock: Arc<dyn Clock>,
        preferences: SettingsService,
    ) -> Self {
        Self {
            queue,
            transport,
            links,
            retry,
            clock,
            preferences,
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
        let Some(job) = self
            .queue
            .reserve(EMAIL_QUEUE, now, self.retry.visibility_timeout)
            .await?
        else {
            return Ok(Step::Empty);
        };
        if job.attempts > job.max_attempts {
            let error = format!(
                "abandoned: its worker stopped during the last of {} attempts",
                job.max_attempts
            );
            self.queue.fail(&job.id, &error, now).await?;
            return Ok(Step::Failed(job));
        }
        let email = match EmailJob::from_payload(&job.payload) {
            Ok(email) => email,
            Err(error) => {
                self.queue.fail(&job.id, &error, now).await?;
                return Ok(Step::Failed(job));
            }
        };
        if self.suppressed(&email).await {
            self.queue.complete(&job.id, self.clock.now()).await?;
            info!(job_id = %job.id, kind = %job.kind, "email not sent: turned off in the recipient's preferences");
            return Ok(Step::Suppressed(job));
        }
        match self.transport.send(&render(&email, &self.links)).await {
            Ok(()) => {
                self.queue.complete(&job.id, self.clock.now()).await?;
                info!(job_id = %job.id, kind = %job.kind, "email sent");
                Ok(Step::Sent(job))
            }
            Err(MailError::Transient(error)) if job.attempts < job.max_attempts => {
                let run_at = self.clock.now() + self.retry.backoff_after(job.attempts);
                warn!(job_id = %job.id, attempt = job.attempts, %error, "email failed; will retry");
                self.queue.retry_at(&job.id, &error, run_at).await?;
                Ok(Step::Retrying(job))
            }
            Err(error) => {
                warn!(job_id = %job.id, attempt = job.attempts, %error, "email failed for good");
                self.queue
                    .fail(&job.id, &error.to_string(), self.clock.now())
                    .await?;
                Ok(Step::Failed(job))
            }
        }
    }
}
