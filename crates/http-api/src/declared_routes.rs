//! The areas of the route table served from declarations (each portfolio resource, the
//! portfolio profile, the preference sets, the public portfolio): their handlers and OpenAPI
//! operations come from the same declaration, so a new resource is served and documented the
//! moment it is declared, with exactly the routes its features allow.

use auth_core::preferences::APP_PREFERENCES;
use kernel::PageRequest;
use kernel::record::FieldKind;
use kernel::settings::SettingsKind;
use notify_core::preferences::{EMAIL_PREFERENCES, NOTIFICATION_PREFERENCES};
use portfolio_core::model::ResourceSpec;
use portfolio_core::resources::{PROFILE, RESOURCES, resource};
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, SchemaType, Type,
};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, ResponseBuilder, Schema};

use crate::query::MAX_PAGE;
use crate::record_json::{Shape, schema_of};
use crate::routes::portfolio::{self, ID_PATTERN, MAX_REORDER};
use crate::routes::{public, settings, uploads};
use crate::routing::{Area, Limit, annotated};

/// The preference sets: where each is served and its schema's name.
const PREFERENCES: [(&str, &SettingsKind, &str); 3] = [
    ("/settings/preferences", &APP_PREFERENCES, "AppPreferences"),
    (
        "/notifications/preferences",
        &NOTIFICATION_PREFERENCES,
        "NotificationPreferences",
    ),
    ("/email/preferences", &EMAIL_PREFERENCES, "EmailPreferences"),
];

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
    let base: String = spec.label.split(' ').map(capitalised).collect();
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

/// The names one portfolio resource's routes and schemas are documented under.
struct ResourceNames {
    /// The item's schema name (`Project`); the create and update bodies' follow from it.
    item: String,
    create: String,
    update: String,
    /// The collection, capitalised (`Projects`), for list and reorder operation ids.
    plural: String,
    /// The item in a sentence (`project`).
    label: String,
}

impl ResourceNames {
    fn of(spec: &ResourceSpec) -> Self {
        let (item, create, update) = schema_names(spec);
        Self {
            item,
            create,
            update,
            plural: capitalised(spec.name),
            label: spec.label.to_lowercase(),
        }
    }

    fn op_id(&self, verb: &str) -> Option<String> {
        Some(format!("{verb}{}", self.item))
    }

    fn items(&self) -> RefOr<Schema> {
        list_of(reference(&self.item))
    }

    fn one_item(&self) -> RefOr<Schema> {
        envelope(reference(&self.item), Meta::None)
    }
}

const PORTFOLIO_TAG: &str = "portfolio";

/// A portfolio resource: its collection, its items, and the reorder and publish routes only
/// where the resource has them (so neither takes an item's slug or id from another resource).
pub fn resource_area(spec: &'static ResourceSpec) -> Area {
    let names = ResourceNames::of(spec);
    let mut area = resource_schemas(
        Area::new(format!("/portfolio/{}", spec.name), Limit::General),
        spec,
        &names,
    );
    area = collection_routes(area, spec, &names);
    // Before the item routes: actix tries paths in order, and `/{id}` would take this one.
    if spec.features.reorder {
        area = reorder_route(area, spec, &names);
    }
    area = item_routes(area, spec, &names);
    if spec.features.publishing {
        area = publish_route(area, spec, &names);
    }
    area
}

/// The item as answered (with the server's bookkeeping), and the create and update bodies.
fn resource_schemas(area: Area, spec: &'static ResourceSpec, names: &ResourceNames) -> Area {
    let slugged = spec.features.slug_from.is_some();
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
    area.schema(
        names.item.clone(),
        schema_of(
            &spec.schema,
            Shape::Read,
            &bookkeeping,
            &linked_item,
            slugged,
        ),
    )
    .schema(
        names.create.clone(),
        schema_of(&spec.schema, Shape::Create, &[], &linked_item, slugged),
    )
    .schema(
        names.update.clone(),
        schema_of(&spec.schema, Shape::Update, &[], &linked_item, slugged),
    )
}

