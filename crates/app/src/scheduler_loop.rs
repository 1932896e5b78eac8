//! Drives a `Scheduler`: one loop per enabled job sleeps until its next tick and runs it
//! (when this scheduler wins the tick), until cancelled; a run in progress finishes. Each tick
//! is counted in the process's metrics: run here (and how it ended) or by another scheduler.

use std::sync::Arc;
use std::time::Duration;

use http_api::Metrics;
use kernel::Clock;
use scheduler_core::Scheduler;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub fn spawn(
    scheduler: Arc<Scheduler>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> JoinSet<()> {
    let mut loops = JoinSet::new();
    for entry in scheduler.entries().iter().filter(|e| e.enabled) {
        let (scheduler, clock, stop) = (Arc::clone(&scheduler), Arc::clone(&clock), stop.clone());
        let metrics = Arc::clone(&metrics);
        let (name, schedule) = (entry.name, entry.schedule.clone());
        tracing::info!(
            job = name,
            schedule = schedule.as_str(),
            "cron job scheduled"
        );
        loops.spawn(async move {
            loop {
                let now = clock.now();
                let Some(tick) = schedule.next_after(now) else {
                    tracing::warn!(job = name, "no next tick; the job stops");
                    break;
                };
                let wait = (tick - now).to_std().unwrap_or_default();
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(wait) => {}
                }
                match scheduler.run_tick(name, tick).await {
                    Ok(Some(run)) => metrics.record_cron(
                        name,
                        run.outcome.as_str(),
                        Some(Duration::from_millis(run.duration_ms)),
                    ),
                    Ok(None) => metrics.record_cron(name, "elsewhere", None),
                    Err(error) => tracing::error!(job = name, %error, "tick skipped"),
                }
            }
        });
    }
    loops
}
