//! The HTTP edge (actix-web): the route table, envelopes and problem documents, body parsing
//! and validation, authentication, client identification, rate limits, security headers,
//! CORS and the OpenAPI document. It depends on the cores and on port traits, never on a
//! concrete adapter.

mod auth;
mod body;
mod client;
mod docs;
mod docs_generated;
mod dto;
mod edge;
mod envelope;
mod page_cache;
mod problem;
mod query;
mod rate_limit;
mod records;
mod routes;
mod security;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, guard, web};
use auth_core::IdentityService;
use auth_core::preferences::APP_PREFERENCES;
use kernel::settings::{SettingsKind, SettingsService};
use notify_core::preferences::{EMAIL_PREFERENCES, NOTIFICATION_PREFERENCES};
use portfolio_core::{PortfolioService, PublicPortfolioReader};
use utoipa::OpenApi as _;
use utoipa_swagger_ui::SwaggerUi;

pub use client::ClientIpPolicy;
pub use docs::ApiDoc;
pub use page_cache::{OwnerPages, PageCache};
pub use problem::{ApiError, FieldError};
pub use rate_limit::{InMemoryRateLimiter, RateDecision, RateLimiter, RateLimits};
pub use routes::account::{AccountExport, AccountExporter, ExportError};
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
    pub portfolio: Arc<PortfolioService>,
    pub public_portfolio: Arc<PublicPortfolioReader>,
    pub public_cache: Arc<PageCache>,
    pub owner_pages: Arc<OwnerPages>,
    pub settings: Arc<SettingsService>,
    pub account_export: Arc<dyn AccountExporter>,
    pub health: Arc<Health>,
}

/// The preference sets and where each is served.
const PREFERENCE_ROUTES: [(&str, &SettingsKind); 3] = [
    ("/settings/preferences", &APP_PREFERENCES),
    ("/notifications/preferences", &NOTIFICATION_PREFERENCES),
    ("/email/preferences", &EMAIL_PREFERENCES),
];

/// The route table: every route of the API in one place.
fn routes(config: &mut web::ServiceConfig) {
    use routes::{account, auth, health, portfolio, public, sessions, settings, users};
    let resource = |path: &str| {
        web::resource(path.to_owned()).default_service(web::to(edge::method_not_allowed))
    };
    let mut preferences = web::scope("");
    for (path, kind) in PREFERENCE_ROUTES {
        preferences = preferences.service(
            resource(path)
                .route(web::get().to(move |s, c| settings::get(kind, s, c)))
                .route(web::patch().to(move |s, c, b| settings::update(kind, s, c, b))),
        );
    }
    preferences = preferences.service(
        resource("/settings/preferences/reset")
            .route(web::post().to(|s, c| settings::reset(&APP_PREFERENCES, s, c))),
    );
    // Health and docs are outside the limited scope: probes and the docs UI never count.
    config
        .service(resource("/api/v1/health").route(web::get().to(health::live)))
        .service(resource("/api/v1/health/ready").route(web::get().to(health::ready)))
        .service(resource("/api/v1/docs").route(web::get().to(docs_redirect)));
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
                    .service(resource("/register").route(web::post().to(auth::register)))
                    .service(resource("/login").route(web::post().to(auth::login)))
                    .service(resource("/refresh").route(web::post().to(auth::refresh)))
                    .service(resource("/logout").route(web::post().to(auth::logout)))
                    .service(resource("/me").route(web::get().to(auth::me)))
                    .service(
                        resource("/forgot-password").route(web::post().to(auth::forgot_password)),
                    )
                    .service(
                        resource("/reset-password").route(web::post().to(auth::reset_password)),
                    )
                    .service(resource("/verify-email").route(web::post().to(auth::verify_email)))
                    .service(
                        resource("/resend-verification")
                            .route(web::post().to(auth::resend_verification)),
                    )
                    .service(
                        resource("/change-password").route(web::post().to(auth::change_password)),
                    ),
            )
            .service(resource("/users/profile").route(web::patch().to(users::update_profile)))
            .service(
                resource("/users/account/request-deletion")
                    .route(web::post().to(account::request_deletion)),
            )
            .service(resource("/users/account").route(web::delete().to(account::delete)))
            .service(resource("/users/account/export").route(web::get().to(account::export)))
            .service(
                resource("/sessions")
                    .route(web::get().to(sessions::list))
                    .route(web::delete().to(sessions::revoke_others)),
            )
            .service(resource("/sessions/{id}").route(web::delete().to(sessions::revoke)))
            // Sub-scopes match their static prefix first, so a request is tried only against
            // the few patterns of its area (pattern matching is most of the routing cost).
            .service(
                web::scope("/portfolio")
                    .service(
                        resource("/profile")
                            .route(web::get().to(portfolio::profile))
                            .route(web::patch().to(portfolio::update_profile)),
                    )
                    .service(
                        resource("/{resource}")
                            .route(web::get().to(portfolio::list))
                            .route(web::post().to(portfolio::create)),
                    )
                    .service(
                        resource("/{resource}/reorder").route(web::patch().to(portfolio::reorder)),
                    )
                    .service(
                        resource("/{resource}/{id}")
                            .route(web::get().to(portfolio::get))
                            .route(web::patch().to(portfolio::update))
                            .route(web::delete().to(portfolio::delete)),
                    )
                    .service(
                        resource("/{resource}/{id}/publish")
                            .route(web::patch().to(portfolio::publish)),
                    ),
            )
            .service(preferences)
            .wrap(from_fn(rate_limit::general_limit)),
    );
    config.service(
        SwaggerUi::new("/api/v1/docs/{_:.*}").url("/api/v1/docs/openapi.json", ApiDoc::openapi()),
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
            .app_data(web::Data::from(Arc::clone(&services.portfolio)))
            .app_data(web::Data::from(Arc::clone(&services.public_portfolio)))
            .app_data(web::Data::from(Arc::clone(&services.public_cache)))
            .app_data(web::Data::from(Arc::clone(&services.owner_pages)))
            .app_data(web::Data::from(Arc::clone(&services.settings)))
            .app_data(web::Data::from(Arc::clone(&services.account_export)))
            .app_data(web::Data::new(config.client_ip.clone()))
            .app_data(web::Data::new(config.rate_limits.clone()))
            .app_data(web::PayloadConfig::new(config.json_body_limit))
            .configure(routes)
            .default_service(web::to(edge::not_found))
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
