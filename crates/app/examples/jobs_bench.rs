//! Email-job throughput and latency on Redis (see `bench/jobs.sh`), with worker processes on a
//! single-threaded runtime each (one core's worth) and a transport that does nothing. `run`
//! measures twice: drain (JOBS sealed email jobs enqueued through the outbox, then the workers
//! start; jobs/s between the first and the last completion) and latency (the workers running,
//! the same number enqueued as fast as the producer can; enqueue-to-done p50/p99).
//!
//! `jobs_bench run <redis-url> <workers> <jobs> <batch>` · `jobs_bench worker <redis-url> <prefix> <batch>`
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark tool")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use auth_crypto::AeadSealer;
use chrono::TimeDelta;
use kernel::settings::SettingsService;
use kernel::{Clock, PageRequest, SystemClock};
use notify_core::{
    EMAIL_QUEUE, EmailJob, EmailOutbox, EmailWorker, EmailWorkerPorts, JobQueue, JobState, Links,
    MailError, MailTransport, OutgoingEmail, RetryPolicy,
};
use store_redis::{History, RedisConnection, RedisJobQueue, RedisSettings};

const KEY: [u8; 32] = [9; 32];
const RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 5,
    first_backoff: TimeDelta::seconds(2),
    visibility_timeout: TimeDelta::seconds(30),
};

struct NoOp;

#[async_trait]
impl MailTransport for NoOp {
    async fn send(&self, _email: &OutgoingEmail) -> Result<(), MailError> {
        Ok(())
    }
}

async fn connect_queue(url: &str, prefix: &str) -> Arc<RedisJobQueue> {
    let connection = RedisConnection::connect(&RedisSettings {
        url: url.to_owned(),
        pool_size: 2,
        timeout: Duration::from_secs(10),
    })
    .await
    .unwrap();
    let history = History {
        completed_count: 1_000_000,
        completed_age: TimeDelta::days(1),
        failed_count: 1_000_000,
        failed_age: TimeDelta::days(1),
    };
    Arc::new(RedisJobQueue::new(&connection, prefix, history))
}

async fn worker(url: &str, prefix: &str, batch: usize) {
    let queue = connect_queue(url, prefix).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let worker = EmailWorker::new(
        EmailWorkerPorts {
            queue,
            transport: Arc::new(NoOp),
            sealer: Arc::new(AeadSealer::new(&KEY, &[])),
            clock: Arc::clone(&clock),
            preferences: SettingsService::new(
                Arc::new(store_memory::MemoryPortfolioStore::new()),
                clock,
            ),
        },
        Links::new("https://bench.example"),
        RETRY,
    );
    loop {
        match worker.try_process_batch(batch).await {
            Ok(steps) if steps.is_empty() => tokio::time::sleep(Duration::from_millis(2)).await,
            Ok(_) => {}
            Err(error) => {
                eprintln!("worker: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Enqueues `jobs` emails through the outbox, 128 in flight (fred pipelines them); answers
/// the rate.
async fn enqueue(outbox: &EmailOutbox, jobs: usize) -> f64 {
    let started = Instant::now();
    let email = EmailJob::PasswordChanged {
        to: "bench@example.com".to_owned(),
        name: "Bench".to_owned(),
    };
    let mut pending = futures_util::stream::FuturesUnordered::new();
    for _ in 0..jobs {
        pending.push(outbox.enqueue(&email));
        if pending.len() >= 128 {
            futures_util::StreamExt::next(&mut pending)
                .await
                .unwrap()
                .unwrap();
        }
    }
    while let Some(result) = futures_util::StreamExt::next(&mut pending).await {
        result.unwrap();
    }
    jobs as f64 / started.elapsed().as_secs_f64()
}

fn spawn_workers(
    url: &str,
    prefix: &str,
    workers: usize,
    batch: usize,
) -> Vec<std::process::Child> {
    let exe = std::env::current_exe().unwrap();
    (0..workers)
        .map(|_| {
            std::process::Command::new(&exe)
                .args(["worker", url, prefix, &batch.to_string()])
                .spawn()
                .unwrap()
        })
        .collect()
}

/// Waits until `jobs` are completed, stops the workers, and answers (jobs per second between
/// the first and the last completion, enqueue-to-done latencies sorted).
async fn finish(
    queue: &RedisJobQueue,
    jobs: usize,
    mut children: Vec<std::process::Child>,
) -> (f64, Vec<i64>) {
    while (queue.counts(EMAIL_QUEUE).await.unwrap().completed as usize) < jobs {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut latencies = Vec::with_capacity(jobs);
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    for page in 1.. {
        let listed = queue
            .list(
                EMAIL_QUEUE,
                JobState::Completed,
                PageRequest { page, limit: 100 },
            )
            .await
            .unwrap();
        if listed.items.is_empty() {
            break;
        }
        for job in listed.items {
            let fin = job.finished_at.unwrap().timestamp_millis();
            first = first.min(fin);
            last = last.max(fin);
            latencies.push(fin - job.enqueued_at.timestamp_millis());
        }
    }
    latencies.sort_unstable();
    let span = (last - first).max(1) as f64 / 1000.0;
    (jobs as f64 / span, latencies)
}

async fn run(url: &str, workers: usize, jobs: usize, batch: usize) {
    let sealer = Arc::new(AeadSealer::new(&KEY, &[]));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // Drain: the queue filled first, then the workers start.
    let prefix = format!("bench-{}-drain-{batch}-{workers}", std::process::id());
    let queue = connect_queue(url, &prefix).await;
    let outbox = EmailOutbox::new(queue.clone(), sealer.clone(), RETRY, Arc::clone(&clock));
    let enqueue_rate = enqueue(&outbox, jobs).await;
    let children = spawn_workers(url, &prefix, workers, batch);
    let (drain, _) = finish(&queue, jobs, children).await;
    // Latency: the workers running, the jobs enqueued as fast as the producer can.
    let prefix = format!("bench-{}-latency-{batch}-{workers}", std::process::id());
    let queue = connect_queue(url, &prefix).await;
    let children = spawn_workers(url, &prefix, workers, batch);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let outbox = EmailOutbox::new(queue.clone(), sealer, RETRY, clock);
    enqueue(&outbox, jobs).await;
    let (_, latencies) = finish(&queue, jobs, children).await;
    println!(
        "rust   workers={workers} batch={batch:<3} jobs={jobs} enqueue={enqueue_rate:>6.0}/s drain={drain:>6.0}/s  enqueue-to-done (producer flat out) p50={} ms p99={} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["worker", url, prefix, batch] => {
            runtime.block_on(worker(url, prefix, batch.parse().unwrap()))
        }
        ["run", url, workers, jobs, batch] => runtime.block_on(run(
            url,
            workers.parse().unwrap(),
            jobs.parse().unwrap(),
            batch.parse().unwrap(),
        )),
        _ => eprintln!(
            "usage: jobs_bench run <redis-url> <workers> <jobs> <batch> | worker <redis-url> <prefix> <batch>"
        ),
    }
}
