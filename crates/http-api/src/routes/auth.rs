//! `/api/v1/auth/*`.

use actix_web::{HttpResponse, web};
use auth_core::{Email, IdentityService, Password};

use crate::auth::Authenticated;
use crate::body::ValidJson;
use crate::client::Client;
use crate::dto::{
    AuthData, ChangePasswordRequest, ForgotPasswordRequest, LoginRequest, RefreshRequest,
    RegisterRequest, ResetPasswordRequest, UserDto, VerifyEmailRequest,
};
use crate::envelope::{self, Envelope, MessageEnvelope};
use crate::page_cache::ViewPages;
use crate::problem::{ApiError, Problem};

type Identity = web::Data<IdentityService>;

/// Create an account; sends the welcome and verification emails and opens a first session.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered and signed in", body = Envelope<AuthData>),
        (status = 409, description = "`EMAIL_TAKEN` or `USERNAME_TAKEN`", body = Problem),
        (status = 503, description = "`NOT_READY`: the welcome and verification emails cannot be queued (the job queue is down); no account was kept, retry after `Retry-After` seconds", body = Problem),
    ))]
pub async fn register(
    identity: Identity,
    client: Client,
    ValidJson(body): ValidJson<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let outcome = identity.register(body.into_domain()?, &client.0).await?;
    Ok(envelope::created(
        "Registration successful",
        AuthData::from(outcome),
    ))
}

/// Sign in with email and password; opens a device session.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = Envelope<AuthData>),
        (status = 401, description = "`INVALID_CREDENTIALS`: unknown email or wrong password, indistinguishably", body = Problem),
        (status = 403, description = "`ACCOUNT_DISABLED`", body = Problem),
    ))]
pub async fn login(
    identity: Identity,
    client: Client,
    ValidJson(body): ValidJson<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let email = Email::parse(&body.email)?;
    let outcome = identity.login(&email, &body.password, &client.0).await?;
    Ok(envelope::ok("Login successful", AuthData::from(outcome)))
}

/// Exchange a refresh token for a new pair (rotation). Reusing a rotated token revokes its session.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "New token pair", body = Envelope<AuthData>),
        (status = 401, description = "`INVALID_REFRESH_TOKEN`: invalid, expired, rotated or revoked", body = Problem),
    ))]
pub async fn refresh(
    identity: Identity,
    ValidJson(body): ValidJson<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let outcome = identity.refresh(&body.refresh_token).await?;
    Ok(envelope::ok("Token refreshed", AuthData::from(outcome)))
}

/// End the current session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "Signed out", body = MessageEnvelope), (status = 401, body = Problem)))]
pub async fn logout(identity: Identity, caller: Authenticated) -> Result<HttpResponse, ApiError> {
    identity.logout(&caller.0).await?;
    Ok(envelope::done("Logout successful"))
}

/// The calling user.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "The user", body = Envelope<UserDto>), (status = 401, body = Problem)))]
pub async fn me(
    identity: Identity,
    pages: web::Data<ViewPages>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let view = identity.me(&caller.0).await?;
    let body = pages.answer(&view, |view| {
        envelope::rendered(&Envelope {
            success: true,
            message: "User retrieved".to_owned(),
            data: UserDto::from(view.clone()),
        })
    })?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

const RESET_SENT: &str = "If an account exists for this email, a password reset link has been sent";

/// Email a password reset link (valid 1 hour, single use). Answers alike whether or not the email exists.
#[utoipa::path(post, path = "/api/v1/auth/forgot-password", tag = "auth", request_body = ForgotPasswordRequest,
    responses((status = 200, description = "Accepted", body = MessageEnvelope)))]
pub async fn forgot_password(
    identity: Identity,
    ValidJson(body): ValidJson<ForgotPasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    identity
        .into_inner()
        .forgot_password(Email::parse(&body.email)?);
    Ok(envelope::done(RESET_SENT))
}

/// Set a new password with a reset token; ends every session of the account.
#[utoipa::path(post, path = "/api/v1/auth/reset-password", tag = "auth", request_body = ResetPasswordRequest,
    responses(
        (status = 200, description = "Password reset", body = MessageEnvelope),
        (status = 400, description = "`INVALID_TOKEN`: unknown, used or expired token; or `VALIDATION_ERROR`", body = Problem),
    ))]
pub async fn reset_password(
    identity: Identity,
    ValidJson(body): ValidJson<ResetPasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let password = Password::parse_new("password", &body.password)?;
    identity
        .into_inner()
        .reset_password(&body.token, &password)
        .await?;
    Ok(envelope::done("Password has been reset"))
}

/// Confirm the email address with the token from the verification link (valid 24 hours).
#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth", request_body = VerifyEmailRequest,
    responses(
        (status = 200, description = "Email verified", body = MessageEnvelope),
        (status = 400, description = "`INVALID_TOKEN`", body = Problem),
    ))]
pub async fn verify_email(
    identity: Identity,
    ValidJson(body): ValidJson<VerifyEmailRequest>,
) -> Result<HttpResponse, ApiError> {
    identity.verify_email(&body.token).await?;
    Ok(envelope::done("Email verified"))
}

/// Send a new verification email; earlier links stop working.
#[utoipa::path(post, path = "/api/v1/auth/resend-verification", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "Sent", body = MessageEnvelope),
        (status = 400, description = "`EMAIL_ALREADY_VERIFIED`", body = Problem),
        (status = 401, body = Problem),
    ))]
pub async fn resend_verification(
    identity: Identity,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    identity.resend_verification(&caller.0).await?;
    Ok(envelope::done("Verification email sent"))
}

/// Change the password; ends the account's other sessions.
#[utoipa::path(post, path = "/api/v1/auth/change-password", tag = "auth", security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses(
        (status = 200, description = "Password changed", body = MessageEnvelope),
        (status = 400, description = "`INVALID_CURRENT_PASSWORD` or `VALIDATION_ERROR`", body = Problem),
        (status = 401, body = Problem),
    ))]
pub async fn change_password(
    identity: Identity,
    caller: Authenticated,
    ValidJson(body): ValidJson<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let new = Password::parse_new("newPassword", &body.new_password)?;
    identity
        .into_inner()
        .change_password(&caller.0, &body.current_password, &new)
        .await?;
    Ok(envelope::done("Password changed"))
}
