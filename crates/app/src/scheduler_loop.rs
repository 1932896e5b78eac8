//! Drives a `Scheduler`: one loop per enabled job sleeps until its next tick and runs it
//! (when this scheduler wins the tick), until cancelled; a run in progress finishes.

use std::sync::Arc;

use kernel::Clock;
use scheduler_core::Scheduler;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub fn spawn(
    scheduler: Arc<Scheduler>,
    clock: Arc<dyn Clock>,
    stop: CancellationToken,
) -> JoinSet<()> {
    let mut loops = JoinSet::new();
    for entry in scheduler.entries().iter().filter(|e| e.enabled) {
        let (scheduler, clock, stop) = (Arc::clone(&scheduler), Arc::clone(&clock), stop.clone());
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
                if let Err(error) = scheduler.run_tick(name, tick).await {
                    tracing::error!(job = name, %error, "tick skipped");
                }
            }
        });
    }
    loops
}
