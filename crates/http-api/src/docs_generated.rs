//! OpenAPI paths for the routes served from declarations (portfolio resources, the portfolio
//! profile, preference sets, the public portfolio): generated from the same declarations the
//! handlers use, so a new resource is documented the moment it is declared.

use kernel::settings::SettingsKind;
use portfolio_core::model::ResourceSpec;
use portfolio_core::resources::{PROFILE, RESOURCES};
use utoipa::Modify;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{
    ContentBuilder, OpenApi as OpenApiDoc, Ref, RefOr, Required, ResponseBuilder, Schema,
};

use crate::PREFERENCE_ROUTES;
use crate::records::schema_of;

fn reference(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::new(Type::String))
}

fn envelope(data: RefOr<Schema>, paginated: bool) -> RefOr<Schema> {
    let mut object = ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::Object))
        .property(
            "success",
            ObjectBuilder::new().schema_type(SchemaType::new(Type::Boolean)),
        )
        .property("message", string())
        .property("data", data);
    if paginated {
        object = object.property("meta", reference("PageMeta"));
    }
    RefOr::T(object.into())
}

fn list_of(item: RefOr<Schema>) -> RefOr<Schema> {
    RefOr::T(ArrayBuilder::new().items(item).into())
}

fn json(schema: RefOr<Schema>) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(schema)).build()
}

fn problem(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/problem+json", json(reference("Problem")))
        .build()
}

fn path_param(name: &str, description: &str) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(string()))
        .build()
}

fn query_param(name: &str, description: &str, kind: Type) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(
            ObjectBuilder::new().schema_type(SchemaType::new(kind)),
        ))
        .build()
}

/// One operation: tag, summary, optional body schema, success answer, and auth.
struct Op<'a> {
    tag: &'a str,
    summary: String,
    body: Option<RefOr<Schema>>,
    status: &'a str,
    answer: RefOr<Schema>,
    params: Vec<utoipa::openapi::path::Parameter>,
    authenticated: bool,
    not_found: bool,
}

impl Op<'_> {
    fn build(self) -> utoipa::openapi::path::Operation {
        let mut operation = OperationBuilder::new()
            .tag(self.tag)
            .summary(Some(self.summary))
            .response(
                self.status,
                ResponseBuilder::new()
                    .description("Success")
                    .content("application/json", json(self.answer))
                    .build(),
            );
        for param in self.params {
            operation = operation.parameter(param);
        }
        if let Some(body) = self.body {
            operation = operation.request_body(Some(
                RequestBodyBuilder::new()
                    .content("application/json", json(body))
                    .required(Some(Required::True))
                    .build(),
            ));
        }
        if self.authenticated {
            operation = operation
                .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
                .response("401", problem("`UNAUTHORIZED`: no valid access token"));
        }
        if self.not_found {
            operation = operation.response("404", problem("`NOT_FOUND`"));
        }
        operation.build()
    }
}

fn schema_names(spec: &ResourceSpec) -> (String, String, String) {
    let base: String = spec
        .label
        .split(' ')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect();
    (
        base.clone(),
        format!("{base}Create"),
        format!("{base}Update"),
    )
}

pub struct GeneratedRoutes;

impl GeneratedRoutes {
    fn resource(openapi: &mut OpenApiDoc, spec: &'static ResourceSpec) {
        let (item, create, update) = schema_names(spec);
        let components = openapi.components.get_or_insert_with(Default::default);
        components.schemas.insert(
            item.clone(),
            RefOr::T(schema_of(
                &spec.schema,
                false,
                false,
                &["userId", "createdAt", "updatedAt"],
            )),
        );
        components.schemas.insert(
            create.clone(),
            RefOr::T(schema_of(&spec.schema, true, true, &[])),
        );
        components.schemas.insert(
            update.clone(),
            RefOr::T(schema_of(&spec.schema, true, false, &[])),
        );
        let collection = format!("/api/v1/portfolio/{}", spec.name);
        let one = format!("{collection}/{{id}}");
        let id = || vec![path_param("id", "Item id")];
        let tag = "portfolio";
        let label = spec.label;
        let paths = &mut openapi.paths;
        let mut list_params = vec![
            query_param("page", "Page, from 1", Type::Integer),
            query_param("limit", "Items per page, 1–100 (default 10)", Type::Integer),
        ];
        if let Some(field) = spec.features.group_by {
            list_params.push(query_param(
                "grouped",
                &format!("true: every item, grouped by `{field}`"),
                Type::Boolean,
            ));
        }
        paths.add_path_operation(
            &collection,
            vec![HttpMethod::Get],
            Op {
                tag,
                summary: format!("List your {} (paginated)", spec.name),
                body: None,
                status: "200",
                answer: envelope(list_of(reference(&item)), true),
                params: list_params,
                authenticated: true,
                not_found: false,
            }
            .build(),
        );
        paths.add_path_operation(
            &collection,
            vec![HttpMethod::Post],
            Op {
                tag,
                summary: format!("Create a {}", label.to_lowercase()),
                body: Some(reference(&create)),
                status: "201",
                answer: envelope(reference(&item), false),
                params: Vec::new(),
                authenticated: true,
                not_found: false,
            }
            .build(),
        );
        let by = if spec.features.slug_from.is_some() {
            "by id or slug"
        } else {
            "by id"
        };
        let single = [
            (
                HttpMethod::Get,
                format!("One of your {} {by}", spec.name),
                None,
            ),
            (
                HttpMethod::Patch,
                format!("Change a {}", label.to_lowercase()),
                Some(reference(&update)),
            ),
            (
                HttpMethod::Delete,
                format!("Delete a {} (soft delete)", label.to_lowercase()),
                None,
            ),
        ];
        for (method, summary, body) in single {
            paths.add_path_operation(
                &one,
                vec![method],
                Op {
                    tag,
                    summary,
                    body,
                    status: "200",
                    answer: envelope(reference(&item), false),
                    params: id(),
                    authenticated: true,
                    not_found: true,
                }
                .build(),
            );
        }
        if spec.features.reorder {
            let ids = ObjectBuilder::new()
                .schema_type(SchemaType::new(Type::Object))
                .property("ids", ArrayBuilder::new().items(string()))
                .required("ids");
            paths.add_path_operation(
                format!("{collection}/reorder"),
                vec![HttpMethod::Patch],
                Op {
                    tag,
                    summary: format!(
                        "Set the order of your {}: `ids` lists every one exactly once",
                        spec.name
                    ),
                    body: Some(RefOr::T(ids.into())),
                    status: "200",
                    answer: envelope(list_of(reference(&item)), false),
                    params: Vec::new(),
                    authenticated: true,
                    not_found: false,
                }
                .build(),
            );
        }
        if spec.features.publishing {
            let published = ObjectBuilder::new()
                .schema_type(SchemaType::new(Type::Object))
                .property(
                    "published",
                    ObjectBuilder::new().schema_type(SchemaType::new(Type::Boolean)),
                )
                .required("published");
            paths.add_path_operation(
                format!("{one}/publish"),
                vec![HttpMethod::Patch],
                Op {
                    tag,
                    summary: "Publish or unpublish (sets or clears `publishedAt`)".to_owned(),
                    body: Some(RefOr::T(published.into())),
                    status: "200",
                    answer: envelope(reference(&item), false),
                    params: id(),
                    authenticated: true,
                    not_found: true,
                }
                .build(),
            );
        }
        paths.add_path_operation(
            format!("/api/v1/public/portfolio/{{username}}/{}", spec.name),
            vec![HttpMethod::Get],
            Op {
                tag: "public",
                summary: format!(
                    "Public {}: 404 when the portfolio is private or the section hidden; `ETag` and `If-None-Match` → 304",
                    spec.name
                ),
                body: None,
                status: "200",
                answer: envelope(list_of(reference(&item)), false),
                params: vec![path_param("username", "The owner's username")],
                authenticated: false,
                not_found: true,
            }
            .build(),
        );
    }

