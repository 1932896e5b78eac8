//! OpenAPI paths for the routes served from declarations (portfolio resources, the portfolio
//! profile, preference sets, the public portfolio): generated from the same declarations the
//! handlers use, so a new resource is documented the moment it is declared.

use kernel::PageRequest;
use kernel::record::FieldKind;
use kernel::settings::SettingsKind;
use portfolio_core::model::ResourceSpec;
use portfolio_core::resources::{PROFILE, RESOURCES, resource};
use utoipa::Modify;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, SchemaType, Type,
};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{
    ContentBuilder, OpenApi as OpenApiDoc, Ref, RefOr, Required, ResponseBuilder, Schema,
};

use crate::PREFERENCE_ROUTES;
use crate::query::MAX_PAGE;
use crate::records::{Shape, schema_of};
use crate::routes::portfolio::{ID_PATTERN, MAX_REORDER};

fn reference(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::new(Type::String))
}

fn envelope(data: RefOr<Schema>, meta: Meta) -> RefOr<Schema> {
    let mut object = ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::Object))
        .property(
            "success",
            ObjectBuilder::new().schema_type(SchemaType::new(Type::Boolean)),
        )
        .property("message", string())
        .property("data", data)
        .required("success")
        .required("message")
        .required("data");
    if meta != Meta::None {
        object = object.property("meta", reference("PageMeta"));
    }
    if meta == Meta::Always {
        object = object.required("meta");
    }
    RefOr::T(object.into())
}

/// Whether a list answer carries pagination facts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Meta {
    None,
    Always,
    /// Paginated lists have it; `?grouped=true` answers without.
    Sometimes,
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

fn query_param(
    name: &str,
    description: &str,
    schema: ObjectBuilder,
) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

/// `page` and `limit`, with the bounds `ListParams` enforces.
fn page_params() -> Vec<utoipa::openapi::path::Parameter> {
    let whole = |min: u32, max: u32, default: u32| {
        ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::Integer))
            .minimum(Some(f64::from(min)))
            .maximum(Some(f64::from(max)))
            .default(Some(default.into()))
    };
    vec![
        query_param("page", "Page, from 1", whole(1, MAX_PAGE, 1)),
        query_param(
            "limit",
            "Items per page",
            whole(1, PageRequest::MAX_LIMIT, PageRequest::DEFAULT_LIMIT),
        ),
    ]
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
    /// When the answer can be 409: why.
    conflict: Option<String>,
    operation_id: Option<String>,
    /// Operations (by id) that take the `id` of the created item: OpenAPI links, so clients
    /// and tools (schemathesis' stateful phase) can follow a create with its reads and writes.
    item_links: Vec<String>,
}

impl<'a> Op<'a> {
    /// An authenticated 200 answer with no body, parameters or other outcome.
    fn new(tag: &'a str, summary: impl Into<String>, answer: RefOr<Schema>) -> Self {
        Self {
            tag,
            summary: summary.into(),
            body: None,
            status: "200",
            answer,
            params: Vec::new(),
            authenticated: true,
            not_found: false,
            conflict: None,
            operation_id: None,
            item_links: Vec::new(),
        }
    }

    fn build(self) -> utoipa::openapi::path::Operation {
        let mut success = ResponseBuilder::new()
            .description("Success")
            .content("application/json", json(self.answer));
        for target in self.item_links {
            success = success.link(
                target.clone(),
                LinkBuilder::new()
                    .operation_id(target)
                    .parameter("id", "$response.body#/data/id")
                    .build(),
            );
        }
        let mut operation = OperationBuilder::new()
            .tag(self.tag)
            .summary(Some(self.summary))
            .operation_id(self.operation_id)
            .response(self.status, success.build());
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
        if let Some(conflict) = self.conflict {
            operation = operation.response("409", problem(&conflict));
        }
        operation.build()
    }
}

/// The schema names of a resource: its item, create body and update body.
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

/// The answered schema of the item a reference field links to.
fn linked_item(target: &'static str) -> RefOr<Schema> {
    match resource(target) {
        Some(spec) => reference(&schema_names(spec).0),
        None => RefOr::T(ObjectBuilder::new().into()),
    }
}

