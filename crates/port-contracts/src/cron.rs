//! Contract of `CronLedger`.

use chrono::{DateTime, TimeDelta};
use scheduler_core::{CronLedger, CronRun, RUNS_KEPT, RunOutcome, Trigger};

use crate::now_ms;

suite!($
    /// Runs the `CronLedger` contract: one test per behaviour.
    cron_ledger_contract, cron::cron_ledger_behaviours, dyn CronLedger, [
        a_tick_is_claimed_by_one_runner_only,
        runs_read_back_newest_first_per_task,
        each_task_keeps_only_its_recent_runs,
    ]
);

/// A run at `minute` after a fixed hour.
fn run(task: &str, minute: i64, outcome: RunOutcome) -> CronRun {
    let base = DateTime::from_timestamp_millis(1_767_225_600_000).unwrap_or_default();
    let tick = base + TimeDelta::minutes(minute);
    CronRun {
        task: task.to_owned(),
        tick,
        trigger: Trigger::Schedule,
        started_at: tick,
        duration_ms: 12,
        outcome,
        error: (outcome == RunOutcome::Failed).then(|| "boom".to_owned()),
        items: 3,
        note: "3 sessions purged".to_owned(),
        runner: "host-1".to_owned(),
    }
}

async fn a_tick_is_claimed_by_one_runner_only(ledger: &dyn CronLedger) {
    let tick = now_ms();
    assert!(ledger.claim_tick("cleanup", tick, "a").await.unwrap());
    assert!(!ledger.claim_tick("cleanup", tick, "b").await.unwrap());
    assert!(!ledger.claim_tick("cleanup", tick, "a").await.unwrap());
    assert!(
        ledger.claim_tick("other", tick, "b").await.unwrap(),
        "ticks are per task"
    );
    assert!(
        ledger
            .claim_tick("cleanup", tick + TimeDelta::seconds(1), "b")
            .await
            .unwrap(),
        "and per time"
    );
}

async fn runs_read_back_newest_first_per_task(ledger: &dyn CronLedger) {
    let (first, second) = (
        run("cleanup", 0, RunOutcome::Succeeded),
        run("cleanup", 1, RunOutcome::Failed),
    );
    ledger.record(&first).await.unwrap();
    ledger.record(&second).await.unwrap();
    ledger
        .record(&run("other", 2, RunOutcome::Succeeded))
        .await
        .unwrap();
    assert_eq!(
        ledger.runs("cleanup", 10).await.unwrap(),
        [second.clone(), first]
    );
    assert_eq!(ledger.runs("cleanup", 1).await.unwrap(), [second]);
    assert!(ledger.runs("nothing", 10).await.unwrap().is_empty());
}

async fn each_task_keeps_only_its_recent_runs(ledger: &dyn CronLedger) {
    let total = i64::try_from(RUNS_KEPT).unwrap() + 5;
    for minute in 0..total {
        ledger
            .record(&run("sample", minute, RunOutcome::Succeeded))
            .await
            .unwrap();
    }
    let kept = ledger.runs("sample", RUNS_KEPT * 2).await.unwrap();
    assert_eq!(kept.len(), RUNS_KEPT);
    assert_eq!(
        kept[0].tick,
        run("sample", total - 1, RunOutcome::Succeeded).tick
    );
}
