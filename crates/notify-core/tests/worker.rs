//! The email worker over an in-memory queue, a scripted transport and a hand-driven clock.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use kernel::settings::SettingsService;
use kernel::{Clock, UserId};
use notify_core::preferences::EMAIL_PREFERENCES;
use notify_core::{
    EMAIL_QUEUE, EmailJob, EmailOutbox, EmailWorker, EmailWorkerPorts, JobQueue as _, JobState,
    Links, MailError, MailTransport, NewJob, OutgoingEmail, RetryPolicy, SessionDetails, Step,
};
use seal_chacha::AeadSealer;
use store_memory::{MemoryJobQueue, MemoryPortfolioStore};

struct ManualClock(Mutex<DateTime<Utc>>);

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

impl ManualClock {
    fn advance(&self, by: TimeDelta) {
        *self.0.lock().unwrap() += by;
    }
}

/// Answers each send with the next scripted outcome (success once the script runs out).
#[derive(Default)]
struct ScriptedTransport {
    script: Mutex<VecDeque<Result<(), MailError>>>,
    sent: Mutex<Vec<OutgoingEmail>>,
    /// How many of the next sends panic.
    panics: Mutex<u32>,
}

#[async_trait]
impl MailTransport for ScriptedTransport {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        let panic_now = {
            let mut panics = self.panics.lock().unwrap();
            let now = *panics > 0;
            *panics = panics.saturating_sub(1);
            now
        };
        assert!(!panic_now, "transport exploded");
        let outcome = self.script.lock().unwrap().pop_front().unwrap_or(Ok(()));
        if outcome.is_ok() {
            self.sent.lock().unwrap().push(email.clone());
        }
        outcome
    }
}

struct Fixture {
    queue: Arc<MemoryJobQueue>,
    transport: Arc<ScriptedTransport>,
    clock: Arc<ManualClock>,
    worker: EmailWorker,
    outbox: EmailOutbox,
    preferences: SettingsService,
}

const RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 3,
    first_backoff: TimeDelta::seconds(2),
    visibility_timeout: TimeDelta::seconds(30),
};

fn fixture(script: Vec<Result<(), MailError>>) -> Fixture {
    let queue = Arc::new(MemoryJobQueue::new());
    let transport = Arc::new(ScriptedTransport {
        script: Mutex::new(script.into()),
        ..ScriptedTransport::default()
    });
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
    let preferences = SettingsService::new(Arc::new(MemoryPortfolioStore::new()), clock.clone());
    let sealer = Arc::new(AeadSealer::new(&[3; 32], &[]));
    let worker = EmailWorker::new(
        EmailWorkerPorts {
            queue: queue.clone(),
            transport: transport.clone(),
            sealer: sealer.clone(),
            clock: clock.clone(),
            preferences: preferences.clone(),
        },
        Links::new("https://console.test"),
        RETRY,
    );
    let outbox = EmailOutbox::new(queue.clone(), sealer, RETRY, clock.clone());
    Fixture {
        queue,
        transport,
        clock,
        worker,
        outbox,
        preferences,
    }
}

impl Fixture {
    /// Another worker's claim on the next due job.
    async fn claim_elsewhere(&self) -> notify_core::Claim {
        self.queue
            .reserve(EMAIL_QUEUE, self.clock.now(), RETRY.visibility_timeout)
            .await
            .unwrap()
            .expect("a due job")
    }
}

fn welcome() -> EmailJob {
    EmailJob::Welcome {
        to: "ada@example.com".into(),
        name: "Ada".into(),
        user_id: None,
    }
}

