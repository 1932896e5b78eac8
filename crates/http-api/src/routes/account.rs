//! `/api/v1/users/account*`: deletion with an emailed confirmation token, and the data export
//! as a JSON or CSV download. The export is gathered by the application ([`AccountExporter`])
//! and only rendered here.

use std::collections::BTreeMap;
use std::str::FromStr;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use async_trait::async_trait;
use auth_core::model::{Principal, Session, UserView};
use auth_core::{AuthError, IdentityService};
use chrono::{DateTime, Utc};
use kernel::settings::{SettingsDocument, SettingsError, SettingsKind};
use media_core::{MediaError, MediaFile};
use portfolio_core::PortfolioError;
use portfolio_core::model::ItemView;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use utoipa::IntoParams;

use crate::auth::Authenticated;
use crate::body::{camel_case, parse};
use crate::dto::{SessionDto, UserDto};
use crate::envelope::{self, MessageEnvelope};
use crate::problem::{ApiError, Problem};
use crate::query::Param;
use crate::record_json::{Audience, ItemsBody, SettingsBody};

/// `{ "token": "…" }`, when the token is not in the query.
#[derive(Debug, Deserialize, garde::Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeletionRequest {
    #[garde(length(chars, min = 1, max = 512))]
    #[schema(min_length = 1, max_length = 512)]
    pub token: String,
}

/// The query of the deletion route; other parameters are ignored.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeletionQuery {
    /// The token from the deletion email
    #[param(min_length = 1)]
    token: Option<String>,
}

/// Email the caller a single-use link (24 h) that confirms deleting the account.
#[utoipa::path(post, path = "/api/v1/users/account/request-deletion", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "Link sent", body = MessageEnvelope), (status = 401, body = Problem)))]
pub async fn request_deletion(
    identity: web::Data<IdentityService>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    identity.request_account_deletion(&caller.0).await?;
    Ok(envelope::done(
        "We sent a link to confirm the deletion to your email address",
    ))
}

/// Delete the caller's account and everything that is theirs (sessions, preferences,
/// portfolio, uploaded files); a confirmation email follows. The token goes in the query or the body.
#[utoipa::path(delete, path = "/api/v1/users/account", tag = "users", security(("bearer" = [])),
    params(DeletionQuery),
    request_body(content = DeletionRequest, description = "Or the token in the body (without a `token` in the query)"),
    responses(
        (status = 200, description = "Deleted", body = MessageEnvelope),
        (status = 400, description = "`INVALID_TOKEN`: not the caller's unexpired deletion token", body = Problem),
        (status = 401, body = Problem),
    ))]
pub async fn delete(
    identity: web::Data<IdentityService>,
    caller: Authenticated,
    query: web::Query<DeletionQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let token = match query.into_inner().token {
        Some(token) if !token.is_empty() => token,
        _ if body.iter().all(u8::is_ascii_whitespace) => {
            return Err(ApiError::field("token", "required", "is required"));
        }
        _ => parse::<DeletionRequest>(&body)?.token,
    };
    identity.delete_account(&caller.0, &token).await?;
    Ok(envelope::done(
        "Your account and all of its data were deleted",
    ))
}

/// Everything stored about the caller except secrets, as the application gathers it.
pub struct AccountExport {
    pub exported_at: DateTime<Utc>,
    pub user: UserView,
    /// The live sessions, each with whether it is the caller's.
    pub sessions: Vec<(Session, bool)>,
    /// Every settings document stored, in the order of the kinds.
    pub settings: Vec<(&'static SettingsKind, SettingsDocument)>,
    /// Every item, soft-deleted ones too, under its resource's name; links are left as ids.
    pub portfolio: BTreeMap<&'static str, Vec<ItemView>>,
    /// Every uploaded file (thumbnails included).
    pub files: Vec<MediaFile>,
    /// The bytes those files take, and the most they may take.
    pub storage: StorageUse,
}

/// An owner's use of file storage.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageUse {
    pub used_bytes: u64,
    pub quota_bytes: u64,
}

/// Why an export could not be gathered: the error of the service that failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Identity(#[from] AuthError),
    #[error(transparent)]
    Portfolio(#[from] PortfolioError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Media(#[from] MediaError),
}

impl From<ExportError> for ApiError {
    fn from(error: ExportError) -> Self {
        match error {
            ExportError::Identity(error) => error.into(),
            ExportError::Portfolio(error) => error.into(),
            ExportError::Settings(error) => error.into(),
            ExportError::Media(error) => error.into(),
        }
    }
}

/// Gathers an account's export: an application service over the identity, portfolio and
/// settings services, so that this edge only renders it.
#[async_trait]
pub trait AccountExporter: Send + Sync {
    /// # Errors
    /// [`ExportError`] when a service fails.
    async fn export(&self, caller: &Principal) -> Result<AccountExport, ExportError>;
}

/// The export as a document: the JSON download, and what the CSV rows are made of.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExportDocument<'a> {
    exported_at: String,
    user: UserDto,
    sessions: Vec<SessionDto>,
    settings: SettingsSections<'a>,
    portfolio: BTreeMap<&'static str, ItemsBody<'a>>,
    files: Vec<FileEntry>,
    storage: StorageUse,
}

