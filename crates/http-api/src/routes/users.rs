//! `/api/v1/users/*`.

use actix_web::{HttpResponse, web};
use auth_core::IdentityService;

use portfolio_core::ports::ContentListener as _;

use crate::auth::Authenticated;
use crate::body::PatchJson;
use crate::dto::{UpdateProfileRequest, UserDto};
use crate::envelope::{self, Envelope};
use crate::page_cache::PageCache;
use crate::problem::{ApiError, Problem};

/// Update the caller's profile fields. The user object from `GET /auth/me` may be sent back
/// whole: its other fields are ignored while unchanged (a changed one is a 400 naming it).
#[utoipa::path(patch, path = "/api/v1/users/profile", tag = "users", security(("bearer" = [])), request_body = UpdateProfileRequest,
    responses((status = 200, description = "Updated user", body = Envelope<UserDto>), (status = 401, body = Problem)))]
pub async fn update_profile(
    identity: web::Data<IdentityService>,
    public_cache: web::Data<PageCache>,
    caller: Authenticated,
    patch: PatchJson<UpdateProfileRequest>,
) -> Result<HttpResponse, ApiError> {
    let current = UserDto::from(std::sync::Arc::unwrap_or_clone(
        identity.me(&caller.0).await?,
    ));
    let body = patch.unchanged(&current)?;
    let user = identity
        .update_profile(&caller.0, &body.into_domain())
        .await?;
    // Names and avatar appear on the public portfolio.
    public_cache.content_changed(&caller.0.user_id);
    Ok(envelope::ok("Profile updated", UserDto::from(user)))
}
