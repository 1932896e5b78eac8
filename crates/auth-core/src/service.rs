//! The identity use cases. Handlers call these; every rule about accounts, tokens and sessions
//! lives here.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use kernel::{Clock, StoreError};
use tracing::{info, warn};

use crate::error::AuthError;
use crate::model::{
    Account, AccountId, ClientInfo, Principal, ProfileChanges, Role, Session, SessionId,
    StoredToken, TokenPurpose, User, UserId, UserView,
};
use crate::ports::{
    AccessClaims, AccountEmail, AccountNotifier, AccountRepository, BackgroundTasks, IpGeolocation,
    OwnedData, PasswordCheck, PasswordHasher, RefreshClaims, Rotation, SecretGenerator,
    SessionRepository, TokenCodec, UserAgentParser, UserRepository,
};
use crate::session_alerts::{self, OpenedSession};
use crate::session_cache::SessionCache;
use crate::values::{DisplayName, Email, Password, Username};

/// Lifetimes and rules the operator configures.
#[derive(Clone, Debug)]
pub struct IdentityPolicy {
    pub access_ttl: TimeDelta,
    pub refresh_ttl: TimeDelta,
    /// How long after a rotation the previous refresh token may still be exchanged (0: never).
    pub refresh_reuse_interval: TimeDelta,
    pub reset_token_ttl: TimeDelta,
    pub verification_token_ttl: TimeDelta,
    pub deletion_token_ttl: TimeDelta,
    /// Normalised emails whose accounts have role `admin`.
    pub admin_emails: HashSet<String>,
    /// How long a positive session-liveness check is trusted before asking the store again.
    pub session_check_ttl: TimeDelta,
    /// `lastActivityAt` is written at most this often per session.
    pub activity_write_interval: TimeDelta,
}

impl Default for IdentityPolicy {
    fn default() -> Self {
        Self {
            access_ttl: TimeDelta::minutes(15),
            refresh_ttl: TimeDelta::days(7),
            refresh_reuse_interval: TimeDelta::zero(),
            reset_token_ttl: TimeDelta::hours(1),
            verification_token_ttl: TimeDelta::hours(24),
            deletion_token_ttl: TimeDelta::hours(24),
            admin_emails: HashSet::new(),
            session_check_ttl: TimeDelta::seconds(5),
            activity_write_interval: TimeDelta::seconds(60),
        }
    }
}

/// Everything the identity service talks to.
#[derive(Clone)]
pub struct IdentityPorts {
    pub users: Arc<dyn UserRepository>,
    pub accounts: Arc<dyn AccountRepository>,
    pub sessions: Arc<dyn SessionRepository>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub tokens: Arc<dyn TokenCodec>,
    pub secrets: Arc<dyn SecretGenerator>,
    pub user_agents: Arc<dyn UserAgentParser>,
    pub notifier: Arc<dyn AccountNotifier>,
    pub owned_data: Arc<dyn OwnedData>,
    /// Where session addresses are; `None`: sessions carry no location.
    pub geolocation: Option<Arc<dyn IpGeolocation>>,
    /// Runs what follows a new session (location lookup, new-sign-in email) off the request.
    pub tasks: Arc<dyn BackgroundTasks>,
    pub clock: Arc<dyn Clock>,
}

/// A freshly issued access + refresh pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

/// What register, login and refresh answer.
#[derive(Clone, Debug, PartialEq)]
pub struct AuthOutcome {
    pub tokens: TokenPair,
    pub user: UserView,
}

/// A registration request whose fields are already valid.
#[derive(Clone, Debug)]
pub struct Registration {
    pub name: DisplayName,
    pub email: Email,
    pub password: Password,
    pub username: Option<Username>,
}

pub struct IdentityService {
    ports: IdentityPorts,
    policy: IdentityPolicy,
    live_sessions: SessionCache,
}

/// Where an access-token check learns whether its session is live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SessionCheck {
    /// This instance's recent answer (`session_check_ttl`), else the store.
    CachedForAWhile,
    Store,
}

const DERIVED_USERNAME_ATTEMPTS: u32 = 8;
const SESSION_CACHE_CAPACITY: u64 = 100_000;