/// The list's parameters and answer: a page, or with `grouped=true` every item in groups where
/// the resource is grouped.
fn list_answer(
    spec: &ResourceSpec,
    names: &ResourceNames,
) -> (Vec<utoipa::openapi::path::Parameter>, RefOr<Schema>) {
    let mut params = page_params();
    let Some(field) = spec.features.group_by else {
        return (params, envelope(names.items(), Meta::Always));
    };
    params.push(query_param(
        "grouped",
        &format!("true: every item, grouped by `{field}` (then without `meta`)"),
        ObjectBuilder::new().schema_type(SchemaType::new(Type::Boolean)),
    ));
    let group = ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::Object))
        .property(field, string())
        .property("items", names.items())
        .required(field)
        .required("items");
    let groups = list_of(RefOr::T(group.into()));
    let answer = envelope(
        RefOr::T(
            utoipa::openapi::schema::AnyOfBuilder::new()
                .item(names.items())
                .item(groups)
                .into(),
        ),
        Meta::Sometimes,
    );
    (params, answer)
}

/// `GET` (list) and `POST` (create) on the collection.
fn collection_routes(area: Area, spec: &'static ResourceSpec, names: &ResourceNames) -> Area {
    let (list_params, list) = list_answer(spec, names);
    area.route(
        HttpMethod::Get,
        "",
        move |p, o, c, q| portfolio::list(spec, p, o, c, q),
        Op {
            params: list_params,
            operation_id: Some(format!("list{}", names.plural)),
            ..Op::new(
                PORTFOLIO_TAG,
                format!("List your {} (paginated)", spec.name),
                list,
            )
        }
        .build(),
    )
    .route(
        HttpMethod::Post,
        "",
        move |p, c, b| portfolio::create(spec, p, c, b),
        Op {
            body: Some(reference(&names.create)),
            status: "201",
            conflict: write_conflict(spec),
            operation_id: names.op_id("create"),
            item_links: ["get", "update", "delete"]
                .into_iter()
                .chain(spec.features.publishing.then_some("publish"))
                .map(|verb| format!("{verb}{}", names.item))
                .collect(),
            ..Op::new(
                PORTFOLIO_TAG,
                format!("Create a {}", names.label),
                names.one_item(),
            )
        }
        .build(),
    )
}

/// `PATCH /reorder`: every item's id exactly once.
fn reorder_route(area: Area, spec: &'static ResourceSpec, names: &ResourceNames) -> Area {
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
    area.route(
        HttpMethod::Patch,
        "/reorder",
        move |p, c, b| portfolio::reorder(spec, p, c, b),
        Op {
            body: Some(RefOr::T(ids.into())),
            conflict: Some(
                "`REORDER_MISMATCH`: `ids` is not every one of your items exactly once".to_owned(),
            ),
            operation_id: Some(format!("reorder{}", names.plural)),
            ..Op::new(
                PORTFOLIO_TAG,
                format!(
                    "Set the order of your {}: `ids` lists every one exactly once",
                    spec.name
                ),
                envelope(names.items(), Meta::None),
            )
        }
        .build(),
    )
}

/// An operation on one item, named by `/{id}`: 404 when it is not one of yours.
fn item_op(summary: String, answer: RefOr<Schema>) -> Op<'static> {
    Op {
        params: vec![path_param("id", "Item id")],
        not_found: true,
        ..Op::new(PORTFOLIO_TAG, summary, answer)
    }
}

