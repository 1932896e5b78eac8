//! The three processes: build from settings, run until a shutdown signal, drain, exit.
//!
//! `console-api` in the embedded default (no Redis) also runs the email worker and the cron loops;
//! with Redis, `console-worker` and `console-scheduler` run them.

use std::future::Future;
use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, ServerHandle};
use anyhow::{Context as _, bail};
use chrono::TimeDelta;
use http_api::{
    ClientIpPolicy, CorsPolicy, DashboardLogin, Health, HttpConfig, HttpServices, Metrics,
    MetricsToken, RateLimits, ServerFacts,
};
use kernel::rate::RateLimiter;
use kernel::settings::SettingsService;
use kernel::{Clock, SystemClock};
use mail_smtp::{LogBody, LogTransport, SmtpSettings, SmtpTls, SmtpTransport};
use notify_core::{
    EmailOutbox, EmailWorker, EmailWorkerPorts, Links, MailTransport, PayloadSealer, QueueAdmin,
    RetryPolicy,
};
use portfolio_core::ports::ContentListener;
use portfolio_core::{PortfolioService, PublicPortfolioReader};
use seal_chacha::AeadSealer;
use secrecy::ExposeSecret as _;
use store_memory::MemoryRateLimiter;
use store_redis::RedisRateLimiter;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::account_export::ServiceAccountExporter;
use crate::background::TrackedTasks;
use crate::command_line::{self, Task};
use crate::config::{Environment, Serves, Settings, SmtpConfig};
use crate::directory::UserDirectory;
use crate::identity::{self, IdentityParts};
use crate::invalidation::{self, AnnouncedContent};
use crate::owned_data::{ContentListeners, StoredOwnedData};
use crate::{
    backup, chat, cron_jobs, dev_secrets, media, scheduler_loop, storage, telemetry, worker_loop,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Process {
    Api,
    Worker,
    Scheduler,
}

impl Process {
    const ALL: [Self; 3] = [Self::Api, Self::Worker, Self::Scheduler];

    /// The role's name, as `PROCESS_TYPE` and the binary's name (`console-<role>`) spell it.
    pub(crate) fn role(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Worker => "worker",
            Self::Scheduler => "scheduler",
        }
    }
}

pub(crate) fn delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

/// The HTTP limits' counters: the deployment's, in Redis, when it is configured (one budget
/// whichever instance is hit, this process's counters standing in while Redis is down), else
/// this process's.
fn rate_limits(settings: &Settings, storage: &storage::Storage) -> RateLimits {
    let local: Arc<dyn RateLimiter> = Arc::new(MemoryRateLimiter::new(
        settings.throttle_window,
        RATE_LIMIT_MAX_CLIENTS,
    ));
    let (limiter, fallback) = match (&storage.redis, &settings.redis) {
        (Some(connection), Some(config)) => (
            Arc::new(RedisRateLimiter::new(connection, &config.key_prefix)) as Arc<dyn RateLimiter>,
            Some(local),
        ),
        _ => (local, None),
    };
    RateLimits {
        limiter,
        fallback,
        window: settings.throttle_window,
        general_limit: settings.throttle_limit,
        auth_limit: settings.throttle_auth_limit,
        upload_limit: settings.throttle_upload_limit,
        outage: Arc::default(),
    }
}

/// The HTTP edge's configuration: CORS, client addresses, rate limits, sockets, timeouts.
fn http_config(settings: &Settings, storage: &storage::Storage) -> HttpConfig {
    HttpConfig {
        cors: CorsPolicy {
            origins: settings.cors_origins.clone(),
            credentials: settings.cors_credentials,
            max_age: settings.cors_max_age,
        },
        hsts: settings.environment == Environment::Production,
        json_body_limit: settings.json_body_limit,
        client_ip: ClientIpPolicy {
            header: settings.trusted_proxy_header.clone(),
            trusted_proxies: settings.trusted_proxies.clone(),
        },
        rate_limits: rate_limits(settings, storage),
        workers: cpus(),
        shutdown_timeout_secs: settings.shutdown_timeout.as_secs(),
        chat_socket: chat::socket_config(settings),
        request_timeout: settings.request_timeout,
        metrics_token: metrics_token(settings),
        dashboard_login: settings
            .bull_board_username
            .clone()
            .zip(settings.bull_board_password.as_ref())
            .map(|(user, password)| DashboardLogin::new(user, password.expose_secret().to_owned())),
    }
}

