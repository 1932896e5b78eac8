//! What can go wrong in identity use cases. The HTTP edge maps each variant once.

use kernel::StoreError;

use crate::ports::{HashError, NotifyError, TokenError};
use crate::values::ValueError;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid input: {0}")]
    Invalid(#[from] ValueError),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("this username is taken")]
    UsernameTaken,
    /// Unknown email or wrong password, deliberately indistinguishable.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The account exists but was deactivated.
    #[error("account is disabled")]
    AccountDisabled,
    /// The access token is missing, forged, expired, or its session is no longer live.
    #[error("authentication required")]
    Unauthenticated,
    /// The refresh token is forged, expired, rotated, or its session is revoked.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    #[error("invalid or expired token")]
    InvalidOneTimeToken,
    #[error("current password is incorrect")]
    WrongCurrentPassword,
    #[error("email is already verified")]
    AlreadyVerified,
    /// The caller is authenticated but lacks the role the action needs.
    #[error("forbidden")]
    Forbidden,
    /// The caller's address is an admin's, but not verified yet: no admin rights until it is.
    #[error("an admin address that is not verified")]
    UnverifiedAdmin,
    #[error("session not found")]
    SessionNotFound,
    #[error("user not found")]
    UserNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
    #[error("token signing failed: {0}")]
    Token(TokenError),
}
