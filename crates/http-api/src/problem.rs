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

/// Declares [`ErrorCode`] from one line per code: its variant, the `code` string, the HTTP
/// status and what it means (the variant's doc, the README's catalogue).
macro_rules! error_codes {
    ($($variant:ident = $name:literal, $status:ident, $meaning:literal;)+) => {
        /// Every `code` an error answer can carry: the one catalogue the problem mapping, the
        /// OpenAPI document (an enum schema) and the README's list come from.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum ErrorCode {
            $(
                #[doc = $meaning]
                $variant,
            )+
        }

        impl ErrorCode {
            pub const ALL: &[Self] = &[$(Self::$variant),+];

            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }

            /// The HTTP status that goes with the code.
            #[must_use]
            pub fn status(self) -> StatusCode {
                match self {
                    $(Self::$variant => StatusCode::$status,)+
                }
            }

            /// What the code means, for the README's catalogue.
            #[must_use]
            pub fn meaning(self) -> &'static str {
                match self {
                    $(Self::$variant => $meaning,)+
                }
            }
        }
    };
}

error_codes! {
    BadRequest = "BAD_REQUEST", BAD_REQUEST, "The request is malformed in a way no more specific code covers";
    InvalidJson = "INVALID_JSON", BAD_REQUEST, "The body is not a JSON object, or not JSON at all";
    ValidationError = "VALIDATION_ERROR", BAD_REQUEST, "One or more fields are invalid; `errors[]` names each field and its rule";
    InvalidToken = "INVALID_TOKEN", BAD_REQUEST, "A reset, verification or deletion token is unknown, used or expired";
    InvalidCurrentPassword = "INVALID_CURRENT_PASSWORD", BAD_REQUEST, "`currentPassword` does not match";
    EmailAlreadyVerified = "EMAIL_ALREADY_VERIFIED", BAD_REQUEST, "There is nothing left to verify";
    Unauthorized = "UNAUTHORIZED", UNAUTHORIZED, "No valid access token, or its session ended";
    InvalidCredentials = "INVALID_CREDENTIALS", UNAUTHORIZED, "Unknown email or wrong password (deliberately the same answer)";
    InvalidRefreshToken = "INVALID_REFRESH_TOKEN", UNAUTHORIZED, "The refresh token is invalid, expired, rotated away or its session revoked";
    AccountDisabled = "ACCOUNT_DISABLED", FORBIDDEN, "The account exists but is disabled";
    Forbidden = "FORBIDDEN", FORBIDDEN, "Authenticated, but not allowed to do this";
    NotFound = "NOT_FOUND", NOT_FOUND, "No such route, or no such item of yours";
    UserNotFound = "USER_NOT_FOUND", NOT_FOUND, "The caller's user no longer exists";
    SessionNotFound = "SESSION_NOT_FOUND", NOT_FOUND, "No such live session of yours";
    QueueNotFound = "QUEUE_NOT_FOUND", NOT_FOUND, "No job queue of this name";
    JobNotFound = "JOB_NOT_FOUND", NOT_FOUND, "No such job in this queue";
    JobNotFailed = "JOB_NOT_FAILED", CONFLICT, "Only a failed job can be retried";
    JobStateConflict = "JOB_STATE_CONFLICT", CONFLICT, "The job's state does not allow this: only a delayed job is promoted, and a job a worker holds is not removed";
    MethodNotAllowed = "METHOD_NOT_ALLOWED", METHOD_NOT_ALLOWED, "The route exists; the `Allow` header lists its methods";
    RequestTimeout = "REQUEST_TIMEOUT", REQUEST_TIMEOUT, "The request took too long to arrive";
    EmailTaken = "EMAIL_TAKEN", CONFLICT, "An account with this email already exists";
    UsernameTaken = "USERNAME_TAKEN", CONFLICT, "This username is taken";
    SlugTaken = "SLUG_TAKEN", CONFLICT, "You already have a blog post with this slug";
    ReorderMismatch = "REORDER_MISMATCH", CONFLICT, "A reorder's `ids` are not exactly your items";
    LinkNotFound = "LINK_NOT_FOUND", CONFLICT, "A reference (an experience's `companyId`) names none of your items";
    LengthRequired = "LENGTH_REQUIRED", LENGTH_REQUIRED, "The body needs a length";
    PayloadTooLarge = "PAYLOAD_TOO_LARGE", PAYLOAD_TOO_LARGE, "The body is larger than allowed";
    UnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE", UNSUPPORTED_MEDIA_TYPE, "The body is not of an accepted content type";
    FileTooLarge = "FILE_TOO_LARGE", PAYLOAD_TOO_LARGE, "An uploaded file is larger than the route's limit";
    ImageTooLarge = "IMAGE_TOO_LARGE", PAYLOAD_TOO_LARGE, "An uploaded picture has more pixels than allowed";
    StorageQuotaExceeded = "STORAGE_QUOTA_EXCEEDED", PAYLOAD_TOO_LARGE, "The caller's stored files would take more than UPLOAD_QUOTA_BYTES; delete some first";
    UnsupportedFileType = "UNSUPPORTED_FILE_TYPE", UNSUPPORTED_MEDIA_TYPE, "An uploaded file's content is not of a type the route accepts (whatever its name or declared type)";
    InvalidImage = "INVALID_IMAGE", UNPROCESSABLE_ENTITY, "An uploaded file starts like a picture but is not a valid one";
    TooManyRequests = "TOO_MANY_REQUESTS", TOO_MANY_REQUESTS, "Rate limited; `Retry-After` says when to try again";
    InternalError = "INTERNAL_ERROR", INTERNAL_SERVER_ERROR, "Something failed on our side; the log has the cause under the request id";
    NotReady = "NOT_READY", SERVICE_UNAVAILABLE, "A dependency (storage, queue) is down";
    ServiceUnavailable = "SERVICE_UNAVAILABLE", SERVICE_UNAVAILABLE, "The service cannot answer right now";
}

