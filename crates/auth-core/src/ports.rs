//! The ports the identity core needs. Each method documents the errors it must return.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kernel::StoreError;

use crate::model::{
    Account, AccountId, DeviceInfo, GeoLocation, ProfileChanges, Role, Session, SessionId,
    StoredToken, TokenPurpose, User, UserId,
};

/// The `users` collection.
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// # Errors
    /// [`StoreError::Duplicate`] with key `"username"` when the username is taken.
    async fn insert_user(&self, user: &User) -> Result<(), StoreError>;

    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn find_user(&self, id: &UserId) -> Result<Option<User>, StoreError>;

    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn username_taken(&self, username: &str) -> Result<bool, StoreError>;

    /// The user with exactly this (lower-case) username.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError>;

    /// Gives `username` to a user that has none (an empty username: the user was written by
    /// another version that did not ask for one). `false` when the user already has one or
    /// does not exist.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] with key `"username"` when the username is taken.
    async fn assign_username(&self, id: &UserId, username: &str) -> Result<bool, StoreError>;

    /// Applies `changes`, sets `updatedAt`, and returns the updated user (`None`: no such user).
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn update_profile(
        &self,
        id: &UserId,
        changes: &ProfileChanges,
        at: DateTime<Utc>,
    ) -> Result<Option<User>, StoreError>;

    /// Records a successful login, and raises the stored role to `admin` when the user now is
    /// one. A stored role is never lowered or replaced: the service computes the role at every
    /// token, and the stored one may have been granted by another version (which reads it).
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn record_login(
        &self,
        id: &UserId,
        role: Role,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Removes the user (no-op when absent).
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn delete_user(&self, id: &UserId) -> Result<(), StoreError>;
}

/// The `accounts` collection: credentials and one-time tokens.
#[async_trait]
pub trait AccountRepository: Send + Sync {
    /// # Errors
    /// [`StoreError::Duplicate`] with key `"email"` when the email already has an account.
    async fn insert_account(&self, account: &Account) -> Result<(), StoreError>;

    /// Looks an account up by its normalised (lower-case) email. Addresses are compared
    /// without regard to case: one stored with capitals by another writer matches too.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn find_account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError>;

    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn find_account_by_user(&self, user: &UserId) -> Result<Option<Account>, StoreError>;

    /// Replaces the password hash.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn set_password_hash(
        &self,
        id: &AccountId,
        hash: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Stores (or, with `None`, clears) the account's one-time token for `purpose`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn set_token(
        &self,
        id: &AccountId,
        purpose: TokenPurpose,
        token: Option<&StoredToken>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Atomically finds the account whose unexpired reset token has `hash`, clears the token,
    /// and returns the account as it was. Two concurrent calls never both succeed.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn take_reset_token(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Account>, StoreError>;

    /// Atomically finds the account whose unexpired verification token has `hash`, clears the
    /// token, marks the email verified and returns the updated account.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn take_verification_token(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Account>, StoreError>;

    /// Removes every account of the user.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn delete_accounts_of(&self, user: &UserId) -> Result<(), StoreError>;

    /// Clears every account-deletion token that expired before `now`; returns how many. (An
    /// expired token already deletes nothing; this keeps no dead hash around.)
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn clear_expired_deletion_tokens(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// A refresh-token rotation to apply to a session, as a compare-and-swap on `expected`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    pub expected: String,
    pub current: String,
    pub previous: String,
    pub rotated_at: DateTime<Utc>,
}

/// The `sessions` collection.
#[async_trait]
pub trait SessionRepository: Send + Sync {
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError>;

    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn find_session(&self, id: &SessionId) -> Result<Option<Session>, StoreError>;

    /// Compare-and-swap rotation: only when the session is active and its current refresh hash
    /// is `rotation.expected`, stores the rotation's current and previous hashes and time.
    /// Returns whether it swapped, so that of two concurrent refreshes only one wins.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn rotate_refresh(&self, id: &SessionId, rotation: &Rotation)
    -> Result<bool, StoreError>;

    /// Records activity on the session.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn touch_session(&self, id: &SessionId, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Stores where the session's address is (no-op when the session is gone).
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn set_session_location(
        &self,
        id: &SessionId,
        location: &GeoLocation,
    ) -> Result<(), StoreError>;

    /// The sessions of `owner` the store still keeps, live or not (revoked ones until they are
    /// purged, expired ones until the store drops them), most recently created first, at most
    /// `limit`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn session_history(
        &self,
        owner: &UserId,
        limit: usize,
    ) -> Result<Vec<Session>, StoreError>;

    /// Deactivates one session of `owner`; returns `false` when `owner` has no such active
    /// session (a session of another user is never touched).
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn revoke_session(&self, owner: &UserId, id: &SessionId) -> Result<bool, StoreError>;

    /// Deactivates every active session of `owner` except `keep`; returns the revoked ids.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn revoke_sessions_except(
        &self,
        owner: &UserId,
        keep: Option<&SessionId>,
    ) -> Result<Vec<SessionId>, StoreError>;

    /// Active, unexpired sessions of `owner`, most recently active first.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn list_live_sessions(
        &self,
        owner: &UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError>;

    /// Deletes every session that is not live at `now` (expired or revoked); returns how many.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn purge_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Removes every session of the user.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn delete_sessions_of(&self, user: &UserId) -> Result<(), StoreError>;
}

/// The outcome of checking a password against a stored hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordCheck {
    Mismatch,
    Match,
    /// It matches, but the hash was made with other parameters and should be replaced.
    MatchNeedsRehash,
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(pub String);

