//! The `Authenticated` extractor: a bearer access token whose session is live.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::Method;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use auth_core::IdentityService;
use auth_core::model::Principal;

use crate::problem::ApiError;

pub struct Authenticated(pub Principal);

/// Whether `given` is the secret `expected` (a scrape token, basic credentials), compared as
/// SHA-256 digests in constant time, so that the time taken says nothing of either, its length
/// included.
pub(crate) fn same_secret(expected: &str, given: &str) -> bool {
    use sha2::Digest as _;
    use subtle::ConstantTimeEq as _;
    let (expected, given) = (sha2::Sha256::digest(expected), sha2::Sha256::digest(given));
    expected.as_slice().ct_eq(given.as_slice()).into()
}

pub(crate) fn bearer(request: &HttpRequest) -> Option<String> {
    let value = request
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

impl FromRequest for Authenticated {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer(request);
        let identity = request.app_data::<web::Data<IdentityService>>().cloned();
        // Reads may trust this instance's recent liveness answer; writes ask the store, so a
        // session revoked elsewhere changes nothing more.
        let reads_only = matches!(*request.method(), Method::GET | Method::HEAD);
        Box::pin(async move {
            let (Some(token), Some(identity)) = (token, identity) else {
                return Err(ApiError::unauthenticated().into());
            };
            let principal = if reads_only {
                identity.authenticate(&token).await
            } else {
                identity.authenticate_fresh(&token).await
            };
            principal.map(Self).map_err(|e| ApiError::from(e).into())
        })
    }
}

/// The caller, who must have role `admin` (checked against the stored account every time):
/// 401 without a valid token, 403 for anyone else.
pub struct Admin;

impl FromRequest for Admin {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = Authenticated::from_request(request, payload);
        let identity = request.app_data::<web::Data<IdentityService>>().cloned();
        Box::pin(async move {
            let Authenticated(principal) = caller.await?;
            let identity = identity.ok_or_else(ApiError::unauthenticated)?;
            identity
                .require_admin(&principal)
                .await
                .map_err(ApiError::from)?;
            Ok(Self)
        })
    }
}
