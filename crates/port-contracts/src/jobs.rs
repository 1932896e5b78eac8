//! Contract of `JobQueue`.

use chrono::{DateTime, TimeDelta, Utc};
use notify_core::{JobId, JobQueue, JobState, NewJob, QueueCounts};

use crate::now_ms;

suite!($
    /// Runs the `JobQueue` contract: one test per behaviour.
    job_queue_contract, jobs::job_queue_behaviours, dyn JobQueue, [
        a_new_job_waits_with_no_attempts,
        queues_are_separate,
        jobs_are_handed_out_oldest_first_and_once,
        an_unacknowledged_job_comes_back_after_its_lease,
        a_job_retried_later_waits_for_its_time,
        a_completed_job_keeps_no_personal_data,
        a_failed_job_keeps_its_error_and_never_runs_again,
        queue_counts_count_the_jobs_in_each_state,
        forgetting_a_recipient_drops_their_jobs_but_the_one_a_worker_holds,
        a_held_job_is_forgotten_once_its_lease_is_over,
    ]
);

/// How long a reserved job is held.
const LEASE: TimeDelta = TimeDelta::seconds(30);

fn job(queue: &str, payload: &str, at: DateTime<Utc>) -> NewJob {
    NewJob {
        queue: queue.into(),
        kind: "test".into(),
        payload: payload.into(),
        recipient: None,
        max_attempts: 3,
        run_at: at,
    }
}

/// Queues `new` and reserves it, as a worker would; no other job of its queue may be due.
async fn reserved(queue: &dyn JobQueue, new: NewJob) -> JobId {
    let (name, at) = (new.queue.clone(), new.run_at);
    let id = queue.enqueue(new).await.unwrap();
    let taken = queue.reserve(&name, at, LEASE).await.unwrap().unwrap();
    assert_eq!(taken.id, id, "the one due job is handed out");
    id
}

/// A job to `address`.
fn mail_to(address: &str, payload: &str, at: DateTime<Utc>) -> NewJob {
    NewJob {
        recipient: Some(address.to_owned()),
        ..job("mail", payload, at)
    }
}

async fn a_new_job_waits_with_no_attempts(queue: &dyn JobQueue) {
    let id = queue.enqueue(job("mail", "one", now_ms())).await.unwrap();
    let stored = queue.find_job(&id).await.unwrap().unwrap();
    assert_eq!(
        (stored.state, stored.attempts, stored.payload.as_str()),
        (JobState::Waiting, 0, "one")
    );
}

async fn queues_are_separate(queue: &dyn JobQueue) {
    let now = now_ms();
    queue.enqueue(job("mail", "one", now)).await.unwrap();
    assert!(queue.reserve("other", now, LEASE).await.unwrap().is_none());
}

async fn jobs_are_handed_out_oldest_first_and_once(queue: &dyn JobQueue) {
    let now = now_ms();
    let second = queue
        .enqueue(job("mail", "two", now + TimeDelta::milliseconds(1)))
        .await
        .unwrap();
    let first = queue.enqueue(job("mail", "one", now)).await.unwrap();
    let later = now + TimeDelta::seconds(1);
    let taken = queue.reserve("mail", later, LEASE).await.unwrap().unwrap();
    assert_eq!(
        (taken.id, taken.state, taken.attempts),
        (first, JobState::Active, 1),
        "oldest first"
    );
    let taken_second = queue.reserve("mail", later, LEASE).await.unwrap().unwrap();
    assert_eq!(
        taken_second.id, second,
        "an active job is not handed out twice"
    );
    assert!(queue.reserve("mail", later, LEASE).await.unwrap().is_none());
}

