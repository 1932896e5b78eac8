//! What an administrator may do with the queues: look (counts, jobs by state), retry a failed
//! job, clean finished history. Unknown queues and jobs are errors of their own, so the edge
//! answers them as "not found".

use std::sync::Arc;

use kernel::{Clock, Page, PageRequest};

use crate::QUEUES;
use crate::jobs::{
    Job, JobId, JobQueue, JobState, Keep, QueueCounts, QueueError, QueueTotals, RetryFailed,
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
}

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
            });
        }
        Ok(stats)
    }

    /// The jobs of `queue` in `state`, a page at a time.
    ///
    /// # Errors
    /// [`AdminError::UnknownQueue`]; [`AdminError::Queue`] when the store fails.
    pub async fn jobs(
        &self,
        queue: &str,
        state: JobState,
        page: PageRequest,
    ) -> Result<Page<Job>, AdminError> {
        let queue = Self::known(queue)?;
        Ok(self.queue.list(queue, state, page).await?)
    }

    /// Puts the failed job `id` of `queue` back to waiting; answers the job as it now is.
    ///
    /// # Errors
    /// [`AdminError::UnknownQueue`], [`AdminError::JobNotFound`] (also for an id of the wrong
    /// shape), [`AdminError::NotFailed`]; [`AdminError::Queue`] when the store fails.
    pub async fn retry(&self, queue: &str, id: &str) -> Result<Job, AdminError> {
        let queue = Self::known(queue)?;
        let id = JobId::parse(id).map_err(|_| AdminError::JobNotFound)?;
        match self
            .queue
            .retry_failed(queue, &id, self.clock.now())
            .await?
        {
            RetryFailed::Requeued => self
                .queue
                .find_job(&id)
                .await?
                .ok_or(AdminError::JobNotFound),
            RetryFailed::NotFound => Err(AdminError::JobNotFound),
            RetryFailed::NotFailed(state) => Err(AdminError::NotFailed(state)),
        }
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
