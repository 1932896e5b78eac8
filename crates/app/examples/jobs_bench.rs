//! Email-job throughput and latency on Redis (see `bench/jobs.sh`), with worker processes on a
//! single-threaded runtime each (one core's worth), draining as `console-worker` does
//! (`app::worker_loop` with the given concurrency), and a transport that does nothing. `run`
//! measures twice: drain (JOBS sealed email jobs enqueued through the outbox, then the workers
//! start; jobs/s between the first and the last completion) and latency (the workers running,
//! the same number enqueued as fast as the producer can; enqueue-to-done p50/p99).
//!
//! `jobs_bench run <redis-url> <workers> <jobs> <concurrency>` · `jobs_bench worker <redis-url> <prefix> <concurrency>`
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark tool")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::TimeDelta;
use kernel::settings::SettingsService;
use kernel::{Clock, PageRequest, SystemClock};
use notify_core::{
    EMAIL_QUEUE, EmailJob, EmailOutbox, EmailWorker, EmailWorkerPorts, JobQueue, JobState, Links,
    MailError, MailTransport, OutgoingEmail, RetryPolicy,
};
use seal_chacha::AeadSealer;
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
        tls_ca_file: None,
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

async fn worker(url: &str, prefix: &str, concurrency: usize) {
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
    app::worker_loop::run(
        worker,
        concurrency,
        Arc::new(http_api::Metrics::new("worker", "bench").expect("metrics")),
        tokio_util::sync::CancellationToken::new(),
    )
    .await;
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
    concurrency: usize,
) -> Vec<std::process::Child> {
    let exe = std::env::current_exe().unwrap();
    (0..workers)
        .map(|_| {
            std::process::Command::new(&exe)
                .args(["worker", url, prefix, &concurrency.to_string()])
                .spawn()
                .unwrap()
        })
        .collect()
}

/// CPU seconds a process has used so far (Linux: utime + stime from `/proc`).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: f64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

/// The redis-server's process id, from `INFO server`.
fn redis_pid(url: &str) -> u32 {
    let info = std::process::Command::new("redis-cli")
        .args(["-u", url, "info", "server"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&info.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("process_id:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// What a run cost: jobs per second between the first and the last completion, enqueue-to-done
/// latencies sorted, and CPU microseconds per job in Redis and in the workers.
struct Finished {
    rate: f64,
    latencies: Vec<i64>,
    redis_us: f64,
    workers_us: f64,
}

/// Waits until `jobs` are completed and stops the workers.
async fn finish(
    queue: &RedisJobQueue,
    jobs: usize,
    mut children: Vec<std::process::Child>,
    redis: u32,
    redis_before: f64,
) -> Finished {
    while (queue.counts(EMAIL_QUEUE).await.unwrap().completed as usize) < jobs {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let redis_cpu = cpu_seconds(redis) - redis_before;
    let workers_cpu: f64 = children.iter().map(|child| cpu_seconds(child.id())).sum();
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
    let per_job = |seconds: f64| seconds * 1e6 / jobs as f64;
    Finished {
        rate: jobs as f64 / span,
        latencies,
        redis_us: per_job(redis_cpu),
        workers_us: per_job(workers_cpu),
    }
}

async fn run(url: &str, workers: usize, jobs: usize, concurrency: usize) {
    let sealer = Arc::new(AeadSealer::new(&KEY, &[]));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // Drain: the queue filled first, then the workers start.
    let prefix = format!("bench-{}-drain-{concurrency}-{workers}", std::process::id());
    let queue = connect_queue(url, &prefix).await;
    let outbox = EmailOutbox::new(queue.clone(), sealer.clone(), RETRY, Arc::clone(&clock));
    let enqueue_rate = enqueue(&outbox, jobs).await;
    let redis = redis_pid(url);
    let redis_before = cpu_seconds(redis);
    let children = spawn_workers(url, &prefix, workers, concurrency);
    let drain = finish(&queue, jobs, children, redis, redis_before).await;
    // Latency: the workers running, the jobs enqueued as fast as the producer can.
    let prefix = format!(
        "bench-{}-latency-{concurrency}-{workers}",
        std::process::id()
    );
    let queue = connect_queue(url, &prefix).await;
    let children = spawn_workers(url, &prefix, workers, concurrency);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let outbox = EmailOutbox::new(queue.clone(), sealer, RETRY, clock);
    enqueue(&outbox, jobs).await;
    let latency = finish(&queue, jobs, children, redis, cpu_seconds(redis)).await;
    println!(
        "rust   workers={workers} conc={concurrency:<3} jobs={jobs} enqueue={enqueue_rate:>6.0}/s drain={:>6.0}/s (CPU per job: redis {:.1} µs, workers {:.1} µs)  enqueue-to-done (producer flat out) p50={} ms p99={} ms",
        drain.rate,
        drain.redis_us,
        drain.workers_us,
        percentile(&latency.latencies, 0.5),
        percentile(&latency.latencies, 0.99),
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
        ["worker", url, prefix, concurrency] => {
            runtime.block_on(worker(url, prefix, concurrency.parse().unwrap()))
        }
        ["run", url, workers, jobs, concurrency] => runtime.block_on(run(
            url,
            workers.parse().unwrap(),
            jobs.parse().unwrap(),
            concurrency.parse().unwrap(),
        )),
        _ => eprintln!(
            "usage: jobs_bench run <redis-url> <workers> <jobs> <concurrency> | worker <redis-url> <prefix> <concurrency>"
        ),
    }
}