/// `GET`, `PATCH` and `DELETE` on `/{id}`.
fn item_routes(area: Area, spec: &'static ResourceSpec, names: &ResourceNames) -> Area {
    let by = if spec.features.slug_from.is_some() {
        "by id or slug"
    } else {
        "by id"
    };
    area.route(
        HttpMethod::Get,
        "/{id}",
        move |p, c, i| portfolio::get(spec, p, c, i),
        Op {
            operation_id: names.op_id("get"),
            ..item_op(
                format!("One of your {} {by}", spec.name),
                names.one_item(),
            )
        }
        .build(),
    )
    .route(
        HttpMethod::Patch,
        "/{id}",
        move |p, c, i, b| portfolio::update(spec, p, c, i, b),
        Op {
            body: Some(reference(&names.update)),
            conflict: write_conflict(spec),
            operation_id: names.op_id("update"),
            ..item_op(
                format!(
                    "Change a {}: the fields given; `null` clears one; what the item answered may be sent back (the server's fields are ignored)",
                    names.label
                ),
                names.one_item(),
            )
        }
        .build(),
    )
    .route(
        HttpMethod::Delete,
        "/{id}",
        move |p, c, i| portfolio::delete(spec, p, c, i),
        Op {
            operation_id: names.op_id("delete"),
            ..item_op(
                format!("Delete a {} (soft delete)", names.label),
                reference("MessageEnvelope"),
            )
        }
        .build(),
    )
}

/// `PATCH /{id}/publish`: sets or clears `publishedAt`.
fn publish_route(area: Area, spec: &'static ResourceSpec, names: &ResourceNames) -> Area {
    let published = ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::Object))
        .property(
            "published",
            ObjectBuilder::new().schema_type(SchemaType::new(Type::Boolean)),
        )
        .required("published")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    area.route(
        HttpMethod::Patch,
        "/{id}/publish",
        move |p, c, i, b| portfolio::publish(spec, p, c, i, b),
        Op {
            body: Some(RefOr::T(published.into())),
            operation_id: names.op_id("publish"),
            ..item_op(
                "Publish or unpublish (sets or clears `publishedAt`)".to_owned(),
                names.one_item(),
            )
        }
        .build(),
    )
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect::<String>())
        .unwrap_or_default()
}

/// A settings document's schemas and its read and change operations.
struct SettingsDoc {
    schemas: [(String, Schema); 2],
    read: Operation,
    change: Operation,
}

fn settings_doc(kind: &'static SettingsKind, name: &str, tag: &str) -> SettingsDoc {
    let answer = || envelope(reference(name), Meta::None);
    SettingsDoc {
        schemas: [
            (
                name.to_owned(),
                schema_of(
                    &kind.schema,
                    Shape::Read,
                    &[("createdAt", false), ("updatedAt", false)],
                    &linked_item,
                    false,
                ),
            ),
            (
                format!("{name}Update"),
                schema_of(&kind.schema, Shape::Update, &[], &linked_item, false),
            ),
        ],
        read: Op::new(tag, "Read (created with defaults on first read)", answer()).build(),
        change: Op {
            body: Some(reference(&format!("{name}Update"))),
            ..Op::new(
                tag,
                "Change the given fields (`null`: back to the default); what was read may be sent back",
                answer(),
            )
        }
        .build(),
    }
}

/// The portfolio profile.
pub fn profile_area() -> Area {
    let doc = settings_doc(&PROFILE, "PortfolioProfile", "portfolio");
    doc.schemas
        .into_iter()
        .fold(
            Area::new("/portfolio/profile", Limit::General),
            |area, (name, schema)| area.schema(name, schema),
        )
        .route(HttpMethod::Get, "", portfolio::profile, doc.read)
        .route(HttpMethod::Patch, "", portfolio::update_profile, doc.change)
}

