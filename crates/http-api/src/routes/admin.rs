//! `/api/v1/admin/*`: the queues, the cron jobs and the process's metrics, for role `admin`
//! only (401 without a token, 403 for anyone else), and the dashboard page that uses them.
//!
//! A job is shown by what it is for (kind, recipient) and how it went (state, attempts,
//! error, times); its payload is never shown: it is sealed, and holds the tokens and names.

use actix_web::{FromRequest as _, HttpRequest, HttpResponse, ResponseError as _, web};
use chrono::{DateTime, Utc};
use kernel::Page;
use notify_core::{Job, JobState, QueueAdmin, QueueStats};
use scheduler_core::{CronRun, CronStatus, Scheduler};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Admin, same_secret};
use crate::envelope::{self, Envelope, MessageEnvelope, PageMeta, Paginated};
use crate::metrics::{HttpTotals, Metrics, ProcessFacts};
use crate::problem::{ApiError, Problem};
use crate::query::{ListQuery, Param};
use crate::routes::health::{Health, ServerFacts};

type Queues = web::Data<QueueAdmin>;

/// The process as the admin console shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SystemMetrics {
    pub uptime_seconds: u64,
    pub process: ProcessFacts,
    pub http: HttpTotals,
    pub queues: Vec<QueueStatsDto>,
    /// Where accounts live: the embedded file (size, SQLite's version) or MongoDB
    /// (`serverStatus`: connections, operation counters, memory).
    pub database: DependencyFacts,
    /// Redis's `INFO` (memory, clients, operations, keyspace hits); `null` without Redis.
    pub redis: Option<DependencyFacts>,
}

/// What a server the process depends on says of itself.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DependencyFacts {
    /// `up`, or `unavailable` when it did not answer in time or would not tell (`error` says
    /// why).
    #[schema(example = "up")]
    pub status: &'static str,
    pub facts: std::collections::BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl DependencyFacts {
    /// Asks `server`, waiting at most `timeout`.
    async fn of(server: &dyn ServerFacts, timeout: std::time::Duration) -> Self {
        let answer = tokio::time::timeout(timeout, server.facts())
            .await
            .unwrap_or_else(|_| Err("no answer in time".to_owned()));
        match answer {
            Ok(facts) => Self {
                status: "up",
                facts: facts.into_iter().collect(),
                error: None,
            },
            Err(error) => Self {
                status: "unavailable",
                facts: std::collections::BTreeMap::new(),
                error: Some(error),
            },
        }
    }
}

/// A queue: how many of its jobs are in each state now, and its running totals.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueStatsDto {
    #[schema(example = "email")]
    pub name: String,
    pub waiting: u64,
    pub delayed: u64,
    pub active: u64,
    pub completed: u64,
    pub failed: u64,
    /// Paused by an administrator: no job is handed out.
    pub paused: bool,
    pub totals: QueueTotalsDto,
}

/// What a queue has seen since its store was created (cleaning history does not lower it).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueTotalsDto {
    pub enqueued: u64,
    pub completed: u64,
    pub failed: u64,
    pub retried: u64,
    /// Milliseconds the completed and failed jobs spent held by a worker, from their last
    /// claim to their outcome (divide by `completed + failed` for the mean).
    pub processing_ms: u64,
}

impl From<QueueStats> for QueueStatsDto {
    fn from(stats: QueueStats) -> Self {
        let (c, t) = (stats.counts, stats.totals);
        Self {
            name: stats.name.to_owned(),
            waiting: c.waiting,
            delayed: c.delayed,
            active: c.active,
            completed: c.completed,
            failed: c.failed,
            paused: stats.paused,
            totals: QueueTotalsDto {
                enqueued: t.enqueued,
                completed: t.completed,
                failed: t.failed,
                retried: t.retried,
                processing_ms: t.processing_ms,
            },
        }
    }
}

/// A job as the admin console shows it: never its payload.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobDto {
    pub id: String,
    pub queue: String,
    /// What the job does (`passwordReset`, `welcome`, …).
    pub kind: String,
    /// `waiting`, `delayed`, `active`, `completed` or `failed`.
    pub state: String,
    /// The address the job concerns; erased when it completes.
    pub recipient: Option<String>,
    /// Deliveries so far.
    pub attempts: u32,
    pub max_attempts: u32,
    pub last_error: Option<String>,
    pub enqueued_at: DateTime<Utc>,
    /// When it may next run (waiting, delayed) or when its lease ends (active).
    pub run_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Its failed attempts, oldest first (the last 10).
    pub failures: Vec<FailedAttemptDto>,
}

