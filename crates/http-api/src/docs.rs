//! The OpenAPI 3.1 document: the route table's operations (`lib.rs`), the schemas they refer
//! to, and what every operation shares (bearer scheme, common errors, problem media type).
//!
//! `lib.rs` serves it at `/api/v1/docs/openapi.json`, beside the bundled (offline) Swagger UI at
//! `/api/v1/docs/`.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as OpenApiDoc, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::dto;
use crate::envelope::{MessageEnvelope, PageMeta};
use crate::problem::{FieldError, Problem};
use crate::routes::account;

#[derive(OpenApi)]
#[openapi(
    info(title = "Console Backend API", version = "1", description = "Portfolio and account console. Every error is an RFC 9457 problem document (`application/problem+json`) with `success`, `statusCode`, `code`, `message`, `errors`, `requestId`, `timestamp` and `path`; every response carries `X-Request-Id`."),
    components(schemas(Problem, FieldError, PageMeta, MessageEnvelope, dto::UserDto, dto::AuthData, dto::SessionDto, account::ExportFormat)),
    modifiers(&BearerScheme, &SharedSchemas, &RouteTable, &CommonErrors, &ProblemMediaType),
    tags(
        (name = "auth", description = "Registration, sign-in, tokens, password and email flows"),
        (name = "users", description = "The caller's profile"),
        (name = "sessions", description = "The caller's device sessions"),
        (name = "portfolio", description = "The caller's portfolio: nine collections and the profile"),
        (name = "public", description = "Public portfolios, no authentication"),
        (name = "preferences", description = "App, notification and email preferences"),
        (name = "uploads", description = "Pictures and documents: types decided from content, pictures re-encoded without metadata, files served under `/uploads/`"),
        (name = "health", description = "Liveness, readiness and Redis"),
        (name = "admin", description = "Queues, cron jobs and metrics (role admin)"),
    )
)]
pub struct ApiDoc;

/// The document as served, built once. utoipa 5.5 writes a link's `operationId` and
/// `operationRef` in snake case, which no client reads; they are respelled here.
pub fn document() -> serde_json::Value {
    static DOCUMENT: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    DOCUMENT
        .get_or_init(|| {
            let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
            let responses = document["paths"]
                .as_object_mut()
                .into_iter()
                .flat_map(|paths| paths.values_mut())
                .filter_map(serde_json::Value::as_object_mut)
                .flat_map(|item| item.values_mut())
                .filter_map(|operation| operation["responses"].as_object_mut())
                .flat_map(|responses| responses.values_mut());
            for response in responses {
                let links = response
                    .get_mut("links")
                    .and_then(serde_json::Value::as_object_mut)
                    .into_iter()
                    .flat_map(|links| links.values_mut())
                    .filter_map(serde_json::Value::as_object_mut);
                for link in links {
                    for (snake, camel) in [
                        ("operation_id", "operationId"),
                        ("operation_ref", "operationRef"),
                    ] {
                        if let Some(value) = link.remove(snake) {
                            link.insert(camel.to_owned(), value);
                        }
                    }
                }
            }
            document
        })
        .clone()
}

/// Every operation of the route table, and the schemas its areas refer to.
struct RouteTable;

impl Modify for RouteTable {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        for area in crate::table() {
            openapi
                .components
                .get_or_insert_with(Default::default)
                .schemas
                .extend(area.schemas);
            for endpoint in area.endpoints {
                openapi.paths.add_path_operation(
                    endpoint.path,
                    vec![endpoint.method],
                    endpoint.operation,
                );
            }
        }
    }
}

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".to_owned());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Field schemas too large to repeat at each use (their character classes are generated).
struct SharedSchemas;

impl Modify for SharedSchemas {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .schemas
            .insert(dto::NEW_PASSWORD.to_owned(), dto::new_password_component());
        components
            .schemas
            .insert(dto::PERSON_NAME.to_owned(), dto::person_name_component());
    }
}

/// Every error is sent as `application/problem+json` (`edge.rs`), so every response described
/// by the `Problem` schema is declared with that media type, however its route spelled it.
struct ProblemMediaType;

impl Modify for ProblemMediaType {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let problem = utoipa::openapi::Ref::from_schema_name("Problem");
        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item) {
                for response in operation.responses.responses.values_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    let is_problem = response
                        .content
                        .get("application/json")
                        .is_some_and(|content| content.schema == Some(RefOr::Ref(problem.clone())));
                    if !is_problem {
                        continue;
                    }
                    if let Some(content) = response.content.shift_remove("application/json") {
                        response
                            .content
                            .insert("application/problem+json".to_owned(), content);
                    }
                }
            }
        }
    }
}

fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.patch,
        &mut item.put,
        &mut item.delete,
    ]
    .into_iter()
    .flatten()
}

/// Adds the errors any route can answer (bad input, rate limits, server failure) to every
/// operation that does not describe them itself.
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let problem = |status: &str, description: &str| {
            let mut response = ResponseBuilder::new().description(description);
            if status == "429" {
                response = response.header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(ObjectBuilder::new().schema_type(SchemaType::new(Type::Integer)))
                        .description(Some("Seconds until the limit resets"))
                        .build(),
                );
            }
            RefOr::T(
                response
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
            for operation in operations(item) {
                for (status, description) in common {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem(status, description));
                }
            }
        }
    }
}
