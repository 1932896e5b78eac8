//! `/api/v1/portfolio/*`: every resource through the same handlers, given its declaration by
//! the route table (`declared_routes.rs`), which serves and documents only what the resource allows.

use actix_web::{HttpResponse, web};
use kernel::settings::SettingsDocument;
use portfolio_core::PortfolioService;
use portfolio_core::model::ResourceSpec;
use portfolio_core::resources::PROFILE;
use serde::Deserialize;

use crate::auth::Authenticated;
use crate::body::{RecordJson, ValidJson};
use crate::envelope::{self, PageMeta};
use crate::page_cache::OwnerPages;
use crate::problem::ApiError;
use crate::query::ListQuery;
use crate::record_json::{Audience, ItemBody, ItemsBody, SettingsBody};

type Portfolio = web::Data<PortfolioService>;

/// What an item id looks like (`kernel::ObjectIdGenerator::check`).
pub const ID_PATTERN: &str = "^[0-9a-fA-F]{24}$";
/// The most ids a reorder takes.
pub const MAX_REORDER: usize = 1000;

/// `{ "ids": [...] }`: the caller's full order. Malformed or repeated ids are a bad request;
/// well-formed ids that are not exactly the caller's items conflict with what is stored.
#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
pub struct ReorderRequest {
    #[garde(length(max = MAX_REORDER), custom(distinct_ids))]
    pub ids: Vec<String>,
}

fn distinct_ids(ids: &[String], (): &()) -> garde::Result {
    if ids
        .iter()
        .any(|id| kernel::ObjectIdGenerator::check(id).is_err())
    {
        return Err(garde::Error::new("must be ids (24 hexadecimal digits)"));
    }
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    if distinct.len() == ids.len() {
        Ok(())
    } else {
        Err(garde::Error::new("must not repeat an id"))
    }
}

/// `{ "published": bool }`.
#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    #[garde(skip)]
    pub published: bool,
}

/// A group of `?grouped=true`.
#[derive(serde::Serialize)]
struct Group<'a> {
    category: &'a str,
    items: ItemsBody<'a>,
}

/// The caller's items, rendered once and then served from this instance's memory until the
/// caller changes anything (or `SESSION_CHECK_TTL` passes, for changes made elsewhere).
pub async fn list(
    spec: &'static ResourceSpec,
    portfolio: Portfolio,
    pages: web::Data<OwnerPages>,
    caller: Authenticated,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let params = query.params()?;
    let owner = &caller.0.user_id;
    let grouped = params.grouped && spec.features.group_by.is_some();
    let key = format!(
        "{owner}/{}/{}/{}/{grouped}",
        spec.name, params.page.page, params.page.limit
    );
    if let Some(page) = pages.0.lookup(&key) {
        return Ok(json(&page.body));
    }
    let generation = pages.0.generation();
    let body = if grouped {
        let groups = portfolio.grouped(spec, owner).await?;
        let body: Vec<Group<'_>> = groups
            .iter()
            .map(|(category, views)| Group {
                category,
                items: ItemsBody {
                    views,
                    audience: Audience::Owner,
                },
            })
            .collect();
        envelope::rendered(&envelope::Envelope {
            success: true,
            message: "Items retrieved".to_owned(),
            data: body,
        })?
    } else {
        let page = portfolio.list(spec, owner, params.page).await?;
        envelope::rendered(&envelope::Paginated {
            success: true,
            message: "Items retrieved".to_owned(),
            data: ItemsBody {
                views: &page.items,
                audience: Audience::Owner,
            },
            meta: PageMeta::from(&page),
        })?
    };
    let page = pages.0.store(key, owner.clone(), body, generation);
    Ok(json(&page.body))
}

fn json(body: &web::Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body.clone())
}

pub async fn get(
    spec: &'static ResourceSpec,
    portfolio: Portfolio,
    caller: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let view = portfolio.get(spec, &caller.0.user_id, &id).await?;
    Ok(envelope::ok(
        "Item retrieved",
        ItemBody {
            view: &view,
            audience: Audience::Owner,
        },
    ))
}

pub async fn create(
    spec: &'static ResourceSpec,
    portfolio: Portfolio,
    caller: Authenticated,
    RecordJson(body): RecordJson,
) -> Result<HttpResponse, ApiError> {
    let view = portfolio.create(spec, &caller.0.user_id, body).await?;
    Ok(envelope::created(
        &format!("{} created", spec.label),
        ItemBody {
            view: &view,
            audience: Audience::Owner,
        },
    ))
}

pub async fn update(
    spec: &'static ResourceSpec,
    portfolio: Portfolio,
    caller: Authenticated,
    id: web::Path<String>,
    RecordJson(body): RecordJson,
) -> Result<HttpResponse, ApiError> {
    let view = portfolio.update(spec, &caller.0.user_id, &id, body).await?;
    Ok(envelope::ok(
        &format!("{} updated", spec.label),
        ItemBody {
            view: &view,
            audience: Audience::Owner,
        },
    ))
}

pub async fn delete(
    spec: &'static ResourceSpec,
    portfolio: Portfolio,
    caller: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    portfolio.delete(spec, &caller.0.user_id, &id).await?;
    Ok(envelope::done(&format!("{} deleted", spec.label)))
}

pub async fn reorder(
    spec: &'static ResourceSpec,
    portfolio: Portfolio,
    caller: Authenticated,
    ValidJson(body): ValidJson<ReorderRequest>,
) -> Result<HttpResponse, ApiError> {
    let views = portfolio
        .reorder(spec, &caller.0.user_id, &body.ids)
        .await?;
    Ok(envelope::ok(
        "Order saved",
        ItemsBody {
            views: &views,
            audience: Audience::Owner,
        },
    ))
}

pub async fn publish(
    spec: &'static ResourceSpec,
    portfolio: Portfolio,
    caller: Authenticated,
    id: web::Path<String>,
    ValidJson(body): ValidJson<PublishRequest>,
) -> Result<HttpResponse, ApiError> {
    let view = portfolio
        .publish(spec, &caller.0.user_id, &id, body.published)
        .await?;
    let message = if body.published {
        "Post published"
    } else {
        "Post unpublished"
    };
    Ok(envelope::ok(
        message,
        ItemBody {
            view: &view,
            audience: Audience::Owner,
        },
    ))
}

pub async fn profile(
    portfolio: Portfolio,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let document = portfolio.profile(&caller.0.user_id).await?;
    Ok(profile_answer("Portfolio profile retrieved", &document))
}

pub async fn update_profile(
    portfolio: Portfolio,
    caller: Authenticated,
    RecordJson(body): RecordJson,
) -> Result<HttpResponse, ApiError> {
    let document = portfolio.update_profile(&caller.0.user_id, body).await?;
    Ok(profile_answer("Portfolio profile updated", &document))
}

/// The owner's portfolio profile as answered.
pub(crate) fn profile_answer(message: &str, document: &SettingsDocument) -> HttpResponse {
    envelope::ok(
        message,
        SettingsBody {
            schema: &PROFILE.schema,
            fields: &document.fields,
            document: Some(document),
            audience: Audience::Owner,
        },
    )
}
