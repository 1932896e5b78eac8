//! The error half of the contract: every failure becomes an RFC 9457 problem carrying the
//! `success/statusCode/code/message/errors/requestId/timestamp/path` flags.
//!
//! Handlers and extractors return [`ApiError`]; the edge middleware (see `edge.rs`) renders it,
//! because only the edge knows the request id and path.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use auth_core::AuthError;
use serde::Serialize;
use utoipa::ToSchema;

/// One invalid field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The JSON field, camelCase (`email`, `currentPassword`).
    pub field: String,
    /// A stable machine-readable reason.
    pub code: String,
    pub message: String,
}

/// An error answer, before the edge adds request id, time and path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub errors: Vec<FieldError>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        Self {
            errors,
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                "Validation failed",
            )
        }
    }

    pub fn field(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError {
            field: field.to_owned(),
            code: code.to_owned(),
            message: message.into(),
        }])
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "Authentication required",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "Internal server error",
        )
    }

    /// The generic problem for a status produced outside our handlers (router, payload limits).
    #[must_use]
    pub fn for_status(status: StatusCode) -> Self {
        let (code, message) = match status.as_u16() {
            400 => ("BAD_REQUEST", "Bad request"),
            401 => ("UNAUTHORIZED", "Authentication required"),
            403 => ("FORBIDDEN", "Forbidden"),
            404 => ("NOT_FOUND", "Resource not found"),
            405 => ("METHOD_NOT_ALLOWED", "Method not allowed"),
            408 => ("REQUEST_TIMEOUT", "Request timeout"),
            411 => ("LENGTH_REQUIRED", "Length required"),
            413 => ("PAYLOAD_TOO_LARGE", "Request body is too large"),
            415 => ("UNSUPPORTED_MEDIA_TYPE", "Unsupported media type"),
            429 => ("TOO_MANY_REQUESTS", "Too many requests"),
            503 => ("SERVICE_UNAVAILABLE", "Service unavailable"),
            s if s >= 500 => ("INTERNAL_ERROR", "Internal server error"),
            _ => ("BAD_REQUEST", "Bad request"),
        };
        Self::new(status, code, message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    /// A bodiless response; the edge middleware finds this error on it and renders the body.
    fn error_response(&self) -> HttpResponse {
        HttpResponse::new(self.status)
    }
}

/// The problem document as sent.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    #[serde(rename = "type")]
    #[schema(example = "about:blank")]
    pub kind: &'static str,
    #[schema(example = "Unauthorized")]
    pub title: String,
    #[schema(example = 401)]
    pub status: u16,
    #[schema(example = "Invalid credentials")]
    pub detail: String,
    #[schema(example = false)]
    pub success: bool,
    #[schema(example = 401)]
    pub status_code: u16,
    #[schema(example = "INVALID_CREDENTIALS")]
    pub code: &'static str,
    #[schema(example = "Invalid credentials")]
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    pub request_id: String,
    #[schema(example = "2026-01-01T00:00:00Z")]
    pub timestamp: String,
    #[schema(example = "/api/v1/auth/login")]
    pub path: String,
}

impl Problem {
    #[must_use]
    pub fn new(error: &ApiError, request_id: &str, path: &str) -> Self {
        Self {
            kind: "about:blank",
            title: error
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_owned(),
            status: error.status.as_u16(),
            detail: error.message.clone(),
            success: false,
            status_code: error.status.as_u16(),
            code: error.code,
            message: error.message.clone(),
            errors: error.errors.clone(),
            request_id: request_id.to_owned(),
            timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            path: path.to_owned(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        use StatusCode as S;
        match error {
            AuthError::Invalid(value) => Self::field(value.field, "invalid", value.message),
            AuthError::EmailTaken => Self::new(
                S::CONFLICT,
                "EMAIL_TAKEN",
                "An account with this email already exists",
            ),
            AuthError::UsernameTaken => {
                Self::new(S::CONFLICT, "USERNAME_TAKEN", "This username is taken")
            }
            AuthError::InvalidCredentials => Self::new(
                S::UNAUTHORIZED,
                "INVALID_CREDENTIALS",
                "Invalid credentials",
            ),
            AuthError::AccountDisabled => {
                Self::new(S::FORBIDDEN, "ACCOUNT_DISABLED", "This account is disabled")
            }
            AuthError::Unauthenticated => Self::unauthenticated(),
            AuthError::InvalidRefreshToken => Self::new(
                S::UNAUTHORIZED,
                "INVALID_REFRESH_TOKEN",
                "Invalid or expired refresh token",
            ),
            AuthError::InvalidOneTimeToken => {
                Self::new(S::BAD_REQUEST, "INVALID_TOKEN", "Invalid or expired token")
            }
            AuthError::WrongCurrentPassword => Self::new(
                S::BAD_REQUEST,
                "INVALID_CURRENT_PASSWORD",
                "Current password is incorrect",
            ),
            AuthError::AlreadyVerified => Self::new(
                S::BAD_REQUEST,
                "EMAIL_ALREADY_VERIFIED",
                "Email is already verified",
            ),
            AuthError::Forbidden => Self::new(
                S::FORBIDDEN,
                "FORBIDDEN",
                "You do not have permission to do this",
            ),
            AuthError::SessionNotFound => {
                Self::new(S::NOT_FOUND, "SESSION_NOT_FOUND", "Session not found")
            }
            AuthError::UserNotFound => Self::new(S::NOT_FOUND, "USER_NOT_FOUND", "User not found"),
            AuthError::Store(_)
            | AuthError::Hash(_)
            | AuthError::Notify(_)
            | AuthError::Token(_) => {
                tracing::error!(error = %error, "identity operation failed");
                Self::internal()
            }
        }
    }
}

impl From<kernel::record::FieldError> for FieldError {
    fn from(error: kernel::record::FieldError) -> Self {
        Self {
            field: error.field,
            code: error.code.to_owned(),
            message: error.message,
        }
    }
}

fn store_failure(error: &dyn std::error::Error) -> ApiError {
    tracing::error!(error = %error, "storage operation failed");
    ApiError::internal()
}

impl From<portfolio_core::PortfolioError> for ApiError {
    fn from(error: portfolio_core::PortfolioError) -> Self {
        use portfolio_core::PortfolioError as E;
        match error {
            E::Invalid(errors) => Self::validation(errors.into_iter().map(Into::into).collect()),
            E::NotFound => Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "Resource not found"),
            // Both depend on what is stored, not on the request's shape: a conflict.
            E::ReorderMismatch => Self {
                status: StatusCode::CONFLICT,
                code: "REORDER_MISMATCH",
                message: "The ids are not your items".to_owned(),
                ..Self::field(
                    "ids",
                    "mismatch",
                    "must list every one of your items exactly once",
                )
            },
            E::UnknownLink(errors) => Self {
                status: StatusCode::CONFLICT,
                code: "LINK_NOT_FOUND",
                message: "A linked item was not found".to_owned(),
                ..Self::validation(errors.into_iter().map(Into::into).collect())
            },
            E::SlugTaken => Self::new(
                StatusCode::CONFLICT,
                "SLUG_TAKEN",
                "You already have a post with this slug",
            ),
            E::Store(error) => store_failure(&error),
        }
    }
}

impl From<kernel::settings::SettingsError> for ApiError {
    fn from(error: kernel::settings::SettingsError) -> Self {
        use kernel::settings::SettingsError as E;
        match error {
            E::Invalid(errors) => Self::validation(errors.into_iter().map(Into::into).collect()),
            E::Store(error) => store_failure(&error),
        }
    }
}
