//! Contract of `JobQueue`.

use chrono::TimeDelta;
use notify_core::{JobQueue, JobState, NewJob, QueueCounts};

use crate::now_ms;

fn job(queue: &str, payload: &str, at: chrono::DateTime<chrono::Utc>) -> NewJob {
    NewJob {
        queue: queue.into(),
        kind: "test".into(),
        payload: payload.into(),
        recipient: None,
        max_attempts: 3,
        run_at: at,
    }
}

/// `forget_recipient` drops the recipient's jobs in every state but "held by a worker".
pub async fn forgetting_a_recipient(queue: &dyn JobQueue) {
    let now = now_ms();
    let lease = TimeDelta::seconds(30);
    let to = |address: &str, payload: &str| NewJob {
        recipient: Some(address.to_owned()),
        ..job("forget", payload, now)
    };
    let held = queue.enqueue(to("ada@x.io", "held")).await.unwrap();
    let taken = queue.reserve("forget", now, lease).await.unwrap().unwrap();
    assert_eq!(taken.id, held);
    let done = queue.enqueue(to("ada@x.io", "done")).await.unwrap();
    let reserved = queue.reserve("forget", now, lease).await.unwrap().unwrap();
    queue.complete(&reserved.id, now).await.unwrap();
    assert_eq!(reserved.id, done);
    let failed = queue.enqueue(to("ada@x.io", "failed")).await.unwrap();
    let reserved = queue.reserve("forget", now, lease).await.unwrap().unwrap();
    queue.fail(&reserved.id, "smtp said no", now).await.unwrap();
    assert_eq!(reserved.id, failed);
    let waiting = queue.enqueue(to("ada@x.io", "waiting")).await.unwrap();
    let other = queue.enqueue(to("bob@x.io", "other")).await.unwrap();

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
    assert_eq!(
        queue
            .forget_recipient("ada@x.io", now + lease + TimeDelta::seconds(1))
            .await
            .unwrap(),
        1,
        "once its lease is over, nobody holds it"
    );
}

pub async fn job_queue(queue: &dyn JobQueue) {
    let now = now_ms();
    let lease = TimeDelta::seconds(30);
    let first = queue.enqueue(job("mail", "one", now)).await.unwrap();
    let second = queue
        .enqueue(job("mail", "two", now + TimeDelta::milliseconds(1)))
        .await
        .unwrap();
    let stored = queue.find_job(&first).await.unwrap().unwrap();
    assert_eq!(
        (stored.state, stored.attempts, stored.payload.as_str()),
        (JobState::Waiting, 0, "one")
    );

    assert!(
        queue.reserve("other", now, lease).await.unwrap().is_none(),
        "queues are separate"
    );
    let later = now + TimeDelta::seconds(1);
    let taken = queue.reserve("mail", later, lease).await.unwrap().unwrap();
    assert_eq!(
        (taken.id.clone(), taken.state, taken.attempts),
        (first.clone(), JobState::Active, 1),
        "oldest first"
    );
    let taken_second = queue.reserve("mail", later, lease).await.unwrap().unwrap();
    assert_eq!(
        taken_second.id, second,
        "an active job is not handed out twice"
    );
    assert!(queue.reserve("mail", later, lease).await.unwrap().is_none());

    let after_lease = later + lease + TimeDelta::seconds(1);
    let redelivered = queue
        .reserve("mail", after_lease, lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (redelivered.id.clone(), redelivered.attempts),
        (first.clone(), 2),
        "an unacknowledged job comes back after its lease"
    );

    queue
        .retry_at(&first, "smtp down", after_lease + TimeDelta::seconds(10))
        .await
        .unwrap();
    let delayed = queue.find_job(&first).await.unwrap().unwrap();
    assert_eq!(
        (delayed.state, delayed.last_error.as_deref()),
        (JobState::Delayed, Some("smtp down"))
    );
    queue.complete(&second, after_lease).await.unwrap();
    let completed = queue.find_job(&second).await.unwrap().unwrap();
    assert_eq!(
        (
            completed.state,
            completed.payload.as_str(),
            completed.recipient
        ),
        (JobState::Completed, "", None),
        "a finished job keeps no personal data"
    );
    assert!(
        queue
            .reserve("mail", after_lease, lease)
            .await
            .unwrap()
            .is_none(),
        "a delayed job waits for its time"
    );
    let retried = queue
        .reserve("mail", after_lease + TimeDelta::seconds(10), lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((retried.id.clone(), retried.attempts), (first.clone(), 3));

    queue.fail(&first, "gave up", after_lease).await.unwrap();
    let failed = queue.find_job(&first).await.unwrap().unwrap();
    assert_eq!(
        (failed.state, failed.last_error.as_deref()),
        (JobState::Failed, Some("gave up"))
    );
    assert!(failed.finished_at.is_some());
    assert!(
        queue
            .reserve("mail", after_lease + TimeDelta::days(1), lease)
            .await
            .unwrap()
            .is_none(),
        "finished jobs never run again"
    );

    queue.enqueue(job("mail", "three", now)).await.unwrap();
    assert_eq!(
        queue.counts("mail").await.unwrap(),
        QueueCounts {
            waiting: 1,
            delayed: 0,
            active: 0,
            completed: 1,
            failed: 1
        }
    );
    assert_eq!(queue.counts("other").await.unwrap(), QueueCounts::default());
}
