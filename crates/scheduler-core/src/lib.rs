//! Cron jobs: a named task, a schedule (cron with seconds), a switch; the `CronLedger` port
//! that makes each tick run once across any number of schedulers and records every run; and
//! the `Scheduler` service, which decides what runs, claims the tick, runs the task (a panic
//! fails that run, not the scheduler) and records the outcome.
//!
//! No I/O and no timers here: the process that drives the scheduler sleeps until the next
//! tick (`app::scheduler_loop`), the CLI runs a task once.

mod ledger;
mod schedule;
mod service;

pub use ledger::{CronLedger, CronRun, LedgerError, RUNS_KEPT, RunOutcome, Trigger};
pub use schedule::Schedule;
pub use service::{CronEntry, CronStatus, CronTask, Scheduler, SchedulerError, TaskOutcome};
