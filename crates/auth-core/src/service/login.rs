//! Login: timing-safe credential check, hash upgrade, and opening a session with its token pair.
//!
//! An unknown email is checked against a dummy hash, so it costs what a wrong password costs.

use chrono::{DateTime, Utc};
use tracing::warn;

use super::alerts::OpenedSession;
use super::{AuthOutcome, IdentityService, TokenPair, alerts};
use crate::error::AuthError;
use crate::model::{Account, ClientInfo, Session, SessionId, User, UserView};
use crate::ports::{AccessClaims, PasswordCheck, RefreshClaims};
use crate::values::Email;

impl IdentityService {
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
        let user = self.ensure_username(user).await;
        let role = self.role_for(&account.email, account.email_verified);
        self.ports.users.record_login(&user.id, role, now).await?;
        self.forget_view(&user.id);
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

    pub(super) async fn upgrade_hash(&self, account: &Account, password: &str, now: DateTime<Utc>) {
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

    pub(super) async fn open_session(
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
        self.ports
            .tasks
            .spawn(Box::pin(alerts::follow_up(self.ports.clone(), opened)));
        self.issue_pair(user, &session, jti, now)
    }

    pub(super) fn issue_pair(
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
}
