//! The OpenAPI 3.1 document, generated from the handlers' annotations, and the offline docs UI.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as OpenApiDoc, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::docs_generated::GeneratedRoutes;
use crate::dto;
use crate::envelope::PageMeta;
use crate::problem::{FieldError, Problem};
use crate::routes::{account, auth, health, sessions, users};

#[derive(OpenApi)]
#[openapi(
    info(title = "Console Backend API", version = "1", description = "Portfolio and account console. Every error is an RFC 9457 problem document (`application/problem+json`) with `success`, `statusCode`, `code`, `message`, `errors`, `requestId`, `timestamp` and `path`; every response carries `X-Request-Id`."),
    paths(
        auth::register, auth::login, auth::refresh, auth::logout, auth::me, auth::forgot_password,
        auth::reset_password, auth::verify_email, auth::resend_verification, auth::change_password,
        users::update_profile, account::request_deletion, account::delete, account::export,
        sessions::list, sessions::revoke, sessions::revoke_others,
        health::live, health::ready,
    ),
    components(schemas(Problem, FieldError, PageMeta, dto::UserDto, dto::AuthData, dto::SessionDto)),
    modifiers(&BearerScheme, &GeneratedRoutes, &CommonErrors),
    tags(
        (name = "auth", description = "Registration, sign-in, tokens, password and email flows"),
        (name = "users", description = "The caller's profile"),
        (name = "sessions", description = "The caller's device sessions"),
        (name = "portfolio", description = "The caller's portfolio: nine collections and the profile"),
        (name = "public", description = "Public portfolios, no authentication"),
        (name = "preferences", description = "App, notification and email preferences"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".to_owned());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Adds the errors any route can answer (bad input, rate limits, server failure) to every
/// operation that does not describe them itself.
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let problem = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/problem+json",
                        ContentBuilder::new()
                            .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                                "Problem",
                            ))))
                            .build(),
                    )
                    .build(),
            )
        };
        let common = [
            (
                "400",
                "`VALIDATION_ERROR` (one `errors` entry per bad field) or `INVALID_JSON`",
            ),
            ("413", "`PAYLOAD_TOO_LARGE`: the body is over the limit"),
            ("415", "`UNSUPPORTED_MEDIA_TYPE`: the body is not JSON"),
            (
                "429",
                "`TOO_MANY_REQUESTS`; `Retry-After` says when to try again",
            ),
            (
                "500",
                "`INTERNAL_ERROR`: details are in the server log under the request id",
            ),
        ];
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.put,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                for (status, description) in common {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem(description));
                }
            }
        }
    }
}
