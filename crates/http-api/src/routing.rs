//! What the route table (`lib.rs`) is made of, and how it becomes both the server's routes
//! and the document's paths. An `Endpoint` is one operation: its path, method, handler and
//! OpenAPI operation, declared together. Endpoints are grouped in `Area`s, each an actix scope
//! under one prefix and one rate limit. Nothing else registers an API route or documents one,
//! so the server and its document cannot drift apart.
//!
//! Areas are tried in the table's order, so an area whose prefix lies under another's
//! (`/users/profile/avatar` under `/users`) is listed before it; within an area a fixed path goes
//! before a `{pattern}` that would take it. Each path is one actix resource, whose 405 lists
//! exactly its methods in `Allow`; `Outside` gives the same to what `lib.rs` serves beside the API.
//!
//! Adding a route: write the handler with `#[utoipa::path(method, path = "/api/v1/…", …)]`, the
//! route's one declaration of path and method, and add `.with(annotated!(module::handler))` to its
//! area in `table()`, or a new `Area::new("/prefix", Limit::…)` for a new prefix. The tests below
//! check that the path lies under its area and that no area is taken by one tried before it. A new
//! path parameter name needs a sample value in `concrete` of `crates/app/tests/http/edge_http.rs`.
//! Routes generated from declarations use `Area::route` (`declared_routes.rs`).

use std::collections::BTreeMap;

use actix_web::dev::{AppService, HttpServiceFactory};
use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::{FromRequest, Handler, Responder, guard, web};
use utoipa::openapi::path::{HttpMethod, Operation, PathItem};
use utoipa::openapi::{RefOr, Schema};

use crate::{edge, rate_limit};

/// Where every API path starts.
pub const API: &str = "/api/v1";

/// The rate limit an area is under.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Limit {
    /// Probes, never limited: outside the `/api/v1` scope.
    Unlimited,
    /// The general limit, which wraps the whole `/api/v1` scope (unknown paths count too).
    General,
    /// The general limit and the stricter one of the credential and email routes, attached
    /// to the routes it guards so that no spelling of their paths escapes it.
    Auth,
    /// The general limit and the upload limit, attached to each route of the area (each
    /// upload costs a file's worth of work), so that only an upload that reached its route
    /// counts.
    Upload,
}

/// One operation of the API.
pub struct Endpoint {
    /// The whole path as the document spells it (`/api/v1/sessions/{id}`); actix reads the
    /// same `{name}` segments.
    pub path: String,
    pub method: HttpMethod,
    pub operation: Operation,
    /// `None` when the area's dispatcher answers it (`Area::dispatched`).
    handler: Option<actix_web::Route>,
}

/// Endpoints served under one prefix and one rate limit: an actix scope, so the router tries a
/// request only against the few patterns of its area (pattern matching is most of the routing
/// cost).
pub struct Area {
    /// The scope's path under `/api/v1`: `/auth`, `/portfolio/projects`.
    prefix: String,
    limit: Limit,
    /// In the order actix tries them: a fixed path before a pattern that would take it too.
    pub endpoints: Vec<Endpoint>,
    /// The component schemas that the area's operations refer to.
    pub schemas: BTreeMap<String, RefOr<Schema>>,
    dispatcher: Option<actix_web::Route>,
}

/// An operation documented by its handler's `#[utoipa::path]` attribute, which also gives its
/// path and method: `annotated!(auth::register)`. The block-local derive collects the schemas
/// the attribute refers to, as the document's own derive would.
macro_rules! annotated {
    ($($handler:ident)::+) => {{
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($handler)::+))]
        struct Annotated;
        $crate::routing::Annotated::new(
            <Annotated as utoipa::OpenApi>::openapi(),
            $($handler)::+,
        )
    }};
}
pub(crate) use annotated;

/// What `annotated!` gives `Area::with`.
pub struct Annotated {
    endpoints: Vec<Endpoint>,
    schemas: BTreeMap<String, RefOr<Schema>>,
}

impl Annotated {
    pub fn new<F, Args>(document: utoipa::openapi::OpenApi, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let endpoints = document
            .paths
            .paths
            .into_iter()
            .flat_map(|(path, item)| {
                operations(item).map(move |(method, operation)| (path.clone(), method, operation))
            })
            .map(|(path, method, operation)| Endpoint {
                handler: Some(web::method(actix_method(&method)).to(handler.clone())),
                path,
                method,
                operation,
            })
            .collect();
        Self {
            endpoints,
            schemas: document
                .components
                .map(|components| components.schemas)
                .unwrap_or_default(),
        }
    }
}

impl Area {
    pub fn new(prefix: impl Into<String>, limit: Limit) -> Self {
        Self {
            prefix: prefix.into(),
            limit,
            endpoints: Vec::new(),
            schemas: BTreeMap::new(),
            dispatcher: None,
        }
    }

