//! A job queue in a map behind a mutex.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use notify_core::{Job, JobId, JobQueue, JobState, NewJob, QueueCounts, QueueError};

#[derive(Default)]
pub struct MemoryJobQueue {
    jobs: Mutex<HashMap<JobId, Job>>,
}

impl MemoryJobQueue {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<JobId, Job>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, id: &JobId, change: impl FnOnce(&mut Job)) {
        if let Some(job) = self.lock().get_mut(id) {
            change(job);
        }
    }
}

fn is_due(job: &Job, now: DateTime<Utc>) -> bool {
    matches!(
        job.state,
        JobState::Waiting | JobState::Delayed | JobState::Active
    ) && job.run_at <= now
}

#[async_trait]
impl JobQueue for MemoryJobQueue {
    async fn enqueue(&self, job: NewJob) -> Result<JobId, QueueError> {
        let id = JobId::generate();
        let stored = Job {
            id: id.clone(),
            queue: job.queue,
            kind: job.kind,
            payload: job.payload,
            recipient: job.recipient,
            state: JobState::Waiting,
            attempts: 0,
            max_attempts: job.max_attempts,
            last_error: None,
            enqueued_at: job.run_at,
            run_at: job.run_at,
            finished_at: None,
        };
        self.lock().insert(id.clone(), stored);
        Ok(id)
    }

    async fn reserve(
        &self,
        queue: &str,
        now: DateTime<Utc>,
        lease: TimeDelta,
    ) -> Result<Option<Job>, QueueError> {
        let mut jobs = self.lock();
        let next = jobs
            .values_mut()
            .filter(|job| job.queue == queue && is_due(job, now))
            .min_by(|a, b| a.run_at.cmp(&b.run_at).then_with(|| a.id.cmp(&b.id)));
        Ok(next.map(|job| {
            job.state = JobState::Active;
            job.attempts += 1;
            job.run_at = now + lease;
            job.clone()
        }))
    }

    async fn complete(&self, id: &JobId, now: DateTime<Utc>) -> Result<(), QueueError> {
        self.update(id, |job| {
            job.state = JobState::Completed;
            job.finished_at = Some(now);
            job.payload.clear();
            job.recipient = None;
        });
        Ok(())
    }

    async fn retry_at(
        &self,
        id: &JobId,
        error: &str,
        run_at: DateTime<Utc>,
    ) -> Result<(), QueueError> {
        self.update(id, |job| {
            job.state = JobState::Delayed;
            job.last_error = Some(error.to_owned());
            job.run_at = run_at;
        });
        Ok(())
    }

    async fn fail(&self, id: &JobId, error: &str, now: DateTime<Utc>) -> Result<(), QueueError> {
        self.update(id, |job| {
            job.state = JobState::Failed;
            job.last_error = Some(error.to_owned());
            job.finished_at = Some(now);
        });
        Ok(())
    }

    async fn find_job(&self, id: &JobId) -> Result<Option<Job>, QueueError> {
        Ok(self.lock().get(id).cloned())
    }

    async fn counts(&self, queue: &str) -> Result<QueueCounts, QueueError> {
        let jobs = self.lock();
        let mut counts = QueueCounts::default();
        for job in jobs.values().filter(|job| job.queue == queue) {
            let slot = match job.state {
                JobState::Waiting => &mut counts.waiting,
                JobState::Delayed => &mut counts.delayed,
                JobState::Active => &mut counts.active,
                JobState::Completed => &mut counts.completed,
                JobState::Failed => &mut counts.failed,
            };
            *slot += 1;
        }
        Ok(counts)
    }

    async fn forget_recipient(
        &self,
        recipient: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, QueueError> {
        let mut jobs = self.lock();
        let before = jobs.len();
        jobs.retain(|_, job| job.recipient.as_deref() != Some(recipient) || is_held(job, now));
        Ok((before - jobs.len()) as u64)
    }
}

/// Whether a worker holds the job now (active, lease not yet over).
fn is_held(job: &Job, now: DateTime<Utc>) -> bool {
    job.state == JobState::Active && job.run_at > now
}

#[cfg(test)]
mod tests {
    use super::MemoryJobQueue;

    port_contracts::job_queue_contract!(|| async { ((), MemoryJobQueue::new()) });
}
