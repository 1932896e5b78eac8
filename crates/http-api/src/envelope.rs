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
