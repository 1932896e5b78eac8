//! Drives an `EmailWorker` until cancelled: take a batch while there is work, poll when idle;
//! counts what each job became when the process has metrics to show.

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

pub async fn run(
    worker: EmailWorker,
    batch: usize,
    metrics: Option<Arc<Metrics>>,
    stop: CancellationToken,
) {
    tracing::info!(batch, "email worker started");
    while !stop.is_cancelled() {
        // The batch in flight is finished even when stop arrives meanwhile: a job is never
        // abandoned half-sent by a clean shutdown.
        let started = Instant::now();
        let pause = match worker.try_process_batch(batch).await {
            Ok(steps) if steps.is_empty() => IDLE_POLL,
            Ok(steps) => {
                if let Some(metrics) = &metrics {
                    metrics.record_batch(EMAIL_QUEUE, started.elapsed());
                    for step in &steps {
                        metrics.record_job(EMAIL_QUEUE, outcome(step));
                    }
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
    tracing::info!("email worker stopped");
}
