//! The HTTP edge (actix-web): the route table, envelopes and problem documents, body parsing
//! and validation, authentication, client identification, rate limits, security headers,
//! CORS and the OpenAPI document. It depends on the cores and on port traits, never on a
//! concrete adapter.

mod auth;
mod body;
mod client;
mod docs;
mod dto;
mod edge;
mod envelope;
mod problem;
mod rate_limit;
mod routes;
mod security;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use auth_core::IdentityService;
use utoipa::OpenApi as _;
use utoipa_swagger_ui::SwaggerUi;

pub use client::ClientIpPolicy;
pub use docs::ApiDoc;
pub use problem::{ApiError, FieldError};
pub use rate_limit::{InMemoryRateLimiter, RateDecision, RateLimiter, RateLimits};
pub use routes::health::{Health, ReadinessProbe};
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
}

/// The services the handlers call.
#[derive(Clone)]
pub struct HttpServices {
    pub identity: Arc<IdentityService>,
    pub health: Arc<Health>,
}

/// The route table: every route of the API in one place.
fn routes(config: &mut web::ServiceConfig) {
    use routes::{auth, health, sessions, users};
    let resource = |path: &str| {
        web::resource(path.to_owned()).default_service(web::to(edge::method_not_allowed))
    };
    // Before the /api/v1 scope: a scope that matches a prefix keeps every path under it.
    config.service(
        SwaggerUi::new("/api/v1/docs/{_:.*}").url("/api/v1/docs/openapi.json", ApiDoc::openapi()),
    );
    config.service(
        web::scope("/api/v1")
            .service(resource("/auth/register").route(web::post().to(auth::register)))
            .service(resource("/auth/login").route(web::post().to(auth::login)))
            .service(resource("/auth/refresh").route(web::post().to(auth::refresh)))
            .service(resource("/auth/logout").route(web::post().to(auth::logout)))
            .service(resource("/auth/me").route(web::get().to(auth::me)))
            .service(resource("/auth/forgot-password").route(web::post().to(auth::forgot_password)))
            .service(resource("/auth/reset-password").route(web::post().to(auth::reset_password)))
            .service(resource("/auth/verify-email").route(web::post().to(auth::verify_email)))
            .service(
                resource("/auth/resend-verification")
                    .route(web::post().to(auth::resend_verification)),
            )
            .service(resource("/auth/change-password").route(web::post().to(auth::change_password)))
            .service(resource("/users/profile").route(web::patch().to(users::update_profile)))
            .service(
                resource("/sessions")
                    .route(web::get().to(sessions::list))
                    .route(web::delete().to(sessions::revoke_others)),
            )
            .service(resource("/sessions/{id}").route(web::delete().to(sessions::revoke)))
            .service(resource("/health").route(web::get().to(health::live)))
            .service(resource("/health/ready").route(web::get().to(health::ready)))
            .service(resource("/docs").route(web::get().to(docs_redirect))),
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
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::from(Arc::clone(&services.identity)))
            .app_data(web::Data::from(Arc::clone(&services.health)))
            .app_data(web::Data::new(config.client_ip.clone()))
            .app_data(web::Data::new(config.rate_limits.clone()))
            .app_data(web::PayloadConfig::new(config.json_body_limit))
            .configure(routes)
            .default_service(web::to(edge::not_found))
            .wrap(from_fn(rate_limit::rate_limit))
            .wrap(security::cors(&config.cors))
            .wrap(from_fn(edge::edge))
            .wrap(security::security_headers(config.hsts))
    })
    .workers(workers)
    .disable_signals()
    .shutdown_timeout(shutdown)
    .listen(listener)?
    .run();
    Ok(server)
}
