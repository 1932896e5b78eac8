//! The scheduler over an in-memory ledger: one run per tick however many schedulers share the
//! ledger, a panicking job recorded as failed, and runs by hand.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kernel::{Clock, SystemClock};
use scheduler_core::{
    CronEntry, CronLedger, CronTask, RunOutcome, Schedule, Scheduler, TaskOutcome, Trigger,
};
use store_memory::MemoryCronLedger;

#[derive(Default)]
struct Counting(AtomicU64);

#[async_trait]
impl CronTask for Counting {
    async fn run(&self, _now: DateTime<Utc>) -> Result<TaskOutcome, String> {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(TaskOutcome {
            items: n,
            note: format!("run {n}"),
        })
    }
}

struct Exploding;

#[async_trait]
impl CronTask for Exploding {
    async fn run(&self, _now: DateTime<Utc>) -> Result<TaskOutcome, String> {
        panic!("disk on fire");
    }
}

fn scheduler(ledger: Arc<dyn CronLedger>, task: Arc<dyn CronTask>, runner: &str) -> Scheduler {
    let entry = CronEntry {
        name: "job",
        description: "a job",
        schedule: Schedule::parse("*/2 * * * * *").unwrap(),
        enabled: true,
        task,
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Scheduler::new(vec![entry], ledger, clock, runner.to_owned())
}

#[tokio::test]
async fn schedulers_sharing_a_ledger_run_each_tick_once() {
    let ledger: Arc<dyn CronLedger> = Arc::new(MemoryCronLedger::new());
    let task = Arc::new(Counting::default());
    let (a, b) = (
        scheduler(Arc::clone(&ledger), task.clone(), "a"),
        scheduler(Arc::clone(&ledger), task.clone(), "b"),
    );
    let tick = Utc::now();
    let (ran_a, ran_b) = tokio::join!(a.run_tick("job", tick), b.run_tick("job", tick));
    let runs = [ran_a.unwrap(), ran_b.unwrap()];
    assert_eq!(runs.iter().filter(|r| r.is_some()).count(), 1);
    assert_eq!(task.0.load(Ordering::SeqCst), 1);
    let next = tick + chrono::TimeDelta::seconds(2);
    assert!(b.run_tick("job", next).await.unwrap().is_some());
    let status = a.status(10).await.unwrap();
    assert_eq!(
        status[0].history.len(),
        2,
        "both runs recorded, whoever ran them"
    );
    assert!(status[0].next_run.is_some());
}

#[tokio::test]
async fn a_panicking_job_is_a_failed_run_and_the_scheduler_goes_on() {
    let ledger: Arc<dyn CronLedger> = Arc::new(MemoryCronLedger::new());
    let s = scheduler(Arc::clone(&ledger), Arc::new(Exploding), "a");
    let run = s.run_tick("job", Utc::now()).await.unwrap().unwrap();
    assert_eq!(run.outcome, RunOutcome::Failed);
    assert!(run.error.unwrap().contains("disk on fire"));
    assert!(
        s.run_tick("job", Utc::now() + chrono::TimeDelta::seconds(2))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_job_run_by_hand_is_recorded_as_manual_and_unknown_jobs_are_refused() {
    let ledger: Arc<dyn CronLedger> = Arc::new(MemoryCronLedger::new());
    let s = scheduler(Arc::clone(&ledger), Arc::new(Counting::default()), "cli");
    let run = s.run_now("job").await.unwrap();
    assert_eq!(
        (run.trigger, run.items, run.runner.as_str()),
        (Trigger::Manual, 1, "cli")
    );
    assert!(s.run_now("nope").await.is_err());
    assert_eq!(ledger.runs("job", 5).await.unwrap(), [run]);
}
