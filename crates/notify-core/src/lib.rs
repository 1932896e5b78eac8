//! Notifications: email messages and their templates, the job model (attempts, backoff,
//! states), the `JobQueue` and `MailTransport` ports, and the email job handler.
//!
//! No I/O happens here; queues and transports are adapters.

pub mod email;
pub mod jobs;
mod outbox;
pub mod preferences;
mod worker;

pub use email::{EmailJob, Links, OutgoingEmail, SessionDetails, render};
pub use jobs::{Job, JobId, JobQueue, JobState, NewJob, QueueCounts, QueueError, RetryPolicy};
pub use outbox::EmailOutbox;
pub use worker::{EmailWorker, MailError, MailTransport, Step};

/// The queue that carries email jobs.
pub const EMAIL_QUEUE: &str = "email";
