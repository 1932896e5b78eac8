//! Notifications: email messages and their templates, the job model (attempts, backoff,
//! states), the `JobQueue` and `MailTransport` ports, and the email job handler.
//!
//! No I/O happens here; queues and transports are adapters.

pub mod admin;
pub mod email;
pub mod jobs;
mod outbox;
pub mod preferences;
pub mod sealing;
mod worker;

pub use admin::{AdminError, QueueAdmin, QueueStats};
pub use email::{EmailJob, Links, OutgoingEmail, SessionDetails, render};
pub use jobs::{
    AckRef, Acked, Claim, ClaimToken, Job, JobChange, JobId, JobQueue, JobState, Keep, NewJob,
    QueueCounts, QueueError, QueueTotals, RetryPolicy,
};
pub use outbox::EmailOutbox;
pub use sealing::{PayloadSealer, SealError};
pub use worker::{EmailWorker, EmailWorkerPorts, MailError, MailTransport, Step};

/// The queue that carries email jobs.
pub const EMAIL_QUEUE: &str = "email";

/// Every queue there is: the admin console's "unknown queue" is any other name.
pub const QUEUES: [&str; 1] = [EMAIL_QUEUE];
