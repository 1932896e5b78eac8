//! The account over its life: the caller's view, admin checks, profile, deletion, export.
//!
//! The admin role comes only from `ADMIN_EMAILS`, for a verified address: it is evaluated again at
//! every token, and `require_admin` reads it from the stored account, never from the token.

use std::sync::Arc;
use tracing::info;

use super::IdentityService;
use crate::error::AuthError;
use crate::model::{Principal, ProfileChanges, Role, Session, TokenPurpose, UserView};
use crate::ports::AccountEmail;

impl IdentityService {
    /// The caller's user (from memory when this instance read it moments ago). While the view
    /// is remembered unchanged, every call returns the same `Arc`, and a changed view is a new
    /// one: an edge may keep what it derives from a view (its rendering) for as long as
    /// `Arc::ptr_eq` says the view is the same.
    ///
    /// # Errors
    /// [`AuthError::UserNotFound`] when the user was deleted meanwhile.
    pub async fn me(&self, principal: &Principal) -> Result<Arc<UserView>, AuthError> {
        self.remembered_view_of(&principal.user_id)
            .await?
            .ok_or(AuthError::UserNotFound)
    }

    /// Checks that the caller is an admin now, from the stored account rather than the token's
    /// claim (which may predate a demotion).
    ///
    /// # Errors
    /// [`AuthError::UnverifiedAdmin`] for an admin address not verified yet,
    /// [`AuthError::Forbidden`] for anyone else; [`AuthError::UserNotFound`] when deleted.
    pub async fn require_admin(&self, principal: &Principal) -> Result<UserView, AuthError> {
        let view = self
            .view_of(&principal.user_id)
            .await?
            .ok_or(AuthError::UserNotFound)?;
        if view.user.role == Role::Admin {
            Ok(view)
        } else if self.policy.admin_emails.contains(&view.user.email) {
            Err(AuthError::UnverifiedAdmin)
        } else {
            Err(AuthError::Forbidden)
        }
    }

    /// Updates the caller's profile fields.
    ///
    /// # Errors
    /// [`AuthError::UserNotFound`] when the user was deleted meanwhile.
    pub async fn update_profile(
        &self,
        principal: &Principal,
        changes: &ProfileChanges,
    ) -> Result<UserView, AuthError> {
        let now = self.now();
        if self
            .ports
            .users
            .update_profile(&principal.user_id, changes, now)
            .await?
            .is_none()
        {
            return Err(AuthError::UserNotFound);
        }
        self.forget_view(&principal.user_id);
        self.me(principal).await.map(Arc::unwrap_or_clone)
    }

    /// Sets (or clears) the caller's avatar URL; returns the user and the URL it replaced, read
    /// from the store (not a cached view), so the replaced file can be removed.
    ///
    /// # Errors
    /// [`AuthError::UserNotFound`] when the user was deleted meanwhile.
    pub async fn set_avatar(
        &self,
        principal: &Principal,
        avatar: Option<String>,
    ) -> Result<(UserView, Option<String>), AuthError> {
        let previous = self
            .ports
            .users
            .find_user(&principal.user_id)
            .await?
            .ok_or(AuthError::UserNotFound)?
            .avatar;
        let changes = ProfileChanges {
            avatar: Some(avatar),
            ..ProfileChanges::default()
        };
        let view = self.update_profile(principal, &changes).await?;
        Ok((view, previous))
    }

    /// Emails the account's owner a single-use link (24 h) that confirms deleting the account.
    ///
    /// # Errors
    /// Infrastructure only.
    pub async fn request_account_deletion(&self, principal: &Principal) -> Result<(), AuthError> {
        let account = self.account_of(&principal.user_id).await?;
        self.send_one_time_link(account, TokenPurpose::AccountDeletion)
            .await
    }

    /// Deletes the caller's account and everything that is theirs, given the token the
    /// deletion request emailed to them, and confirms by email.
    ///
    /// # Errors
    /// [`AuthError::InvalidOneTimeToken`] unless `token` is the caller's own unexpired
    /// deletion token; nothing is deleted then.
    pub async fn delete_account(
        &self,
        principal: &Principal,
        token: &str,
    ) -> Result<(), AuthError> {
        let owner = &principal.user_id;
        let account = self.account_of(owner).await?;
        let digest = self.ports.secrets.digest(token);
        let now = self.now();
        let confirmed = account
            .account_deletion
            .as_ref()
            .is_some_and(|stored| stored.hash == digest && stored.expires_at > now);
        if !confirmed {
            return Err(AuthError::InvalidOneTimeToken);
        }
        let name = self.greeting_for(owner).await?;
        // Shut the door before clearing the room: with every session revoked (writes check the
        // store, not a cache) and the account gone (no new login), nothing can recreate rows
        // for this user while they are erased.
        self.revoke_all_except(owner, None).await?;
        self.ports.accounts.delete_accounts_of(owner).await?;
        self.ports.owned_data.erase_owned_data(owner).await?;
        self.ports.sessions.delete_sessions_of(owner).await?;
        self.ports.users.delete_user(owner).await?;
        self.forget_view(owner);
        // A write that passed its check just before the revoke may have landed meanwhile.
        self.ports.owned_data.erase_owned_data(owner).await?;
        self.ports.notifier.forget_recipient(&account.email).await?;
        info!(user_id = %owner, "account deleted");
        self.ports
            .notifier
            .notify(AccountEmail::AccountDeleted {
                to: account.email,
                name,
            })
            .await?;
        Ok(())
    }

    /// What the identity store keeps about the caller, secrets left out: the user as the API
    /// shows it and the live sessions.
    ///
    /// # Errors
    /// Infrastructure only.
    pub async fn export_identity(
        &self,
        principal: &Principal,
    ) -> Result<(UserView, Vec<Session>), AuthError> {
        let user = Arc::unwrap_or_clone(self.me(principal).await?);
        let sessions = self
            .ports
            .sessions
            .list_live_sessions(&principal.user_id, self.now())
            .await?;
        Ok((user, sessions))
    }
}
