//! Drives an `EmailWorker` until cancelled: take a batch while there is work, poll when idle.

use std::time::Duration;

use notify_core::EmailWorker;
use tokio_util::sync::CancellationToken;

const IDLE_POLL: Duration = Duration::from_millis(200);
const ERROR_PAUSE: Duration = Duration::from_secs(2);

pub async fn run(worker: EmailWorker, batch: usize, stop: CancellationToken) {
    tracing::info!(batch, "email worker started");
    while !stop.is_cancelled() {
        // The batch in flight is finished even when stop arrives meanwhile: a job is never
        // abandoned half-sent by a clean shutdown.
        let pause = match worker.try_process_batch(batch).await {
            Ok(steps) if steps.is_empty() => IDLE_POLL,
            Ok(_) => continue,
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