/// A failed attempt of a job.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailedAttemptDto {
    /// Which attempt it was (1 is the first).
    pub attempt: u32,
    /// When it ended.
    pub at: DateTime<Utc>,
    pub error: String,
}

impl From<Job> for JobDto {
    fn from(job: Job) -> Self {
        Self {
            id: job.id.to_string(),
            queue: job.queue,
            kind: job.kind,
            state: job.state.as_str().to_owned(),
            recipient: job.recipient,
            attempts: job.attempts,
            max_attempts: job.max_attempts,
            last_error: job.last_error,
            enqueued_at: job.enqueued_at,
            run_at: job.run_at,
            finished_at: job.finished_at,
            failures: job
                .failures
                .into_iter()
                .map(|failure| FailedAttemptDto {
                    attempt: failure.attempt,
                    at: failure.at,
                    error: failure.error,
                })
                .collect(),
        }
    }
}

/// How many jobs a clean deleted.
#[derive(Debug, Serialize, ToSchema)]
pub struct CleanedDto {
    pub removed: u64,
}

/// One run of a cron job.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CronRunDto {
    pub tick: DateTime<Utc>,
    /// `schedule` or `manual` (run from the command line).
    pub trigger: String,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    /// `succeeded` or `failed`.
    pub outcome: String,
    pub error: Option<String>,
    /// What the run touched (sessions purged, jobs deleted, …).
    pub items: u64,
    pub note: String,
    /// The scheduler that ran it.
    pub runner: String,
}

impl From<CronRun> for CronRunDto {
    fn from(run: CronRun) -> Self {
        Self {
            tick: run.tick,
            trigger: run.trigger.as_str().to_owned(),
            started_at: run.started_at,
            duration_ms: run.duration_ms,
            outcome: run.outcome.as_str().to_owned(),
            error: run.error,
            items: run.items,
            note: run.note,
            runner: run.runner,
        }
    }
}

/// A cron job: its schedule, switch, next tick and recent runs (newest first).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CronJobDto {
    #[schema(example = "session-cleanup")]
    pub name: String,
    pub description: String,
    /// Cron with seconds.
    #[schema(example = "0 0 * * * *")]
    pub schedule: String,
    pub enabled: bool,
    pub next_run: Option<DateTime<Utc>>,
    pub last_run: Option<CronRunDto>,
    pub history: Vec<CronRunDto>,
}

impl From<CronStatus> for CronJobDto {
    fn from(status: CronStatus) -> Self {
        let mut history: Vec<CronRunDto> = status.history.into_iter().map(Into::into).collect();
        let last_run = (!history.is_empty()).then(|| history.remove(0));
        Self {
            name: status.name.to_owned(),
            description: status.description.to_owned(),
            schedule: status.schedule,
            enabled: status.enabled,
            next_run: status.next_run,
            last_run,
            history,
        }
    }
}

/// Runs of each cron job shown.
const CRON_HISTORY: usize = 10;

/// The state a history or clean asks for.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// `completed`, `failed`, `active`, `waiting` or `delayed` (default `completed`)
    #[param(value_type = Option<String>, pattern = "^(completed|failed|active|waiting|delayed)$")]
    status: Option<Param<String>>,
}

fn state(query: &StatusQuery, default: JobState) -> Result<JobState, ApiError> {
    match query.status.as_ref().map(Param::value) {
        None => Ok(default),
        Some(raw) => raw.and_then(|raw| JobState::parse(raw)).ok_or_else(|| {
            ApiError::field(
                "status",
                "enum",
                "must be completed, failed, active, waiting or delayed",
            )
        }),
    }
}

fn paginated(message: &str, page: Page<Job>) -> HttpResponse {
    let meta = PageMeta::from(&page);
    HttpResponse::Ok().json(Paginated {
        success: true,
        message: message.to_owned(),
        data: page.items.into_iter().map(JobDto::from).collect::<Vec<_>>(),
        meta,
    })
}

/// Every queue with its job counts.
#[utoipa::path(get, path = "/api/v1/admin/queues/stats", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "Counts per queue", body = Envelope<Vec<QueueStatsDto>>),
        (status = 401, body = Problem), (status = 403, description = "`FORBIDDEN`: not an admin", body = Problem),
    ))]
pub async fn stats(queues: Queues, _admin: Admin) -> Result<HttpResponse, ApiError> {
    let stats: Vec<QueueStatsDto> = queues
        .stats()
        .await?
        .into_iter()
        .map(QueueStatsDto::from)
        .collect();
    Ok(envelope::ok("Queue statistics", stats))
}