/// Slow password hashing. Implementations must not block the async executor.
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// A PHC string for `password`.
    ///
    /// # Errors
    /// [`HashError`] when hashing fails (out of resources).
    async fn hash_password(&self, password: &str) -> Result<String, HashError>;

    /// Checks `password` against a PHC string. A malformed hash is a mismatch.
    ///
    /// # Errors
    /// [`HashError`] when hashing fails (out of resources).
    async fn verify_password(&self, password: &str, hash: &str)
    -> Result<PasswordCheck, HashError>;

    /// Spends the time of a real verification and fails, so that a login for an unknown email
    /// takes as long as one with a wrong password.
    ///
    /// # Errors
    /// [`HashError`] when hashing fails (out of resources).
    async fn verify_against_dummy(&self, password: &str) -> Result<(), HashError>;
}

/// Claims of an access token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessClaims {
    pub sub: UserId,
    pub sid: SessionId,
    pub email: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
}

/// Claims of a refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshClaims {
    pub sub: UserId,
    pub sid: SessionId,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Bad signature, wrong algorithm, wrong `type`, malformed: anything but a genuine token.
    #[error("invalid token")]
    Invalid,
    #[error("token signing failed: {0}")]
    Signing(String),
}

/// Signs and verifies tokens. Verification checks signature, algorithm and `type`; expiry is
/// checked by the core against its clock.
pub trait TokenCodec: Send + Sync {
    /// # Errors
    /// [`TokenError::Signing`] when signing fails.
    fn encode_access(&self, claims: &AccessClaims) -> Result<String, TokenError>;
    /// # Errors
    /// [`TokenError::Signing`] when signing fails.
    fn encode_refresh(&self, claims: &RefreshClaims) -> Result<String, TokenError>;
    /// # Errors
    /// [`TokenError::Invalid`] for anything but a genuine access token.
    fn decode_access(&self, token: &str) -> Result<AccessClaims, TokenError>;
    /// # Errors
    /// [`TokenError::Invalid`] for anything but a genuine refresh token.
    fn decode_refresh(&self, token: &str) -> Result<RefreshClaims, TokenError>;
}

/// Randomness and one-way hashing for one-time secrets (reset, verification, refresh ids).
pub trait SecretGenerator: Send + Sync {
    /// A fresh URL-safe secret with at least 32 bytes of entropy.
    fn new_secret(&self) -> String;
    /// The stored form of a secret (a hash; the secret cannot be recovered from it).
    fn digest(&self, secret: &str) -> String;
}

/// Turns a user-agent header into device facts.
pub trait UserAgentParser: Send + Sync {
    fn parse(&self, user_agent: &str) -> DeviceInfo;
}

#[derive(Debug, thiserror::Error)]
#[error("geolocation failed: {0}")]
pub struct GeoError(pub String);

/// Where an IP address is.
#[async_trait]
pub trait IpGeolocation: Send + Sync {
    /// `None` when the source does not know the address (or will not look it up).
    ///
    /// # Errors
    /// [`GeoError`] when the source could not answer: unreachable, too slow, unreadable.
    async fn locate(&self, ip: IpAddr) -> Result<Option<GeoLocation>, GeoError>;
}

/// Work handed over to run after the request that started it is answered.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs [`Task`]s in the background, so that slow follow-ups (an address lookup after a
/// login) never delay or fail the request. The core hands work over; the runtime is the
/// implementation's.
pub trait BackgroundTasks: Send + Sync {
    fn spawn(&self, task: Task);

    /// Runs `task` after `delay`; when the process stops first, at once (one last try rather
    /// than none). A task handed over once the process is stopping is dropped.
    fn spawn_after(&self, delay: std::time::Duration, task: Task);
}

/// What a security email tells about a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionFacts {
    pub device: DeviceInfo,
    pub ip_address: Option<String>,
    /// A readable place ("London, England, United Kingdom"), when known.
    pub location: Option<String>,
    /// When it happened: the sign-in, or the detection of a reused token.
    pub at: DateTime<Utc>,
}

/// The emails identity flows send. Implementations queue them; they are never sent inline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountEmail {
    Welcome {
        to: String,
        name: String,
        user_id: UserId,
    },
    VerifyEmail {
        to: String,
        name: String,
        token: String,
    },
    PasswordReset {
        to: String,
        name: String,
        token: String,
    },
    PasswordChanged {
        to: String,
        name: String,
    },
    AccountDeletionRequested {
        to: String,
        name: String,
        token: String,
    },
    AccountDeleted {
        to: String,
        name: String,
    },
    /// A sign-in from a device, or a country, the account has not been used from recently.
    NewSignIn {
        to: String,
        name: String,
        session: SessionFacts,
    },
    /// An already rotated refresh token was presented again, so its session was revoked.
    RefreshTokenReused {
        to: String,
        name: String,
        session: SessionFacts,
    },
}

/// What other domains keep for a user (portfolio, preferences, files), erased with the account.
#[async_trait]
pub trait OwnedData: Send + Sync {
    /// Removes everything `owner` has outside the identity store. Idempotent.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only; the account is then left in place to be deleted again.
    async fn erase_owned_data(&self, owner: &UserId) -> Result<(), StoreError>;
}

#[derive(Debug, thiserror::Error)]
#[error("could not queue email: {0}")]
pub struct NotifyError(pub String);

#[async_trait]
pub trait AccountNotifier: Send + Sync {
    /// Queues the email durably.
    ///
    /// # Errors
    /// [`NotifyError`] when the queue refused it.
    async fn notify(&self, email: AccountEmail) -> Result<(), NotifyError>;

    /// Drops every queued or kept email to `address` that is not being sent at this moment
    /// (the account behind it was deleted).
    ///
    /// # Errors
    /// [`NotifyError`] when the queue could not be cleaned.
    async fn forget_recipient(&self, address: &str) -> Result<(), NotifyError>;
}
