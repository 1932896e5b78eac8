//! What an administrator may do with the queues: look (counts, jobs by state, one job), retry
//! a failed job or all of them, remove a job, promote a delayed one, pause and resume a queue,
//! clean finished history. Unknown queues and jobs are errors of their own, so the edge answers
//! them as "not found".

use std::sync::Arc;

use kernel::{Clock, Page, PageRequest};

use crate::QUEUES;
use crate::jobs::{
    Job, JobChange, JobId, JobQueue, JobState, Keep, QueueCounts, QueueError, QueueTotals,
};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no queue is named {0:?}")]
    UnknownQueue(String),
    #[error("no such job in this queue")]
    JobNotFound,
    /// Only a failed job can be retried.
    #[error("the job is {}, not failed", .0.as_str())]
    NotFailed(JobState),
    /// The job's state does not allow the change (`rule` says which states do).
    #[error("the job is {}: {rule}", .state.as_str())]
    WrongState { state: JobState, rule: &'static str },
    /// A page that starts deeper than [`LIST_DEPTH_MAX`] jobs into a list.
    #[error("pages reach {LIST_DEPTH_MAX} jobs into a list at most")]
    TooDeep,
    /// Only completed or failed jobs can be cleaned.
    #[error("only completed or failed jobs can be cleaned, not {}", .0.as_str())]
    NotCleanable(JobState),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// A queue as the admin console sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueStats {
    pub name: &'static str,
    pub counts: QueueCounts,
    pub totals: QueueTotals,
    /// Whether an administrator paused it: no job of it is handed out.
    pub paused: bool,
}

/// How deep into a list of jobs a page may start: a store walks the jobs before it (Redis
/// reads a stream's entries up to the page), so the depth bounds what one request costs it.
pub const LIST_DEPTH_MAX: u64 = 10_000;

/// Most failed jobs one "retry all" puts back, so that one call does bounded work (a store call
/// each); the answer says how many, and another call takes the next ones.
pub const RETRY_ALL_MAX: u64 = 1_000;

pub struct QueueAdmin {
    queue: Arc<dyn JobQueue>,
    clock: Arc<dyn Clock>,
}

impl QueueAdmin {
    #[must_use]
    pub fn new(queue: Arc<dyn JobQueue>, clock: Arc<dyn Clock>) -> Self {
        Self { queue, clock }
    }