/// The two upload routes that set a profile field (`routes/uploads.rs`), each its own area under
/// the upload limit, listed before the profile's area, which would take their paths. They
/// answer the profile, whose schema is generated here, so their 200 is described here.
pub fn profile_upload_areas() -> [Area; 2] {
    let answer = || json(envelope(reference("PortfolioProfile"), Meta::None));
    [
        Area::new("/portfolio/profile/avatar", Limit::Upload)
            .with(annotated!(uploads::profile_avatar)),
        Area::new("/portfolio/profile/resume", Limit::Upload)
            .with(annotated!(uploads::profile_resume)),
    ]
    .map(|mut area| {
        for endpoint in &mut area.endpoints {
            if let Some(RefOr::T(ok)) = endpoint.operation.responses.responses.get_mut("200") {
                ok.content.insert("application/json".to_owned(), answer());
            }
        }
        area
    })
}

/// One area per preference set; the app preferences can also be reset.
pub fn preference_areas() -> [Area; 3] {
    let [app, notifications, email] = PREFERENCES.map(|(prefix, kind, name)| {
        let doc = settings_doc(kind, name, "preferences");
        doc.schemas
            .into_iter()
            .fold(Area::new(prefix, Limit::General), |area, (name, schema)| {
                area.schema(name, schema)
            })
            .route(
                HttpMethod::Get,
                "",
                move |s, c| settings::get(kind, s, c),
                doc.read,
            )
            .route(
                HttpMethod::Patch,
                "",
                move |s, c, b| settings::update(kind, s, c, b),
                doc.change,
            )
    });
    let app = app.route(
        HttpMethod::Post,
        "/reset",
        |s, c| settings::reset(&APP_PREFERENCES, s, c),
        Op::new(
            "preferences",
            "Put the app preferences back to their defaults",
            envelope(reference("AppPreferences"), Meta::None),
        )
        .build(),
    );
    [app, notifications, email]
}

/// The public portfolio: one handler tells its paths apart (`public::route`); each section's
/// items are described by the schemas of its resource's area.
pub fn public_area() -> Area {
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
        |sections, spec| sections.property(spec.name, list_of(reference(&schema_names(spec).0))),
    );
    let portfolio = ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::Object))
        .property("user", owner)
        .property("profile", reference("PortfolioProfile"))
        .property("sections", sections)
        .required("user")
        .required("profile")
        .required("sections");
    let username = || vec![path_param("username", "The owner's username")];
    let area = Area::dispatched("/public/portfolio", Limit::General, public::route).documents(
        HttpMethod::Get,
        "/{username}",
        Op {
            params: username(),
            authenticated: false,
            not_found: true,
            ..Op::new(
                "public",
                "A public portfolio: owner, public profile fields and every visible section; `ETag` and `If-None-Match` → 304",
                envelope(RefOr::T(portfolio.into()), Meta::None),
            )
        }
        .build(),
    );
    RESOURCES.iter().fold(area, |area, spec| {
        area.documents(
            HttpMethod::Get,
            &format!("/{{username}}/{}", spec.name),
            Op {
                params: username(),
                authenticated: false,
                not_found: true,
                operation_id: Some(format!("public{}", capitalised(spec.name))),
                ..Op::new(
                    "public",
                    format!(
                        "Public {}: 404 when the portfolio is private or the section hidden; `ETag` and `If-None-Match` → 304",
                        spec.name
                    ),
                    envelope(list_of(reference(&schema_names(spec).0)), Meta::None),
                )
            }
            .build(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// actix tries an area's paths in order, so a fixed path (`/reorder`) placed where an item
    /// is named would take a slug that spells it. Resources with slugs have none.
    #[test]
    fn no_fixed_path_takes_the_place_of_an_item_named_by_slug() {
        for spec in RESOURCES
            .iter()
            .filter(|spec| spec.features.slug_from.is_some())
        {
            let collection = format!("/api/v1/portfolio/{}/", spec.name);
            for endpoint in resource_area(spec).endpoints {
                if let Some(rest) = endpoint.path.strip_prefix(&collection) {
                    let first = rest.split('/').next().unwrap_or_default();
                    assert_eq!(first, "{id}", "{} shadows a slug", endpoint.path);
                }
            }
        }
    }
}