/// The failed jobs of a queue, most recently failed first, with their errors.
#[utoipa::path(get, path = "/api/v1/admin/queues/{queueName}/jobs/failed", tag = "admin", security(("bearer" = [])),
    params(("queueName" = String, Path, description = "Queue name (`email`)"), ListQuery),
    responses(
        (status = 200, description = "Failed jobs", body = Paginated<Vec<JobDto>>),
        (status = 400, description = "`VALIDATION_ERROR`", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "`QUEUE_NOT_FOUND`", body = Problem),
    ))]
pub async fn failed(
    queues: Queues,
    _admin: Admin,
    queue: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let params = query.params()?;
    let page = queues.jobs(&queue, JobState::Failed, params.page).await?;
    Ok(paginated("Failed jobs", page))
}

/// The jobs of a queue in one state: finished ones most recently finished first, the others in
/// the order they will run.
#[utoipa::path(get, path = "/api/v1/admin/queues/{queueName}/jobs/history", tag = "admin", security(("bearer" = [])),
    params(("queueName" = String, Path, description = "Queue name (`email`)"), StatusQuery, ListQuery),
    responses(
        (status = 200, description = "Jobs in that state", body = Paginated<Vec<JobDto>>),
        (status = 400, description = "`VALIDATION_ERROR`", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "`QUEUE_NOT_FOUND`", body = Problem),
    ))]
pub async fn history(
    queues: Queues,
    _admin: Admin,
    queue: web::Path<String>,
    status: web::Query<StatusQuery>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let state = state(&status, JobState::Completed)?;
    let params = query.params()?;
    let page = queues.jobs(&queue, state, params.page).await?;
    Ok(paginated("Jobs", page))
}

/// Put a failed job back in its queue, its attempts counted from zero.
#[utoipa::path(post, path = "/api/v1/admin/queues/{queueName}/jobs/{jobId}/retry", tag = "admin", security(("bearer" = [])),
    params(("queueName" = String, Path, description = "Queue name (`email`)"), ("jobId" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "Waiting again", body = Envelope<JobDto>),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "`QUEUE_NOT_FOUND` or `JOB_NOT_FOUND`", body = Problem),
        (status = 409, description = "`JOB_NOT_FAILED`", body = Problem),
    ))]
pub async fn retry(
    queues: Queues,
    _admin: Admin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (queue, job) = path.into_inner();
    let job = queues.retry(&queue, &job).await?;
    Ok(envelope::ok("Job queued again", JobDto::from(job)))
}

/// One job of a queue: its state, attempts, last error and times (never its payload).
#[utoipa::path(get, path = "/api/v1/admin/queues/{queueName}/jobs/{jobId}", tag = "admin", security(("bearer" = [])),
    params(("queueName" = String, Path, description = "Queue name (`email`)"), ("jobId" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job", body = Envelope<JobDto>),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "`QUEUE_NOT_FOUND` or `JOB_NOT_FOUND`", body = Problem),
    ))]
pub async fn job(
    queues: Queues,
    _admin: Admin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (queue, job) = path.into_inner();
    let job = queues.job(&queue, &job).await?;
    Ok(envelope::ok("Job", JobDto::from(job)))
}

/// Delete one job, whatever its state, unless a worker holds it now.
#[utoipa::path(delete, path = "/api/v1/admin/queues/{queueName}/jobs/{jobId}", tag = "admin", security(("bearer" = [])),
    params(("queueName" = String, Path, description = "Queue name (`email`)"), ("jobId" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "Deleted", body = MessageEnvelope),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "`QUEUE_NOT_FOUND` or `JOB_NOT_FOUND`", body = Problem),
        (status = 409, description = "`JOB_STATE_CONFLICT`: a worker holds it", body = Problem),
    ))]
pub async fn remove(
    queues: Queues,
    _admin: Admin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (queue, job) = path.into_inner();
    queues.remove(&queue, &job).await?;
    Ok(envelope::done("Job deleted"))
}

/// Run a delayed job now, ahead of its backoff.
#[utoipa::path(post, path = "/api/v1/admin/queues/{queueName}/jobs/{jobId}/promote", tag = "admin", security(("bearer" = [])),
    params(("queueName" = String, Path, description = "Queue name (`email`)"), ("jobId" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "Waiting, due now", body = Envelope<JobDto>),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "`QUEUE_NOT_FOUND` or `JOB_NOT_FOUND`", body = Problem),
        (status = 409, description = "`JOB_STATE_CONFLICT`: not delayed", body = Problem),
    ))]
pub async fn promote(
    queues: Queues,
    _admin: Admin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (queue, job) = path.into_inner();
    let job = queues.promote(&queue, &job).await?;
    Ok(envelope::ok("Job promoted", JobDto::from(job)))
}

