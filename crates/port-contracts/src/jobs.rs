//! Contract of `JobQueue`.

use chrono::{DateTime, TimeDelta, Utc};
use kernel::PageRequest;
use notify_core::jobs::{AckRef, Acked, FAILURES_KEPT, JobChange, Keep};
use notify_core::{JobId, JobQueue, JobState, NewJob, QueueCounts, QueueTotals};

use crate::now_ms;

suite!($
    /// Runs the `JobQueue` contract: one test per behaviour.
    job_queue_contract, jobs::job_queue_behaviours, dyn JobQueue, [
        a_new_job_waits_with_no_attempts,
        queues_are_separate,
        jobs_are_handed_out_in_the_order_they_were_queued_and_once,
        a_batch_is_handed_out_in_order_and_acknowledged_together,
        an_unacknowledged_job_comes_back_after_its_lease,
        an_acknowledgement_from_an_expired_claim_changes_nothing,
        a_stale_claim_cannot_push_back_a_job_another_worker_holds,
        a_claim_past_its_lease_still_acknowledges_when_nobody_took_the_job,
        an_acknowledgement_counts_once,
        a_job_retried_later_waits_for_its_time,
        a_completed_job_keeps_no_personal_data,
        a_failed_job_keeps_its_error_and_never_runs_again,
        a_failed_job_keeps_what_a_retry_needs,
        failed_attempts_are_kept_with_their_errors_the_last_ones_only,
        a_failed_job_retried_runs_again_from_its_first_attempt,
        only_a_failed_job_of_the_named_queue_can_be_retried,
        a_removed_job_is_gone_but_one_a_worker_holds_is_refused,
        a_promoted_delayed_job_runs_now_and_only_a_delayed_one_is_promoted,
        a_paused_queue_hands_nothing_out_until_resumed,
        queue_counts_count_the_jobs_in_each_state,
        running_totals_count_what_happened_and_outlive_cleaning,
        processing_time_runs_from_the_claim_to_the_outcome,
        history_lists_each_state_newest_finished_first,
        history_pages_through_the_waiting_jobs_in_run_order,
        cleaning_keeps_only_the_newest_recent_finished_jobs,
        cleaning_touches_only_the_named_state_and_queue,
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
async fn reserved(queue: &dyn JobQueue, new: NewJob) -> AckRef {
    let (name, at) = (new.queue.clone(), new.run_at);
    let id = queue.enqueue(new).await.unwrap();
    let taken = queue.reserve(&name, at, LEASE).await.unwrap().unwrap();
    assert_eq!(taken.job.id, id, "the one due job is handed out");
    taken.ack()
}

/// Reserves the next due job of `name` at `at`, which must exist.
async fn take(queue: &dyn JobQueue, name: &str, at: DateTime<Utc>) -> notify_core::jobs::Claim {
    queue
        .reserve(name, at, LEASE)
        .await
        .unwrap()
        .expect("a due job")
}

/// Queues `count` jobs to "mail", due `now`, in order.
async fn enqueue_numbered(queue: &dyn JobQueue, count: u32, now: DateTime<Utc>) -> Vec<JobId> {
    let mut ids = Vec::new();
    for n in 0..count {
        ids.push(
            queue
                .enqueue(job("mail", &n.to_string(), now))
                .await
                .unwrap(),
        );
    }
    ids
}

async fn state_of(queue: &dyn JobQueue, id: &JobId) -> JobState {
    queue
        .find_job(id)
        .await
        .unwrap()
        .expect("the job exists")
        .state
}

fn page(page: u32, limit: u32) -> PageRequest {
    PageRequest { page, limit }
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

async fn jobs_are_handed_out_in_the_order_they_were_queued_and_once(queue: &dyn JobQueue) {
    let now = now_ms();
    let first = queue.enqueue(job("mail", "one", now)).await.unwrap();
    let second = queue.enqueue(job("mail", "two", now)).await.unwrap();
    let later = now + TimeDelta::seconds(1);
    let taken = take(queue, "mail", later).await;
    assert_eq!(
        (taken.job.id, taken.job.state, taken.job.attempts),
        (first, JobState::Active, 1),
        "first queued, first out"
    );
    let taken_second = take(queue, "mail", later).await;
    assert_eq!(
        taken_second.job.id, second,
        "an active job is not handed out twice"
    );
    assert_ne!(taken.token, taken_second.token);
    assert!(queue.reserve("mail", later, LEASE).await.unwrap().is_none());
}

async fn a_batch_is_handed_out_in_order_and_acknowledged_together(queue: &dyn JobQueue) {
    let now = now_ms();
    let ids = enqueue_numbered(queue, 5, now).await;
    let batch = queue.reserve_batch("mail", now, LEASE, 3).await.unwrap();
    let taken: Vec<JobId> = batch.iter().map(|c| c.job.id.clone()).collect();
    assert_eq!(taken, ids[..3], "the three first, in order");
    assert!(
        batch
            .iter()
            .all(|c| c.job.state == JobState::Active && c.job.attempts == 1)
    );
    let rest = queue.reserve_batch("mail", now, LEASE, 10).await.unwrap();
    assert_eq!(rest.len(), 2, "only what is left");
    let acks: Vec<AckRef> = batch.iter().map(notify_core::jobs::Claim::ack).collect();
    assert_eq!(
        queue.complete_batch(&acks, now).await.unwrap(),
        [Acked::Applied; 3]
    );
    assert_eq!(
        queue.complete_batch(&acks[..1], now).await.unwrap(),
        [Acked::Stale],
        "a claim acknowledges once"
    );
    let last = rest[1].ack();
    assert_eq!(
        queue
            .complete_batch(&[last.clone(), last], now)
            .await
            .unwrap(),
        [Acked::Applied, Acked::Stale],
        "even twice in one batch"
    );
    let counts = queue.counts("mail").await.unwrap();
    assert_eq!((counts.completed, counts.active), (4, 1));
}

async fn an_unacknowledged_job_comes_back_after_its_lease(queue: &dyn JobQueue) {
    let now = now_ms();
    let first = reserved(queue, job("mail", "one", now)).await;
    let after_lease = now + LEASE + TimeDelta::seconds(1);
    let redelivered = take(queue, "mail", after_lease).await;
    assert_eq!(
        (redelivered.job.id, redelivered.job.attempts),
        (first.job, 2)
    );
    assert_ne!(redelivered.token, first.token, "a new claim");
}

async fn an_acknowledgement_from_an_expired_claim_changes_nothing(queue: &dyn JobQueue) {
    let now = now_ms();
    let stale = reserved(queue, mail_to("ada@x.io", "one", now)).await;
    let after_lease = now + LEASE + TimeDelta::seconds(1);
    let current = take(queue, "mail", after_lease).await.ack();
    assert_eq!(
        queue.complete(&current, after_lease).await.unwrap(),
        Acked::Applied
    );
    assert_eq!(
        queue.complete(&stale, after_lease).await.unwrap(),
        Acked::Stale
    );
    assert_eq!(
        queue
            .retry_at(&stale, "late", after_lease + LEASE)
            .await
            .unwrap(),
        Acked::Stale
    );
    assert_eq!(
        queue.fail(&stale, "late", after_lease).await.unwrap(),
        Acked::Stale
    );
    let done = queue.find_job(&stale.job).await.unwrap().unwrap();
    assert_eq!(
        (
            done.state,
            done.attempts,
            done.last_error,
            done.payload.as_str()
        ),
        (JobState::Completed, 2, None, ""),
        "finished once, by the worker that held it"
    );
    assert!(
        queue
            .reserve("mail", after_lease + LEASE * 10, LEASE)
            .await
            .unwrap()
            .is_none(),
        "and never handed out again"
    );
}

async fn a_stale_claim_cannot_push_back_a_job_another_worker_holds(queue: &dyn JobQueue) {
    let now = now_ms();
    let stale = reserved(queue, job("mail", "one", now)).await;
    let after_lease = now + LEASE + TimeDelta::seconds(1);
    let current = take(queue, "mail", after_lease).await.ack();
    assert_eq!(
        queue.retry_at(&stale, "late", after_lease).await.unwrap(),
        Acked::Stale
    );
    assert_eq!(
        queue.fail(&stale, "late", after_lease).await.unwrap(),
        Acked::Stale
    );
    let held = queue.find_job(&current.job).await.unwrap().unwrap();
    assert_eq!((held.state, held.attempts), (JobState::Active, 2));
    assert!(
        queue
            .reserve("mail", after_lease, LEASE)
            .await
            .unwrap()
            .is_none(),
        "still held by its current claim"
    );
    assert_eq!(
        queue.complete(&current, after_lease).await.unwrap(),
        Acked::Applied
    );
}

async fn a_claim_past_its_lease_still_acknowledges_when_nobody_took_the_job(queue: &dyn JobQueue) {
    let now = now_ms();
    let claim = reserved(queue, job("mail", "one", now)).await;
    let late = now + LEASE * 3;
    assert_eq!(queue.complete(&claim, late).await.unwrap(), Acked::Applied);
    assert_eq!(state_of(queue, &claim.job).await, JobState::Completed);
}

async fn an_acknowledgement_counts_once(queue: &dyn JobQueue) {
    let now = now_ms();
    let claim = reserved(queue, job("mail", "one", now)).await;
    assert_eq!(
        queue.retry_at(&claim, "smtp down", now).await.unwrap(),
        Acked::Applied
    );
    assert_eq!(
        queue.retry_at(&claim, "smtp down", now).await.unwrap(),
        Acked::Stale
    );
    assert_eq!(
        queue.fail(&claim, "gave up", now).await.unwrap(),
        Acked::Stale
    );
    assert_eq!(state_of(queue, &claim.job).await, JobState::Delayed);
}

async fn a_job_retried_later_waits_for_its_time(queue: &dyn JobQueue) {
    let now = now_ms();
    let claim = reserved(queue, job("mail", "one", now)).await;
    let retry_at = now + TimeDelta::seconds(10);
    assert_eq!(
        queue.retry_at(&claim, "smtp down", retry_at).await.unwrap(),
        Acked::Applied
    );
    let id = claim.job;
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
    let retried = take(queue, "mail", retry_at).await;
    assert_eq!((retried.job.id, retried.job.attempts), (id, 2));
}

async fn a_completed_job_keeps_no_personal_data(queue: &dyn JobQueue) {
    let now = now_ms();
    let claim = reserved(queue, mail_to("ada@x.io", "one", now)).await;
    assert_eq!(queue.complete(&claim, now).await.unwrap(), Acked::Applied);
    let completed = queue.find_job(&claim.job).await.unwrap().unwrap();
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
    let claim = reserved(queue, job("mail", "one", now)).await;
    assert_eq!(
        queue.fail(&claim, "gave up", now).await.unwrap(),
        Acked::Applied
    );
    let failed = queue.find_job(&claim.job).await.unwrap().unwrap();
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

async fn a_failed_job_keeps_what_a_retry_needs(queue: &dyn JobQueue) {
    let now = now_ms();
    let claim = reserved(queue, mail_to("ada@x.io", "sealed", now)).await;
    assert_eq!(
        queue.fail(&claim, "rejected", now).await.unwrap(),
        Acked::Applied
    );
    let failed = queue.find_job(&claim.job).await.unwrap().unwrap();
    assert_eq!(
        (
            failed.payload.as_str(),
            failed.recipient.as_deref(),
            failed.attempts,
            failed.max_attempts
        ),
        ("sealed", Some("ada@x.io"), 1, 3)
    );
}

async fn a_failed_job_retried_runs_again_from_its_first_attempt(queue: &dyn JobQueue) {
    let now = now_ms();
    let claim = reserved(queue, job("mail", "one", now)).await;
    assert_eq!(
        queue.fail(&claim, "gave up", now).await.unwrap(),
        Acked::Applied
    );
    let later = now + TimeDelta::minutes(5);
    assert_eq!(
        queue.retry_failed("mail", &claim.job, later).await.unwrap(),
        JobChange::Done
    );
    let waiting = queue.find_job(&claim.job).await.unwrap().unwrap();
    assert_eq!(
        (waiting.state, waiting.attempts, waiting.finished_at),
        (JobState::Waiting, 0, None)
    );
    let again = take(queue, "mail", later).await;
    assert_eq!(
        (
            again.job.id.clone(),
            again.job.attempts,
            again.job.payload.as_str()
        ),
        (claim.job.clone(), 1, "one")
    );
    assert_eq!(
        queue.complete(&claim, later).await.unwrap(),
        Acked::Stale,
        "the claim of the failed run is over"
    );
    assert_eq!(
        queue.complete(&again.ack(), later).await.unwrap(),
        Acked::Applied
    );
}

async fn failed_attempts_are_kept_with_their_errors_the_last_ones_only(queue: &dyn JobQueue) {
    let now = now_ms();
    let first = reserved(queue, job("mail", "one", now)).await;
    assert_eq!(
        queue.retry_at(&first, "451 busy", now).await.unwrap(),
        Acked::Applied
    );
    let second = take(queue, "mail", now).await;
    assert_eq!(
        queue.fail(&second.ack(), "550 gone", now).await.unwrap(),
        Acked::Applied
    );
    let stored = queue.find_job(&first.job).await.unwrap().unwrap();
    let seen: Vec<(u32, &str)> = stored
        .failures
        .iter()
        .map(|f| (f.attempt, f.error.as_str()))
        .collect();
    assert_eq!(seen, [(1, "451 busy"), (2, "550 gone")]);
    for failure in &stored.failures {
        let off = (failure.at - Utc::now()).num_seconds().abs();
        assert!(off < 60, "recorded when it happened: {failure:?}");
    }
    for n in 0..FAILURES_KEPT {
        queue.retry_failed("mail", &first.job, now).await.unwrap();
        let claim = take(queue, "mail", now).await;
        let error = format!("again {n}");
        assert_eq!(
            queue.fail(&claim.ack(), &error, now).await.unwrap(),
            Acked::Applied
        );
    }
    let stored = queue.find_job(&first.job).await.unwrap().unwrap();
    assert_eq!(stored.failures.len(), FAILURES_KEPT, "bounded");
    assert_eq!(
        stored.failures.last().map(|f| f.error.as_str()),
        Some(format!("again {}", FAILURES_KEPT - 1).as_str()),
        "the newest kept"
    );
}

async fn only_a_failed_job_of_the_named_queue_can_be_retried(queue: &dyn JobQueue) {
    let now = now_ms();
    let completed = reserved(queue, job("mail", "done", now)).await;
    assert_eq!(
        queue.complete(&completed, now).await.unwrap(),
        Acked::Applied
    );
    assert_eq!(
        queue
            .retry_failed("mail", &completed.job, now)
            .await
            .unwrap(),
        JobChange::Refused(JobState::Completed)
    );
    assert_eq!(
        queue
            .retry_failed("other", &completed.job, now)
            .await
            .unwrap(),
        JobChange::NotFound
    );
    let waiting = queue.enqueue(job("mail", "one", now)).await.unwrap();
    assert_eq!(
        queue.retry_failed("mail", &waiting, now).await.unwrap(),
        JobChange::Refused(JobState::Waiting)
    );
    assert_eq!(
        queue.retry_failed("other", &waiting, now).await.unwrap(),
        JobChange::NotFound
    );
    assert_eq!(
        queue
            .retry_failed("mail", &JobId::generate(), now)
            .await
            .unwrap(),
        JobChange::NotFound
    );
}

async fn a_removed_job_is_gone_but_one_a_worker_holds_is_refused(queue: &dyn JobQueue) {
    let now = now_ms();
    let held = reserved(queue, job("mail", "held", now)).await;
    let waiting = queue.enqueue(job("mail", "waiting", now)).await.unwrap();
    let failed = reserved(queue, job("other", "failed", now)).await;
    assert_eq!(
        queue.fail(&failed, "boom", now).await.unwrap(),
        Acked::Applied
    );
    assert_eq!(
        queue.remove("mail", &held.job, now).await.unwrap(),
        JobChange::Refused(JobState::Active)
    );
    assert_eq!(
        queue.remove("other", &waiting, now).await.unwrap(),
        JobChange::NotFound,
        "only in the queue named"
    );
    for (name, id) in [("mail", &waiting), ("other", &failed.job)] {
        assert_eq!(queue.remove(name, id, now).await.unwrap(), JobChange::Done);
        assert!(queue.find_job(id).await.unwrap().is_none());
    }
    assert_eq!(
        queue.remove("mail", &waiting, now).await.unwrap(),
        JobChange::NotFound
    );
    assert!(
        queue.reserve("mail", now, LEASE).await.unwrap().is_none(),
        "a removed waiting job is never handed out"
    );
    let after_lease = now + LEASE + TimeDelta::seconds(1);
    assert_eq!(
        queue.remove("mail", &held.job, after_lease).await.unwrap(),
        JobChange::Done,
        "a job whose worker died may go"
    );
    assert_eq!(
        queue.complete(&held, after_lease).await.unwrap(),
        Acked::Stale
    );
    assert_eq!(queue.counts("mail").await.unwrap(), QueueCounts::default());
}

async fn a_promoted_delayed_job_runs_now_and_only_a_delayed_one_is_promoted(queue: &dyn JobQueue) {
    let now = now_ms();
    let claim = reserved(queue, job("mail", "one", now)).await;
    let much_later = now + TimeDelta::hours(1);
    assert_eq!(
        queue.retry_at(&claim, "busy", much_later).await.unwrap(),
        Acked::Applied
    );
    assert!(queue.reserve("mail", now, LEASE).await.unwrap().is_none());
    assert_eq!(
        queue.promote("other", &claim.job, now).await.unwrap(),
        JobChange::NotFound
    );
    assert_eq!(
        queue.promote("mail", &claim.job, now).await.unwrap(),
        JobChange::Done
    );
    assert_eq!(state_of(queue, &claim.job).await, JobState::Waiting);
    let again = take(queue, "mail", now).await;
    assert_eq!(
        (again.job.id.clone(), again.job.attempts),
        (claim.job.clone(), 2)
    );
    assert_eq!(
        queue.promote("mail", &claim.job, now).await.unwrap(),
        JobChange::Refused(JobState::Active)
    );
    assert_eq!(
        queue
            .promote("mail", &JobId::generate(), now)
            .await
            .unwrap(),
        JobChange::NotFound
    );
}

async fn a_paused_queue_hands_nothing_out_until_resumed(queue: &dyn JobQueue) {
    let now = now_ms();
    let first = queue.enqueue(job("mail", "one", now)).await.unwrap();
    queue.enqueue(job("other", "two", now)).await.unwrap();
    assert!(!queue.is_paused("mail").await.unwrap());
    queue.set_paused("mail", true).await.unwrap();
    assert!(queue.is_paused("mail").await.unwrap());
    assert!(queue.reserve("mail", now, LEASE).await.unwrap().is_none());
    assert!(
        queue
            .reserve_batch("mail", now, LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    queue.enqueue(job("mail", "three", now)).await.unwrap();
    assert_eq!(
        queue.counts("mail").await.unwrap().waiting,
        2,
        "enqueueing goes on"
    );
    assert!(
        queue.reserve("other", now, LEASE).await.unwrap().is_some(),
        "other queues run"
    );
    queue.set_paused("mail", false).await.unwrap();
    assert!(!queue.is_paused("mail").await.unwrap());
    assert_eq!(take(queue, "mail", now).await.job.id, first);
}

async fn queue_counts_count_the_jobs_in_each_state(queue: &dyn JobQueue) {
    let now = now_ms();
    let completed = reserved(queue, job("mail", "completed", now)).await;
    queue
        .complete(&completed, now)
        .await
        .unwrap()
        .assert_applied();
    let failed = reserved(queue, job("mail", "failed", now)).await;
    queue
        .fail(&failed, "gave up", now)
        .await
        .unwrap()
        .assert_applied();
    let delayed = reserved(queue, job("mail", "delayed", now)).await;
    queue
        .retry_at(&delayed, "smtp down", now + TimeDelta::hours(1))
        .await
        .unwrap()
        .assert_applied();
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

async fn running_totals_count_what_happened_and_outlive_cleaning(queue: &dyn JobQueue) {
    let now = now_ms();
    let done = reserved(queue, job("mail", "done", now)).await;
    queue.complete(&done, now).await.unwrap().assert_applied();
    assert_eq!(queue.complete(&done, now).await.unwrap(), Acked::Stale);
    let retried = reserved(queue, job("mail", "retried", now)).await;
    queue
        .retry_at(&retried, "busy", now + TimeDelta::hours(1))
        .await
        .unwrap()
        .assert_applied();
    let failed = reserved(queue, job("mail", "failed", now)).await;
    queue
        .fail(&failed, "no", now)
        .await
        .unwrap()
        .assert_applied();
    queue.enqueue(job("other", "elsewhere", now)).await.unwrap();
    let expected = QueueTotals {
        enqueued: 3,
        completed: 1,
        failed: 1,
        retried: 1,
        processing_ms: 0,
    };
    assert_eq!(
        queue.totals("mail").await.unwrap(),
        expected,
        "stale acknowledgements count for nothing"
    );
    queue
        .clean("mail", JobState::Completed, Keep::NONE)
        .await
        .unwrap();
    queue
        .clean("mail", JobState::Failed, Keep::NONE)
        .await
        .unwrap();
    assert_eq!(queue.totals("mail").await.unwrap(), expected);
    assert_eq!(queue.totals("other").await.unwrap().enqueued, 1);
    assert_eq!(queue.totals("none").await.unwrap(), QueueTotals::default());
}

async fn processing_time_runs_from_the_claim_to_the_outcome(queue: &dyn JobQueue) {
    let now = now_ms();
    let completed = reserved(queue, job("mail", "one", now)).await;
    let acked = queue
        .complete_batch(&[completed], now + TimeDelta::milliseconds(1500))
        .await
        .unwrap();
    assert_eq!(acked, [Acked::Applied]);
    // A retry is not an outcome: the time until it is not counted.
    let retried = reserved(queue, job("mail", "two", now)).await;
    queue
        .retry_at(&retried, "later", now + TimeDelta::hours(1))
        .await
        .unwrap()
        .assert_applied();
    let failed = reserved(queue, job("mail", "three", now)).await;
    queue
        .fail(&failed, "rejected", now + TimeDelta::milliseconds(500))
        .await
        .unwrap()
        .assert_applied();
    assert_eq!(queue.totals("mail").await.unwrap().processing_ms, 2000);
}

async fn history_lists_each_state_newest_finished_first(queue: &dyn JobQueue) {
    let now = now_ms();
    let mut completed = Vec::new();
    for n in 0..3 {
        let claim = reserved(queue, job("mail", "done", now)).await;
        let at = now + TimeDelta::seconds(n);
        queue.complete(&claim, at).await.unwrap().assert_applied();
        completed.push(claim.job);
    }
    let failed = reserved(queue, job("mail", "failed", now)).await;
    queue
        .fail(&failed, "gave up", now)
        .await
        .unwrap()
        .assert_applied();
    let listed = queue
        .list("mail", JobState::Completed, page(1, 2))
        .await
        .unwrap();
    let ids: Vec<JobId> = listed.items.iter().map(|j| j.id.clone()).collect();
    assert_eq!(ids, [completed[2].clone(), completed[1].clone()]);
    assert_eq!(listed.total, 3);
    let rest = queue
        .list("mail", JobState::Completed, page(2, 2))
        .await
        .unwrap();
    assert_eq!(
        rest.items.iter().map(|j| j.id.clone()).collect::<Vec<_>>(),
        [completed[0].clone()]
    );
    let failures = queue
        .list("mail", JobState::Failed, page(1, 10))
        .await
        .unwrap();
    assert_eq!(
        (failures.total, failures.items[0].last_error.as_deref()),
        (1, Some("gave up"))
    );
    assert_eq!(
        queue
            .list("other", JobState::Completed, page(1, 10))
            .await
            .unwrap()
            .total,
        0
    );
}

async fn history_pages_through_the_waiting_jobs_in_run_order(queue: &dyn JobQueue) {
    let now = now_ms();
    let ids = enqueue_numbered(queue, 4, now).await;
    let held = take(queue, "mail", now).await;
    let waiting = queue
        .list("mail", JobState::Waiting, page(2, 2))
        .await
        .unwrap();
    assert_eq!(waiting.total, 3);
    assert_eq!(
        waiting
            .items
            .iter()
            .map(|j| j.id.clone())
            .collect::<Vec<_>>(),
        [ids[3].clone()]
    );
    let active = queue
        .list("mail", JobState::Active, page(1, 10))
        .await
        .unwrap();
    assert_eq!(
        active
            .items
            .iter()
            .map(|j| j.id.clone())
            .collect::<Vec<_>>(),
        [held.job.id]
    );
}

async fn cleaning_keeps_only_the_newest_recent_finished_jobs(queue: &dyn JobQueue) {
    let now = now_ms();
    let mut finished = Vec::new();
    for n in 0..5 {
        let claim = reserved(queue, job("mail", "done", now)).await;
        queue
            .complete(&claim, now + TimeDelta::hours(n))
            .await
            .unwrap()
            .assert_applied();
        finished.push(claim.job);
    }
    let keep = Keep {
        newest: 2,
        since: Some(now + TimeDelta::hours(1)),
    };
    assert_eq!(
        queue
            .clean("mail", JobState::Completed, keep)
            .await
            .unwrap(),
        3
    );
    for (n, id) in finished.iter().enumerate() {
        assert_eq!(
            queue.find_job(id).await.unwrap().is_some(),
            n >= 3,
            "job finished at hour {n}"
        );
    }
    let keep_recent = Keep {
        newest: 10,
        since: Some(now + TimeDelta::hours(4)),
    };
    assert_eq!(
        queue
            .clean("mail", JobState::Completed, keep_recent)
            .await
            .unwrap(),
        1,
        "older than the age bound"
    );
    assert_eq!(
        queue
            .clean("mail", JobState::Completed, Keep::NONE)
            .await
            .unwrap(),
        1
    );
    assert_eq!(queue.counts("mail").await.unwrap(), QueueCounts::default());
}

async fn cleaning_touches_only_the_named_state_and_queue(queue: &dyn JobQueue) {
    let now = now_ms();
    let done = reserved(queue, job("mail", "done", now)).await;
    queue.complete(&done, now).await.unwrap().assert_applied();
    let failed = reserved(queue, job("mail", "failed", now)).await;
    queue
        .fail(&failed, "gave up", now)
        .await
        .unwrap()
        .assert_applied();
    let elsewhere = reserved(queue, job("other", "done", now)).await;
    queue
        .complete(&elsewhere, now)
        .await
        .unwrap()
        .assert_applied();
    queue.enqueue(job("mail", "waiting", now)).await.unwrap();
    assert_eq!(
        queue
            .clean("mail", JobState::Failed, Keep::NONE)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        queue
            .clean("mail", JobState::Waiting, Keep::NONE)
            .await
            .unwrap(),
        0,
        "only finished jobs are cleaned"
    );
    assert!(queue.find_job(&failed.job).await.unwrap().is_none());
    assert!(queue.find_job(&done.job).await.unwrap().is_some());
    assert!(queue.find_job(&elsewhere.job).await.unwrap().is_some());
    assert_eq!(queue.counts("mail").await.unwrap().waiting, 1);
}

async fn forgetting_a_recipient_drops_their_jobs_but_the_one_a_worker_holds(queue: &dyn JobQueue) {
    let now = now_ms();
    let held = reserved(queue, mail_to("ada@x.io", "held", now)).await.job;
    let done = reserved(queue, mail_to("ada@x.io", "done", now)).await;
    queue.complete(&done, now).await.unwrap().assert_applied();
    let done = done.job;
    let failed = reserved(queue, mail_to("ada@x.io", "failed", now)).await;
    queue
        .fail(&failed, "smtp said no", now)
        .await
        .unwrap()
        .assert_applied();
    let failed = failed.job;
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
    let held = reserved(queue, mail_to("ada@x.io", "held", now)).await.job;
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

/// Asserting an acknowledgement took effect, in one word.
trait AssertApplied {
    fn assert_applied(self);
}

impl AssertApplied for Acked {
    fn assert_applied(self) {
        assert_eq!(self, Acked::Applied);
    }
}
