//! What the process counts: HTTP requests by route, method and status class, their latency,
//! and (where a worker runs in this process) job outcomes and processing time; rendered as
//! Prometheus text at `GET /metrics` with the queues' current counts, and as JSON for admins.
//!
//! Routes are labelled by their pattern (`/api/v1/sessions/{id}`), never by the path sent, so
//! the number of series stays bounded whatever clients request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use notify_core::QueueStats;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::ApiError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueNameLabels {
    queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    queue: String,
    outcome: &'static str,
}

/// The process's counters, shared by every HTTP worker thread.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    queue_jobs: Family<QueueLabels, Gauge>,
    queue_events: Family<QueueLabels, Gauge>,
    queue_processing: Family<QueueNameLabels, Gauge<f64, AtomicU64>>,
    jobs: Family<JobLabels, Counter>,
    job_seconds: Family<RouteLabels, Histogram>,
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

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route pattern and status class",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time to answer, by route pattern",
            latency.clone(),
        );
        let queue_jobs = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "queue_jobs",
            "Jobs in each state, per queue, when scraped",
            queue_jobs.clone(),
        );
        let queue_events = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "queue_events",
            "Running totals per queue kept by the queue's store (enqueued, completed, failed, retried), for every process of the deployment; use rate() as on a counter",
            queue_events.clone(),
        );
        let queue_processing = Family::<QueueNameLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "queue_processing_seconds",
            "Seconds the completed and failed jobs spent held by a worker, from their last claim to the acknowledgement of their batch, per queue, kept by the queue's store for every worker of the deployment (a running total: use rate() as on a counter); rate(queue_processing_seconds[5m]) / sum by (queue) (rate(queue_events{state=~\"completed|failed\"}[5m])) is the mean per job",
            queue_processing.clone(),
        );
        let jobs = Family::<JobLabels, Counter>::default();
        registry.register(
            "jobs_processed",
            "Jobs this process's worker handled, by outcome (sent, suppressed, retrying, failed, overtaken)",
            jobs.clone(),
        );
        let job_seconds = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_5, 2.0, 16))
        });
        registry.register(
            "job_processing_seconds",
            "Time from taking a batch of jobs to acknowledging it, per queue",
            job_seconds.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            queue_jobs,
            queue_events,
            queue_processing,
            jobs,
            job_seconds,
            started: Instant::now(),
            by_class: Default::default(),
            total_micros: AtomicU64::new(0),
        }
    }

    fn record_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let class = class(status);
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status: class,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
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
        self.jobs
            .get_or_create(&JobLabels {
                queue: queue.to_owned(),
                outcome,
            })
            .inc();
    }

    /// Times one batch of jobs, from reservation to acknowledgement.
    pub fn record_batch(&self, queue: &str, elapsed: Duration) {
        self.job_seconds
            .get_or_create(&RouteLabels {
                route: queue.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text, with the queue counts as given.
    #[must_use]
    pub fn render(&self, queues: &[QueueStats]) -> String {
        for q in queues {
            let (counts, totals) = (&q.counts, &q.totals);
            for (state, value) in [
                ("waiting", counts.waiting),
                ("delayed", counts.delayed),
                ("active", counts.active),
                ("completed", counts.completed),
                ("failed", counts.failed),
            ] {
                self.queue_jobs
                    .get_or_create(&QueueLabels {
                        queue: q.name.to_owned(),
                        state,
                    })
                    .set(i64::try_from(value).unwrap_or(i64::MAX));
            }
            for (state, value) in [
                ("enqueued", totals.enqueued),
                ("completed", totals.completed),
                ("failed", totals.failed),
                ("retried", totals.retried),
            ] {
                self.queue_events
                    .get_or_create(&QueueLabels {
                        queue: q.name.to_owned(),
                        state,
                    })
                    .set(i64::try_from(value).unwrap_or(i64::MAX));
            }
            self.queue_processing
                .get_or_create(&QueueNameLabels {
                    queue: q.name.to_owned(),
                })
                .set(totals.processing_ms as f64 / 1000.0);
        }
        let mut text = String::new();
        if encode(&mut text, &self.registry).is_err() {
            tracing::error!("encoding metrics failed");
        }
        text
    }

    /// How long the process has been up.
    #[must_use]
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The HTTP answers so far, by status class.
    #[must_use]
    pub fn http_totals(&self) -> HttpTotals {
        let counts: Vec<u64> = self
            .by_class
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
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
        }
    }
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
}

/// The token a scraper must send (`Authorization: Bearer …`) when `METRICS_TOKEN` is set.
#[derive(Clone)]
pub struct MetricsToken(String);

impl MetricsToken {
    #[must_use]
    pub fn new(token: String) -> Self {
        Self(token)
    }

    /// Compared in constant time, so the answer's timing says nothing of the token.
    fn matches(&self, given: &str) -> bool {
        use subtle::ConstantTimeEq as _;
        self.0.as_bytes().ct_eq(given.as_bytes()).into()
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

/// `GET /metrics`: Prometheus metrics of this process (text exposition format): HTTP requests
/// and latency by route, job outcomes and processing time, and the queues' counts. Not an
/// operation of the API (nor in its document): it is for the scraper, outside `/api/v1`.
pub async fn scrape(
    request: HttpRequest,
    metrics: web::Data<Metrics>,
    queues: web::Data<notify_core::QueueAdmin>,
    token: web::Data<Option<MetricsToken>>,
) -> Result<HttpResponse, ApiError> {
    if let Some(token) = token.as_ref()
        && !crate::auth::bearer(&request).is_some_and(|given| token.matches(&given))
    {
        return Err(ApiError::unauthenticated());
    }
    let stats = match queues.stats().await {
        Ok(stats) => stats,
        Err(error) => {
            tracing::warn!(%error, "queue counts unavailable for metrics");
            Vec::new()
        }
    };
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render(&stats)))
}
