//! The identity core's background work, on the Tokio runtime of the process.

use auth_core::ports::{BackgroundTask, BackgroundTasks};
use tracing::Instrument as _;

pub struct TokioTasks;

impl BackgroundTasks for TokioTasks {
    fn spawn(&self, name: &'static str, task: BackgroundTask) {
        tokio::spawn(task.instrument(tracing::info_span!("background", task = name)));
    }
}