/// One uploaded file in the export.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileEntry {
    url: String,
    mime_type: &'static str,
    size: u64,
    modified_at: String,
}

/// Each settings document under its kind's name in camelCase, in the order of the kinds.
struct SettingsSections<'a>(&'a [(&'static SettingsKind, SettingsDocument)]);

impl Serialize for SettingsSections<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(kind, document)| {
            let body = SettingsBody {
                schema: &kind.schema,
                fields: &document.fields,
                document: Some(document),
                audience: Audience::Export,
            };
            (camel_case(kind.name), body)
        }))
    }
}

/// The export as JSON, the form both downloads are rendered from.
fn render(export: AccountExport) -> Result<Value, ApiError> {
    let AccountExport {
        exported_at,
        user,
        sessions,
        settings,
        portfolio,
        files,
        storage,
    } = export;
    let document = ExportDocument {
        exported_at: exported_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        user: UserDto::from(user),
        sessions: sessions.into_iter().map(SessionDto::from).collect(),
        settings: SettingsSections(&settings),
        portfolio: portfolio
            .iter()
            .map(|(section, views)| {
                let items = ItemsBody {
                    views,
                    audience: Audience::Export,
                };
                (*section, items)
            })
            .collect(),
        files: files
            .into_iter()
            .map(|file| FileEntry {
                mime_type: file.key.kind.mime(),
                size: file.size,
                modified_at: file
                    .modified
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                url: file.url,
            })
            .collect(),
        storage,
    };
    serde_json::to_value(&document).map_err(|error| {
        tracing::error!(%error, "export rendering failed");
        ApiError::internal()
    })
}

/// One CSV cell: quoted when needed, and defused when a spreadsheet would run it as a formula.
fn cell(raw: &str) -> String {
    let raw = if raw.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{raw}")
    } else {
        raw.to_owned()
    };
    if raw.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", raw.replace('"', "\"\""))
    } else {
        raw
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The export as `section,id,field,value` rows: one row per stored field.
fn csv(export: &Value) -> String {
    let mut out = String::from("section,id,field,value\r\n");
    let mut row = |section: &str, object: &serde_json::Map<String, Value>| {
        let id = object.get("id").map(scalar).unwrap_or_default();
        for (field, value) in object {
            out.push_str(&format!(
                "{},{},{},{}\r\n",
                cell(section),
                cell(&id),
                cell(field),
                cell(&scalar(value))
            ));
        }
    };
    let empty = serde_json::Map::new();
    row("user", export["user"].as_object().unwrap_or(&empty));
    for session in export["sessions"].as_array().into_iter().flatten() {
        row("sessions", session.as_object().unwrap_or(&empty));
    }
    for (name, document) in export["settings"].as_object().unwrap_or(&empty) {
        row(
            &format!("settings.{name}"),
            document.as_object().unwrap_or(&empty),
        );
    }
    for file in export["files"].as_array().into_iter().flatten() {
        row("files", file.as_object().unwrap_or(&empty));
    }
    row("storage", export["storage"].as_object().unwrap_or(&empty));
    for (name, items) in export["portfolio"].as_object().unwrap_or(&empty) {
        for item in items.as_array().into_iter().flatten() {
            row(
                &format!("portfolio.{name}"),
                item.as_object().unwrap_or(&empty),
            );
        }
    }
    out
}

/// The export's file format.
#[derive(Clone, Copy, Debug, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ExportFormat {
    Json,
    Csv,
}

impl FromStr for ExportFormat {
    type Err = ();

    fn from_str(raw: &str) -> Result<Self, ()> {
        match raw {
            "json" => Ok(Self::Json),
            "csv" => Ok(Self::Csv),
            _ => Err(()),
        }
    }
}

/// The query of the export route; other parameters are ignored.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `json` (default) or `csv` (`section,id,field,value` rows)
    #[param(value_type = Option<ExportFormat>)]
    format: Option<Param<ExportFormat>>,
}

/// Everything stored about the caller except secrets, as a download.
#[utoipa::path(get, path = "/api/v1/users/account/export", tag = "users", security(("bearer" = [])),
    params(ExportQuery),
    responses(
        (status = 200, description = "The export (JSON, or CSV with `format=csv`), with `Content-Disposition: attachment`", content(
            (serde_json::Value = "application/json"),
            (String = "text/csv"),
        )),
        (status = 401, body = Problem),
    ))]
pub async fn export(
    exporter: web::Data<dyn AccountExporter>,
    caller: Authenticated,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let format = match query.format.as_ref().map(Param::value) {
        None => ExportFormat::Json,
        Some(Some(format)) => *format,
        Some(None) => return Err(ApiError::field("format", "choice", "must be json or csv")),
    };
    let export = exporter.export(&caller.0).await?;
    let date = export.exported_at.format("%Y-%m-%d").to_string();
    let document = render(export)?;
    let (content_type, extension, body) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv", csv(&document)),
        ExportFormat::Json => (
            "application/json",
            "json",
            serde_json::to_string_pretty(&document).map_err(|_| ApiError::internal())?,
        ),
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"console-export-{date}.{extension}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("line\nbreak"), "\"line\nbreak\"");
    }
}
