//! A job queue in a map behind a mutex.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use kernel::{Page, PageRequest};
use notify_core::jobs::{
    AckRef, Acked, Claim, ClaimToken, FAILURES_KEPT, FailedAttempt, JobChange, Keep,
};
use notify_core::{Job, JobId, JobQueue, JobState, NewJob, QueueCounts, QueueError, QueueTotals};

/// A stored job and the claim that holds it, if any, with when it was made.
struct Entry {
    job: Job,
    claim: Option<(ClaimToken, DateTime<Utc>)>,
}

#[derive(Default)]
pub struct MemoryJobQueue {
    jobs: Mutex<HashMap<JobId, Entry>>,
    totals: Mutex<HashMap<String, QueueTotals>>,
    paused: Mutex<HashSet<String>>,
}

impl MemoryJobQueue {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<JobId, Entry>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(&self, queue: &str, event: impl FnOnce(&mut QueueTotals)) {
        let mut totals = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
        event(totals.entry(queue.to_owned()).or_default());
    }

    /// Applies an administrator's `change` to job `id` of `queue` when it is in `state`.
    fn change_in(
        &self,
        queue: &str,
        id: &JobId,
        state: JobState,
        change: impl FnOnce(&mut Entry),
    ) -> JobChange {
        let mut jobs = self.lock();
        let Some(entry) = jobs.get_mut(id).filter(|entry| entry.job.queue == queue) else {
            return JobChange::NotFound;
        };
        if entry.job.state != state {
            return JobChange::Refused(entry.job.state);
        }
        change(entry);
        JobChange::Done
    }

    /// Applies `change` when `claim` still holds its job, and counts it as `event`; an
    /// `outcome` (completion or failure, at that time) counts the time the job was held.
    fn acknowledge(
        &self,
        claim: &AckRef,
        change: impl FnOnce(&mut Job),
        event: impl FnOnce(&mut QueueTotals),
        outcome: Option<DateTime<Utc>>,
    ) -> Acked {
        let mut jobs = self.lock();
        match jobs.get_mut(&claim.job) {
            Some(entry)
                if entry.job.state == JobState::Active
                    && entry
                        .claim
                        .as_ref()
                        .is_some_and(|(token, _)| *token == claim.token) =>
            {
                let claimed = entry.claim.take().map(|(_, at)| at);
                change(&mut entry.job);
                let held = match (claimed, outcome) {
                    (Some(claimed), Some(outcome)) => (outcome - claimed).num_milliseconds(),
                    _ => 0,
                };
                let queue = entry.job.queue.clone();
                drop(jobs);
                self.count(&queue, |totals| {
                    event(totals);
                    totals.processing_ms += u64::try_from(held).unwrap_or(0);
                });
                Acked::Applied
            }
            _ => Acked::Stale,
        }
    }
}

fn is_due(job: &Job, now: DateTime<Utc>) -> bool {
    matches!(
        job.state,
        JobState::Waiting | JobState::Delayed | JobState::Active
    ) && job.run_at <= now
}

