//! Browser-facing protections: helmet-equivalent headers and CORS.

use actix_cors::Cors;
use actix_web::http::{Method, header};
use actix_web::middleware::DefaultHeaders;

/// CSP for JSON answers: nothing may load, nothing may frame.
const API_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
/// CSP for the docs page: its own scripts and styles only, no third-party origin.
pub const DOCS_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Headers every answer carries unless a route set its own.
#[must_use]
pub fn security_headers(hsts: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, API_CSP))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "strict-origin-when-cross-origin"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
        .add(("Cross-Origin-Resource-Policy", "same-site"))
        .add(("Origin-Agent-Cluster", "?1"))
        .add((header::X_XSS_PROTECTION, "0"))
        .add(("X-DNS-Prefetch-Control", "off"))
        .add(("X-Permitted-Cross-Domain-Policies", "none"))
        .add((
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
        ));
    if hsts {
        headers.add((
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ))
    } else {
        headers
    }
}

/// Cross-origin policy.
#[derive(Clone, Debug)]
pub struct CorsPolicy {
    /// Allowed origins; `*` allows any (credentials then echo the origin).
    pub origins: Vec<String>,
    pub credentials: bool,
    pub max_age: usize,
}

pub fn cors(policy: &CorsPolicy) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::IF_NONE_MATCH,
        ])
        .allowed_header("x-request-id")
        .expose_headers(["retry-after", "etag", "content-disposition", "x-request-id"])
        .max_age(policy.max_age);
    for origin in &policy.origins {
        cors = if origin == "*" {
            cors.allow_any_origin()
        } else {
            cors.allowed_origin(origin)
        };
    }
    if policy.credentials {
        cors = cors.supports_credentials();
    }
    cors
}