/// What a 409 on writing an item of `spec` means, when it can happen.
fn write_conflict(spec: &ResourceSpec) -> Option<String> {
    let links = spec
        .schema
        .fields
        .iter()
        .any(|field| matches!(field.kind, FieldKind::Ref(_)));
    let mut reasons = Vec::new();
    if links {
        reasons.push("`LINK_NOT_FOUND`: a linked id is not one of your live items");
    }
    if spec.features.slug_from.is_some() {
        reasons.push("`SLUG_TAKEN`: you already have an item with this slug");
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

pub struct GeneratedRoutes;

impl GeneratedRoutes {
    fn resource(openapi: &mut OpenApiDoc, spec: &'static ResourceSpec) {
        let (item, create, update) = schema_names(spec);
        let plural = {
            let mut chars = spec.name.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        };
        let op_id = |verb: &str| Some(format!("{verb}{item}"));
        let slugged = spec.features.slug_from.is_some();
        let components = openapi.components.get_or_insert_with(Default::default);
        let order: &[(&str, bool)] = if spec.features.reorder {
            &[("order", true)]
        } else {
            &[]
        };
        let bookkeeping: Vec<(&str, bool)> = [("id", true), ("userId", false)]
            .into_iter()
            .chain(order.iter().copied())
            .chain([("createdAt", true), ("updatedAt", true)])
            .collect();
        components.schemas.insert(
            item.clone(),
            RefOr::T(schema_of(
                &spec.schema,
                Shape::Read,
                &bookkeeping,
                &linked_item,
                slugged,
            )),
        );
        components.schemas.insert(
            create.clone(),
            RefOr::T(schema_of(
                &spec.schema,
                Shape::Create,
                &[],
                &linked_item,
                slugged,
            )),
        );
        components.schemas.insert(
            update.clone(),
            RefOr::T(schema_of(
                &spec.schema,
                Shape::Update,
                &[],
                &linked_item,
                slugged,
            )),
        );
        let collection = format!("/api/v1/portfolio/{}", spec.name);
        let one = format!("{collection}/{{id}}");
        let id = || vec![path_param("id", "Item id")];
        let tag = "portfolio";
        let label = spec.label.to_lowercase();
        let items = || list_of(reference(&item));
        let paths = &mut openapi.paths;
        let mut list_params = page_params();
        let list_answer = match spec.features.group_by {
            Some(field) => {
                list_params.push(query_param(
                    "grouped",
                    &format!("true: every item, grouped by `{field}` (then without `meta`)"),
                    ObjectBuilder::new().schema_type(SchemaType::new(Type::Boolean)),
                ));
                let group = ObjectBuilder::new()
                    .schema_type(SchemaType::new(Type::Object))
                    .property(field, string())
                    .property("items", items())
                    .required(field)
                    .required("items");
                let groups = list_of(RefOr::T(group.into()));
                envelope(
                    RefOr::T(
                        utoipa::openapi::schema::AnyOfBuilder::new()
                            .item(items())
                            .item(groups)
                            .into(),
                    ),
                    Meta::Sometimes,
                )
            }
            None => envelope(items(), Meta::Always),
        };
        paths.add_path_operation(
            &collection,
            vec![HttpMethod::Get],
            Op {
                params: list_params,
                operation_id: Some(format!("list{plural}")),
                ..Op::new(
                    tag,
                    format!("List your {} (paginated)", spec.name),
                    list_answer,
                )
            }
            .build(),
        );
        paths.add_path_operation(
            &collection,
            vec![HttpMethod::Post],
            Op {
                body: Some(reference(&create)),
                status: "201",
                conflict: write_conflict(spec),
                operation_id: op_id("create"),
                item_links: ["get", "update", "delete"]
                    .into_iter()
                    .chain(spec.features.publishing.then_some("publish"))
                    .map(|verb| format!("{verb}{item}"))
                    .collect(),
                ..Op::new(
                    tag,
                    format!("Create a {label}"),
                    envelope(reference(&item), Meta::None),
                )
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
                "get",
                format!("One of your {} {by}", spec.name),
            ),
            (
                HttpMethod::Patch,
                "update",
                format!(
                    "Change a {label}: the fields given; `null` clears one; what the item answered may be sent back (the server's fields are ignored)"
                ),
            ),
            (
                HttpMethod::Delete,
                "delete",
                format!("Delete a {label} (soft delete)"),
            ),
        ];
        for (method, verb, summary) in single {
            let (body, answer, conflict) = match method {
                HttpMethod::Patch => (
                    Some(reference(&update)),
                    envelope(reference(&item), Meta::None),
                    write_conflict(spec),
                ),
                HttpMethod::Delete => (None, reference("MessageEnvelope"), None),
                _ => (None, envelope(reference(&item), Meta::None), None),
            };
            paths.add_path_operation(
                &one,
                vec![method],
                Op {
                    body,
                    params: id(),
                    not_found: true,
                    conflict,
                    operation_id: op_id(verb),
                    ..Op::new(tag, summary, answer)
                }
                .build(),
            );
        }
        if spec.features.reorder {
            let ids = ObjectBuilder::new()
                .schema_type(SchemaType::new(Type::Object))
                .property(
                    "ids",
                    ArrayBuilder::new()
                        .items(string().pattern(Some(ID_PATTERN)))
                        .unique_items(true)
                        .max_items(Some(MAX_REORDER)),
                )
                .required("ids")
                .additional_properties(Some(AdditionalProperties::FreeForm(false)));
            paths.add_path_operation(
                format!("{collection}/reorder"),
                vec![HttpMethod::Patch],
                Op {
                    body: Some(RefOr::T(ids.into())),
                    conflict: Some(
                        "`REORDER_MISMATCH`: `ids` is not every one of your items exactly once"
                            .to_owned(),
                    ),
                    operation_id: Some(format!("reorder{plural}")),
                    ..Op::new(
                        tag,
                        format!(
                            "Set the order of your {}: `ids` lists every one exactly once",
                            spec.name
                        ),
                        envelope(items(), Meta::None),
                    )
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
                .required("published")
                .additional_properties(Some(AdditionalProperties::FreeForm(false)));
            paths.add_path_operation(
                format!("{one}/publish"),
                vec![HttpMethod::Patch],
                Op {
                    body: Some(RefOr::T(published.into())),
                    params: id(),
                    not_found: true,
                    operation_id: op_id("publish"),
                    ..Op::new(
                        tag,
                        "Publish or unpublish (sets or clears `publishedAt`)",
                        envelope(reference(&item), Meta::None),
                    )
                }
                .build(),
            );
        }
        paths.add_path_operation(
            format!("/api/v1/public/portfolio/{{username}}/{}", spec.name),
            vec![HttpMethod::Get],
            Op {
                params: vec![path_param("username", "The owner's username")],
                authenticated: false,
                not_found: true,
                operation_id: Some(format!("public{plural}")),
                ..Op::new(
                    "public",
                    format!(
                        "Public {}: 404 when the portfolio is private or the section hidden; `ETag` and `If-None-Match` → 304",
                        spec.name
                    ),
                    envelope(items(), Meta::None),
                )
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
                Shape::Read,
                &[("createdAt", false), ("updatedAt", false)],
                &linked_item,
                false,
            )),
        );
        components.schemas.insert(
            format!("{name}Update"),
            RefOr::T(schema_of(
                &kind.schema,
                Shape::Update,
                &[],
                &linked_item,
                false,
            )),
        );
        let answer = || envelope(reference(name), Meta::None);
        openapi.paths.add_path_operation(
            path,
            vec![HttpMethod::Get],
            Op::new(tag, "Read (created with defaults on first read)", answer()).build(),
        );
        openapi.paths.add_path_operation(
            path,
            vec![HttpMethod::Patch],
            Op {
                body: Some(reference(&format!("{name}Update"))),
                ..Op::new(
                    tag,
                    "Change the given fields (`null`: back to the default); what was read may be sent back",
                    answer(),
                )
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
        // The upload routes that set a profile field answer the profile, whose schema is
        // generated here.
        for path in [
            "/api/v1/portfolio/profile/avatar",
            "/api/v1/portfolio/profile/resume",
        ] {
            let answered = openapi
                .paths
                .paths
                .get_mut(path)
                .and_then(|item| item.post.as_mut())
                .and_then(|operation| operation.responses.responses.get_mut("200"));
            if let Some(RefOr::T(answer)) = answered {
                answer.content.insert(
                    "application/json".to_owned(),
                    json(envelope(reference("PortfolioProfile"), Meta::None)),
                );
            }
        }
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
            Op::new(
                "preferences",
                "Put the app preferences back to their defaults",
                envelope(reference("AppPreferences"), Meta::None),
            )
            .build(),
        );
        let owner = ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::Object))
            .property("username", string())
            .required("username");
        let owner = ["displayName", "firstName", "lastName", "avatar"]
            .into_iter()
            .fold(owner, |owner, name| {
                owner.property(
                    name,
                    ObjectBuilder::new().schema_type(
                        [Type::String, Type::Null]
                            .into_iter()
                            .collect::<SchemaType>(),
                    ),
                )
            });
        let sections = RESOURCES.iter().fold(
            ObjectBuilder::new()
                .schema_type(SchemaType::new(Type::Object))
                .description(Some("Each visible section's items, by section name"))
                .additional_properties(Some(AdditionalProperties::FreeForm(false))),
            |sections, spec| {
                sections.property(spec.name, list_of(reference(&schema_names(spec).0)))
            },
        );
        let public = ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::Object))
            .property("user", owner)
            .property("profile", reference("PortfolioProfile"))
            .property("sections", sections)
            .required("user")
            .required("profile")
            .required("sections");
        openapi.paths.add_path_operation(
            "/api/v1/public/portfolio/{username}",
            vec![HttpMethod::Get],
            Op {
                params: vec![path_param("username", "The owner's username")],
                authenticated: false,
                not_found: true,
                ..Op::new(
                    "public",
                    "A public portfolio: owner, public profile fields and every visible section; `ETag` and `If-None-Match` → 304",
                    envelope(RefOr::T(public.into()), Meta::None),
                )
            }
            .build(),
        );
    }
}

fn path_in_api(path: &str) -> String {
    format!("/api/v1{path}")
}
