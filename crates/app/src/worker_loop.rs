//! Drives an `EmailWorker` until cancelled: take a batch while there is work, poll when idle;
//! counts what each job became.
//!
//! `EMAIL_WORKER_CONCURRENCY` jobs at most are in flight, split over four lanes so that fetching,
//! sending and acknowledging overlap; on shutdown the batches in hand finish.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_api::Metrics;
use notify_core::{EMAIL_QUEUE, EmailWorker, Step};
use tokio_util::sync::CancellationToken;

const IDLE_POLL: Duration = Duration::from_millis(200);
const ERROR_PAUSE: Duration = Duration::from_secs(2);

fn outcome(step: &Step) -> &'static str {
    match step {
        Step::Empty => "empty",
        Step::Sent(_) => "sent",
        Step::Suppressed(_) => "suppressed",
        Step::Retrying(_) => "retrying",
        Step::Failed(_) => "failed",
        Step::Overtaken(_) => "overtaken",
    }
}

/// Lanes a worker drains its queue in. One lane alternates with the queue's store (fetch, send,
/// acknowledge, fetch…), each side idle while the other works; with several, one lane's batch
/// is sent while others' are fetched or acknowledged. Four kept both Redis and the worker busy
/// in `bench/jobs.sh`, where two left a fifth of the throughput on the table.
const LANES: usize = 4;

/// Drains the email queue with `concurrency` jobs in flight at most, split over the lanes.
pub async fn run(
    worker: EmailWorker,
    concurrency: usize,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    tracing::info!(concurrency, "email worker started");
    let lanes = LANES.min(concurrency).max(1);
    let lane = |index: usize| {
        // The first `concurrency % lanes` lanes take one more job per batch.
        let batch = concurrency / lanes + usize::from(index < concurrency % lanes);
        drain(&worker, batch.max(1), &metrics, &stop)
    };
    futures_util::future::join_all((0..lanes).map(lane)).await;
    tracing::info!("email worker stopped");
}

/// One lane: takes batches of `batch` jobs while there are any, polls when idle.
async fn drain(worker: &EmailWorker, batch: usize, metrics: &Metrics, stop: &CancellationToken) {
    while !stop.is_cancelled() {
        // The batch in flight is finished even when stop arrives meanwhile: a job is never
        // abandoned half-sent by a clean shutdown.
        let started = Instant::now();
        let pause = match worker.try_process_batch(batch).await {
            Ok(steps) if steps.is_empty() => IDLE_POLL,
            Ok(steps) => {
                metrics.record_batch(EMAIL_QUEUE, started.elapsed());
                for step in &steps {
                    metrics.record_job(EMAIL_QUEUE, outcome(step));
                }
                continue;
            }
            Err(error) => {
                tracing::error!(%error, "job queue unavailable");
                ERROR_PAUSE
            }
        };
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
}
