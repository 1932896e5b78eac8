//! Registration: a user, its account and a first session; a username derived when none is given.

use chrono::{DateTime, Utc};
use kernel::StoreError;
use tracing::{info, warn};

use super::{AuthOutcome, IdentityService, Registration};
use crate::error::AuthError;
use crate::model::{Account, AccountId, ClientInfo, StoredToken, User, UserId, UserView};
use crate::ports::{AccountEmail, SecretGenerator};
use crate::values::{DisplayName, Email, Username};

const DERIVED_USERNAME_ATTEMPTS: u32 = 8;

impl IdentityService {
    /// Creates a user and its account, queues the welcome and verification emails, and opens a
    /// first session.
    ///
    /// # Errors
    /// [`AuthError::EmailTaken`], [`AuthError::UsernameTaken`], or an infrastructure error.
    #[tracing::instrument(skip_all)]
    pub async fn register(
        &self,
        registration: Registration,
        client: &ClientInfo,
    ) -> Result<AuthOutcome, AuthError> {
        let Registration {
            name,
            email,
            password,
            username,
        } = registration;
        if self
            .ports
            .accounts
            .find_account_by_email(email.as_str())
            .await?
            .is_some()
        {
            return Err(AuthError::EmailTaken);
        }
        if let Some(wanted) = &username
            && self.ports.users.username_taken(wanted.as_str()).await?
        {
            return Err(AuthError::UsernameTaken);
        }
        let password_hash = self.ports.hasher.hash_password(password.expose()).await?;
        let now = self.now();
        let user = self.insert_user(&name, &email, username, now).await?;
        let verification_secret = self.ports.secrets.new_secret();
        let account = Account {
            id: AccountId::generate(),
            user_id: user.id.clone(),
            email: email.as_str().to_owned(),
            password_hash,
            email_verified: false,
            email_verification: Some(StoredToken {
                hash: self.ports.secrets.digest(&verification_secret),
                expires_at: now + self.policy.verification_token_ttl,
            }),
            password_reset: None,
            account_deletion: None,
            is_active: true,
            created_at: now,
            updated_at: now,
        };
        if let Err(error) = self.ports.accounts.insert_account(&account).await {
            self.ports.users.delete_user(&user.id).await?;
            return Err(match error {
                StoreError::Duplicate { .. } => AuthError::EmailTaken,
                other => other.into(),
            });
        }
        let greeting = user.greeting();
        let queued = async {
            self.ports
                .notifier
                .notify(AccountEmail::Welcome {
                    to: account.email.clone(),
                    name: greeting.clone(),
                    user_id: user.id.clone(),
                })
                .await?;
            self.ports
                .notifier
                .notify(AccountEmail::VerifyEmail {
                    to: account.email.clone(),
                    name: greeting,
                    token: verification_secret,
                })
                .await
        };
        if let Err(error) = queued.await {
            // The queue is down: an account without its verification email could never be
            // verified (a retry would be "email taken"), so it is undone and the caller asked
            // to try again.
            warn!(user_id = %user.id, %error, "registration undone: its emails could not be queued");
            if let Err(error) = self.ports.notifier.forget_recipient(&account.email).await {
                warn!(%error, "the undone registration's queued emails were not dropped");
            }
            self.ports.accounts.delete_accounts_of(&user.id).await?;
            self.ports.users.delete_user(&user.id).await?;
            return Err(AuthError::Notify(error));
        }
        info!(user_id = %user.id, "user registered");
        let tokens = self.open_session(&user, &account, client, now).await?;
        Ok(AuthOutcome {
            tokens,
            user: UserView {
                user,
                email_verified: false,
            },
        })
    }

    pub(super) async fn insert_user(
        &self,
        name: &DisplayName,
        email: &Email,
        wanted: Option<Username>,
        now: DateTime<Utc>,
    ) -> Result<User, AuthError> {
        let derived = wanted.is_none();
        let base = wanted.unwrap_or_else(|| Username::derive_from(email));
        let (first_name, last_name) = match name.as_str().split_once(' ') {
            Some((first, rest)) => (first.to_owned(), Some(rest.trim().to_owned())),
            None => (name.as_str().to_owned(), None),
        };
        let mut user = User {
            id: UserId::generate(),
            username: base.as_str().to_owned(),
            email: email.as_str().to_owned(),
            first_name: Some(first_name),
            last_name,
            display_name: Some(name.as_str().to_owned()),
            avatar: None,
            role: self.role_for(email.as_str(), false),
            bio: None,
            location: None,
            website: None,
            is_active: true,
            last_login_at: Some(now),
            created_at: now,
            updated_at: now,
        };
        for attempt in 0..DERIVED_USERNAME_ATTEMPTS {
            if derived {
                user.username = self.username_candidate(&base, attempt).as_str().to_owned();
                if self.ports.users.username_taken(&user.username).await? {
                    continue;
                }
            }
            match self.ports.users.insert_user(&user).await {
                Ok(()) => return Ok(user),
                Err(StoreError::Duplicate { .. }) if derived => {}
                Err(StoreError::Duplicate { .. }) => return Err(AuthError::UsernameTaken),
                Err(other) => return Err(other.into()),
            }
        }
        Err(AuthError::UsernameTaken)
    }

    /// Gives a user another version stored without a username (the NestJS registration did
    /// not ask for one) a username derived from its email, as registration would have. Best
    /// effort: a login never fails for it; the user keeps no username until a later login.
    pub(super) async fn ensure_username(&self, mut user: User) -> User {
        if !user.username.is_empty() {
            return user;
        }
        match self.assign_username(&user).await {
            Ok(username) => user.username = username,
            Err(error) => warn!(user_id = %user.id, %error, "could not give the user a username"),
        }
        user
    }

    /// The username now stored for `user`: one claimed here, or one a concurrent login gave.
    async fn assign_username(&self, user: &User) -> Result<String, AuthError> {
        let base = Email::parse(&user.email).map_or_else(
            |_| Username::fallback(),
            |email| Username::derive_from(&email),
        );
        for attempt in 0..DERIVED_USERNAME_ATTEMPTS {
            let candidate = self.username_candidate(&base, attempt);
            if self.ports.users.username_taken(candidate.as_str()).await? {
                continue;
            }
            match self
                .ports
                .users
                .assign_username(&user.id, candidate.as_str())
                .await
            {
                Ok(true) => return Ok(candidate.as_str().to_owned()),
                Ok(false) => {
                    let stored = self.ports.users.find_user(&user.id).await?;
                    return Ok(stored.map(|stored| stored.username).unwrap_or_default());
                }
                Err(StoreError::Duplicate { .. }) => {}
                Err(other) => return Err(other.into()),
            }
        }
        Err(AuthError::UsernameTaken)
    }

    /// The `attempt`-th username to try from `base`: the base itself, then small numbers for
    /// readable names, then random ones to stop collisions.
    fn username_candidate(&self, base: &Username, attempt: u32) -> Username {
        match attempt {
            0 => base.clone(),
            1 | 2 => base.with_suffix(attempt + 1),
            _ => base.with_suffix(rand_suffix(&*self.ports.secrets)),
        }
    }
}

fn rand_suffix(secrets: &dyn SecretGenerator) -> u32 {
    let digest = secrets.digest(&secrets.new_secret());
    let head = digest.get(..6).unwrap_or("0");
    u32::from_str_radix(head, 16).unwrap_or(0) % 1_000_000
}