impl IdentityService {
    #[must_use]
    pub fn new(ports: IdentityPorts, policy: IdentityPolicy) -> Self {
        let live_sessions = SessionCache::new(policy.session_check_ttl, SESSION_CACHE_CAPACITY);
        Self {
            ports,
            policy,
            live_sessions,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.ports.clock.now()
    }

    /// The role an account has now. `ADMIN_EMAILS` is the only source of the admin role, and
    /// only for an address its owner proved (an unverified sign-up with a listed address is a
    /// plain user); an address removed from the list loses the role at its next token.
    fn role_for(&self, email: &str, verified: bool) -> Role {
        if verified && self.policy.admin_emails.contains(email) {
            Role::Admin
        } else {
            Role::User
        }
    }

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
            .await?;
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

    async fn insert_user(
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
            if derived && attempt > 0 {
                // Small numbers first for readable names, then random ones to stop collisions.
                let suffix = if attempt < 3 {
                    attempt + 1
                } else {
                    rand_suffix(&*self.ports.secrets)
                };
                user.username = base.with_suffix(suffix).as_str().to_owned();
            }
            if derived && self.ports.users.username_taken(&user.username).await? {
                continue;
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

    /// Checks credentials and opens a session. Unknown emails and wrong passwords fail alike,
    /// in about the same time.
    ///
    /// # Errors
    /// [`AuthError::InvalidCredentials`], [`AuthError::AccountDisabled`], or infrastructure.
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        email: &Email,
        password: &str,
        client: &ClientInfo,
    ) -> Result<AuthOutcome, AuthError> {
        let Some(account) = self
            .ports
            .accounts
            .find_account_by_email(email.as_str())
            .await?
        else {
            self.ports.hasher.verify_against_dummy(password).await?;
            return Err(AuthError::InvalidCredentials);
        };
        let check = self
            .ports
            .hasher
            .verify_password(password, &account.password_hash)
            .await?;
        if check == PasswordCheck::Mismatch {
            return Err(AuthError::InvalidCredentials);
        }
        let Some(user) = self.ports.users.find_user(&account.user_id).await? else {
            return Err(AuthError::InvalidCredentials);
        };
        if !account.is_active || !user.is_active {
            return Err(AuthError::AccountDisabled);
        }
        let now = self.now();
        if check == PasswordCheck::MatchNeedsRehash {
            self.upgrade_hash(&account, password, now).await;
        }
        let role = self.role_for(&account.email, account.email_verified);
        self.ports.users.record_login(&user.id, role, now).await?;
        let user = User {
            role,
            last_login_at: Some(now),
            ..user
        };
        let tokens = self.open_session(&user, &account, client, now).await?;
        Ok(AuthOutcome {
            tokens,
            user: UserView {
                user,
                email_verified: account.email_verified,
            },
        })
    }

    async fn upgrade_hash(&self, account: &Account, password: &str, now: DateTime<Utc>) {
        let upgraded = match self.ports.hasher.hash_password(password).await {
            Ok(hash) => self
                .ports
                .accounts
                .set_password_hash(&account.id, &hash, now)
                .await
                .map_err(AuthError::from),
            Err(error) => Err(error.into()),
        };
        if let Err(error) = upgraded {
            // The login itself is fine; the hash is upgraded at a later login.
            warn!(account_id = %account.id, %error, "could not upgrade password hash");
        }
    }

    async fn open_session(
        &self,
        user: &User,
        account: &Account,
        client: &ClientInfo,
        now: DateTime<Utc>,
    ) -> Result<TokenPair, AuthError> {
        let jti = self.ports.secrets.new_secret();
        let device = client
            .user_agent
            .as_deref()
            .map(|ua| self.ports.user_agents.parse(ua))
            .unwrap_or_default();
        let session = Session {
            id: SessionId::generate(),
            user_id: user.id.clone(),
            account_id: account.id.clone(),
            user_agent: client.user_agent.clone(),
            ip_address: client.ip_address.clone(),
            device,
            location: None,
            is_active: true,
            refresh_hash: self.ports.secrets.digest(&jti),
            previous_refresh_hash: None,
            rotated_at: None,
            last_activity_at: now,
            created_at: now,
            expires_at: now + self.policy.refresh_ttl,
        };
        self.ports.sessions.insert_session(&session).await?;
        let opened = OpenedSession {
            session: session.clone(),
            to: account.email.clone(),
            name: user.greeting(),
        };
        self.ports.tasks.spawn(Box::pin(session_alerts::follow_up(
            self.ports.clone(),
            opened,
        )));
        self.issue_pair(user, &session, jti, now)
    }

    fn issue_pair(
        &self,
        user: &User,
        session: &Session,
        jti: String,
        now: DateTime<Utc>,
    ) -> Result<TokenPair, AuthError> {
        let iat = now.timestamp();
        let access_exp = (now + self.policy.access_ttl)
            .min(session.expires_at)
            .timestamp();
        let access = AccessClaims {
            sub: user.id.clone(),
            sid: session.id.clone(),
            email: user.email.clone(),
            role: user.role,
            iat,
            exp: access_exp,
        };
        let refresh = RefreshClaims {
            sub: user.id.clone(),
            sid: session.id.clone(),
            jti,
            iat,
            exp: session.expires_at.timestamp(),
        };
        Ok(TokenPair {
            access_token: self
                .ports
                .tokens
                .encode_access(&access)
                .map_err(AuthError::Token)?,
            refresh_token: self
                .ports
                .tokens
                .encode_refresh(&refresh)
                .map_err(AuthError::Token)?,
            expires_in: access_exp - iat,
        })
    }

    /// Exchanges a refresh token for a new pair. A token that was already rotated away is
    /// treated as stolen and revokes its session, except the immediately previous one within
    /// the reuse interval, which gets a fresh pair.
    ///
    /// # Errors
    /// [`AuthError::InvalidRefreshToken`] for anything but the session's current token.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, refresh_token: &str) -> Result<AuthOutcome, AuthError> {
        let claims = self
            .ports
            .tokens
            .decode_refresh(refresh_token)
            .map_err(|_| AuthError::InvalidRefreshToken)?;
        let now = self.now();
        if claims.exp <= now.timestamp() {
            return Err(AuthError::InvalidRefreshToken);
        }
        let presented = self.ports.secrets.digest(&claims.jti);
        // The jti that follows the presented one: a retry of the same token lands on the same
        // successor, which is how a grace-window retry is answered with the current pair.
        let successor = self.successor_jti(&claims.jti);
        // A lost compare-and-swap means a concurrent refresh won; look again with fresh state.
        for _ in 0..2 {
            let Some(session) = self.ports.sessions.find_session(&claims.sid).await? else {
                return Err(AuthError::InvalidRefreshToken);
            };
            if session.user_id != claims.sub || !session.is_live(now) {
                return Err(AuthError::InvalidRefreshToken);
            }
            if presented != session.refresh_hash {
                let retry_of_last_rotation = self.within_reuse_grace(&session, &presented, now)
                    && self.ports.secrets.digest(&successor) == session.refresh_hash;
                if !retry_of_last_rotation {
                    warn!(
                        session_id = %session.id,
                        user_id = %session.user_id,
                        "refresh token reuse detected; revoking session"
                    );
                    // Only the request that revoked it warns, so replays send one email.
                    if self.revoke(&session.user_id, &session.id).await? {
                        session_alerts::warn_of_reuse(&self.ports, &session, now).await;
                    }
                    return Err(AuthError::InvalidRefreshToken);
                }
                // The client lost the answer to its refresh: hand it the current pair again,
                // without rotating (which would invalidate the pair already handed out).
                return self.answer_refresh(&session, successor, now).await;
            }
            let rotation = Rotation {
                expected: session.refresh_hash.clone(),
                current: self.ports.secrets.digest(&successor),
                rotated_at: now,
                previous: presented.clone(),
            };
            if self
                .ports
                .sessions
                .rotate_refresh(&session.id, &rotation)
                .await?
            {
                return self.answer_refresh(&session, successor, now).await;
            }
        }
        Err(AuthError::InvalidRefreshToken)
    }

    /// The jti that replaces `jti` at rotation. Derived rather than random so that the
    /// immediately previous token maps to the current one; the refresh token stays
    /// unforgeable because it is signed, and the store keeps only digests.
    fn successor_jti(&self, jti: &str) -> String {
        self.ports
            .secrets
            .digest(&format!("refresh-rotation:{jti}"))
    }

    async fn answer_refresh(
        &self,
        session: &Session,
        jti: String,
        now: DateTime<Utc>,
    ) -> Result<AuthOutcome, AuthError> {
        let Some(view) = self.view_of(&session.user_id).await? else {
            return Err(AuthError::InvalidRefreshToken);
        };
        if !view.user.is_active {
            return Err(AuthError::InvalidRefreshToken);
        }
        let tokens = self.issue_pair(&view.user, session, jti, now)?;
        Ok(AuthOutcome { tokens, user: view })
    }

    fn within_reuse_grace(&self, session: &Session, presented: &str, now: DateTime<Utc>) -> bool {
        self.policy.refresh_reuse_interval > TimeDelta::zero()
            && session.previous_refresh_hash.as_deref() == Some(presented)
            && session
                .rotated_at
                .is_some_and(|at| now - at <= self.policy.refresh_reuse_interval)
    }

    /// Establishes the caller from an access token whose session is still live.
    ///
    /// # Errors
    /// [`AuthError::Unauthenticated`] for a forged, expired or refresh token, or a dead session.
    pub async fn authenticate(&self, access_token: &str) -> Result<Principal, AuthError> {
        self.authenticate_checking(access_token, SessionCheck::CachedForAWhile)
            .await
    }

    /// As [`IdentityService::authenticate`], but asks the store whether the session is live
    /// even when this instance checked it moments ago: for writes, so that a session revoked on
    /// another instance (an account being deleted, say) can change nothing more.
    ///
    /// # Errors
    /// As [`IdentityService::authenticate`].
    pub async fn authenticate_fresh(&self, access_token: &str) -> Result<Principal, AuthError> {
        self.authenticate_checking(access_token, SessionCheck::Store)
            .await
    }

    async fn authenticate_checking(
        &self,
        access_token: &str,
        check: SessionCheck,
    ) -> Result<Principal, AuthError> {
        let claims = self
            .ports
            .tokens
            .decode_access(access_token)
            .map_err(|_| AuthError::Unauthenticated)?;
        let now = self.now();
        if claims.exp <= now.timestamp() {
            return Err(AuthError::Unauthenticated);
        }
        if check == SessionCheck::Store
            || !self
                .live_sessions
                .is_known_live(&claims.sid, &claims.sub, now)
        {
            let epoch = self.live_sessions.epoch();
            let session = self.ports.sessions.find_session(&claims.sid).await?;
            let Some(session) = session.filter(|s| s.user_id == claims.sub && s.is_live(now))
            else {
                return Err(AuthError::Unauthenticated);
            };
            if now - session.last_activity_at >= self.policy.activity_write_interval {
                self.ports.sessions.touch_session(&session.id, now).await?;
            }
            self.live_sessions.remember_live(
                epoch,
                session.id,
                session.user_id,
                session.expires_at,
                now,
            );
        }
        Ok(Principal {
            user_id: claims.sub,
            session_id: claims.sid,
            email: claims.email,
            role: claims.role,
        })
    }

    async fn revoke(&self, owner: &UserId, session: &SessionId) -> Result<bool, AuthError> {
        let revoked = self.ports.sessions.revoke_session(owner, session).await?;
        self.live_sessions.forget(std::slice::from_ref(session));
        Ok(revoked)
    }

    async fn revoke_all_except(
        &self,
        owner: &UserId,
        keep: Option<&SessionId>,
    ) -> Result<usize, AuthError> {
        let revoked = self
            .ports
            .sessions
            .revoke_sessions_except(owner, keep)
            .await?;
        self.live_sessions.forget(&revoked);
        Ok(revoked.len())
    }

    /// Ends the caller's current session.
    ///
    /// # Errors
    /// Infrastructure only.
    pub async fn logout(&self, principal: &Principal) -> Result<(), AuthError> {
        self.revoke(&principal.user_id, &principal.session_id)
            .await
            .map(drop)
    }

    async fn view_of(&self, user_id: &UserId) -> Result<Option<UserView>, AuthError> {
        let Some(user) = self.ports.users.find_user(user_id).await? else {
            return Ok(None);
        };
        let account = self.ports.accounts.find_account_by_user(user_id).await?;
        let verified = account.as_ref().is_some_and(|a| a.email_verified);
        let role = self.role_for(&user.email, verified);
        Ok(Some(UserView {
            user: User { role, ..user },
            email_verified: verified,
        }))
    }

    /// The caller's user.
    ///
    /// # Errors
    /// [`AuthError::UserNotFound`] when the user was deleted meanwhile.
    pub async fn me(&self, principal: &Principal) -> Result<UserView, AuthError> {
        self.view_of(&principal.user_id)
            .await?
            .ok_or(AuthError::UserNotFound)
    }

    /// Checks that the caller is an admin now, from the stored account rather than the token's
    /// claim (which may predate a demotion).
    ///
    /// # Errors
    /// [`AuthError::Forbidden`] for anyone else; [`AuthError::UserNotFound`] when deleted.
    pub async fn require_admin(&self, principal: &Principal) -> Result<UserView, AuthError> {
        let view = self.me(principal).await?;
        if view.user.role == Role::Admin {
            Ok(view)
        } else {
            Err(AuthError::Forbidden)
        }
    }

    /// Queues a reset link when the email has an account; answers alike when it does not.
    /// Everything that depends on the account runs after the answer, so the answer takes
    /// the same time for known and unknown addresses.
    pub fn forgot_password(self: &Arc<Self>, email: Email) {
        let service = Arc::clone(self);
        self.ports.tasks.spawn(Box::pin(async move {
            if let Err(error) = service.send_reset_link(&email).await {
                warn!(%error, "password reset request failed");
            }
        }));
    }

    async fn send_reset_link(&self, email: &Email) -> Result<(), AuthError> {
        let Some(account) = self
            .ports
            .accounts
            .find_account_by_email(email.as_str())
            .await?
        else {
            info!("password reset requested for an unknown email");
            return Ok(());
        };
        let secret = self
            .issue_token(
                &account,
                TokenPurpose::PasswordReset,
                self.policy.reset_token_ttl,
            )
            .await?;
        let name = self.greeting_for(&account.user_id).await?;
        self.ports
            .notifier
            .notify(AccountEmail::PasswordReset {
                to: account.email,
                name,
                token: secret,
            })
            .await?;
        Ok(())
    }

    /// Stores a fresh one-time token of `purpose` (as a hash) and returns the secret to send.
    async fn issue_token(
        &self,
        account: &Account,
        purpose: TokenPurpose,
        ttl: TimeDelta,
    ) -> Result<String, AuthError> {
        let now = self.now();
        let secret = self.ports.secrets.new_secret();
        let stored = StoredToken {
            hash: self.ports.secrets.digest(&secret),
            expires_at: now + ttl,
        };
        self.ports
            .accounts
            .set_token(&account.id, purpose, Some(&stored), now)
            .await?;
        Ok(secret)
    }

    async fn greeting_for(&self, user_id: &UserId) -> Result<String, AuthError> {
        let user = self.ports.users.find_user(user_id).await?;
        Ok(user.map(|u| u.greeting()).unwrap_or_default())
    }

    /// Sets a new password with a reset token (single use, expiring) and ends every session.
    ///
    /// # Errors
    /// [`AuthError::InvalidOneTimeToken`] for an unknown, used or expired token.
    #[tracing::instrument(skip_all)]
    pub async fn reset_password(&self, token: &str, password: &Password) -> Result<(), AuthError> {
        let now = self.now();
        let digest = self.ports.secrets.digest(token);
        // The token first: hashing is the expensive step, and only a token holder gets it.
        let Some(account) = self.ports.accounts.take_reset_token(&digest, now).await? else {
            return Err(AuthError::InvalidOneTimeToken);
        };
        let hash = self.ports.hasher.hash_password(password.expose()).await?;
        self.ports
            .accounts
            .set_password_hash(&account.id, &hash, now)
            .await?;
        self.revoke_all_except(&account.user_id, None).await?;
        let name = self.greeting_for(&account.user_id).await?;
        self.ports
            .notifier
            .notify(AccountEmail::PasswordChanged {
                to: account.email,
                name,
            })
            .await?;
        info!(user_id = %account.user_id, "password reset; all sessions revoked");
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
            Some(_) => Ok(()),
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
        let secret = self
            .issue_token(
                &account,
                TokenPurpose::EmailVerification,
                self.policy.verification_token_ttl,
            )
            .await?;
        let name = self.greeting_for(&account.user_id).await?;
        self.ports
            .notifier
            .notify(AccountEmail::VerifyEmail {
                to: account.email,
                name,
                token: secret,
            })
            .await?;
        Ok(())
    }

    async fn account_of(&self, user: &UserId) -> Result<Account, AuthError> {
        self.ports
            .accounts
            .find_account_by_user(user)
            .await?
            .ok_or(AuthError::UserNotFound)
    }

    /// Changes the password after checking the current one, and ends the other sessions.
    ///
    /// # Errors
    /// [`AuthError::WrongCurrentPassword`] when `current` does not match.
    #[tracing::instrument(skip_all)]
    pub async fn change_password(
        &self,
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
        self.ports
            .accounts
            .set_password_hash(&account.id, &hash, now)
            .await?;
        // A reset link mailed before the change would otherwise undo it.
        self.ports
            .accounts
            .set_token(&account.id, TokenPurpose::PasswordReset, None, now)
            .await?;
        self.revoke_all_except(&principal.user_id, Some(&principal.session_id))
            .await?;
        let name = self.greeting_for(&account.user_id).await?;
        self.ports
            .notifier
            .notify(AccountEmail::PasswordChanged {
                to: account.email,
                name,
            })
            .await?;
        Ok(())
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
        self.me(principal).await
    }

    /// The caller's live sessions, each with whether it is the current one.
    ///
    /// # Errors
    /// Infrastructure only.
    pub async fn sessions(&self, principal: &Principal) -> Result<Vec<(Session, bool)>, AuthError> {
        let sessions = self
            .ports
            .sessions
            .list_live_sessions(&principal.user_id, self.now())
            .await?;
        Ok(sessions
            .into_iter()
            .map(|session| {
                let current = session.id == principal.session_id;
                (session, current)
            })
            .collect())
    }

    /// Revokes one of the caller's sessions.
    ///
    /// # Errors
    /// [`AuthError::SessionNotFound`] when the caller has no such live session.
    pub async fn revoke_session(
        &self,
        principal: &Principal,
        session: &SessionId,
    ) -> Result<(), AuthError> {
        if self.revoke(&principal.user_id, session).await? {
            Ok(())
        } else {
            Err(AuthError::SessionNotFound)
        }
    }

    /// Revokes every session of the caller but the current one; returns how many.
    ///
    /// # Errors
    /// Infrastructure only.
    pub async fn revoke_other_sessions(&self, principal: &Principal) -> Result<usize, AuthError> {
        self.revoke_all_except(&principal.user_id, Some(&principal.session_id))
            .await
    }

    /// Emails the account's owner a single-use link (24 h) that confirms deleting the account.
    ///
    /// # Errors
    /// Infrastructure only.
    pub async fn request_account_deletion(&self, principal: &Principal) -> Result<(), AuthError> {
        let account = self.account_of(&principal.user_id).await?;
        let secret = self
            .issue_token(
                &account,
                TokenPurpose::AccountDeletion,
                self.policy.deletion_token_ttl,
            )
            .await?;
        let name = self.greeting_for(&account.user_id).await?;
        self.ports
            .notifier
            .notify(AccountEmail::AccountDeletionRequested {
                to: account.email,
                name,
                token: secret,
            })
            .await?;
        Ok(())
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
        let user = self.me(principal).await?;
        let sessions = self
            .ports
            .sessions
            .list_live_sessions(&principal.user_id, self.now())
            .await?;
        Ok((user, sessions))
    }
}

fn rand_suffix(secrets: &dyn SecretGenerator) -> u32 {
    let digest = secrets.digest(&secrets.new_secret());
    let head = digest.get(..6).unwrap_or("0");
    u32::from_str_radix(head, 16).unwrap_or(0) % 1_000_000
}