    /// An area whose every request goes to `handler`, which tells the area's paths apart (and
    /// answers the 405s) itself: the public portfolio, where splitting two segments is cheaper
    /// than matching patterns. Its endpoints (`documents`) say what the handler answers.
    pub fn dispatched<F, Args>(prefix: impl Into<String>, limit: Limit, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        Self {
            dispatcher: Some(web::to(handler)),
            ..Self::new(prefix, limit)
        }
    }

    /// Adds the endpoints of an `annotated!` handler.
    pub fn with(mut self, annotated: Annotated) -> Self {
        self.endpoints.extend(annotated.endpoints);
        self.schemas.extend(annotated.schemas);
        self
    }

    /// Adds an operation at `path` (under the area's prefix) answered by `handler`.
    pub fn route<F, Args>(
        mut self,
        method: HttpMethod,
        path: &str,
        handler: F,
        operation: Operation,
    ) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.endpoints.push(Endpoint {
            path: format!("{API}{}{path}", self.prefix),
            handler: Some(web::method(actix_method(&method)).to(handler)),
            method,
            operation,
        });
        self
    }

    /// Adds an operation at `path` (under the area's prefix) that the dispatcher answers.
    pub fn documents(mut self, method: HttpMethod, path: &str, operation: Operation) -> Self {
        self.endpoints.push(Endpoint {
            path: format!("{API}{}{path}", self.prefix),
            handler: None,
            method,
            operation,
        });
        self
    }

    pub fn schema(mut self, name: impl Into<String>, schema: impl Into<RefOr<Schema>>) -> Self {
        self.schemas.insert(name.into(), schema.into());
        self
    }

    /// The area as an actix scope mounted at `mount` (the API scope's path, or `""` at the
    /// root): one resource per path, in the order of the endpoints.
    fn scope(self, mount: &str) -> actix_web::Scope {
        let whole = format!("{API}{}", self.prefix);
        let mut paths: Vec<(String, Vec<(HttpMethod, actix_web::Route)>)> = Vec::new();
        for endpoint in self.endpoints {
            let Some(handler) = endpoint.handler else {
                continue;
            };
            // Every path lies under its area's prefix (a test checks it).
            let path = endpoint
                .path
                .strip_prefix(&whole)
                .unwrap_or(&endpoint.path)
                .to_owned();
            match paths.iter_mut().find(|(known, _)| *known == path) {
                Some((_, routes)) => routes.push((endpoint.method, handler)),
                None => paths.push((path, vec![(endpoint.method, handler)])),
            }
        }
        let mut scope = web::scope(whole.strip_prefix(mount).unwrap_or(&whole));
        let uploads = self.limit == Limit::Upload;
        for (path, routes) in paths {
            scope = scope.service(Resource {
                path,
                routes,
                uploads,
            });
        }
        if let Some(dispatcher) = self.dispatcher {
            scope = scope.default_service(dispatcher);
        }
        scope
    }
}

/// Registers every area: unlimited ones at the root, the rest in the `/api/v1` scope under the
/// general limit, in the table's order (so the hottest areas, listed first, are tried first,
/// and an area whose prefix is a sub-path of another's is listed before it, or the other's
/// scope would take its requests; a test checks it).
pub fn register(areas: Vec<Area>, config: &mut web::ServiceConfig) {
    let mut api = web::scope(API)
        // A scope keeps every path under its prefix; this one lets the docs UI (registered
        // after it, so API requests never pay for its pattern) have `/api/v1/docs/…`.
        .guard(guard::fn_guard(|context| {
            !context.head().uri.path().starts_with("/api/v1/docs/")
        }));
    for area in areas {
        match area.limit {
            Limit::Unlimited => {
                config.service(area.scope(""));
            }
            // The upload limit wraps each route of the area (`Resource`).
            Limit::General | Limit::Upload => api = api.service(area.scope(API)),
            Limit::Auth => {
                api = api.service(area.scope(API).wrap(from_fn(rate_limit::auth_limit)));
            }
        }
    }
    config.service(api.wrap(from_fn(rate_limit::general_limit)));
}

/// A path and its handler per method. Its answer to any other method is a 405 whose `Allow`
/// lists exactly these methods, so the header cannot drift from the table.
struct Resource {
    path: String,
    routes: Vec<(HttpMethod, actix_web::Route)>,
    /// Its uploads count against the upload limit too.
    uploads: bool,
}

/// A path served beside the API that is no operation of it (the chat gateways, stored files):
/// not documented, not under the API's rate limits, with the same 405 and `Allow` as an API
/// path.
pub struct Outside(Resource);

impl Outside {
    pub fn new(path: &str) -> Self {
        Self(Resource {
            path: path.to_owned(),
            routes: Vec::new(),
            uploads: false,
        })
    }

