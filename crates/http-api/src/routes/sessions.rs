//! `/api/v1/sessions*`.

use actix_web::{HttpResponse, web};
use auth_core::IdentityService;
use auth_core::model::SessionId;

use crate::auth::Authenticated;
use crate::dto::{RevokedCount, SessionDto};
use crate::envelope::{self, Envelope, MessageEnvelope};
use crate::problem::{ApiError, Problem};

type Identity = web::Data<IdentityService>;

/// The caller's active sessions, most recently active first.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions", security(("bearer" = [])),
    responses((status = 200, description = "Active sessions", body = Envelope<Vec<SessionDto>>), (status = 401, body = Problem)))]
pub async fn list(identity: Identity, caller: Authenticated) -> Result<HttpResponse, ApiError> {
    let sessions: Vec<SessionDto> = identity
        .sessions(&caller.0)
        .await?
        .into_iter()
        .map(SessionDto::from)
        .collect();
    Ok(envelope::ok("Sessions retrieved", sessions))
}

/// Revoke one of the caller's sessions. Another user's session is answered as not found.
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 200, description = "Revoked", body = MessageEnvelope),
        (status = 401, body = Problem),
        (status = 404, description = "`SESSION_NOT_FOUND`", body = Problem),
    ))]
pub async fn revoke(
    identity: Identity,
    caller: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let session =
        SessionId::parse(&id).map_err(|_| ApiError::from(auth_core::AuthError::SessionNotFound))?;
    identity.revoke_session(&caller.0, &session).await?;
    Ok(envelope::done("Session revoked"))
}

/// Revoke every session of the caller except the current one.
#[utoipa::path(delete, path = "/api/v1/sessions", tag = "sessions", security(("bearer" = [])),
    responses((status = 200, description = "Revoked", body = Envelope<RevokedCount>), (status = 401, body = Problem)))]
pub async fn revoke_others(
    identity: Identity,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let revoked = identity.revoke_other_sessions(&caller.0).await?;
    Ok(envelope::ok(
        "Other sessions revoked",
        RevokedCount { revoked },
    ))
}