fn metrics_token(settings: &Settings) -> Option<MetricsToken> {
    settings
        .metrics_token
        .as_ref()
        .map(|token| MetricsToken::new(token.expose_secret().to_owned()))
}

/// The release, as `--version` and the `console_build_info` series give it.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A worker's or a scheduler's metrics, and the listener serving them on `METRICS_ADDR` (when
/// set), stopped by the handle.
fn serve_metrics(
    settings: &Settings,
    process: Process,
) -> anyhow::Result<(Arc<Metrics>, Option<ServerHandle>)> {
    let metrics = Arc::new(Metrics::new(process.role(), VERSION).context("metrics")?);
    let Some(address) = settings.metrics_addr else {
        return Ok((metrics, None));
    };
    let listener = TcpListener::bind(address)
        .with_context(|| format!("cannot listen on METRICS_ADDR {address}"))?;
    let server = http_api::serve_metrics(listener, Arc::clone(&metrics), metrics_token(settings))
        .context("cannot serve the metrics")?;
    let handle = server.handle();
    tokio::spawn(server);
    tracing::info!("metrics served on http://{address}/metrics");
    Ok((metrics, Some(handle)))
}

fn retry_policy(settings: &Settings) -> RetryPolicy {
    RetryPolicy {
        max_attempts: settings.email_attempts,
        first_backoff: delta(settings.email_backoff),
        visibility_timeout: delta(settings.job_visibility_timeout),
    }
}

fn smtp_tls(smtp: &SmtpConfig) -> SmtpTls {
    match (smtp.secure, smtp.require_tls) {
        (true, _) => SmtpTls::Implicit,
        (false, true) => SmtpTls::Required,
        (false, false) => SmtpTls::Opportunistic,
    }
}

fn mail_transport(settings: &Settings) -> anyhow::Result<Arc<dyn MailTransport>> {
    let Some(smtp) = &settings.smtp else {
        // Configuration validation lets production get here only with EMAIL_LOG_TRANSPORT.
        let body = if settings.environment == Environment::Production {
            LogBody::Withheld
        } else {
            LogBody::Included
        };
        return Ok(Arc::new(LogTransport { body }));
    };
    let transport = SmtpTransport::new(&SmtpSettings {
        host: smtp.host.clone(),
        port: smtp.port,
        username: smtp.user.clone(),
        password: smtp.password.clone(),
        from: smtp.from.clone(),
        tls: smtp_tls(smtp),
        ca_file: smtp.ca_file.clone(),
    })
    .map_err(anyhow::Error::msg)
    .context("cannot set up the SMTP transport")?;
    Ok(Arc::new(transport))
}

/// The sealer of job payloads, from the configured (or, in development, generated) keys. With
/// Redis, every process of the deployment must seal and open with one key: the first process
/// records its key's id there, and a process whose keys cannot open what that key seals
/// refuses to start (a worker would otherwise fail every job it takes). A process whose
/// previous keys include the recorded one moves the deployment to its current key.
async fn payload_sealer(
    settings: &Settings,
    storage: &storage::Storage,
) -> anyhow::Result<Arc<dyn PayloadSealer>> {
    let keys = dev_secrets::payload_keys(settings)?;
    let sealer = AeadSealer::new(&keys.current, &keys.previous);
    if let (Some(redis), Some(config)) = (&storage.redis, &settings.redis) {
        let key = format!("{{{}}}:payload-key-id", config.key_prefix);
        let recorded = redis
            .set_once(&key, sealer.key_id())
            .await
            .map_err(anyhow::Error::msg)
            .context("cannot record the job payload key's id in Redis")?;
        if recorded != sealer.key_id() {
            if !sealer.opens(&recorded) {
                bail!(
                    "JOB_PAYLOAD_KEY: this deployment seals job payloads with the key of id {recorded} (recorded in Redis at {key}), and this process's key is {}; set the same JOB_PAYLOAD_KEY on every process (when rotating, the old key goes in JOB_PAYLOAD_KEYS_PREVIOUS)",
                    sealer.key_id()
                );
            }
            redis
                .set(&key, sealer.key_id())
                .await
                .map_err(anyhow::Error::msg)
                .context("cannot move the deployment to this job payload key")?;
            tracing::info!(from = %recorded, to = %sealer.key_id(), "the deployment's job payload key was rotated");
        }
    }
    Ok(Arc::new(sealer))
}