/// How many failed jobs a "retry all" put back.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetriedDto {
    pub retried: u64,
}

/// Put every failed job of a queue back, attempts counted from zero: those failed when it is
/// asked, 1 000 at most a call (call again while `retried` is 1 000).
#[utoipa::path(post, path = "/api/v1/admin/queues/{queueName}/retry-failed", tag = "admin", security(("bearer" = [])),
    params(("queueName" = String, Path, description = "Queue name (`email`)")),
    responses(
        (status = 200, description = "Waiting again", body = Envelope<RetriedDto>),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "`QUEUE_NOT_FOUND`", body = Problem),
    ))]
pub async fn retry_all(
    queues: Queues,
    _admin: Admin,
    queue: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let retried = queues.retry_all(&queue).await?;
    Ok(envelope::ok(
        "Failed jobs queued again",
        RetriedDto { retried },
    ))
}

/// Pause a queue: no job of it is handed to a worker until it is resumed (jobs held finish;
/// new jobs are still queued). Every process of the deployment sees it.
#[utoipa::path(post, path = "/api/v1/admin/queues/{queueName}/pause", tag = "admin", security(("bearer" = [])),
    params(("queueName" = String, Path, description = "Queue name (`email`)")),
    responses(
        (status = 200, description = "Paused", body = MessageEnvelope),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "`QUEUE_NOT_FOUND`", body = Problem),
    ))]
pub async fn pause(
    queues: Queues,
    _admin: Admin,
    queue: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    queues.set_paused(&queue, true).await?;
    Ok(envelope::done("Queue paused"))
}

/// Resume a paused queue.
#[utoipa::path(post, path = "/api/v1/admin/queues/{queueName}/resume", tag = "admin", security(("bearer" = [])),
    params(("queueName" = String, Path, description = "Queue name (`email`)")),
    responses(
        (status = 200, description = "Resumed", body = MessageEnvelope),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "`QUEUE_NOT_FOUND`", body = Problem),
    ))]
pub async fn resume(
    queues: Queues,
    _admin: Admin,
    queue: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    queues.set_paused(&queue, false).await?;
    Ok(envelope::done("Queue resumed"))
}

/// Delete every completed (or every failed) job of a queue.
#[utoipa::path(delete, path = "/api/v1/admin/queues/{queueName}/jobs/clean", tag = "admin", security(("bearer" = [])),
    params(("queueName" = String, Path, description = "Queue name (`email`)"), CleanQuery),
    responses(
        (status = 200, description = "Deleted", body = Envelope<CleanedDto>),
        (status = 400, description = "`VALIDATION_ERROR`: status is not completed or failed", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "`QUEUE_NOT_FOUND`", body = Problem),
    ))]
pub async fn clean(
    queues: Queues,
    _admin: Admin,
    queue: web::Path<String>,
    query: web::Query<CleanQuery>,
) -> Result<HttpResponse, ApiError> {
    let state = match query.status.as_ref().map(Param::value) {
        None => JobState::Completed,
        Some(raw) => raw
            .and_then(|raw| JobState::parse(raw))
            .filter(|state| state.is_finished())
            .ok_or_else(|| ApiError::field("status", "enum", "must be completed or failed"))?,
    };
    let removed = queues.clean(&queue, state).await?;
    Ok(envelope::ok("Jobs deleted", CleanedDto { removed }))
}

/// Which finished jobs a clean deletes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CleanQuery {
    /// `completed` or `failed` (default `completed`)
    #[param(value_type = Option<String>, pattern = "^(completed|failed)$")]
    status: Option<Param<String>>,
}

/// Every cron job: schedule, switch, next run, last run and recent history.
#[utoipa::path(get, path = "/api/v1/admin/cron", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "Cron jobs", body = Envelope<Vec<CronJobDto>>),
        (status = 401, body = Problem), (status = 403, body = Problem),
    ))]
pub async fn cron(
    scheduler: web::Data<Scheduler>,
    _admin: Admin,
) -> Result<HttpResponse, ApiError> {
    let jobs: Vec<CronJobDto> = scheduler
        .status(CRON_HISTORY)
        .await
        .map_err(|error| {
            tracing::error!(%error, "cron ledger unreadable");
            ApiError::new(
                crate::problem::ErrorCode::ServiceUnavailable,
                "The cron ledger is unavailable",
            )
        })?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(envelope::ok("Cron jobs", jobs))
}

/// This process: uptime, memory, CPU and files; HTTP traffic by status class with the latency's
/// mean and percentiles; the queues; the database's and Redis's own figures.
#[utoipa::path(get, path = "/api/v1/admin/metrics", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "Metrics", body = Envelope<SystemMetrics>),
        (status = 401, body = Problem), (status = 403, body = Problem),
    ))]
