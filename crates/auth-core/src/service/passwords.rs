//! Passwords and one-time tokens: reset requests and resets, email verification, password changes.

use chrono::{DateTime, TimeDelta, Utc};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

use super::IdentityService;
use crate::error::AuthError;
use crate::model::{Account, Principal, SessionId, StoredToken, TokenPurpose};
use crate::ports::{AccountEmail, PasswordCheck};
use crate::values::{Email, Password};

use crate::ports::Task;

/// The first wait before an email the queue refused is tried again, and the longest.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_LONGEST: Duration = Duration::from_secs(60);

/// How long a password-changed notice is tried again while the queue refuses it: late, it still
/// tells the owner what happened to their account.
const NOTICE_RETRY_FOR: TimeDelta = TimeDelta::days(1);

impl IdentityService {
    /// Queues a reset link when the email has an account; answers alike when it does not.
    /// Everything that depends on the account runs after the answer, so the answer takes
    /// the same time for known and unknown addresses.
    pub fn forgot_password(self: &Arc<Self>, email: Email) {
        let service = Arc::clone(self);
        self.ports.tasks.spawn(Box::pin(async move {
            match service.reset_link_email(&email).await {
                Ok(Some((email, expires_at))) => {
                    let queued = service.queue_until(email, expires_at, Duration::ZERO);
                    queued.await;
                }
                Ok(None) => info!("password reset requested for an unknown email"),
                Err(error) => warn!(%error, "password reset request failed"),
            }
        }));
    }

    /// Stores a fresh reset token for the account at `email` and returns the email carrying
    /// its link with the token's expiry; `None` when no account has that address.
    async fn reset_link_email(
        &self,
        email: &Email,
    ) -> Result<Option<(AccountEmail, DateTime<Utc>)>, AuthError> {
        let Some(account) = self
            .ports
            .accounts
            .find_account_by_email(email.as_str())
            .await?
        else {
            return Ok(None);
        };
        let link = self
            .one_time_link(account, TokenPurpose::PasswordReset)
            .await?;
        Ok(Some(link))
    }

    /// Queues `email`, which the answer already promised (a reset link) or which follows a
    /// change already stored (a password-changed notice): when the queue refuses it, the same
    /// email (the same link: a refusal may come after the queue kept it, and a second token
    /// would void the first link) is tried again later, the wait doubling from one second to a
    /// minute after `waited`, for as long as it would arrive before `give_up_at`.
    fn queue_until(
        self: &Arc<Self>,
        email: AccountEmail,
        give_up_at: DateTime<Utc>,
        waited: Duration,
    ) -> Task {
        let service = Arc::clone(self);
        Box::pin(async move {
            let Err(error) = service.ports.notifier.notify(email.clone()).await else {
                return;
            };
            let wait = (waited * 2).clamp(RETRY_FIRST, RETRY_LONGEST);
            let sent_by = service.now() + TimeDelta::from_std(wait).unwrap_or_default();
            if sent_by < give_up_at {
                warn!(%error, ?wait, "email not queued; trying again");
                let again = service.queue_until(email, give_up_at, wait);
                service.ports.tasks.spawn_after(wait, again);
            } else {
                warn!(%error, "email not queued; it would arrive too late");
            }
        })
    }

    /// Stores a fresh one-time token of `purpose` and queues the email carrying its link.
    pub(super) async fn send_one_time_link(
        &self,
        account: Account,
        purpose: TokenPurpose,
    ) -> Result<(), AuthError> {
        let (email, _) = self.one_time_link(account, purpose).await?;
        self.ports.notifier.notify(email).await?;
        Ok(())
    }

    /// Stores a fresh one-time token of `purpose` (as a hash; the previous one of that purpose
    /// stops working) and returns the email carrying its link, with the token's expiry.
    async fn one_time_link(
        &self,
        account: Account,
        purpose: TokenPurpose,
    ) -> Result<(AccountEmail, DateTime<Utc>), AuthError> {
        let ttl = match purpose {
            TokenPurpose::PasswordReset => self.policy.reset_token_ttl,
            TokenPurpose::EmailVerification => self.policy.verification_token_ttl,
            TokenPurpose::AccountDeletion => self.policy.deletion_token_ttl,
        };
        let now = self.now();
        let token = self.ports.secrets.new_secret();
        let stored = StoredToken {
            hash: self.ports.secrets.digest(&token),
            expires_at: now + ttl,
        };
        self.ports
            .accounts
            .set_token(&account.id, purpose, Some(&stored), now)
            .await?;
        let name = self.greeting_for(&account.user_id).await?;
        let to = account.email;
        let email = match purpose {
            TokenPurpose::PasswordReset => AccountEmail::PasswordReset { to, name, token },
            TokenPurpose::EmailVerification => AccountEmail::VerifyEmail { to, name, token },
            TokenPurpose::AccountDeletion => {
                AccountEmail::AccountDeletionRequested { to, name, token }
            }
        };
        Ok((email, stored.expires_at))
    }

