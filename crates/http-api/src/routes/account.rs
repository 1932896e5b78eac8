//! `/api/v1/users/account*`: deletion with an emailed confirmation token, and the data export
//! as a JSON or CSV download.

use std::collections::{BTreeMap, HashMap};

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use auth_core::IdentityService;
use kernel::settings::SettingsService;
use portfolio_core::PortfolioService;
use portfolio_core::model::ItemView;
use portfolio_core::resources::PROFILE;
use serde::Deserialize;
use serde_json::Value;

use crate::PREFERENCE_ROUTES;
use crate::auth::Authenticated;
use crate::body::{camel_case, parse};
use crate::dto::{SessionDto, UserDto};
use crate::envelope::{self, MessageEnvelope};
use crate::problem::{ApiError, Problem};
use crate::records::{Audience, ItemBody, SettingsBody};

/// `{ "token": "…" }`, when the token is not in the query.
#[derive(Debug, Deserialize, garde::Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeletionRequest {
    #[garde(length(chars, min = 1, max = 512))]
    #[schema(min_length = 1, max_length = 512)]
    pub token: String,
}

/// The formats of the export.
#[derive(Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ExportFormat {
    Json,
    Csv,
}

impl ExportFormat {
    /// # Errors
    /// 400 naming `format` unless it is absent, `json` or `csv`.
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        match raw {
            None | Some("json") => Ok(Self::Json),
            Some("csv") => Ok(Self::Csv),
            Some(_) => Err(ApiError::field("format", "choice", "must be json or csv")),
        }
    }
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
/// portfolio); a confirmation email follows. The token goes in the query or the body.
#[utoipa::path(delete, path = "/api/v1/users/account", tag = "users", security(("bearer" = [])),
    params(("token" = Option<String>, Query, min_length = 1, description = "The token from the deletion email")),
    request_body(content = DeletionRequest, description = "Or the token in the body (without a `token` in the query)"),
    responses(
        (status = 200, description = "Deleted", body = MessageEnvelope),
        (status = 400, description = "`INVALID_TOKEN`: not the caller's unexpired deletion token", body = Problem),
        (status = 401, body = Problem),
    ))]
pub async fn delete(
    identity: web::Data<IdentityService>,
    caller: Authenticated,
    query: web::Query<HashMap<String, String>>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let token = match query.get("token") {
        Some(token) if !token.is_empty() => token.clone(),
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

async fn export_document(
    identity: &IdentityService,
    portfolio: &PortfolioService,
    settings: &SettingsService,
    caller: &Authenticated,
) -> Result<Value, ApiError> {
    let owner = &caller.0.user_id;
    let (user, sessions) = identity.export_identity(&caller.0).await?;
    let sessions: Vec<SessionDto> = sessions
        .into_iter()
        .map(|session| {
            let current = session.id == caller.0.session_id;
            SessionDto::from((session, current))
        })
        .collect();
    let mut stored_settings = serde_json::Map::new();
    // Every settings document the API serves, under its kind's name in camelCase.
    let kinds = std::iter::once(&PROFILE).chain(PREFERENCE_ROUTES.iter().map(|(_, kind)| *kind));
    for kind in kinds {
        if let Some(document) = settings.find(kind, owner).await? {
            let body = SettingsBody {
                schema: &kind.schema,
                fields: &document.fields,
                document: Some(&document),
                audience: Audience::Export,
            };
            stored_settings.insert(camel_case(kind.name), to_value(&body)?);
        }
    }
    let mut sections: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for item in portfolio.export(owner).await? {
        let section = item.resource.name;
        let view = ItemView {
            item,
            linked: Vec::new(),
        };
        let body = ItemBody {
            view: &view,
            audience: Audience::Export,
        };
        sections.entry(section).or_default().push(to_value(&body)?);
    }
    Ok(serde_json::json!({
        "exportedAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "user": to_value(&UserDto::from(user))?,
        "sessions": to_value(&sessions)?,
        "settings": stored_settings,
        "portfolio": sections,
    }))
}

fn to_value<T: serde::Serialize>(value: &T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|error| {
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

/// Everything stored about the caller except secrets, as a download.
#[utoipa::path(get, path = "/api/v1/users/account/export", tag = "users", security(("bearer" = [])),
    params(("format" = Option<ExportFormat>, Query, description = "`json` (default) or `csv` (`section,id,field,value` rows)")),
    responses(
        (status = 200, description = "The export (JSON, or CSV with `format=csv`), with `Content-Disposition: attachment`", content(
            (serde_json::Value = "application/json"),
            (String = "text/csv"),
        )),
        (status = 401, body = Problem),
    ))]
pub async fn export(
    identity: web::Data<IdentityService>,
    portfolio: web::Data<PortfolioService>,
    settings: web::Data<SettingsService>,
    caller: Authenticated,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let format = ExportFormat::parse(query.get("format").map(String::as_str))?;
    let document = export_document(&identity, &portfolio, &settings, &caller).await?;
    let date = chrono::Utc::now().format("%Y-%m-%d");
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
