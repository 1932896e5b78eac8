//! The identity use cases. Handlers call these; every rule about accounts, tokens and sessions
//! lives here, one file per flow: registration, login, refresh, sessions (authentication and
//! revocation), passwords (reset, verification, change) and lifecycle (profile, deletion,
//! export). This file holds the service's shape and the helpers the flows share.
//!
//! The service remembers two things, each in an `EpochCache` (`epoch_cache.rs`: forgetting wins
//! every race with a concurrent read). Session liveness (`session_cache.rs`) lives for
//! `SESSION_CHECK_TTL`, so access-token reads skip the store; writes always ask the store. The
//! user view that `me` answers is one `Arc` while it is unchanged (so the edge keeps its rendering
//! beside it), forgotten by every user or account write of the service.

mod alerts;
mod lifecycle;
mod login;
mod passwords;
mod refresh;
mod registration;
mod sessions;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use kernel::Clock;
use kernel::invalidation::{Forget, Invalidations};

use crate::epoch_cache::EpochCache;
use crate::error::AuthError;
use crate::model::{Account, Role, SessionId, User, UserId, UserView};
use crate::ports::{
    AccountNotifier, AccountRepository, BackgroundTasks, IpGeolocation, OwnedData, PasswordHasher,
    SecretGenerator, SessionRepository, TokenCodec, UserAgentParser, UserRepository,
};
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
    /// Tells the deployment's other instances which sessions and views to forget.
    pub invalidations: Arc<dyn Invalidations>,
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
    /// What `me` answers, remembered as long as a liveness check: every write of this service
    /// to a user or account forgets it at once, so this instance's next read sees the change;
    /// other instances see it within the same bound as a revoke.
    views: EpochCache<UserId, Arc<UserView>>,
}

const SESSION_CACHE_CAPACITY: u64 = 100_000;
const VIEW_CACHE_CAPACITY: u64 = 100_000;

impl IdentityService {
    #[must_use]
    pub fn new(ports: IdentityPorts, policy: IdentityPolicy) -> Self {
        let live_sessions = SessionCache::new(policy.session_check_ttl, SESSION_CACHE_CAPACITY);
        let views = EpochCache::new(
            policy.session_check_ttl.to_std().unwrap_or_default(),
            VIEW_CACHE_CAPACITY,
        );
        Self {
            ports,
            policy,
            live_sessions,
            views,
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

    /// [`IdentityService::view_of`] through the view cache, for reads that may be a few seconds
    /// behind another instance's writes.
    async fn remembered_view_of(
        &self,
        user_id: &UserId,
    ) -> Result<Option<Arc<UserView>>, AuthError> {
        if let Some(view) = self.views.get(user_id) {
            return Ok(Some(view));
        }
        let epoch = self.views.epoch();
        let view = self.view_of(user_id).await?.map(Arc::new);
        if let Some(view) = &view {
            self.views
                .remember(epoch, user_id.clone(), Arc::clone(view));
        }
        Ok(view)
    }

    /// To be called after every write to a user or their account.
    fn forget_view(&self, user_id: &UserId) {
        self.views.forget(std::slice::from_ref(user_id));
        self.ports
            .invalidations
            .announce(Forget::User(user_id.clone()));
    }

    /// Forgets what another instance announced: revoked sessions (their access tokens are
    /// checked against the store again at once) or a user's view.
    pub fn forget_announced(&self, forget: &Forget) {
        match forget {
            Forget::Sessions(ids) => {
                let sessions: Vec<SessionId> = ids
                    .iter()
                    .filter_map(|id| SessionId::parse(id).ok())
                    .collect();
                self.live_sessions.forget(&sessions);
            }
            Forget::User(user_id) => self.views.forget(std::slice::from_ref(user_id)),
            Forget::Content(_) => {}
        }
    }

    async fn account_of(&self, user: &UserId) -> Result<Account, AuthError> {
        self.ports
            .accounts
            .find_account_by_user(user)
            .await?
            .ok_or(AuthError::UserNotFound)
    }

    async fn greeting_for(&self, user_id: &UserId) -> Result<String, AuthError> {
        let user = self.ports.users.find_user(user_id).await?;
        Ok(user.map(|u| u.greeting()).unwrap_or_default())
    }
}
