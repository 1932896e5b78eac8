//! The success half of the contract: `{ success, message, data, meta? }`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

/// A successful answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    #[schema(example = true)]
    pub success: bool,
    pub message: String,
    pub data: T,
}

/// A message-only success (`data` is `null`).
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageEnvelope {
    #[schema(example = true)]
    pub success: bool,
    pub message: String,
    #[schema(value_type = Option<Object>)]
    pub data: Option<()>,
}

pub fn ok<T: Serialize>(message: &str, data: T) -> HttpResponse {
    respond(StatusCode::OK, message, data)
}

pub fn created<T: Serialize>(message: &str, data: T) -> HttpResponse {
    respond(StatusCode::CREATED, message, data)
}

pub fn done(message: &str) -> HttpResponse {
    HttpResponse::Ok().json(MessageEnvelope {
        success: true,
        message: message.to_owned(),
        data: None,
    })
}

fn respond<T: Serialize>(status: StatusCode, message: &str, data: T) -> HttpResponse {
    HttpResponse::build(status).json(Envelope {
        success: true,
        message: message.to_owned(),
        data,
    })
}

/// Pagination facts of a list answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageMeta {
    pub page: u32,
    pub limit: u32,
    pub total: u64,
    pub total_pages: u64,
    pub has_next_page: bool,
    pub has_prev_page: bool,
}

impl<T> From<&kernel::Page<T>> for PageMeta {
    fn from(page: &kernel::Page<T>) -> Self {
        let total_pages = page.total_pages();
        Self {
            page: page.request.page,
            limit: page.request.limit,
            total: page.total,
            total_pages,
            has_next_page: u64::from(page.request.page) < total_pages,
            has_prev_page: page.request.page > 1,
        }
    }
}

/// A successful list answer: the envelope plus `meta`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paginated<T> {
    #[schema(example = true)]
    pub success: bool,
    pub message: String,
    pub data: T,
    pub meta: PageMeta,
}

/// A body rendered to bytes once, to be kept and served again.
///
/// # Errors
/// 500 when the body cannot be serialised (the cause is logged).
pub fn rendered(body: &impl Serialize) -> Result<actix_web::web::Bytes, crate::problem::ApiError> {
    serde_json::to_vec(body)
        .map(actix_web::web::Bytes::from)
        .map_err(|error| {
            tracing::error!(%error, "rendering an answer failed");
            crate::problem::ApiError::internal()
        })
}