    fn known(name: &str) -> Result<&'static str, AdminError> {
        QUEUES
            .into_iter()
            .find(|queue| *queue == name)
            .ok_or_else(|| AdminError::UnknownQueue(name.to_owned()))
    }

    /// Every queue with its counts and running totals.
    ///
    /// # Errors
    /// [`AdminError::Queue`] when the store fails.
    pub async fn stats(&self) -> Result<Vec<QueueStats>, AdminError> {
        let mut stats = Vec::with_capacity(QUEUES.len());
        for name in QUEUES {
            stats.push(QueueStats {
                name,
                counts: self.queue.counts(name).await?,
                totals: self.queue.totals(name).await?,
                paused: self.queue.is_paused(name).await?,
            });
        }
        Ok(stats)
    }

    /// The jobs of `queue` in `state`, a page at a time, starting [`LIST_DEPTH_MAX`] jobs deep
    /// at most.
    ///
    /// # Errors
    /// [`AdminError::UnknownQueue`], [`AdminError::TooDeep`]; [`AdminError::Queue`] when the
    /// store fails.
    pub async fn jobs(
        &self,
        queue: &str,
        state: JobState,
        page: PageRequest,
    ) -> Result<Page<Job>, AdminError> {
        let queue = Self::known(queue)?;
        if page.offset() > LIST_DEPTH_MAX {
            return Err(AdminError::TooDeep);
        }
        Ok(self.queue.list(queue, state, page).await?)
    }

    /// The job `id` of `queue` (its payload is the caller's to leave out).
    ///
    /// # Errors
    /// [`AdminError::UnknownQueue`], [`AdminError::JobNotFound`] (also for an id of the wrong
    /// shape); [`AdminError::Queue`] when the store fails.
    pub async fn job(&self, queue: &str, id: &str) -> Result<Job, AdminError> {
        let (queue, id) = (Self::known(queue)?, Self::job_id(id)?);
        self.queue
            .find_job(&id)
            .await?
            .filter(|job| job.queue == queue)
            .ok_or(AdminError::JobNotFound)
    }

    fn job_id(id: &str) -> Result<JobId, AdminError> {
        JobId::parse(id).map_err(|_| AdminError::JobNotFound)
    }

    /// Puts the failed job `id` of `queue` back to waiting; answers the job as it now is.
    ///
    /// # Errors
    /// [`AdminError::UnknownQueue`], [`AdminError::JobNotFound`] (also for an id of the wrong
    /// shape), [`AdminError::NotFailed`]; [`AdminError::Queue`] when the store fails.
    pub async fn retry(&self, queue: &str, id: &str) -> Result<Job, AdminError> {
        let (queue, id) = (Self::known(queue)?, Self::job_id(id)?);
        match self
            .queue
            .retry_failed(queue, &id, self.clock.now())
            .await?
        {
            JobChange::Done => self.job(queue, id.as_str()).await,
            JobChange::NotFound => Err(AdminError::JobNotFound),
            JobChange::Refused(state) => Err(AdminError::NotFailed(state)),
        }
    }

    /// Puts the failed jobs of `queue` back to waiting, those that had failed when it was
    /// asked and [`RETRY_ALL_MAX`] at most; answers how many.
    ///
    /// # Errors
    /// [`AdminError::UnknownQueue`]; [`AdminError::Queue`] when the store fails (the jobs put
    /// back until then stay put back).
    pub async fn retry_all(&self, queue: &str) -> Result<u64, AdminError> {
        const BATCH: u32 = 100;
        let queue = Self::known(queue)?;
        let asked = self.clock.now();
        // The failed jobs first, then the retries: a retried job that fails again at once goes
        // back to the top of the failed list, and must not be taken a second time.
        let mut ids = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for page in 1.. {
            let request = PageRequest { page, limit: BATCH };
            let failed = self.queue.list(queue, JobState::Failed, request).await?;
            let last = failed.items.len() < BATCH as usize;
            let before = failed
                .items
                .into_iter()
                .filter(|job| job.finished_at.is_none_or(|at| at <= asked))
                .filter(|job| seen.insert(job.id.clone()));
            ids.extend(before.map(|job| job.id));
            if last || ids.len() as u64 >= RETRY_ALL_MAX {
                break;
            }
        }
        let mut retried = 0;
        for id in ids.iter().take(RETRY_ALL_MAX as usize) {
            let change = self.queue.retry_failed(queue, id, self.clock.now()).await?;
            retried += u64::from(change == JobChange::Done);
        }
        Ok(retried)
    }

    /// Deletes the job `id` of `queue`, whatever its state, unless a worker holds it.
    ///
    /// # Errors
    /// [`AdminError::UnknownQueue`], [`AdminError::JobNotFound`], [`AdminError::WrongState`]
    /// for a job a worker holds; [`AdminError::Queue`] when the store fails.
    pub async fn remove(&self, queue: &str, id: &str) -> Result<(), AdminError> {
        let (queue, id) = (Self::known(queue)?, Self::job_id(id)?);
        match self.queue.remove(queue, &id, self.clock.now()).await? {
            JobChange::Done => Ok(()),
            JobChange::NotFound => Err(AdminError::JobNotFound),
            JobChange::Refused(state) => Err(AdminError::WrongState {
                state,
                rule: "a job a worker holds cannot be removed",
            }),
        }
    }

    /// Makes the delayed job `id` of `queue` due now; answers the job as it now is.
    ///
    /// # Errors
    /// [`AdminError::UnknownQueue`], [`AdminError::JobNotFound`], [`AdminError::WrongState`]
    /// for a job that is not delayed; [`AdminError::Queue`] when the store fails.
    pub async fn promote(&self, queue: &str, id: &str) -> Result<Job, AdminError> {
        let (queue, id) = (Self::known(queue)?, Self::job_id(id)?);
        match self.queue.promote(queue, &id, self.clock.now()).await? {
            JobChange::Done => self.job(queue, id.as_str()).await,
            JobChange::NotFound => Err(AdminError::JobNotFound),
            JobChange::Refused(state) => Err(AdminError::WrongState {
                state,
                rule: "only a delayed job can be promoted",
            }),
        }
    }

    /// Pauses `queue` (no job of it is handed out; the jobs held finish) or resumes it.
    ///
    /// # Errors
    /// [`AdminError::UnknownQueue`]; [`AdminError::Queue`] when the store fails.
    pub async fn set_paused(&self, queue: &str, paused: bool) -> Result<(), AdminError> {
        let queue = Self::known(queue)?;
        Ok(self.queue.set_paused(queue, paused).await?)
    }

    /// Deletes every job of `queue` in `state` (completed or failed); answers how many.
    ///
    /// # Errors
    /// [`AdminError::UnknownQueue`], [`AdminError::NotCleanable`]; [`AdminError::Queue`] when
    /// the store fails.
    pub async fn clean(&self, queue: &str, state: JobState) -> Result<u64, AdminError> {
        let queue = Self::known(queue)?;
        if !state.is_finished() {
            return Err(AdminError::NotCleanable(state));
        }
        Ok(self.queue.clean(queue, state, Keep::NONE).await?)
    }
}