/// Keeps `error` as the job's last error and among its failures, at `at`.
fn record_failure(job: &mut Job, error: &str, at: DateTime<Utc>) {
    job.last_error = Some(error.to_owned());
    job.failures.push(FailedAttempt {
        attempt: job.attempts,
        at,
        error: error.to_owned(),
    });
    let excess = job.failures.len().saturating_sub(FAILURES_KEPT);
    job.failures.drain(..excess);
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
            failures: Vec::new(),
        };
        let queue = stored.queue.clone();
        self.lock().insert(
            id.clone(),
            Entry {
                job: stored,
                claim: None,
            },
        );
        self.count(&queue, |t| t.enqueued += 1);
        Ok(id)
    }

    async fn reserve(
        &self,
        queue: &str,
        now: DateTime<Utc>,
        lease: TimeDelta,
    ) -> Result<Option<Claim>, QueueError> {
        if self.is_paused(queue).await? {
            return Ok(None);
        }
        let mut jobs = self.lock();
        let next = jobs
            .values_mut()
            .filter(|entry| entry.job.queue == queue && is_due(&entry.job, now))
            .min_by(|a, b| {
                a.job
                    .run_at
                    .cmp(&b.job.run_at)
                    .then_with(|| a.job.id.cmp(&b.job.id))
            });
        Ok(next.map(|entry| {
            let token = ClaimToken::generate();
            entry.job.state = JobState::Active;
            entry.job.attempts += 1;
            entry.job.run_at = now + lease;
            entry.claim = Some((token.clone(), now));
            Claim {
                job: entry.job.clone(),
                token,
            }
        }))
    }

    async fn complete(&self, claim: &AckRef, now: DateTime<Utc>) -> Result<Acked, QueueError> {
        Ok(self.acknowledge(
            claim,
            |job| {
                job.state = JobState::Completed;
                job.finished_at = Some(now);
                job.payload.clear();
                job.recipient = None;
            },
            |t| t.completed += 1,
            Some(now),
        ))
    }

    async fn retry_at(
        &self,
        claim: &AckRef,
        error: &str,
        run_at: DateTime<Utc>,
    ) -> Result<Acked, QueueError> {
        Ok(self.acknowledge(
            claim,
            |job| {
                job.state = JobState::Delayed;
                record_failure(job, error, Utc::now());
                job.run_at = run_at;
            },
            |t| t.retried += 1,
            None,
        ))
    }

    async fn fail(
        &self,
        claim: &AckRef,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<Acked, QueueError> {
        Ok(self.acknowledge(
            claim,
            |job| {
                job.state = JobState::Failed;
                record_failure(job, error, now);
                job.finished_at = Some(now);
            },
            |t| t.failed += 1,
            Some(now),
        ))
    }

    async fn find_job(&self, id: &JobId) -> Result<Option<Job>, QueueError> {
        Ok(self.lock().get(id).map(|entry| entry.job.clone()))
    }

    async fn counts(&self, queue: &str) -> Result<QueueCounts, QueueError> {
        let jobs = self.lock();
        let mut counts = QueueCounts::default();
        for entry in jobs.values().filter(|entry| entry.job.queue == queue) {
            let slot = match entry.job.state {
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

    async fn totals(&self, queue: &str) -> Result<QueueTotals, QueueError> {
        let totals = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(totals.get(queue).copied().unwrap_or_default())
    }

    async fn list(
        &self,
        queue: &str,
        state: JobState,
        page: PageRequest,
    ) -> Result<Page<Job>, QueueError> {
        let jobs = self.lock();
        let mut matching: Vec<&Job> = jobs
            .values()
            .map(|entry| &entry.job)
            .filter(|job| job.queue == queue && job.state == state)
            .collect();
        if state.is_finished() {
            matching.sort_by(|a, b| b.finished_at.cmp(&a.finished_at).then(b.id.cmp(&a.id)));
        } else {
            matching.sort_by(|a, b| a.run_at.cmp(&b.run_at).then(a.id.cmp(&b.id)));
        }
        let offset = usize::try_from(page.offset()).unwrap_or(usize::MAX);
        let items = matching
            .iter()
            .skip(offset)
            .take(page.limit as usize)
            .map(|job| (*job).clone())
            .collect();
        Ok(Page {
            items,
            total: matching.len() as u64,
            request: page,
        })
    }

    async fn retry_failed(
        &self,
        queue: &str,
        id: &JobId,
        now: DateTime<Utc>,
    ) -> Result<JobChange, QueueError> {
        Ok(self.change_in(queue, id, JobState::Failed, |entry| {
            entry.job.state = JobState::Waiting;
            entry.job.attempts = 0;
            entry.job.run_at = now;
            entry.job.finished_at = None;
            entry.claim = None;
        }))
    }

    async fn remove(
        &self,
        queue: &str,
        id: &JobId,
        now: DateTime<Utc>,
    ) -> Result<JobChange, QueueError> {
        let mut jobs = self.lock();
        let Some(entry) = jobs.get(id).filter(|entry| entry.job.queue == queue) else {
            return Ok(JobChange::NotFound);
        };
        if entry.job.state == JobState::Active && entry.job.run_at > now {
            return Ok(JobChange::Refused(JobState::Active));
        }
        jobs.remove(id);
        Ok(JobChange::Done)
    }

    async fn promote(
        &self,
        queue: &str,
        id: &JobId,
        now: DateTime<Utc>,
    ) -> Result<JobChange, QueueError> {
        Ok(self.change_in(queue, id, JobState::Delayed, |entry| {
            entry.job.state = JobState::Waiting;
            entry.job.run_at = now;
        }))
    }

    async fn set_paused(&self, queue: &str, paused: bool) -> Result<(), QueueError> {
        let mut set = self.paused.lock().unwrap_or_else(PoisonError::into_inner);
        if paused {
            set.insert(queue.to_owned());
        } else {
            set.remove(queue);
        }
        Ok(())
    }

    async fn is_paused(&self, queue: &str) -> Result<bool, QueueError> {
        Ok(self
            .paused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(queue))
    }

    async fn clean(&self, queue: &str, state: JobState, keep: Keep) -> Result<u64, QueueError> {
        if !state.is_finished() {
            return Ok(0);
        }
        let mut jobs = self.lock();
        let mut finished: Vec<(Option<DateTime<Utc>>, JobId)> = jobs
            .values()
            .map(|entry| &entry.job)
            .filter(|job| job.queue == queue && job.state == state)
            .map(|job| (job.finished_at, job.id.clone()))
            .collect();
        finished.sort_by(|a, b| b.cmp(a));
        let mut kept = 0;
        let mut removed = 0;
        for (finished_at, id) in finished {
            let recent = keep.since.is_none_or(|since| finished_at >= Some(since));
            if recent && kept < keep.newest {
                kept += 1;
            } else {
                jobs.remove(&id);
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn forget_recipient(
        &self,
        recipient: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, QueueError> {
        let mut jobs = self.lock();
        let before = jobs.len();
        jobs.retain(|_, entry| {
            entry.job.recipient.as_deref() != Some(recipient) || is_held(&entry.job, now)
        });
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
