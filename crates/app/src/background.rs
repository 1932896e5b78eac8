//! The identity core's background tasks on the process's main Tokio runtime. Not on the HTTP
//! worker that took the request: its runtime ends with the server, and the task would be
//! dropped mid-way. Tracked, so that shutdown waits for what is running (a task may still be
//! about to queue a security email).

use std::time::Duration;

use auth_core::ports::{BackgroundTasks, Task};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Clone)]
pub struct TrackedTasks {
    tracker: TaskTracker,
    runtime: Handle,
    /// Cancelled when the process starts stopping: delayed tasks run at once.
    stopping: CancellationToken,
}

impl TrackedTasks {
    /// Runs tasks on the runtime this is called from.
    #[must_use]
    pub fn on_current_runtime() -> Self {
        Self {
            tracker: TaskTracker::new(),
            runtime: Handle::current(),
            stopping: CancellationToken::new(),
        }
    }

    /// Stops taking tasks and waits up to `within` for the running ones; whether they all ended.
    pub async fn drain(&self, within: Duration) -> bool {
        self.tracker.close();
        self.stopping.cancel();
        tokio::time::timeout(within, self.tracker.wait())
            .await
            .is_ok()
    }
}

impl BackgroundTasks for TrackedTasks {
    fn spawn(&self, task: Task) {
        self.tracker.spawn_on(task, &self.runtime);
    }

    fn spawn_after(&self, delay: Duration, task: Task) {
        if self.stopping.is_cancelled() {
            tracing::warn!("a background task to run later was dropped: the process is stopping");
            return;
        }
        let stopping = self.stopping.clone();
        let later = async move {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stopping.cancelled() => {}
            }
            task.await;
        };
        self.tracker.spawn_on(later, &self.runtime);
    }
}