#[tokio::test]
async fn a_queued_email_is_rendered_sent_and_completed() {
    let f = fixture(vec![]);
    let id = f
        .outbox
        .enqueue(&EmailJob::PasswordReset {
            to: "ada@example.com".into(),
            name: "Ada".into(),
            token: "t0k3n".into(),
        })
        .await
        .unwrap();
    assert!(matches!(
        f.worker.try_process_one().await.unwrap(),
        Step::Sent(_)
    ));
    assert_eq!(f.worker.try_process_one().await.unwrap(), Step::Empty);
    let sent = f.transport.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0]
            .text
            .contains("https://console.test/reset-password?token=t0k3n")
    );
    assert_eq!(
        f.queue.find_job(&id).await.unwrap().unwrap().state,
        JobState::Completed
    );
}

#[tokio::test]
async fn transient_failures_retry_with_doubling_backoff_then_fail_visibly() {
    let transient = || Err(MailError::Transient("connection refused".into()));
    let f = fixture(vec![transient(), transient(), transient()]);
    let id = f.outbox.enqueue(&welcome()).await.unwrap();

    assert!(matches!(
        f.worker.try_process_one().await.unwrap(),
        Step::Retrying(_)
    ));
    let job = f.queue.find_job(&id).await.unwrap().unwrap();
    assert_eq!(
        (job.state, job.run_at - f.clock.now()),
        (JobState::Delayed, TimeDelta::seconds(2))
    );
    assert_eq!(
        f.worker.try_process_one().await.unwrap(),
        Step::Empty,
        "not before its backoff"
    );

    f.clock.advance(TimeDelta::seconds(2));
    assert!(matches!(
        f.worker.try_process_one().await.unwrap(),
        Step::Retrying(_)
    ));
    let job = f.queue.find_job(&id).await.unwrap().unwrap();
    assert_eq!(
        job.run_at - f.clock.now(),
        TimeDelta::seconds(4),
        "the delay doubles"
    );

    f.clock.advance(TimeDelta::seconds(4));
    assert!(matches!(
        f.worker.try_process_one().await.unwrap(),
        Step::Failed(_)
    ));
    let job = f.queue.find_job(&id).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Failed, 3));
    assert!(
        job.last_error.unwrap().contains("connection refused"),
        "the error is kept"
    );
    assert!(f.transport.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_transient_failure_then_success_delivers_once() {
    let f = fixture(vec![Err(MailError::Transient("busy".into()))]);
    f.outbox.enqueue(&welcome()).await.unwrap();
    f.worker.try_process_one().await.unwrap();
    f.clock.advance(TimeDelta::seconds(2));
    assert!(matches!(
        f.worker.try_process_one().await.unwrap(),
        Step::Sent(_)
    ));
    assert_eq!(f.transport.sent.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn permanent_failures_are_not_retried() {
    let f = fixture(vec![Err(MailError::Permanent("550 no such user".into()))]);
    let id = f.outbox.enqueue(&welcome()).await.unwrap();
    assert!(matches!(
        f.worker.try_process_one().await.unwrap(),
        Step::Failed(_)
    ));
    assert_eq!(f.queue.find_job(&id).await.unwrap().unwrap().attempts, 1);
}

#[tokio::test]
async fn a_job_whose_worker_died_is_delivered_again_after_the_visibility_timeout() {
    let f = fixture(vec![]);
    let id = f.outbox.enqueue(&welcome()).await.unwrap();
    // A worker takes the job and dies before acknowledging it.
    f.claim_elsewhere().await;
    assert_eq!(f.worker.try_process_one().await.unwrap(), Step::Empty);
    f.clock.advance(TimeDelta::seconds(31));
    assert!(matches!(
        f.worker.try_process_one().await.unwrap(),
        Step::Sent(_)
    ));
    assert_eq!(
        f.queue.find_job(&id).await.unwrap().unwrap().state,
        JobState::Completed
    );
}

#[tokio::test]
async fn a_job_abandoned_on_its_last_attempt_fails_instead_of_running_forever() {
    let f = fixture(vec![]);
    let id = f.outbox.enqueue(&welcome()).await.unwrap();
    for _ in 0..RETRY.max_attempts {
        f.claim_elsewhere().await;
        f.clock.advance(TimeDelta::seconds(31));
    }
    assert!(matches!(
        f.worker.try_process_one().await.unwrap(),
        Step::Failed(_)
    ));
    let job = f.queue.find_job(&id).await.unwrap().unwrap();
    assert!(job.last_error.unwrap().contains("abandoned"));
}

#[tokio::test]
async fn an_unreadable_payload_is_retried_then_fails_without_sending() {
    let f = fixture(vec![]);
    let id = f
        .queue
        .enqueue(NewJob {
            queue: EMAIL_QUEUE.into(),
            kind: "welcome".into(),
            payload: "{\"version\":9}".into(),
            recipient: None,
            max_attempts: 3,
            run_at: f.clock.now(),
        })
        .await
        .unwrap();
    // It may be sealed with a key another worker has (a rotation half done): retried while it
    // has attempts, each after its backoff.
    for _ in 1..RETRY.max_attempts {
        assert!(matches!(
            f.worker.try_process_one().await.unwrap(),
            Step::Retrying(_)
        ));
        f.clock.advance(TimeDelta::minutes(10));
    }
    assert!(matches!(
        f.worker.try_process_one().await.unwrap(),
        Step::Failed(_)
    ));
    let failed = f.queue.find_job(&id).await.unwrap().unwrap();
    assert_eq!(failed.state, JobState::Failed);
    assert!(
        failed.last_error.unwrap().contains("cannot be opened"),
        "the reason is kept"
    );
    assert!(f.transport.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn optional_emails_honour_preferences_and_security_emails_always_go() {
    let f = fixture(vec![]);
    let ada = UserId::generate();
    let off = vec![(
        "accountActivity".to_owned(),
        kernel::record::Input::Bool(false),
    )];
    f.preferences
        .update(&EMAIL_PREFERENCES, &ada, off)
        .await
        .unwrap();
    let welcome = EmailJob::Welcome {
        to: "ada@example.com".into(),
        name: "Ada".into(),
        user_id: Some(ada.to_string()),
    };
    let id = f.outbox.enqueue(&welcome).await.unwrap();
    assert!(matches!(
        f.worker.try_process_one().await.unwrap(),
        Step::Suppressed(_)
    ));
    let job = f.queue.find_job(&id).await.unwrap().unwrap();
    assert_eq!(
        job.state,
        JobState::Completed,
        "a suppressed email is done, not pending"
    );
    for security in [
        EmailJob::PasswordChanged {
            to: "ada@example.com".into(),
            name: "Ada".into(),
        },
        EmailJob::AccountDeleted {
            to: "ada@example.com".into(),
            name: "Ada".into(),
        },
        EmailJob::NewSignIn {
            to: "ada@example.com".into(),
            name: "Ada".into(),
            session: session_details(),
        },
        EmailJob::RefreshTokenReused {
            to: "ada@example.com".into(),
            name: "Ada".into(),
            session: session_details(),
        },
    ] {
        f.outbox.enqueue(&security).await.unwrap();
        assert!(matches!(
            f.worker.try_process_one().await.unwrap(),
            Step::Sent(_)
        ));
    }
    assert_eq!(f.transport.sent.lock().unwrap().len(), 4);
}

fn session_details() -> SessionDetails {
    SessionDetails {
        device: "iPhone".into(),
        browser: "Safari 17.4".into(),
        os: "iOS 17.4".into(),
        ip_address: Some("81.2.69.142".into()),
        location: None,
        at: Utc::now(),
    }
}

#[tokio::test]
async fn a_queued_payload_holds_no_token_or_name_in_clear_even_when_failed() {
    let f = fixture(vec![Err(MailError::Permanent("550 no such user".into()))]);
    let id = f
        .outbox
        .enqueue(&EmailJob::PasswordReset {
            to: "ada@example.com".into(),
            name: "Ada Lovelace".into(),
            token: "t0k3n-secret".into(),
        })
        .await
        .unwrap();
    let queued = f.queue.find_job(&id).await.unwrap().unwrap();
    for secret in ["t0k3n-secret", "Ada Lovelace", "ada@example.com"] {
        assert!(
            !queued.payload.contains(secret),
            "{secret} in {}",
            queued.payload
        );
    }
    assert_eq!(queued.recipient.as_deref(), Some("ada@example.com"));
    assert!(matches!(
        f.worker.try_process_one().await.unwrap(),
        Step::Failed(_)
    ));
    let failed = f.queue.find_job(&id).await.unwrap().unwrap();
    assert_eq!(failed.payload, queued.payload, "kept sealed for a retry");
    f.queue
        .retry_failed(EMAIL_QUEUE, &id, f.clock.now())
        .await
        .unwrap();
    assert!(matches!(
        f.worker.try_process_one().await.unwrap(),
        Step::Sent(_)
    ));
    let sent = f.transport.sent.lock().unwrap().clone();
    assert!(sent[0].text.contains("t0k3n-secret"), "opened for sending");
}

#[tokio::test]
async fn a_panicking_job_fails_and_the_worker_goes_on() {
    let f = fixture(vec![]);
    *f.transport.panics.lock().unwrap() = 1;
    let exploded = f.outbox.enqueue(&welcome()).await.unwrap();
    let fine = f.outbox.enqueue(&welcome()).await.unwrap();
    assert!(matches!(
        f.worker.try_process_one().await.unwrap(),
        Step::Failed(_)
    ));
    let failed = f.queue.find_job(&exploded).await.unwrap().unwrap();
    assert!(
        failed.last_error.unwrap().contains("transport exploded"),
        "the panic message is the error"
    );
    assert!(matches!(
        f.worker.try_process_one().await.unwrap(),
        Step::Sent(_)
    ));
    assert_eq!(
        f.queue.find_job(&fine).await.unwrap().unwrap().state,
        JobState::Completed
    );
}

#[tokio::test]
async fn a_worker_overtaken_after_its_lease_does_not_undo_the_delivery() {
    let f = fixture(vec![]);
    let id = f.outbox.enqueue(&welcome()).await.unwrap();
    // A slow worker takes the job and stalls past its lease.
    let slow = f.claim_elsewhere().await;
    f.clock.advance(TimeDelta::seconds(31));
    assert!(matches!(
        f.worker.try_process_one().await.unwrap(),
        Step::Sent(_)
    ));
    // The slow worker wakes up with a transient failure and wants to retry the job.
    let acked = f
        .queue
        .retry_at(&slow.ack(), "timeout", f.clock.now())
        .await
        .unwrap();
    assert_eq!(acked, notify_core::Acked::Stale);
    let job = f.queue.find_job(&id).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Completed, 2));
    assert_eq!(f.transport.sent.lock().unwrap().len(), 1, "sent once");
}

#[tokio::test]
async fn a_batch_is_sent_concurrently_and_acknowledged_together() {
    let f = fixture(vec![Ok(()), Err(MailError::Transient("421 busy".into()))]);
    for _ in 0..5 {
        f.outbox.enqueue(&welcome()).await.unwrap();
    }
    let steps = f.worker.try_process_batch(4).await.unwrap();
    assert_eq!(steps.len(), 4);
    let retrying = steps
        .iter()
        .filter(|s| matches!(s, Step::Retrying(_)))
        .count();
    let sent = steps.iter().filter(|s| matches!(s, Step::Sent(_))).count();
    assert_eq!((sent, retrying), (3, 1));
    let counts = f.queue.counts(EMAIL_QUEUE).await.unwrap();
    assert_eq!(
        (counts.completed, counts.delayed, counts.waiting),
        (3, 1, 1)
    );
    assert_eq!(f.worker.try_process_batch(4).await.unwrap().len(), 1);
    assert!(f.worker.try_process_batch(4).await.unwrap().is_empty());
}
