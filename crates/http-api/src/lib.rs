//! The HTTP edge (actix-web): the route table, envelopes and problem documents, body parsing
//! and validation, authentication, client identification, rate limits, security headers,
//! CORS and the OpenAPI document. It depends on the cores and on port traits, never on a
//! concrete adapter.

mod auth;
mod body;
mod chat;
mod client;
mod declared_routes;
mod docs;
mod dto;
mod edge;
mod envelope;
mod metrics;
mod openapi_patterns;
mod page_cache;
mod problem;
mod query;
mod rate_limit;
mod record_json;
mod routes;
mod routing;
mod security;
mod upload_body;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use auth_core::IdentityService;
use kernel::settings::SettingsService;
use media_core::MediaService;
use notify_core::QueueAdmin;
use portfolio_core::resources::RESOURCES;
use portfolio_core::{PortfolioService, PublicPortfolioReader};
use routing::{Area, Limit, Outside, annotated};
use scheduler_core::Scheduler;
use utoipa_swagger_ui::SwaggerUi;

pub use chat::{ChatSocketConfig, SocketIoSessions};
pub use client::ClientIpPolicy;
pub use docs::ApiDoc;
pub use metrics::{Metrics, MetricsToken};
pub use page_cache::{OwnerPages, PageCache, ViewPages};
pub use problem::{ApiError, FieldError};
pub use rate_limit::RateLimits;
pub use routes::account::{AccountExport, AccountExporter, ExportError, StorageUse};
pub use routes::admin::DashboardLogin;
pub use routes::health::{Health, ReadinessProbe, ServerFacts};
pub use security::CorsPolicy;

/// How the HTTP server behaves.
#[derive(Clone)]
pub struct HttpConfig {
    pub cors: CorsPolicy,
    /// Send `Strict-Transport-Security` (production).
    pub hsts: bool,
    pub json_body_limit: usize,
    pub client_ip: ClientIpPolicy,
    pub rate_limits: RateLimits,
    pub workers: usize,
    pub shutdown_timeout_secs: u64,
    pub chat_socket: ChatSocketConfig,
    /// How long a request may take, body included.
    pub request_timeout: Duration,
    /// The bearer token `GET /metrics` requires; `None`: it is public.
    pub metrics_token: Option<MetricsToken>,
    /// The basic credentials the queue dashboard page asks for (`BULL_BOARD_*`); `None`: none.
    pub dashboard_login: Option<DashboardLogin>,
}

/// The services the handlers call.
#[derive(Clone)]
pub struct HttpServices {
    pub identity: Arc<IdentityService>,
    pub portfolio: Arc<PortfolioService>,
    pub public_portfolio: Arc<PublicPortfolioReader>,
    pub public_cache: Arc<PageCache>,
    pub owner_pages: Arc<OwnerPages>,
    pub view_pages: Arc<ViewPages>,
    pub settings: Arc<SettingsService>,
    pub account_export: Arc<dyn AccountExporter>,
    pub media: Arc<MediaService>,
    pub health: Arc<Health>,
    pub chat: Arc<chat_core::ChatService>,
    pub queues: Arc<QueueAdmin>,
    pub scheduler: Arc<Scheduler>,
    pub metrics: Arc<Metrics>,
}

