//! What the process counts: HTTP requests by route, method and status class, their latency,
//! and (where a worker runs in this process) job outcomes and processing time; rendered as
//! Prometheus text at `GET /metrics` with the queues' current counts, and as JSON for admins.
//!
//! Routes are labelled by their pattern (`/api/v1/sessions/{id}`), never by the path sent, so
//! the number of series stays bounded whatever clients request.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use notify_core::QueueStats;
use prometheus::core::Collector as _;
use prometheus::{
    CounterVec, Encoder as _, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::ApiError;

/// The process's counters, shared by every HTTP worker thread.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    queue_jobs: IntGaugeVec,
    queue_paused: IntGaugeVec,
    queue_events: IntCounterVec,
    queue_processing: CounterVec,
    /// Held while the queues' totals are copied in, so two scrapes never add them up twice.
    copying_queue_totals: Mutex<()>,
    jobs: IntCounterVec,
    job_seconds: HistogramVec,
    cron_runs: IntCounterVec,
    cron_seconds: HistogramVec,
    started: Instant,
    by_class: [AtomicU64; 5],
    total_micros: AtomicU64,
}

fn class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Registers `metric`, built from constant options: an error is a programming error (a
/// duplicate or malformed name), which the first test that builds `Metrics` shows.
fn registered<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<M>,
) -> prometheus::Result<M> {
    let metric = metric?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// A histogram's options, its 16 buckets doubling from `first_bucket` seconds.
fn histogram(name: &str, help: &str, first_bucket: f64) -> prometheus::Result<HistogramOpts> {
    let buckets = prometheus::exponential_buckets(first_bucket, 2.0, 16)?;
    Ok(HistogramOpts::new(name, help).buckets(buckets))
}

impl Metrics {
    /// The counters of a `process` (api, worker or scheduler) of version `version`.
    ///
    /// # Errors
    /// A metric's options refused (a programming error; see [`registered`]).
    pub fn new(process: &str, version: &str) -> prometheus::Result<Self> {
        let registry = Registry::new();
        #[cfg(target_os = "linux")]
        registry.register(Box::new(ThisProcess(
            prometheus::process_collector::ProcessCollector::for_self(),
        )))?;
        let build = registered(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "console_build_info",
                    "Always 1; the labels say which release runs, and as which process",
                ),
                &["version", "process"],
            ),
        )?;
        build.with_label_values(&[version, process]).set(1);
        let requests = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "http_requests_total",
                    "HTTP requests answered, by method, route pattern and status class",
                ),
                &["method", "route", "status"],
            ),
        )?;
        let latency = registered(
            &registry,
            HistogramVec::new(
                histogram(
                    "http_request_duration_seconds",
                    "Time to answer, by route pattern",
                    0.000_25,
                )?,
                &["route"],
            ),
        )?;
        let queue_jobs = registered(
            &registry,
            IntGaugeVec::new(
                Opts::new("queue_jobs", "Jobs in each state, per queue, when scraped"),
                &["queue", "state"],
            ),
        )?;
        let queue_paused = registered(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "queue_paused",
                    "1 while an administrator has paused the queue (no job is handed out)",
                ),
                &["queue"],
            ),
        )?;
        let queue_events = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "queue_events_total",
                    "Jobs enqueued, completed, failed and retried per queue since the queue's store was created, for every process of the deployment",
                ),
                &["queue", "state"],
            ),
        )?;
        let queue_processing = registered(
            &registry,
            CounterVec::new(
                Opts::new(
                    "queue_processing_seconds_total",
                    "Seconds the completed and failed jobs spent held by a worker, from their last claim to the acknowledgement of their batch, per queue, for every worker of the deployment; divided by the rate of completed and failed jobs it is the mean per job",
                ),
                &["queue"],
            ),
        )?;
        let jobs = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "jobs_processed_total",
                    "Jobs this process's worker handled, by outcome (sent, suppressed, retrying, failed, overtaken)",
                ),
                &["queue", "outcome"],
            ),
        )?;
        let job_seconds = registered(
            &registry,
            HistogramVec::new(
                histogram(
                    "job_batch_duration_seconds",
                    "Time from taking a batch of jobs to acknowledging it, per queue",
                    0.000_5,
                )?,
                &["queue"],
            ),
        )?;
        let cron_runs = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "cron_runs_total",
                    "Cron ticks this process's scheduler ran, by cron job and outcome (succeeded, failed), or left to another scheduler (elsewhere)",
                ),
                &["cron_job", "outcome"],
            ),
        )?;
        let cron_seconds = registered(
            &registry,
            HistogramVec::new(
                histogram(
                    "cron_run_duration_seconds",
                    "Time a cron job's run took in this process, by job",
                    0.001,
                )?,
                &["cron_job"],
            ),
        )?;
        Ok(Self {
            registry,
            requests,
            latency,
            queue_jobs,
            queue_paused,
            queue_events,
            queue_processing,
            copying_queue_totals: Mutex::new(()),
            jobs,
            job_seconds,
            cron_runs,
            cron_seconds,
            started: Instant::now(),
            by_class: Default::default(),
            total_micros: AtomicU64::new(0),
        })
    }

    fn record_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .with_label_values(&[method, route, class(status)])
            .inc();
        self.latency
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
        let index = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[index].fetch_add(1, Ordering::Relaxed);
        self.total_micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Counts a handled job (`outcome`: sent, suppressed, retrying, failed, overtaken).
    pub fn record_job(&self, queue: &str, outcome: &'static str) {
        self.jobs.with_label_values(&[queue, outcome]).inc();
    }

    /// Times one batch of jobs, from reservation to acknowledgement.
    pub fn record_batch(&self, queue: &str, elapsed: Duration) {
        self.job_seconds
            .with_label_values(&[queue])
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a cron tick: run here to `outcome` (succeeded, failed) in `took`, or left to
    /// another scheduler (`elsewhere`, no duration).
    pub fn record_cron(&self, job: &str, outcome: &'static str, took: Option<Duration>) {
        // The time first: a scrape that sees the run counted sees its time too.
        if let Some(took) = took {
            self.cron_seconds
                .with_label_values(&[job])
                .observe(took.as_secs_f64());
        }
        self.cron_runs.with_label_values(&[job, outcome]).inc();
    }

    /// The Prometheus text (format 0.0.4), with the queue counts as given.
    #[must_use]
    pub fn render(&self, queues: &[QueueStats]) -> String {
        {
            let _copying = self
                .copying_queue_totals
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for q in queues {
                self.copy_queue(q);
            }
        }
        let mut text = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut text) {
            tracing::error!(%error, "encoding metrics failed");
        }
        String::from_utf8(text).unwrap_or_default()
    }

    /// Sets the series of queue `q` to its store's figures. Its totals are the store's
    /// running totals, so they are set rather than added to (a new store starts them again
    /// from zero, which Prometheus reads as a counter reset).
    fn copy_queue(&self, q: &QueueStats) {
        let (counts, totals) = (&q.counts, &q.totals);
        for (state, value) in [
            ("waiting", counts.waiting),
            ("delayed", counts.delayed),
            ("active", counts.active),
            ("completed", counts.completed),
            ("failed", counts.failed),
        ] {
            self.queue_jobs
                .with_label_values(&[q.name, state])
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        }
        for (state, value) in [
            ("enqueued", totals.enqueued),
            ("completed", totals.completed),
            ("failed", totals.failed),
            ("retried", totals.retried),
        ] {
            let total = self.queue_events.with_label_values(&[q.name, state]);
            total.reset();
            total.inc_by(value);
        }
        self.queue_paused
            .with_label_values(&[q.name])
            .set(i64::from(q.paused));
        let processing = self.queue_processing.with_label_values(&[q.name]);
        processing.reset();
        processing.inc_by(totals.processing_ms as f64 / 1000.0);
    }

    /// How long the process has been up.
    #[must_use]
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The HTTP answers so far, by status class, with the latency's mean and percentiles.
    #[must_use]
    pub fn http_totals(&self) -> HttpTotals {
        let counts: Vec<u64> = self
            .by_class
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let buckets = self.latency_buckets();
        let percentile = |q: f64| quantile(q, &buckets).map(|seconds| seconds * 1000.0);
        HttpTotals {
            requests: total,
            informational: counts[0],
            success: counts[1],
            redirection: counts[2],
            client_errors: counts[3],
            server_errors: counts[4],
            mean_latency_ms: if total == 0 {
                0.0
            } else {
                self.total_micros.load(Ordering::Relaxed) as f64 / total as f64 / 1000.0
            },
            p50_latency_ms: percentile(0.5),
            p95_latency_ms: percentile(0.95),
            p99_latency_ms: percentile(0.99),
        }
    }

    /// This process's resources, as the process collector reads them (Linux; zeros elsewhere).
    #[must_use]
    pub fn process_facts(&self) -> ProcessFacts {
        let mut facts = ProcessFacts::default();
        for family in self.registry.gather() {
            let Some(metric) = family.get_metric().first() else {
                continue;
            };
            let value = match family.get_field_type() {
                prometheus::proto::MetricType::COUNTER => metric.get_counter().get_value(),
                _ => metric.get_gauge().get_value(),
            };
            let whole = value as u64;
            match family.name() {
                "process_resident_memory_bytes" => facts.resident_memory_bytes = whole,
                "process_virtual_memory_bytes" => facts.virtual_memory_bytes = whole,
                "process_cpu_seconds_total" => facts.cpu_seconds = value,
                "process_open_fds" => facts.open_fds = whole,
                "process_max_fds" => facts.max_fds = whole,
                "process_threads" => facts.threads = whole,
                _ => {}
            }
        }
        let up = self.uptime().as_secs_f64();
        if up > 0.0 {
            facts.cpu_cores_average = facts.cpu_seconds / up;
        }
        facts
    }

    /// Every route's latency buckets added up, but the chat gateways' (a long poll or a socket
    /// is held open by design, and would make every percentile its length): (upper bound,
    /// cumulative count), `+Inf` last.
    fn latency_buckets(&self) -> Vec<(f64, u64)> {
        const HELD_OPEN: [&str; 2] = ["/socket.io/", "/ws/chat"];
        let mut sums: Vec<(f64, u64)> = Vec::new();
        for family in self.latency.collect() {
            for metric in family.get_metric() {
                let held_open = metric
                    .get_label()
                    .iter()
                    .any(|label| HELD_OPEN.contains(&label.value()));
                if held_open {
                    continue;
                }
                let histogram = metric.get_histogram();
                let bounds = histogram
                    .get_bucket()
                    .iter()
                    .map(|b| (b.upper_bound(), b.cumulative_count()))
                    .chain([(f64::INFINITY, histogram.get_sample_count())]);
                if sums.is_empty() {
                    sums = bounds.collect();
                } else {
                    for (sum, (_, count)) in sums.iter_mut().zip(bounds) {
                        sum.1 += count;
                    }
                }
            }
        }
        sums
    }
}

