//! The HTTP edge (actix-web): the route table, envelopes and problem documents, body parsing
//! and validation, authentication, client identification, rate limits, security headers,
//! CORS and the OpenAPI document. It depends on the cores and on port traits, never on a
//! concrete adapter.

mod auth;
mod body;
mod chat;
mod client;
mod docs;
mod docs_generated;
mod dto;
mod edge;
mod envelope;
mod metrics;
mod page_cache;
mod patterns;
mod problem;
mod query;
mod rate_limit;
mod records;
mod routes;
mod security;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{AppService, HttpServiceFactory, Server};
use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::{App, FromRequest, Handler, HttpResponse, HttpServer, Responder, guard, web};
use auth_core::IdentityService;
use auth_core::preferences::APP_PREFERENCES;
use kernel::settings::{SettingsKind, SettingsService};
use media_core::MediaService;
use notify_core::QueueAdmin;
use notify_core::preferences::{EMAIL_PREFERENCES, NOTIFICATION_PREFERENCES};
use portfolio_core::{PortfolioService, PublicPortfolioReader};
use scheduler_core::Scheduler;
use utoipa_swagger_ui::SwaggerUi;

pub use chat::{ChatSocketConfig, SocketIoSessions};
pub use client::ClientIpPolicy;
pub use docs::ApiDoc;
pub use metrics::Metrics;
pub use page_cache::{OwnerPages, PageCache};
pub use problem::{ApiError, FieldError};
pub use rate_limit::{InMemoryRateLimiter, RateDecision, RateLimiter, RateLimits};
pub use routes::account::{AccountExport, AccountExporter, ExportError};
pub use routes::health::{Health, ReadinessProbe, RedisInfo};
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
}

/// The services the handlers call.
#[derive(Clone)]
pub struct HttpServices {
    pub identity: Arc<IdentityService>,
    pub portfolio: Arc<PortfolioService>,
    pub public_portfolio: Arc<PublicPortfolioReader>,
    pub public_cache: Arc<PageCache>,
    pub owner_pages: Arc<OwnerPages>,
    pub settings: Arc<SettingsService>,
    pub account_export: Arc<dyn AccountExporter>,
    pub media: Arc<MediaService>,
    pub health: Arc<Health>,
    pub chat: Arc<chat_core::ChatService>,
    pub queues: Arc<QueueAdmin>,
    pub scheduler: Arc<Scheduler>,
    pub metrics: Arc<Metrics>,
}

/// The preference sets and where each is served.
const PREFERENCE_ROUTES: [(&str, &SettingsKind); 3] = [
    ("/settings/preferences", &APP_PREFERENCES),
    ("/notifications/preferences", &NOTIFICATION_PREFERENCES),
    ("/email/preferences", &EMAIL_PREFERENCES),
];

/// A path and its handler per method. Its answer to any other method is a 405 whose `Allow`
/// lists exactly the methods given here, so the header cannot drift from the table.
struct Route {
    resource: actix_web::Resource,
    methods: Vec<Method>,
    /// Counted against the upload limit too.
    uploads: bool,
}

fn resource(path: &str) -> Route {
    Route {
        resource: web::resource(path.to_owned()),
        methods: Vec::new(),
        uploads: false,
    }
}

/// An upload route: its `POST` counts against the upload limit as well as the general one.
fn upload(path: &str) -> Route {
    Route {
        uploads: true,
        ..resource(path)
    }
}

impl Route {
    fn on<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.route(web::method(method.clone()).to(handler));
        self.methods.push(method);
        self
    }

    fn get<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.on(Method::GET, handler)
    }

    fn post<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.on(Method::POST, handler)
    }

    fn patch<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.on(Method::PATCH, handler)
    }

    fn delete<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.on(Method::DELETE, handler)
    }
}

impl HttpServiceFactory for Route {
    fn register(self, config: &mut AppService) {
        let allow: Vec<&str> = self.methods.iter().map(Method::as_str).collect();
        let allow = allow.join(", ");
        let resource = self.resource.default_service(web::to(move || {
            std::future::ready(edge::method_not_allowed(&allow))
        }));
        if self.uploads {
            resource
                .wrap(from_fn(rate_limit::upload_limit))
                .register(config);
        } else {
            resource.register(config);
        }
    }
}

