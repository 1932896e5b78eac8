//! Sessions: authenticating access tokens (with the liveness cache), listing and revoking.

use chrono::{DateTime, Utc};

use super::IdentityService;
use crate::error::AuthError;
use kernel::invalidation::Forget;

use crate::model::{Principal, Session, SessionId, UserId};

/// Where an access-token check learns whether its session is live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SessionCheck {
    /// This instance's recent answer (`session_check_ttl`), else the store.
    CachedForAWhile,
    Store,
}

impl IdentityService {
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
        if !self
            .session_live(&claims.sid, &claims.sub, check, now)
            .await?
        {
            return Err(AuthError::Unauthenticated);
        }
        Ok(Principal {
            user_id: claims.sub,
            session_id: claims.sid,
            email: claims.email,
            role: claims.role,
        })
    }

    /// Whether the caller's session is still live (through this instance's recent answer):
    /// for connections that outlive their access token's check, such as chat sockets, which
    /// close when it ends.
    ///
    /// # Errors
    /// Infrastructure only.
    pub async fn session_is_live(&self, principal: &Principal) -> Result<bool, AuthError> {
        self.session_live(
            &principal.session_id,
            &principal.user_id,
            SessionCheck::CachedForAWhile,
            self.now(),
        )
        .await
    }

    async fn session_live(
        &self,
        id: &SessionId,
        owner: &UserId,
        check: SessionCheck,
        now: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        if check == SessionCheck::CachedForAWhile
            && self.live_sessions.is_known_live(id, owner, now)
        {
            return Ok(true);
        }
        let epoch = self.live_sessions.epoch();
        let session = self.ports.sessions.find_session(id).await?;
        let Some(session) = session.filter(|s| &s.user_id == owner && s.is_live(now)) else {
            return Ok(false);
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
        Ok(true)
    }

    pub(super) async fn revoke(
        &self,
        owner: &UserId,
        session: &SessionId,
    ) -> Result<bool, AuthError> {
        let revoked = self.ports.sessions.revoke_session(owner, session).await?;
        self.forget_sessions(std::slice::from_ref(session));
        Ok(revoked)
    }

    pub(super) async fn revoke_all_except(
        &self,
        owner: &UserId,
        keep: Option<&SessionId>,
    ) -> Result<usize, AuthError> {
        let revoked = self
            .ports
            .sessions
            .revoke_sessions_except(owner, keep)
            .await?;
        self.forget_sessions(&revoked);
        Ok(revoked.len())
    }

    /// Revoked sessions, forgotten here and announced to the other instances.
    fn forget_sessions(&self, sessions: &[SessionId]) {
        self.live_sessions.forget(sessions);
        if !sessions.is_empty() {
            self.ports.invalidations.announce(Forget::Sessions(
                sessions.iter().map(|id| id.as_str().to_owned()).collect(),
            ));
        }
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
}
