//! The three processes: build from settings, run until a shutdown signal, drain, exit.

use std::future::Future;
use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::Server;
use auth_core::{IdentityPolicy, IdentityPorts, IdentityService};
use auth_crypto::{Argon2Hasher, Argon2Settings, JwtCodec, OsSecrets, WootheeUserAgents};
use chrono::TimeDelta;
use http_api::{
    ClientIpPolicy, CorsPolicy, Health, HttpConfig, HttpServices, InMemoryRateLimiter, RateLimits,
};
use kernel::settings::SettingsService;
use kernel::{Clock, SystemClock};
use mail_smtp::{LogBody, LogTransport, SmtpSettings, SmtpTls, SmtpTransport};
use notify_core::{EmailOutbox, EmailWorker, Links, MailTransport, RetryPolicy};
use portfolio_core::ports::ContentListener;
use portfolio_core::{PortfolioService, PublicPortfolioReader};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::account_export::ServiceAccountExporter;
use crate::background::TrackedTasks;
use crate::config::{Environment, Settings, SmtpConfig};
use crate::directory::UserDirectory;
use crate::notifier::QueuedAccountNotifier;
use crate::owned_data::{ContentListeners, StoredOwnedData};
use crate::{chat, dev_secrets, geolocation, media, storage, telemetry, worker_loop};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Process {
    Api,
    Worker,
    Scheduler,
}

fn delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
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

fn mail_transport(settings: &Settings) -> Result<Arc<dyn MailTransport>, String> {
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
    })?;
    Ok(Arc::new(transport))
}