/// The `q`-quantile of a histogram's cumulative `buckets`, interpolated linearly within the
/// bucket it falls in, as Prometheus's `histogram_quantile` does; `None` without samples. A
/// quantile in the last (`+Inf`) bucket is given as the highest finite bound.
fn quantile(q: f64, buckets: &[(f64, u64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut lower = (0.0, 0);
    for &(bound, count) in buckets {
        if count as f64 >= rank {
            if bound.is_infinite() {
                return Some(lower.0);
            }
            let within = count - lower.1;
            let into = if within == 0 {
                1.0
            } else {
                (rank - lower.1 as f64) / within as f64
            };
            return Some(lower.0 + (bound - lower.0) * into);
        }
        lower = (bound, count);
    }
    Some(lower.0)
}

/// HTTP answers since the process started, by status class.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpTotals {
    pub requests: u64,
    pub informational: u64,
    pub success: u64,
    pub redirection: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    pub mean_latency_ms: f64,
    /// The median answer time, from the latency histogram (its buckets double from 0.25 ms);
    /// `null` before the first request.
    pub p50_latency_ms: Option<f64>,
    pub p95_latency_ms: Option<f64>,
    pub p99_latency_ms: Option<f64>,
}

/// The process collector of the `prometheus` crate, with its CPU time to the clock tick: the
/// crate's own counts whole seconds only (an integer division), too coarse for a rate.
#[cfg(target_os = "linux")]
struct ThisProcess(prometheus::process_collector::ProcessCollector);

#[cfg(target_os = "linux")]
impl prometheus::core::Collector for ThisProcess {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let mut families = self.0.collect();
        let seconds = procfs::process::Process::myself()
            .and_then(|process| process.stat())
            .map(|stat| (stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64);
        if let Ok(seconds) = seconds {
            let cpu = families
                .iter_mut()
                .filter(|family| family.name() == "process_cpu_seconds_total");
            for metric in cpu.flat_map(|family| family.mut_metric().iter_mut()) {
                let mut counter = prometheus::proto::Counter::default();
                counter.set_value(seconds);
                metric.set_counter(counter);
            }
        }
        families
    }
}

/// This process's resources.
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessFacts {
    pub resident_memory_bytes: u64,
    pub virtual_memory_bytes: u64,
    /// CPU time used since the start, user and system.
    pub cpu_seconds: f64,
    /// CPU time over the time up: 1.0 is one core busy all along.
    pub cpu_cores_average: f64,
    pub open_fds: u64,
    pub max_fds: u64,
    pub threads: u64,
}

/// The token a scraper must send (`Authorization: Bearer …`) when `METRICS_TOKEN` is set.
#[derive(Clone)]
pub struct MetricsToken(String);

impl MetricsToken {
    #[must_use]
    pub fn new(token: String) -> Self {
        Self(token)
    }

    fn matches(&self, given: &str) -> bool {
        crate::auth::same_secret(&self.0, given)
    }
}

/// A request method as a label: one of HTTP's own, else `OTHER`, so that clients cannot add
/// series by making methods up.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method.as_str())
        .unwrap_or("OTHER")
}

