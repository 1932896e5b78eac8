//! Refresh: rotation with reuse detection, and the grace window that answers a retry with the
//! current pair.
//!
//! Each jti is derived from the previous one (`successor_jti`), so a retry of the token just
//! rotated away, within `JWT_REFRESH_REUSE_INTERVAL`, lands on the current pair; any older token
//! revokes its session and queues the token-reuse email (`docs/adr/0001`, `docs/adr/0008`).

use chrono::{DateTime, TimeDelta, Utc};
use tracing::warn;

use super::{AuthOutcome, IdentityService, alerts};
use crate::error::AuthError;
use crate::model::Session;
use crate::ports::Rotation;

impl IdentityService {
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
            if session.user_id != claims.sub || !session.is_refreshable(now) {
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
                        alerts::warn_of_reuse(&self.ports, &session, now).await;
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
    pub(super) fn successor_jti(&self, jti: &str) -> String {
        self.ports
            .secrets
            .digest(&format!("refresh-rotation:{jti}"))
    }

    pub(super) async fn answer_refresh(
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

    pub(super) fn within_reuse_grace(
        &self,
        session: &Session,
        presented: &str,
        now: DateTime<Utc>,
    ) -> bool {
        self.policy.refresh_reuse_interval > TimeDelta::zero()
            && session.previous_refresh_hash.as_deref() == Some(presented)
            && session
                .rotated_at
                .is_some_and(|at| now - at <= self.policy.refresh_reuse_interval)
    }
}