    /// Sets a new password with a reset token (single use, expiring) and ends every session.
    ///
    /// # Errors
    /// [`AuthError::InvalidOneTimeToken`] for an unknown, used or expired token.
    #[tracing::instrument(skip_all)]
    pub async fn reset_password(
        self: &Arc<Self>,
        token: &str,
        password: &Password,
    ) -> Result<(), AuthError> {
        let now = self.now();
        let digest = self.ports.secrets.digest(token);
        // The token first: hashing is the expensive step, and only a token holder gets it.
        let Some(account) = self.ports.accounts.take_reset_token(&digest, now).await? else {
            return Err(AuthError::InvalidOneTimeToken);
        };
        let hash = self.ports.hasher.hash_password(password.expose()).await?;
        let user_id = account.user_id.clone();
        self.replace_password(account, &hash, None, now).await?;
        info!(user_id = %user_id, "password reset; all sessions revoked");
        Ok(())
    }

    /// Marks the email verified with a verification token (single use, expiring).
    ///
    /// # Errors
    /// [`AuthError::InvalidOneTimeToken`] for an unknown, used or expired token.
    pub async fn verify_email(&self, token: &str) -> Result<(), AuthError> {
        let digest = self.ports.secrets.digest(token);
        match self
            .ports
            .accounts
            .take_verification_token(&digest, self.now())
            .await?
        {
            Some(account) => {
                self.forget_view(&account.user_id);
                Ok(())
            }
            None => Err(AuthError::InvalidOneTimeToken),
        }
    }

    /// Issues a new verification token (the previous one stops working) and queues the email.
    ///
    /// # Errors
    /// [`AuthError::AlreadyVerified`] when there is nothing to verify.
    pub async fn resend_verification(&self, principal: &Principal) -> Result<(), AuthError> {
        let account = self.account_of(&principal.user_id).await?;
        if account.email_verified {
            return Err(AuthError::AlreadyVerified);
        }
        self.send_one_time_link(account, TokenPurpose::EmailVerification)
            .await
    }

    /// Changes the password after checking the current one, and ends the other sessions.
    ///
    /// # Errors
    /// [`AuthError::WrongCurrentPassword`] when `current` does not match.
    #[tracing::instrument(skip_all)]
    pub async fn change_password(
        self: &Arc<Self>,
        principal: &Principal,
        current: &str,
        new: &Password,
    ) -> Result<(), AuthError> {
        let account = self.account_of(&principal.user_id).await?;
        if self
            .ports
            .hasher
            .verify_password(current, &account.password_hash)
            .await?
            == PasswordCheck::Mismatch
        {
            return Err(AuthError::WrongCurrentPassword);
        }
        let hash = self.ports.hasher.hash_password(new.expose()).await?;
        let now = self.now();
        // A reset link mailed before the change would otherwise undo it.
        self.ports
            .accounts
            .set_token(&account.id, TokenPurpose::PasswordReset, None, now)
            .await?;
        self.replace_password(account, &hash, Some(&principal.session_id), now)
            .await
    }

    /// Stores the new password hash, ends every session of the account but `keep`, and
    /// queues the password-changed email: what a reset and a change have in common.
    async fn replace_password(
        self: &Arc<Self>,
        account: Account,
        hash: &str,
        keep: Option<&SessionId>,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        let name = self.greeting_for(&account.user_id).await?;
        self.ports
            .accounts
            .set_password_hash(&account.id, hash, now)
            .await?;
        self.revoke_all_except(&account.user_id, keep).await?;
        // Stored: the answer is a success from here on, and the notice follows when the queue
        // takes it (a refusal now would tell the owner the change failed when it did not).
        let notice = AccountEmail::PasswordChanged {
            to: account.email,
            name,
        };
        let queued = self.queue_until(notice, now + NOTICE_RETRY_FOR, Duration::ZERO);
        self.ports.tasks.spawn(queued);
        Ok(())
    }
}