/// Middleware: times and counts every answer, errors included.
pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = request.app_data::<web::Data<Metrics>>().cloned();
    let method = method_label(request.method());
    let response = next.call(request).await?;
    if let Some(metrics) = metrics {
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        metrics.record_request(
            method,
            &route,
            response.status().as_u16(),
            started.elapsed(),
        );
    }
    Ok(response)
}

/// `GET /metrics`: Prometheus metrics of this process (text exposition format 0.0.4): HTTP
/// requests and latency by route, job and cron outcomes and times, the process's memory, CPU
/// and files, and, where the queues are at hand, their counts. Not an operation of the API (nor
/// in its document): it is for the scraper, outside `/api/v1`.
pub async fn scrape(
    request: HttpRequest,
    metrics: web::Data<Metrics>,
    queues: Option<web::Data<notify_core::QueueAdmin>>,
    token: web::Data<Option<MetricsToken>>,
) -> Result<HttpResponse, ApiError> {
    if let Some(token) = token.as_ref()
        && !crate::auth::bearer(&request).is_some_and(|given| token.matches(&given))
    {
        return Err(ApiError::unauthenticated());
    }
    let stats = match queues {
        Some(queues) => queues.stats().await.unwrap_or_else(|error| {
            tracing::warn!(%error, "queue counts unavailable for metrics");
            Vec::new()
        }),
        None => Vec::new(),
    };
    Ok(HttpResponse::Ok()
        .content_type(format!("{}; charset=utf-8", prometheus::TEXT_FORMAT))
        .body(metrics.render(&stats)))
}