/// The route table: every operation of the API, each declared once with its path, method,
/// handler and OpenAPI operation (`routing.rs`), grouped in areas in the order the router tries
/// them. The server registers it and the document describes it, nothing else.
fn table() -> Vec<Area> {
    use routes::{account, admin, auth, health, sessions, uploads, users};
    let mut areas = vec![
        Area::new("/health", Limit::Unlimited)
            .with(annotated!(health::live))
            .with(annotated!(health::ready))
            .with(annotated!(health::redis)),
        // The hottest routes first.
        declared_routes::public_area(),
        Area::new("/auth", Limit::Auth)
            .with(annotated!(auth::register))
            .with(annotated!(auth::login))
            .with(annotated!(auth::refresh))
            .with(annotated!(auth::logout))
            .with(annotated!(auth::me))
            .with(annotated!(auth::forgot_password))
            .with(annotated!(auth::reset_password))
            .with(annotated!(auth::verify_email))
            .with(annotated!(auth::resend_verification))
            .with(annotated!(auth::change_password)),
        // Before `/users`, which would take it.
        Area::new("/users/profile/avatar", Limit::Upload).with(annotated!(uploads::user_avatar)),
        Area::new("/users", Limit::General)
            .with(annotated!(users::update_profile))
            .with(annotated!(account::request_deletion))
            .with(annotated!(account::delete))
            .with(annotated!(account::export)),
        Area::new("/sessions", Limit::General)
            .with(annotated!(sessions::list))
            .with(annotated!(sessions::revoke_others))
            .with(annotated!(sessions::revoke)),
        Area::new("/admin", Limit::General)
            .with(annotated!(admin::stats))
            .with(annotated!(admin::dashboard))
            .with(annotated!(admin::failed))
            .with(annotated!(admin::history))
            .with(annotated!(admin::clean))
            .with(annotated!(admin::retry_all))
            .with(annotated!(admin::pause))
            .with(annotated!(admin::resume))
            .with(annotated!(admin::job))
            .with(annotated!(admin::remove))
            .with(annotated!(admin::retry))
            .with(annotated!(admin::promote))
            .with(annotated!(admin::cron))
            .with(annotated!(admin::metrics)),
        Area::new("/upload", Limit::Upload)
            .with(annotated!(uploads::image))
            .with(annotated!(uploads::images))
            .with(annotated!(uploads::document))
            .with(annotated!(uploads::avatar))
            .with(annotated!(uploads::resume)),
    ];
    // Before `/portfolio/profile`, which would take them.
    areas.extend(declared_routes::profile_upload_areas());
    areas.push(declared_routes::profile_area());
    areas.extend(
        RESOURCES
            .iter()
            .copied()
            .map(declared_routes::resource_area),
    );
    areas.extend(declared_routes::preference_areas());
    areas
}

/// The API's routes, and beside them what is served but is no operation of the API, so it is
/// neither documented nor under the API's rate limits: the docs, the Prometheus scrape, the
/// chat gateways (their own protocols; the chat core limits messages per user) and the stored
/// files (public, immutable, cached by browsers and proxies).
fn routes(config: &mut web::ServiceConfig) {
    use routes::uploads;
    use utoipa::openapi::path::HttpMethod::{Get, Post};
    config.service(web::resource("/api/v1/docs").get(docs_redirect));
    routing::register(table(), config);
    // After the API, so no API request pays for their patterns (`/uploads/…` is a regular
    // expression actix would run on every path that reached it).
    config
        .service(Outside::new("/metrics").on(Get, metrics::scrape))
        .service(Outside::new("/ws/chat").on(Get, chat::ws_chat))
        .service(
            Outside::new("/socket.io/")
                .on(Get, chat::socketio_get)
                .on(Post, chat::socketio_post),
        )
        .service(Outside::new("/uploads/{owner}/{folder}/{name}").on(Get, uploads::serve));
    config.service(
        SwaggerUi::new("/api/v1/docs/{_:.*}")
            .external_url_unchecked("/api/v1/docs/openapi.json", docs::document()),
    );
}

async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", "/api/v1/docs/"))
        .finish()
}