async fn an_unacknowledged_job_comes_back_after_its_lease(queue: &dyn JobQueue) {
    let now = now_ms();
    let id = reserved(queue, job("mail", "one", now)).await;
    let after_lease = now + LEASE + TimeDelta::seconds(1);
    let redelivered = queue
        .reserve("mail", after_lease, LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((redelivered.id, redelivered.attempts), (id, 2));
}

async fn a_job_retried_later_waits_for_its_time(queue: &dyn JobQueue) {
    let now = now_ms();
    let id = reserved(queue, job("mail", "one", now)).await;
    let retry_at = now + TimeDelta::seconds(10);
    queue.retry_at(&id, "smtp down", retry_at).await.unwrap();
    let delayed = queue.find_job(&id).await.unwrap().unwrap();
    assert_eq!(
        (delayed.state, delayed.last_error.as_deref()),
        (JobState::Delayed, Some("smtp down"))
    );
    assert!(
        queue
            .reserve("mail", retry_at - TimeDelta::seconds(1), LEASE)
            .await
            .unwrap()
            .is_none(),
        "a delayed job waits for its time"
    );
    let retried = queue
        .reserve("mail", retry_at, LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((retried.id, retried.attempts), (id, 2));
}

async fn a_completed_job_keeps_no_personal_data(queue: &dyn JobQueue) {
    let now = now_ms();
    let id = reserved(queue, mail_to("ada@x.io", "one", now)).await;
    queue.complete(&id, now).await.unwrap();
    let completed = queue.find_job(&id).await.unwrap().unwrap();
    assert_eq!(
        (
            completed.state,
            completed.payload.as_str(),
            completed.recipient
        ),
        (JobState::Completed, "", None)
    );
}

async fn a_failed_job_keeps_its_error_and_never_runs_again(queue: &dyn JobQueue) {
    let now = now_ms();
    let id = reserved(queue, job("mail", "one", now)).await;
    queue.fail(&id, "gave up", now).await.unwrap();
    let failed = queue.find_job(&id).await.unwrap().unwrap();
    assert_eq!(
        (failed.state, failed.last_error.as_deref()),
        (JobState::Failed, Some("gave up"))
    );
    assert!(failed.finished_at.is_some());
    assert!(
        queue
            .reserve("mail", now + TimeDelta::days(1), LEASE)
            .await
            .unwrap()
            .is_none()
    );
}

async fn queue_counts_count_the_jobs_in_each_state(queue: &dyn JobQueue) {
    let now = now_ms();
    let completed = reserved(queue, job("mail", "completed", now)).await;
    queue.complete(&completed, now).await.unwrap();
    let failed = reserved(queue, job("mail", "failed", now)).await;
    queue.fail(&failed, "gave up", now).await.unwrap();
    let delayed = reserved(queue, job("mail", "delayed", now)).await;
    queue
        .retry_at(&delayed, "smtp down", now + TimeDelta::hours(1))
        .await
        .unwrap();
    reserved(queue, job("mail", "active", now)).await;
    queue.enqueue(job("mail", "waiting", now)).await.unwrap();
    assert_eq!(
        queue.counts("mail").await.unwrap(),
        QueueCounts {
            waiting: 1,
            delayed: 1,
            active: 1,
            completed: 1,
            failed: 1
        }
    );
    assert_eq!(queue.counts("other").await.unwrap(), QueueCounts::default());
}

async fn forgetting_a_recipient_drops_their_jobs_but_the_one_a_worker_holds(queue: &dyn JobQueue) {
    let now = now_ms();
    let held = reserved(queue, mail_to("ada@x.io", "held", now)).await;
    let done = reserved(queue, mail_to("ada@x.io", "done", now)).await;
    queue.complete(&done, now).await.unwrap();
    let failed = reserved(queue, mail_to("ada@x.io", "failed", now)).await;
    queue.fail(&failed, "smtp said no", now).await.unwrap();
    let waiting = queue
        .enqueue(mail_to("ada@x.io", "waiting", now))
        .await
        .unwrap();
    let other = queue
        .enqueue(mail_to("bob@x.io", "other", now))
        .await
        .unwrap();

    assert_eq!(queue.forget_recipient("ada@x.io", now).await.unwrap(), 2);
    assert!(queue.find_job(&failed).await.unwrap().is_none());
    assert!(queue.find_job(&waiting).await.unwrap().is_none());
    assert_eq!(
        queue.find_job(&done).await.unwrap().map(|j| j.payload),
        Some(String::new()),
        "a completed job was already anonymous and stays as history"
    );
    assert!(
        queue.find_job(&held).await.unwrap().is_some(),
        "a job a worker holds finishes"
    );
    assert!(queue.find_job(&other).await.unwrap().is_some());
}

async fn a_held_job_is_forgotten_once_its_lease_is_over(queue: &dyn JobQueue) {
    let now = now_ms();
    let held = reserved(queue, mail_to("ada@x.io", "held", now)).await;
    assert_eq!(queue.forget_recipient("ada@x.io", now).await.unwrap(), 0);
    assert_eq!(
        queue
            .forget_recipient("ada@x.io", now + LEASE + TimeDelta::seconds(1))
            .await
            .unwrap(),
        1,
        "once its lease is over, nobody holds it"
    );
    assert!(queue.find_job(&held).await.unwrap().is_none());
}