pub async fn metrics(
    metrics: web::Data<Metrics>,
    queues: Queues,
    health: web::Data<Health>,
    _admin: Admin,
) -> Result<HttpResponse, ApiError> {
    let stats: Vec<QueueStatsDto> = queues
        .stats()
        .await?
        .into_iter()
        .map(QueueStatsDto::from)
        .collect();
    let timeout = health.probe_timeout;
    let redis = async {
        match &health.redis {
            Some(redis) => Some(DependencyFacts::of(redis.as_ref(), timeout).await),
            None => None,
        }
    };
    let (database, redis) = tokio::join!(
        DependencyFacts::of(health.database.as_ref(), timeout),
        redis
    );
    Ok(envelope::ok(
        "Metrics",
        SystemMetrics {
            uptime_seconds: metrics.uptime().as_secs(),
            process: metrics.process_facts(),
            http: metrics.http_totals(),
            queues: stats,
            database,
            redis,
        },
    ))
}

/// The NestJS version's `BULL_BOARD_USERNAME` and `BULL_BOARD_PASSWORD`: HTTP basic credentials
/// the dashboard page asks for before its own administrator sign-in.
#[derive(Clone)]
pub struct DashboardLogin {
    username: String,
    password: String,
}

impl DashboardLogin {
    #[must_use]
    pub fn new(username: String, password: String) -> Self {
        Self { username, password }
    }

    /// Whether `request` carries these credentials (`Authorization: Basic …`), compared in
    /// constant time ([`same_secret`]).
    fn admits(&self, request: &HttpRequest) -> bool {
        use base64::Engine as _;
        let given = request
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            .and_then(|(_, encoded)| {
                base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .ok()
            })
            .and_then(|decoded| String::from_utf8(decoded).ok());
        let Some((username, password)) = given.as_deref().and_then(|g| g.split_once(':')) else {
            return false;
        };
        // `&`, not `&&`: both are compared whatever the first gives.
        same_secret(&self.username, username) & same_secret(&self.password, password)
    }
}

/// The queue dashboard: a page that signs in (or reuses this tab's sign-in), then shows the
/// queues, their jobs by state with paging, a job's detail, and the actions of the admin API
/// above. The page holds no data: everything it shows comes from those admin-only calls, which
/// take an admin's token and nothing else. With `BULL_BOARD_USERNAME`/`BULL_BOARD_PASSWORD` the
/// page itself asks for them (basic authentication) before its own sign-in; without them, a
/// request that carries a bearer token gets the page only if it is an admin's (401 or 403
/// otherwise).
#[utoipa::path(get, path = "/api/v1/admin/queues/ui", tag = "admin",
    responses(
        (status = 200, description = "The dashboard (HTML, no external resources)", content_type = "text/html", body = String),
        (status = 401, description = "`UNAUTHORIZED`: basic credentials missing or wrong (with `BULL_BOARD_*`), or an invalid bearer token", body = Problem),
        (status = 403, description = "`FORBIDDEN`: the bearer token is not an admin's", body = Problem),
    ))]
pub async fn dashboard(
    request: HttpRequest,
    login: web::Data<Option<DashboardLogin>>,
) -> Result<HttpResponse, actix_web::Error> {
    if let Some(login) = login.as_ref() {
        if !login.admits(&request) {
            let mut refused = ApiError::unauthenticated().error_response();
            refused.headers_mut().insert(
                actix_web::http::header::WWW_AUTHENTICATE,
                actix_web::http::header::HeaderValue::from_static(
                    "Basic realm=\"Console queues\", charset=\"UTF-8\"",
                ),
            );
            return Ok(refused);
        }
    } else if crate::auth::bearer(&request).is_some() {
        Admin::from_request(&request, &mut actix_web::dev::Payload::None).await?;
    }
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", dashboard_policy()))
        .insert_header(("Cache-Control", "no-store"))
        .body(DASHBOARD))
}

/// The dashboard's Content-Security-Policy: its one inline script is allowed by its SHA-256
/// digest, no other script at all (computed once, from the page as built).
fn dashboard_policy() -> &'static str {
    use base64::Engine as _;
    use sha2::Digest as _;
    static POLICY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    POLICY.get_or_init(|| {
        let script = DASHBOARD
            .split_once("<script>")
            .and_then(|(_, rest)| rest.split_once("</script>"))
            .map_or("", |(script, _)| script);
        let digest =
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script));
        format!(
            "default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
        )
    })
}

const DASHBOARD: &str = include_str!("admin_dashboard.html");