/// Starts the HTTP server on `listener`. Signals are left to the caller, which stops the
/// returned server through its handle.
///
/// # Errors
/// The I/O error when the listener cannot be used.
pub fn serve(
    listener: TcpListener,
    config: HttpConfig,
    services: HttpServices,
) -> std::io::Result<Server> {
    let workers = config.workers.max(1);
    let shutdown = config.shutdown_timeout_secs;
    // One registry for every worker: a polling client's requests may land on any of them.
    let socket_io = Arc::new(SocketIoSessions::default());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::from(Arc::clone(&services.identity)))
            .app_data(web::Data::from(Arc::clone(&services.health)))
            .app_data(web::Data::from(Arc::clone(&services.portfolio)))
            .app_data(web::Data::from(Arc::clone(&services.public_portfolio)))
            .app_data(web::Data::from(Arc::clone(&services.public_cache)))
            .app_data(web::Data::from(Arc::clone(&services.owner_pages)))
            .app_data(web::Data::from(Arc::clone(&services.view_pages)))
            .app_data(web::Data::from(Arc::clone(&services.settings)))
            .app_data(web::Data::from(Arc::clone(&services.account_export)))
            .app_data(web::Data::from(Arc::clone(&services.chat)))
            .app_data(web::Data::new(config.chat_socket))
            .app_data(web::Data::new(config.metrics_token.clone()))
            .app_data(web::Data::new(config.dashboard_login.clone()))
            .app_data(web::Data::new(edge::RequestDeadline(
                config.request_timeout,
            )))
            .app_data(web::Data::from(Arc::clone(&socket_io)))
            .app_data(web::Data::from(Arc::clone(&services.media)))
            .app_data(web::Data::from(Arc::clone(&services.queues)))
            .app_data(web::Data::from(Arc::clone(&services.scheduler)))
            .app_data(web::Data::from(Arc::clone(&services.metrics)))
            .app_data(web::Data::new(config.client_ip.clone()))
            .app_data(web::Data::new(config.rate_limits.clone()))
            .app_data(web::PayloadConfig::new(config.json_body_limit))
            .configure(routes)
            .default_service(web::to(edge::not_found))
            .wrap(security::cors(&config.cors))
            .wrap(from_fn(edge::edge))
            .wrap(from_fn(metrics::observe))
            .wrap(security::security_headers(config.hsts))
    })
    .on_connect(chat::remember_socket)
    .workers(workers)
    .disable_signals()
    .shutdown_timeout(shutdown)
    .listen(listener)?
    .run();
    Ok(server)
}

/// What `listener` answers while the process waits for its storage or queue at start: the
/// liveness probe 200 (the process is up: a service manager leaves it be), everything else 503
/// `NOT_READY` with `Retry-After` (a load balancer keeps it out). Stopped once [`serve`] can
/// take over the same listener.
///
/// # Errors
/// When the listener cannot be served.
pub fn serve_starting(listener: TcpListener) -> std::io::Result<Server> {
    let server = HttpServer::new(|| {
        App::new()
            .route("/api/v1/health", web::get().to(routes::health::starting))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::not_ready(
                    "Starting: waiting for the storage and the queue",
                ))
            }))
            .wrap(from_fn(edge::edge))
            .wrap(security::security_headers(false))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    Ok(server)
}

/// Connections the metrics listener of a worker or scheduler holds at once.
const METRICS_CONNECTIONS: usize = 16;

/// What a worker or a scheduler serves on `METRICS_ADDR`: `GET /metrics` (its own counters and
/// the process's; the queues' counts are the API's to show) behind `token` when one is set,
/// 404 for anything else. One thread: a scraper calls every few seconds.
///
/// # Errors
/// When the listener cannot be served.
pub fn serve_metrics(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    token: Option<MetricsToken>,
) -> std::io::Result<Server> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::from(Arc::clone(&metrics)))
            .app_data(web::Data::new(token.clone()))
            .route("/metrics", web::get().to(metrics::scrape))
            .default_service(web::to(edge::not_found))
            .wrap(from_fn(edge::edge))
            .wrap(security::security_headers(false))
    })
    .workers(1)
    // A scraper or two: whoever else connects is held to a few connections, a short wait for
    // the request and a small queue, so that connections cannot use up the process's files.
    .max_connections(METRICS_CONNECTIONS)
    .backlog(METRICS_CONNECTIONS as u32)
    .client_request_timeout(Duration::from_secs(5))
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    Ok(server)
}