    /// Serves `method` with `handler`.
    pub fn on<F, Args>(mut self, method: HttpMethod, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let route = web::method(actix_method(&method)).to(handler);
        self.0.routes.push((method, route));
        self
    }
}

impl HttpServiceFactory for Outside {
    fn register(self, config: &mut AppService) {
        self.0.register(config);
    }
}

impl HttpServiceFactory for Resource {
    fn register(self, config: &mut AppService) {
        let allow: Vec<Method> = self
            .routes
            .iter()
            .map(|(method, _)| actix_method(method))
            .collect();
        let allow: Vec<&str> = allow.iter().map(Method::as_str).collect();
        let allow = allow.join(", ");
        let resource = self
            .routes
            .into_iter()
            .fold(web::resource(self.path), |resource, (_, route)| {
                resource.route(route)
            })
            .default_service(web::to(move || {
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

/// The operations of a path item, with their methods.
fn operations(item: PathItem) -> impl Iterator<Item = (HttpMethod, Operation)> {
    [
        (HttpMethod::Get, item.get),
        (HttpMethod::Put, item.put),
        (HttpMethod::Post, item.post),
        (HttpMethod::Delete, item.delete),
        (HttpMethod::Options, item.options),
        (HttpMethod::Head, item.head),
        (HttpMethod::Patch, item.patch),
        (HttpMethod::Trace, item.trace),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|operation| (method, operation)))
}

pub fn actix_method(method: &HttpMethod) -> Method {
    match method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Delete => Method::DELETE,
        HttpMethod::Options => Method::OPTIONS,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Trace => Method::TRACE,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use utoipa::OpenApi as _;

    use super::*;

    fn served() -> Vec<(String, String, Limit)> {
        crate::table()
            .into_iter()
            .flat_map(|area| {
                let (prefix, limit) = (area.prefix, area.limit);
                area.endpoints.into_iter().map(move |endpoint| {
                    assert!(
                        endpoint.path == format!("{API}{prefix}")
                            || endpoint.path.starts_with(&format!("{API}{prefix}/")),
                        "{} is outside its area {prefix}",
                        endpoint.path
                    );
                    (
                        endpoint.path,
                        actix_method(&endpoint.method).to_string(),
                        limit,
                    )
                })
            })
            .collect()
    }

    #[test]
    fn every_endpoint_lies_under_its_area_and_is_declared_once() {
        let served = served();
        let distinct: BTreeSet<(&String, &String)> = served
            .iter()
            .map(|(path, method, _)| (path, method))
            .collect();
        assert_eq!(distinct.len(), served.len(), "an operation declared twice");
    }

    #[test]
    fn the_document_describes_exactly_the_operations_of_the_table() {
        let document = serde_json::to_value(crate::ApiDoc::openapi()).unwrap_or_default();
        let documented: BTreeSet<(String, String)> = document["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(path, item)| {
                item.as_object()
                    .into_iter()
                    .flatten()
                    .map(move |(method, _)| (path.clone(), method.to_uppercase()))
            })
            .collect();
        let served: BTreeSet<(String, String)> = served()
            .into_iter()
            .map(|(path, method, _)| (path, method))
            .collect();
        assert_eq!(documented, served);
    }

    #[test]
    fn only_probes_are_unlimited_credentials_are_under_the_auth_limit_and_uploads_under_theirs() {
        const UPLOADS: [&str; 8] = [
            "/api/v1/upload/image",
            "/api/v1/upload/images",
            "/api/v1/upload/document",
            "/api/v1/upload/avatar",
            "/api/v1/upload/resume",
            "/api/v1/users/profile/avatar",
            "/api/v1/portfolio/profile/avatar",
            "/api/v1/portfolio/profile/resume",
        ];
        for (path, method, limit) in served() {
            let expected = if path.starts_with("/api/v1/health") {
                Limit::Unlimited
            } else if path.starts_with("/api/v1/auth/") {
                Limit::Auth
            } else if UPLOADS.contains(&path.as_str()) {
                Limit::Upload
            } else {
                Limit::General
            };
            assert_eq!(limit, expected, "{method} {path}");
        }
    }

    /// actix gives a request to the first scope whose prefix it starts with, so an area under
    /// another's prefix must come first, or the other takes its requests (and answers 404).
    #[test]
    fn no_area_is_taken_by_one_tried_before_it() {
        let prefixes: Vec<(String, bool)> = crate::table()
            .into_iter()
            .map(|area| (area.prefix, area.limit == Limit::Unlimited))
            .collect();
        for (later, (prefix, root)) in prefixes.iter().enumerate() {
            for (earlier, root_earlier) in &prefixes[..later] {
                let taken = root == root_earlier
                    && (prefix == earlier || prefix.starts_with(&format!("{earlier}/")));
                assert!(!taken, "{earlier} is tried before {prefix}, which it takes");
            }
        }
    }
}