fn email_worker(
    settings: &Settings,
    storage: &storage::Storage,
    sealer: Arc<dyn PayloadSealer>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<EmailWorker> {
    Ok(EmailWorker::new(
        EmailWorkerPorts {
            queue: Arc::clone(&storage.queue),
            transport: mail_transport(settings)?,
            sealer,
            clock: Arc::clone(&clock),
            preferences: SettingsService::new(Arc::clone(&storage.settings), clock),
        },
        Links::new(&settings.frontend_url),
        retry_policy(settings),
    ))
}

/// Rate-limit counters one instance keeps at most (about 100 bytes each); beyond this the
/// least recently seen client's counter goes.
const RATE_LIMIT_MAX_CLIENTS: u64 = 200_000;

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// The HTTP process, with (in the embedded default) the job worker inside.
pub struct Api {
    server: Server,
    port: u16,
    /// The in-process job worker (embedded default); `None` when Redis carries the jobs and
    /// `console-worker` drains them.
    worker: Option<JoinHandle<()>>,
    /// The in-process cron loops (embedded default); empty when `console-scheduler` runs them.
    cron: JoinSet<()>,
    tasks: TrackedTasks,
    stop: CancellationToken,
    shutdown_timeout: Duration,
}

impl Api {
    /// Opens storage, wires every service and binds the listener.
    ///
    /// # Errors
    /// A message naming what could not be set up.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind((settings.host.as_str(), settings.port))
            .with_context(|| format!("cannot listen on {}:{}", settings.host, settings.port))?;
        let port = listener.local_addr()?.port();
        // Redis or MongoDB may be down at start, and are waited for: meanwhile the port
        // answers that the process is starting, not ready.
        let starting =
            http_api::serve_starting(listener.try_clone()?).context("cannot start HTTP server")?;
        let starting_handle = starting.handle();
        tokio::spawn(starting);
        let storage = storage::open(&settings).await?;
        let secrets = dev_secrets::resolve(&settings)?;
        let media::Media {
            service: media,
            probe: files_probe,
        } = media::service(&settings, port).await?;
        let media = Arc::new(media);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let sealer = payload_sealer(&settings, &storage).await?;
        let outbox = EmailOutbox::new(
            Arc::clone(&storage.queue),
            Arc::clone(&sealer),
            retry_policy(&settings),
            Arc::clone(&clock),
        );
        let settings_service =
            SettingsService::new(Arc::clone(&storage.settings), Arc::clone(&clock));
        let public_cache = Arc::new(http_api::PageCache::new(settings.public_cache_ttl));
        let owner_pages = Arc::new(http_api::OwnerPages(http_api::PageCache::new(
            settings.session_check_ttl,
        )));
        let local_caches: Arc<dyn ContentListener> = Arc::new(ContentListeners(vec![
            public_cache.clone(),
            owner_pages.clone(),
        ]));
        let channel = invalidation::Channel::of(&settings, &storage);
        let caches: Arc<dyn ContentListener> = Arc::new(ContentListeners(vec![
            Arc::clone(&local_caches),
            Arc::new(AnnouncedContent(Arc::clone(&channel.announcer))),
        ]));
        let owned_data = StoredOwnedData {
            portfolio: Arc::clone(&storage.portfolio),
            settings: Arc::clone(&storage.settings),
            caches: Arc::clone(&caches),
            media: Arc::clone(&media),
        };
        let tasks = TrackedTasks::on_current_runtime();
        let identity = identity::service(
            &settings,
            &storage,
            IdentityParts {
                secrets,
                outbox,
                owned_data,
                tasks: tasks.clone(),
                clock: Arc::clone(&clock),
                invalidations: Arc::clone(&channel.announcer),
            },
        )?;
        let config = http_config(&settings, &storage);
        let portfolio = PortfolioService::new(
            Arc::clone(&storage.portfolio),
            settings_service.clone(),
            Arc::clone(&clock),
            caches,
        );
        let public_portfolio = PublicPortfolioReader::new(
            Arc::new(UserDirectory(Arc::clone(&storage.users))),
            portfolio.clone(),
        );
        let (identity, portfolio, settings_service) = (
            Arc::new(identity),
            Arc::new(portfolio),
            Arc::new(settings_service),
        );
        channel.listen(Arc::clone(&identity), local_caches).await?;
        let account_export = ServiceAccountExporter {
            identity: Arc::clone(&identity),
            portfolio: Arc::clone(&portfolio),
            settings: Arc::clone(&settings_service),
            media: Arc::clone(&media),
            clock: Arc::clone(&clock),
        };
        let scheduler = Arc::new(cron_jobs::scheduler(
            &settings,
            &storage,
            Arc::clone(&clock),
        ));
        let metrics = Arc::new(Metrics::new(Process::Api.role(), VERSION).context("metrics")?);
        let services = HttpServices {
            identity,
            portfolio,
            public_portfolio: Arc::new(public_portfolio),
            public_cache,
            owner_pages,
            view_pages: Arc::new(http_api::ViewPages::new(settings.session_check_ttl)),
            settings: settings_service,
            account_export: Arc::new(account_export),
            media,
            health: Arc::new(Health {
                probes: storage.probes.iter().cloned().chain(files_probe).collect(),
                probe_timeout: settings.ready_timeout,
                started: Instant::now(),
                mode: storage.mode,
                redis: storage
                    .redis
                    .clone()
                    .map(|redis| Arc::new(storage::RedisFacts(redis)) as Arc<dyn ServerFacts>),
                database: Arc::clone(&storage.database),
            }),
            chat: chat::start(&settings, storage.redis.as_ref(), Arc::clone(&clock)).await?,
            queues: Arc::new(QueueAdmin::new(
                Arc::clone(&storage.queue),
                Arc::clone(&clock),
            )),
            scheduler: Arc::clone(&scheduler),
            metrics: Arc::clone(&metrics),
        };
        // Its answers in flight finish first (within a second).
        starting_handle.stop(true).await;
        let server =
            http_api::serve(listener, config, services).context("cannot start HTTP server")?;
        let stop = CancellationToken::new();
        let (worker, cron) = if storage.redis.is_none() {
            let worker = tokio::spawn(worker_loop::run(
                email_worker(&settings, &storage, sealer, Arc::clone(&clock))?,
                settings.email_worker_concurrency as usize,
                Arc::clone(&metrics),
                stop.clone(),
            ));
            let cron = scheduler_loop::spawn(Arc::clone(&scheduler), clock, metrics, stop.clone());
            (Some(worker), cron)
        } else {
            tracing::info!(
                "jobs go through Redis: console-worker sends them, console-scheduler runs the cron jobs"
            );
            (None, JoinSet::new())
        };
        tracing::info!(
            "console-api listening on http://{}:{port} (storage: {}, jobs: {}, env: {}, docs: /api/v1/docs)",
            settings.host,
            storage.mode,
            if storage.redis.is_some() {
                "redis"
            } else {
                "in this process"
            },
            settings.environment.as_str()
        );
        Ok(Self {
            server,
            port,
            worker,
            cron,
            tasks,
            stop,
            shutdown_timeout: settings.shutdown_timeout,
        })
    }

    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` completes, then stops taking connections, lets in-flight
    /// requests, their background tasks and the current job finish (bounded), and returns.
    ///
    /// # Errors
    /// A message when the server failed.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        let outcome = tokio::select! {
            () = shutdown => {
                tracing::info!("shutting down: draining requests and jobs");
                handle.stop(true).await;
                (&mut server).await
            }
            finished = &mut server => finished,
        };
        if !self.tasks.drain(self.shutdown_timeout).await {
            tracing::warn!("background tasks did not finish in time; their work is lost");
        }
        self.stop.cancel();
        let mut cron = self.cron;
        if tokio::time::timeout(self.shutdown_timeout, async {
            while cron.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            tracing::warn!("a cron job did not finish in time");
        }
        if let Some(worker) = self.worker
            && tokio::time::timeout(self.shutdown_timeout, worker)
                .await
                .is_err()
        {
            tracing::warn!("the job worker did not stop in time; its job will be delivered again");
        }
        outcome??;
        tracing::info!("stopped");
        Ok(())
    }
}

/// What `starting` gives, unless SIGINT or SIGTERM comes first (`None`): a process still
/// waiting for Redis or MongoDB at start stops at once, and cleanly.
async fn unless_stopped<T>(
    starting: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<Option<T>> {
    tokio::select! {
        started = starting => started.map(Some),
        () = shutdown_signal() => {
            tracing::info!("stopped while starting");
            Ok(None)
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::error!(%error, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

async fn run_worker(settings: Settings) -> anyhow::Result<()> {
    let Some(storage) = unless_stopped(storage::open(&settings)).await? else {
        return Ok(());
    };
    let worker = email_worker(
        &settings,
        &storage,
        payload_sealer(&settings, &storage).await?,
        Arc::new(SystemClock),
    )?;
    let queue = if storage.redis.is_some() {
        "redis"
    } else {
        "embedded"
    };
    let (metrics, metrics_server) = serve_metrics(&settings, Process::Worker)?;
    tracing::info!("console-worker started (queue: {queue})");
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker_loop::run(
        worker,
        settings.email_worker_concurrency as usize,
        metrics,
        stop.clone(),
    ));
    shutdown_signal().await;
    tracing::info!("console-worker stopping: finishing the jobs in hand");
    stop.cancel();
    let outcome = tokio::time::timeout(settings.shutdown_timeout, running).await;
    if let Some(redis) = &storage.redis {
        redis.quit().await;
    }
    if let Some(server) = metrics_server {
        server.stop(false).await;
    }
    // A stop that came on a signal is a clean stop, in time or not: the jobs left in hand are
    // delivered again by the queue, which is what it is for.
    match outcome {
        Ok(finished) => finished?,
        Err(_) => tracing::warn!(
            "console-worker: jobs still in hand after SHUTDOWN_TIMEOUT_SECS; they will be delivered again"
        ),
    }
    tracing::info!("console-worker stopped");
    Ok(())
}

async fn run_scheduler(settings: Settings, task: Task) -> anyhow::Result<()> {
    let Some(storage) = unless_stopped(storage::open(&settings)).await? else {
        return Ok(());
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let scheduler = Arc::new(cron_jobs::scheduler(
        &settings,
        &storage,
        Arc::clone(&clock),
    ));
    match task {
        Task::ListJobs => {
            for entry in scheduler.entries() {
                let state = if entry.enabled { "enabled" } else { "disabled" };
                println!(
                    "{:<32} {:<20} {state:<9} {}",
                    entry.name,
                    entry.schedule.as_str(),
                    entry.description
                );
            }
            Ok(())
        }
        Task::RunJob(job) => {
            let run = match scheduler.run_now(&job).await {
                Err(scheduler_core::SchedulerError::UnknownTask(_)) => {
                    let jobs: Vec<&str> = scheduler.entries().iter().map(|e| e.name).collect();
                    bail!("no job named {job:?}; the jobs: {}", jobs.join(", "));
                }
                run => run?,
            };
            println!(
                "{job}: {} in {} ms, {} items{}{}",
                run.outcome.as_str(),
                run.duration_ms,
                run.items,
                if run.note.is_empty() {
                    String::new()
                } else {
                    format!("; {}", run.note)
                },
                run.error
                    .map(|e| format!("; error: {e}"))
                    .unwrap_or_default()
            );
            match run.outcome {
                scheduler_core::RunOutcome::Succeeded => Ok(()),
                scheduler_core::RunOutcome::Failed => bail!("{job} failed"),
            }
        }
        Task::Serve | Task::Restore(_) => {
            let (metrics, metrics_server) = serve_metrics(&settings, Process::Scheduler)?;
            let stop = CancellationToken::new();
            let mut loops =
                scheduler_loop::spawn(Arc::clone(&scheduler), clock, metrics, stop.clone());
            tracing::info!(
                jobs = scheduler.entries().iter().filter(|e| e.enabled).count(),
                "console-scheduler started"
            );
            shutdown_signal().await;
            tracing::info!("console-scheduler stopping: finishing the runs in progress");
            stop.cancel();
            let finished = tokio::time::timeout(settings.shutdown_timeout, async {
                while loops.join_next().await.is_some() {}
            })
            .await;
            if let Some(redis) = &storage.redis {
                redis.quit().await;
            }
            if let Some(server) = metrics_server {
                server.stop(false).await;
            }
            if finished.is_err() {
                tracing::warn!(
                    "console-scheduler: a cron run was still going after SHUTDOWN_TIMEOUT_SECS; it was abandoned"
                );
            }
            tracing::info!("console-scheduler stopped");
            Ok(())
        }
    }
}

/// The process to run: the binary's own, or, for `console-api`, the NestJS version's
/// `PROCESS_TYPE` (api | worker | scheduler; one binary for every role, PM2-style). Another
/// binary given another `PROCESS_TYPE` is refused rather than running as something else.
fn process_of(binary: Process, process_type: Option<&str>) -> Result<Process, String> {
    let asked = match process_type.map(str::trim) {
        None | Some("") => return Ok(binary),
        Some(asked) => asked,
    };
    let wanted = Process::ALL
        .into_iter()
        .find(|process| process.role() == asked)
        .ok_or_else(|| format!("PROCESS_TYPE: expected api, worker or scheduler, got {asked:?}"))?;
    if binary == Process::Api || wanted == binary {
        Ok(wanted)
    } else {
        Err(format!(
            "PROCESS_TYPE: {asked:?} asked of console-{}; run console-{asked} (or console-api with PROCESS_TYPE)",
            binary.role()
        ))
    }
}

/// Runs a process from the environment's configuration; the whole of each binary's `main`.
/// `--env-file PATH` reads the environment file from PATH instead of `./.env` (for a one-off
/// command with a service's environment: `console-scheduler --env-file /etc/console/console.env
/// run database-maintenance`).
pub async fn run(binary: Process) -> ExitCode {
    let invocation = match command_line::parse(binary, std::env::args_os()) {
        Ok(invocation) => invocation,
        Err(answer) => answer.exit(),
    };
    if let Err(errors) = crate::config::load_env_file(invocation.env_file.as_deref()) {
        eprint!("{errors}");
        return ExitCode::from(2);
    }
    let process = match (&invocation.task, binary) {
        // A restore is the API binary's own command, whatever role PROCESS_TYPE gives it.
        (Task::Restore(_), _) => binary,
        _ => match process_of(binary, std::env::var("PROCESS_TYPE").ok().as_deref()) {
            Ok(process) => process,
            Err(problem) => {
                eprintln!("{problem}");
                return ExitCode::from(2);
            }
        },
    };
    if matches!(invocation.task, Task::ListJobs | Task::RunJob(_)) && process != Process::Scheduler
    {
        eprintln!(
            "list and run <job> are console-scheduler's commands (console-api's with PROCESS_TYPE=scheduler)"
        );
        return ExitCode::from(2);
    }
    let serves = match (process, &invocation.task) {
        (Process::Api, Task::Serve) => Serves::Http,
        _ => Serves::Jobs,
    };
    let settings = match Settings::from_env(serves) {
        Ok(settings) => settings,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log_level, settings.log_format);
    let outcome = match (process, invocation.task) {
        (_, Task::Restore(backup)) => backup::restore(&settings, &backup).await,
        (Process::Api, _) => match unless_stopped(Api::build(settings)).await {
            Ok(Some(api)) => api.run_until_stopped(shutdown_signal()).await,
            Ok(None) => Ok(()),
            Err(error) => Err(error),
        },
        (Process::Worker, _) => run_worker(settings).await,
        (Process::Scheduler, task) => run_scheduler(settings, task).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("fatal: {error:#}");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_type_picks_the_role_of_console_api_only() {
        assert_eq!(process_of(Process::Api, None), Ok(Process::Api));
        assert_eq!(
            process_of(Process::Api, Some("worker")),
            Ok(Process::Worker)
        );
        assert_eq!(
            process_of(Process::Api, Some("scheduler")),
            Ok(Process::Scheduler)
        );
        assert_eq!(
            process_of(Process::Worker, Some("worker")),
            Ok(Process::Worker)
        );
        assert!(process_of(Process::Worker, Some("api")).is_err());
        assert!(process_of(Process::Api, Some("cron")).is_err());
    }

    #[test]
    fn smtp_secure_is_implicit_tls_else_starttls_required_only_when_asked() {
        let config = |secure, require_tls| SmtpConfig {
            host: "smtp.a.dev".to_owned(),
            port: 587,
            user: None,
            password: None,
            from: "Console <no-reply@a.dev>".to_owned(),
            secure,
            require_tls,
            ca_file: None,
        };
        assert_eq!(smtp_tls(&config(true, false)), SmtpTls::Implicit);
        assert_eq!(smtp_tls(&config(true, true)), SmtpTls::Implicit);
        assert_eq!(smtp_tls(&config(false, true)), SmtpTls::Required);
        assert_eq!(smtp_tls(&config(false, false)), SmtpTls::Opportunistic);
    }
}