fn email_worker(
    settings: &Settings,
    storage: &storage::Storage,
    clock: Arc<dyn Clock>,
) -> Result<EmailWorker, String> {
    Ok(EmailWorker::new(
        Arc::clone(&storage.queue),
        mail_transport(settings)?,
        Links::new(&settings.frontend_url),
        retry_policy(settings),
        Arc::clone(&clock),
        SettingsService::new(Arc::clone(&storage.settings), clock),
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
    worker: JoinHandle<()>,
    tasks: TrackedTasks,
    stop: CancellationToken,
    shutdown_timeout: Duration,
}

impl Api {
    /// Opens storage, wires every service and binds the listener.
    ///
    /// # Errors
    /// A message naming what could not be set up.
    pub async fn build(settings: Settings) -> Result<Self, String> {
        let storage = storage::open(&settings).await?;
        let secrets = dev_secrets::resolve(&settings)?;
        let listener = TcpListener::bind((settings.host.as_str(), settings.port))
            .map_err(|e| format!("cannot listen on {}:{}: {e}", settings.host, settings.port))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let media = Arc::new(media::service(&settings, port).await?);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let outbox = EmailOutbox::new(
            Arc::clone(&storage.queue),
            retry_policy(&settings),
            Arc::clone(&clock),
        );
        let hasher = Argon2Hasher::new(Argon2Settings {
            memory_cost: settings.argon2_memory_cost,
            time_cost: settings.argon2_time_cost,
            parallelism: settings.argon2_parallelism,
            concurrency: settings.argon2_max_concurrent,
        })
        .map_err(|e| e.to_string())?;
        let settings_service =
            SettingsService::new(Arc::clone(&storage.settings), Arc::clone(&clock));
        let public_cache = Arc::new(http_api::PageCache::new(settings.public_cache_ttl));
        let owner_pages = Arc::new(http_api::OwnerPages(http_api::PageCache::new(
            settings.session_check_ttl,
        )));
        let caches: Arc<dyn ContentListener> = Arc::new(ContentListeners(vec![
            public_cache.clone(),
            owner_pages.clone(),
        ]));
        let owned_data = StoredOwnedData {
            portfolio: Arc::clone(&storage.portfolio),
            settings: Arc::clone(&storage.settings),
            caches: Arc::clone(&caches),
            media: Arc::clone(&media),
        };
        let tasks = TrackedTasks::on_current_runtime();
        let identity = IdentityService::new(
            IdentityPorts {
                users: Arc::clone(&storage.users),
                accounts: Arc::clone(&storage.accounts),
                sessions: Arc::clone(&storage.sessions),
                hasher: Arc::new(hasher),
                tokens: Arc::new(JwtCodec::new(&secrets.access, &secrets.refresh)),
                secrets: Arc::new(OsSecrets),
                user_agents: Arc::new(WootheeUserAgents),
                notifier: Arc::new(QueuedAccountNotifier { outbox }),
                owned_data: Arc::new(owned_data),
                geolocation: geolocation::source(&settings)?,
                tasks: Arc::new(tasks.clone()),
                clock: Arc::clone(&clock),
            },
            IdentityPolicy {
                access_ttl: delta(settings.access_ttl),
                refresh_ttl: delta(settings.refresh_ttl),
                refresh_reuse_interval: delta(settings.refresh_reuse_interval),
                session_check_ttl: delta(settings.session_check_ttl),
                admin_emails: settings.admin_emails.clone(),
                ..IdentityPolicy::default()
            },
        );
        let config = HttpConfig {
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
            rate_limits: RateLimits {
                limiter: Arc::new(InMemoryRateLimiter::new(
                    settings.throttle_window,
                    RATE_LIMIT_MAX_CLIENTS,
                )),
                window: settings.throttle_window,
                general_limit: settings.throttle_limit,
                auth_limit: settings.throttle_auth_limit,
                upload_limit: settings.throttle_upload_limit,
            },
            workers: cpus(),
            shutdown_timeout_secs: settings.shutdown_timeout.as_secs(),
            chat_socket: chat::socket_config(&settings),
        };
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
        let account_export = ServiceAccountExporter {
            identity: Arc::clone(&identity),
            portfolio: Arc::clone(&portfolio),
            settings: Arc::clone(&settings_service),
            media: Arc::clone(&media),
            clock: Arc::clone(&clock),
        };
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
                probes: storage.probes.clone(),
                started: Instant::now(),
                mode: storage.mode,
            }),
            chat: chat::start(&settings, Arc::clone(&clock)).await?,
        };
        let server = http_api::serve(listener, config, services)
            .map_err(|e| format!("cannot start HTTP server: {e}"))?;
        let stop = CancellationToken::new();
        let worker = tokio::spawn(worker_loop::run(
            email_worker(&settings, &storage, clock)?,
            stop.clone(),
        ));
        tracing::info!(
            "console-api listening on http://{}:{port} (mode: {}, env: {}, docs: /api/v1/docs)",
            settings.host,
            storage.mode,
            settings.environment.as_str()
        );
        Ok(Self {
            server,
            port,
            worker,
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
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> Result<(), String> {
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
        if tokio::time::timeout(self.shutdown_timeout, self.worker)
            .await
            .is_err()
        {
            tracing::warn!("the job worker did not stop in time; its job will be delivered again");
        }
        outcome
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        tracing::info!("stopped");
        Ok(())
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

async fn run_worker(settings: Settings) -> Result<(), String> {
    let storage = storage::open(&settings).await?;
    let worker = email_worker(&settings, &storage, Arc::new(SystemClock))?;
    tracing::info!("console-worker started (queue: {})", storage.mode);
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker_loop::run(worker, stop.clone()));
    shutdown_signal().await;
    stop.cancel();
    tokio::time::timeout(settings.shutdown_timeout, running)
        .await
        .map_err(|_| "worker did not stop in time".to_owned())?
        .map_err(|e| e.to_string())
}

async fn run_scheduler() -> Result<(), String> {
    tracing::info!("console-scheduler started; no cron jobs are registered in this build");
    shutdown_signal().await;
    tracing::info!("console-scheduler stopped");
    Ok(())
}

/// Runs a process from the environment's configuration; the whole of each binary's `main`.
pub async fn run(process: Process) -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log_level, settings.log_format);
    let outcome = match process {
        Process::Api => match Api::build(settings).await {
            Ok(api) => api.run_until_stopped(shutdown_signal()).await,
            Err(error) => Err(error),
        },
        Process::Worker => run_worker(settings).await,
        Process::Scheduler => run_scheduler().await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "fatal");
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