impl ErrorCode {
    /// The README's catalogue of codes, as a markdown table.
    #[must_use]
    pub fn catalogue() -> String {
        let mut table = String::from("| code | status | meaning |\n|---|---|---|\n");
        for code in Self::ALL {
            table.push_str(&format!(
                "| `{code}` | {} | {} |\n",
                code.status().as_u16(),
                code.meaning()
            ));
        }
        table
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    pub code: ErrorCode,
    pub message: String,
    pub errors: Vec<FieldError>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// 503 `NOT_READY`, with `Retry-After`: a dependency is down and the request may be sent
    /// again shortly.
    #[must_use]
    pub fn not_ready(message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(NOT_READY_RETRY_AFTER),
            ..Self::new(ErrorCode::NotReady, message)
        }
    }

    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: code.status(),
            code,
            message: message.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        Self {
            errors,
            ..Self::new(ErrorCode::ValidationError, "Validation failed")
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
        Self::new(ErrorCode::Unauthorized, "Authentication required")
    }

    pub fn internal() -> Self {
        Self::new(ErrorCode::InternalError, "Internal server error")
    }

    /// The generic problem for a status produced outside our handlers (router, payload limits).
    #[must_use]
    pub fn for_status(status: StatusCode) -> Self {
        let (code, message) = match status.as_u16() {
            400 => (ErrorCode::BadRequest, "Bad request"),
            401 => (ErrorCode::Unauthorized, "Authentication required"),
            403 => (ErrorCode::Forbidden, "Forbidden"),
            404 => (ErrorCode::NotFound, "Resource not found"),
            405 => (ErrorCode::MethodNotAllowed, "Method not allowed"),
            408 => (ErrorCode::RequestTimeout, "Request timeout"),
            411 => (ErrorCode::LengthRequired, "Length required"),
            413 => (ErrorCode::PayloadTooLarge, "Request body is too large"),
            415 => (ErrorCode::UnsupportedMediaType, "Unsupported media type"),
            429 => (ErrorCode::TooManyRequests, "Too many requests"),
            503 => (ErrorCode::ServiceUnavailable, "Service unavailable"),
            s if s >= 500 => (ErrorCode::InternalError, "Internal server error"),
            _ => (ErrorCode::BadRequest, "Bad request"),
        };
        Self {
            status,
            ..Self::new(code, message)
        }
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
    pub code: ErrorCode,
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

impl From<notify_core::AdminError> for ApiError {
    fn from(error: notify_core::AdminError) -> Self {
        use notify_core::AdminError;
        match error {
            AdminError::UnknownQueue(_) => Self::new(ErrorCode::QueueNotFound, "Queue not found"),
            AdminError::JobNotFound => Self::new(ErrorCode::JobNotFound, "Job not found"),
            AdminError::NotFailed(state) => Self::new(
                ErrorCode::JobNotFailed,
                format!("The job is {}, not failed", state.as_str()),
            ),
            AdminError::WrongState { state, rule } => Self::new(
                ErrorCode::JobStateConflict,
                format!("The job is {}: {rule}", state.as_str()),
            ),
            AdminError::TooDeep => Self::field(
                "page",
                "max",
                "pages reach 10000 jobs into a list at most; clean or retry the jobs before",
            ),
            AdminError::NotCleanable(_) => {
                Self::field("status", "enum", "must be completed or failed")
            }
            AdminError::Queue(error) => {
                tracing::error!(%error, "job queue failure");
                Self::new(
                    ErrorCode::ServiceUnavailable,
                    "The job queue is unavailable",
                )
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Invalid(value) => Self::field(value.field, value.rule, value.message),
            AuthError::EmailTaken => Self::new(
                ErrorCode::EmailTaken,
                "An account with this email already exists",
            ),
            AuthError::UsernameTaken => {
                Self::new(ErrorCode::UsernameTaken, "This username is taken")
            }
            AuthError::InvalidCredentials => {
                Self::new(ErrorCode::InvalidCredentials, "Invalid credentials")
            }
            AuthError::AccountDisabled => {
                Self::new(ErrorCode::AccountDisabled, "This account is disabled")
            }
            AuthError::Unauthenticated => Self::unauthenticated(),
            AuthError::InvalidRefreshToken => Self::new(
                ErrorCode::InvalidRefreshToken,
                "Invalid or expired refresh token",
            ),
            AuthError::InvalidOneTimeToken => {
                Self::new(ErrorCode::InvalidToken, "Invalid or expired token")
            }
            AuthError::WrongCurrentPassword => Self::new(
                ErrorCode::InvalidCurrentPassword,
                "Current password is incorrect",
            ),
            AuthError::AlreadyVerified => {
                Self::new(ErrorCode::EmailAlreadyVerified, "Email is already verified")
            }
            AuthError::Forbidden => Self::new(
                ErrorCode::Forbidden,
                "You do not have permission to do this",
            ),
            AuthError::UnverifiedAdmin => Self::new(
                ErrorCode::Forbidden,
                "Verify your email address first: admin rights come with a verified address listed in ADMIN_EMAILS",
            ),
            AuthError::SessionNotFound => {
                Self::new(ErrorCode::SessionNotFound, "Session not found")
            }
            AuthError::UserNotFound => Self::new(ErrorCode::UserNotFound, "User not found"),
            // The email queue refused the request's emails (Redis down); nothing was kept.
            AuthError::Notify(error) => {
                tracing::error!(%error, "emails could not be queued");
                Self::not_ready("Emails cannot be queued right now; try again shortly")
            }
            AuthError::Store(store) => store_failure(&store),
            AuthError::Hash(_) | AuthError::Token(_) => {
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

/// Seconds a client is asked to wait before retrying what a down dependency refused.
const NOT_READY_RETRY_AFTER: u64 = 5;

/// A store that failed (MongoDB, the embedded file, Redis, the bucket): the dependency is down
/// or unwell, which the client may retry, never a fault of the request: 503 `NOT_READY`.
fn store_failure(error: &dyn std::error::Error) -> ApiError {
    tracing::error!(error = %error, "storage operation failed");
    ApiError::not_ready("A storage service cannot be reached; try again shortly")
}

impl From<portfolio_core::PortfolioError> for ApiError {
    fn from(error: portfolio_core::PortfolioError) -> Self {
        use portfolio_core::PortfolioError as E;
        match error {
            E::Invalid(errors) => Self::validation(errors.into_iter().map(Into::into).collect()),
            E::NotFound => Self::new(ErrorCode::NotFound, "Resource not found"),
            // Both depend on what is stored, not on the request's shape: a conflict.
            E::ReorderMismatch => Self {
                errors: vec![FieldError {
                    field: "ids".to_owned(),
                    code: "mismatch".to_owned(),
                    message: "must list every one of your items exactly once".to_owned(),
                }],
                ..Self::new(ErrorCode::ReorderMismatch, "The ids are not your items")
            },
            E::UnknownLink(errors) => Self {
                errors: errors.into_iter().map(Into::into).collect(),
                ..Self::new(ErrorCode::LinkNotFound, "A linked item was not found")
            },
            E::SlugTaken => Self::new(
                ErrorCode::SlugTaken,
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

impl From<media_core::MediaError> for ApiError {
    fn from(error: media_core::MediaError) -> Self {
        use media_core::MediaError as E;
        match error {
            E::TooLarge { limit } => Self::new(
                ErrorCode::FileTooLarge,
                format!("The file is larger than the {limit} bytes allowed"),
            ),
            E::TooManyPixels { max } => Self::new(
                ErrorCode::ImageTooLarge,
                format!("The image has more than the {max} pixels allowed"),
            ),
            E::QuotaExceeded { quota } => Self::new(
                ErrorCode::StorageQuotaExceeded,
                format!("Your files would take more than the {quota} bytes you may store"),
            ),
            E::Unsupported { accepted } => {
                let names: Vec<&str> = accepted.iter().map(|kind| kind.mime()).collect();
                Self::new(
                    ErrorCode::UnsupportedFileType,
                    format!(
                        "The file's content is not of an accepted type ({})",
                        names.join(", ")
                    ),
                )
            }
            E::Empty => Self::field("file", "required", "must not be empty"),
            E::InvalidImage(reason) => {
                tracing::info!(%reason, "an upload is not a valid image");
                Self::new(ErrorCode::InvalidImage, "The image cannot be decoded")
            }
            E::Source(reason) => {
                tracing::info!(%reason, "reading an upload failed");
                Self::new(ErrorCode::BadRequest, "The upload could not be read")
            }
            E::Store(error) => store_failure(&error),
            E::Processing(reason) => {
                tracing::error!(%reason, "image processing failed");
                Self::internal()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn every_code_is_listed_once_and_spelled_as_serialised() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            assert_eq!(
                serde_json::to_value(code).unwrap_or_default(),
                serde_json::json!(code.as_str())
            );
        }
    }

    #[test]
    fn the_readme_lists_every_error_code() {
        const START: &str = "<!-- error-codes:start -->\n";
        const END: &str = "<!-- error-codes:end -->";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
        let readme = std::fs::read_to_string(path).unwrap_or_default();
        let (Some(start), Some(end)) = (readme.find(START), readme.find(END)) else {
            panic!("README.md lacks the error-codes markers");
        };
        if std::env::var_os("UPDATE_ERROR_CODES").is_some() {
            let updated = format!(
                "{}{}{}",
                &readme[..start + START.len()],
                ErrorCode::catalogue(),
                &readme[end..]
            );
            std::fs::write(path, updated).unwrap_or_else(|e| panic!("{e}"));
        } else {
            assert!(
                readme[start + START.len()..end] == ErrorCode::catalogue(),
                "README.md's error codes are stale: run `just generated`"
            );
        }
    }
}