/// The route table: every route of the API in one place.
fn routes(config: &mut web::ServiceConfig) {
    use routes::{
        account, admin, auth, health, portfolio, public, sessions, settings, uploads, users,
    };
    let mut preferences = web::scope("");
    for (path, kind) in PREFERENCE_ROUTES {
        preferences = preferences.service(
            resource(path)
                .get(move |s, c| settings::get(kind, s, c))
                .patch(move |s, c, b| settings::update(kind, s, c, b)),
        );
    }
    preferences = preferences.service(
        resource("/settings/preferences/reset")
            .post(|s, c| settings::reset(&APP_PREFERENCES, s, c)),
    );
    // Health and docs are outside the limited scope: probes and the docs UI never count.
    config
        .service(resource("/api/v1/health").get(health::live))
        .service(resource("/api/v1/health/ready").get(health::ready))
        .service(resource("/api/v1/health/redis").get(health::redis))
        .service(resource("/metrics").get(metrics::scrape))
        .service(resource("/api/v1/docs").get(docs_redirect))
        .service(resource("/ws/chat").get(chat::ws_chat))
        .service(
            resource("/socket.io/")
                .get(chat::socketio_get)
                .post(chat::socketio_post),
        )
        // Stored files: public, immutable, cached by browsers and proxies.
        .service(resource("/uploads/{owner}/{folder}/{name}").get(uploads::serve));
    config.service(
        web::scope("/api/v1")
            // A scope keeps every path under its prefix; this one lets the docs UI (registered
            // after it, so API requests never pay for its pattern) have `/api/v1/docs/…`.
            .guard(guard::fn_guard(|context| {
                !context.head().uri.path().starts_with("/api/v1/docs/")
            }))
            // The hottest routes first.
            .service(web::scope("/public/portfolio").default_service(web::to(public::route)))
            // Auth routes share a scope so that the stricter limit is attached to the routes
            // it guards, whatever spelling of the path reached them.
            .service(
                web::scope("/auth")
                    .wrap(from_fn(rate_limit::auth_limit))
                    .service(resource("/register").post(auth::register))
                    .service(resource("/login").post(auth::login))
                    .service(resource("/refresh").post(auth::refresh))
                    .service(resource("/logout").post(auth::logout))
                    .service(resource("/me").get(auth::me))
                    .service(resource("/forgot-password").post(auth::forgot_password))
                    .service(resource("/reset-password").post(auth::reset_password))
                    .service(resource("/verify-email").post(auth::verify_email))
                    .service(resource("/resend-verification").post(auth::resend_verification))
                    .service(resource("/change-password").post(auth::change_password)),
            )
            .service(resource("/users/profile").patch(users::update_profile))
            .service(upload("/users/profile/avatar").post(uploads::user_avatar))
            .service(
                web::scope("/upload")
                    .service(upload("/image").post(uploads::image))
                    .service(upload("/images").post(uploads::images))
                    .service(upload("/document").post(uploads::document))
                    .service(upload("/avatar").post(uploads::avatar))
                    .service(upload("/resume").post(uploads::resume)),
            )
            .service(resource("/users/account/request-deletion").post(account::request_deletion))
            .service(resource("/users/account").delete(account::delete))
            .service(resource("/users/account/export").get(account::export))
            .service(
                resource("/sessions")
                    .get(sessions::list)
                    .delete(sessions::revoke_others),
            )
            .service(resource("/sessions/{id}").delete(sessions::revoke))
            .service(
                web::scope("/admin")
                    .service(resource("/queues/stats").get(admin::stats))
                    .service(resource("/queues/ui").get(admin::dashboard))
                    .service(resource("/queues/{queueName}/jobs/failed").get(admin::failed))
                    .service(resource("/queues/{queueName}/jobs/history").get(admin::history))
                    .service(resource("/queues/{queueName}/jobs/clean").delete(admin::clean))
                    .service(resource("/queues/{queueName}/jobs/{jobId}/retry").post(admin::retry))
                    .service(resource("/cron").get(admin::cron))
                    .service(resource("/metrics").get(admin::metrics)),
            )
            // Sub-scopes match their static prefix first, so a request is tried only against
            // the few patterns of its area (pattern matching is most of the routing cost).
            .service(
                web::scope("/portfolio")
                    .service(
                        resource("/profile")
                            .get(portfolio::profile)
                            .patch(portfolio::update_profile),
                    )
                    // Before `/{resource}/{id}`, which would take them.
                    .service(upload("/profile/avatar").post(uploads::profile_avatar))
                    .service(upload("/profile/resume").post(uploads::profile_resume))
                    .service(
                        resource("/{resource}")
                            .get(portfolio::list)
                            .post(portfolio::create),
                    )
                    .service(resource("/{resource}/reorder").patch(portfolio::reorder))
                    .service(
                        resource("/{resource}/{id}")
                            .get(portfolio::get)
                            .patch(portfolio::update)
                            .delete(portfolio::delete),
                    )
                    .service(resource("/{resource}/{id}/publish").patch(portfolio::publish)),
            )
            .service(preferences)
            .wrap(from_fn(rate_limit::general_limit)),
    );
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
            .app_data(web::Data::from(Arc::clone(&services.settings)))
            .app_data(web::Data::from(Arc::clone(&services.account_export)))
            .app_data(web::Data::from(Arc::clone(&services.chat)))
            .app_data(web::Data::new(config.chat_socket))
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
    .workers(workers)
    .disable_signals()
    .shutdown_timeout(shutdown)
    .listen(listener)?
    .run();
    Ok(server)
}
