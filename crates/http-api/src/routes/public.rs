//! `/api/v1/public/portfolio/*`: read-only, no auth, served from the public cache with
//! `ETag`, `Cache-Control` and `If-None-Match` → 304.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use portfolio_core::resources::PROFILE;
use portfolio_core::{PublicPortfolio, PublicPortfolioReader};
use serde::Serialize;

use crate::envelope::Envelope;
use crate::page_cache::{CachedPage, PageCache};
use crate::problem::ApiError;
use crate::record_json::{Audience, ItemsBody, SettingsBody};

/// Browsers and proxies may keep a copy but must revalidate it (cheap: a 304).
const CACHE_CONTROL: &str = "public, max-age=0, must-revalidate";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OwnerBody<'a> {
    username: &'a str,
    display_name: Option<&'a str>,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    avatar: Option<&'a str>,
}

struct SectionsBody<'a>(&'a PublicPortfolio);

impl Serialize for SectionsBody<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.sections.iter().map(|(spec, views)| {
            (
                spec.name,
                ItemsBody {
                    views,
                    audience: Audience::Public,
                },
            )
        }))
    }
}

#[derive(Serialize)]
struct PortfolioBody<'a> {
    user: OwnerBody<'a>,
    profile: SettingsBody<'a>,
    sections: SectionsBody<'a>,
}

fn envelope_bytes<T: Serialize>(message: &str, data: T) -> Result<web::Bytes, ApiError> {
    crate::envelope::rendered(&Envelope {
        success: true,
        message: message.to_owned(),
        data,
    })
}

fn matches(request: &HttpRequest, etag: &str) -> bool {
    request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|candidate| candidate.trim().trim_start_matches("W/"))
        .any(|candidate| candidate == etag || candidate == "*")
}

fn answer(request: &HttpRequest, page: &CachedPage) -> HttpResponse {
    let not_modified = matches(request, &page.etag);
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, page.etag.as_str()))
        .insert_header((header::CACHE_CONTROL, CACHE_CONTROL));
    if not_modified {
        return response.finish();
    }
    response
        .content_type("application/json")
        .body(page.body.clone())
}

/// `GET …/public/portfolio/:username` and `…/:username/:section`, the default service of the
/// `/public/portfolio` scope, told apart by splitting what the scope left of the path: the hottest route of the product skips pattern matching (a measurable share of its
/// CPU time). Usernames and section names are plain `[a-z0-9_-]`, so nothing needs decoding.
pub async fn route(
    reader: web::Data<PublicPortfolioReader>,
    cache: web::Data<PageCache>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if request.method() != actix_web::http::Method::GET {
        return Ok(crate::edge::method_not_allowed("GET"));
    }
    let rest = request.match_info().unprocessed();
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let mut segments = rest.split('/');
    match (segments.next(), segments.next(), segments.next()) {
        (Some(username), None, None) if !username.is_empty() => {
            portfolio(&reader, &cache, username, &request).await
        }
        (Some(username), Some(section), None) if !username.is_empty() && !section.is_empty() => {
            section_of(&reader, &cache, username, section, &request).await
        }
        _ => Err(ApiError::for_status(actix_web::http::StatusCode::NOT_FOUND)),
    }
}

async fn portfolio(
    reader: &PublicPortfolioReader,
    cache: &PageCache,
    username: &str,
    request: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let key = username.to_ascii_lowercase();
    if let Some(page) = cache.lookup(&key) {
        return Ok(answer(request, &page));
    }
    let generation = cache.generation();
    let found = reader.portfolio(&key).await?;
    let body = envelope_bytes(
        "Portfolio retrieved",
        PortfolioBody {
            user: OwnerBody {
                username: &found.owner.username,
                display_name: found.owner.display_name.as_deref(),
                first_name: found.owner.first_name.as_deref(),
                last_name: found.owner.last_name.as_deref(),
                avatar: found.owner.avatar.as_deref(),
            },
            profile: SettingsBody {
                schema: &PROFILE.schema,
                fields: &found.profile,
                document: None,
                audience: Audience::Public,
            },
            sections: SectionsBody(&found),
        },
    )?;
    let page = cache.store(key, found.owner.id.clone(), body, generation);
    Ok(answer(request, &page))
}

async fn section_of(
    reader: &PublicPortfolioReader,
    cache: &PageCache,
    username: &str,
    section: &str,
    request: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let username = username.to_ascii_lowercase();
    let key = format!("{username}/{section}");
    if let Some(page) = cache.lookup(&key) {
        return Ok(answer(request, &page));
    }
    let generation = cache.generation();
    let (owner, views) = reader.section(&username, section).await?;
    let body = envelope_bytes(
        "Items retrieved",
        ItemsBody {
            views: &views,
            audience: Audience::Public,
        },
    )?;
    let page = cache.store(key, owner, body, generation);
    Ok(answer(request, &page))
}