    fn settings(
        openapi: &mut OpenApiDoc,
        path: &str,
        kind: &'static SettingsKind,
        name: &str,
        tag: &str,
    ) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.schemas.insert(
            name.to_owned(),
            RefOr::T(schema_of(
                &kind.schema,
                false,
                false,
                &["createdAt", "updatedAt"],
            )),
        );
        components.schemas.insert(
            format!("{name}Update"),
            RefOr::T(schema_of(&kind.schema, true, false, &[])),
        );
        let answer = || envelope(reference(name), false);
        openapi.paths.add_path_operation(
            path,
            vec![HttpMethod::Get],
            Op {
                tag,
                summary: "Read (created with defaults on first read)".to_owned(),
                body: None,
                status: "200",
                answer: answer(),
                params: Vec::new(),
                authenticated: true,
                not_found: false,
            }
            .build(),
        );
        openapi.paths.add_path_operation(
            path,
            vec![HttpMethod::Patch],
            Op {
                tag,
                summary: "Change the given fields".to_owned(),
                body: Some(reference(&format!("{name}Update"))),
                status: "200",
                answer: answer(),
                params: Vec::new(),
                authenticated: true,
                not_found: false,
            }
            .build(),
        );
    }
}

impl Modify for GeneratedRoutes {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        for spec in RESOURCES {
            Self::resource(openapi, spec);
        }
        Self::settings(
            openapi,
            "/api/v1/portfolio/profile",
            &PROFILE,
            "PortfolioProfile",
            "portfolio",
        );
        let names = [
            "AppPreferences",
            "NotificationPreferences",
            "EmailPreferences",
        ];
        for ((path, kind), name) in PREFERENCE_ROUTES.into_iter().zip(names) {
            Self::settings(
                openapi,
                path_in_api(path).as_str(),
                kind,
                name,
                "preferences",
            );
        }
        openapi.paths.add_path_operation(
            "/api/v1/settings/preferences/reset",
            vec![HttpMethod::Post],
            Op {
                tag: "preferences",
                summary: "Put the app preferences back to their defaults".to_owned(),
                body: None,
                status: "200",
                answer: envelope(reference("AppPreferences"), false),
                params: Vec::new(),
                authenticated: true,
                not_found: false,
            }
            .build(),
        );
        let public = ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::Object))
            .property(
                "user",
                ObjectBuilder::new().schema_type(SchemaType::new(Type::Object)),
            )
            .property("profile", reference("PortfolioProfile"))
            .property(
                "sections",
                ObjectBuilder::new()
                    .schema_type(SchemaType::new(Type::Object))
                    .description(Some("Each visible section's items, by section name")),
            );
        openapi.paths.add_path_operation(
            "/api/v1/public/portfolio/{username}",
            vec![HttpMethod::Get],
            Op {
                tag: "public",
                summary: "A public portfolio: owner, public profile fields and every visible section; `ETag` and `If-None-Match` → 304".to_owned(),
                body: None,
                status: "200",
                answer: envelope(RefOr::T(public.into()), false),
                params: vec![path_param("username", "The owner's username")],
                authenticated: false,
                not_found: true,
            }
            .build(),
        );
    }
}

fn path_in_api(path: &str) -> String {
    format!("/api/v1{path}")
}
