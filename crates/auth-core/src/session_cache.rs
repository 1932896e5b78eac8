//! Remembers, for a few seconds, that a session is live, so that access-token checks do not hit
//! the store on every request. Revocations on this instance drop the entry at once, winning any
//! race with a check that read the session just before (see `epoch_cache`); other instances
//! notice within the cache lifetime (`SESSION_CHECK_TTL`).

use chrono::{DateTime, TimeDelta, Utc};

use crate::epoch_cache::{Epoch, EpochCache};
use crate::model::{SessionId, UserId};

#[derive(Clone, Debug)]
struct Entry {
    user: UserId,
    checked_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

pub(crate) struct SessionCache {
    ttl: TimeDelta,
    entries: EpochCache<SessionId, Entry>,
}

impl SessionCache {
    /// At most `capacity` sessions are remembered; beyond that the least recently used go.
    pub(crate) fn new(ttl: TimeDelta, capacity: u64) -> Self {
        Self {
            ttl,
            entries: EpochCache::new(ttl.to_std().unwrap_or_default(), capacity),
        }
    }

    /// Whether `session` is known live for `user` without asking the store. The service's
    /// clock decides freshness too (the cache's own expiry runs on real time).
    pub(crate) fn is_known_live(
        &self,
        session: &SessionId,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> bool {
        self.entries.get(session).is_some_and(|entry| {
            &entry.user == user && now < entry.expires_at && now - entry.checked_at < self.ttl
        })
    }

    /// To be taken before reading a session from the store, and handed to `remember_live`.
    pub(crate) fn epoch(&self) -> Epoch {
        self.entries.epoch()
    }

    /// Remembers that the store said `session` is live, unless a revoke ran since `epoch`.
    pub(crate) fn remember_live(
        &self,
        epoch: Epoch,
        session: SessionId,
        user: UserId,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) {
        self.entries.remember(
            epoch,
            session,
            Entry {
                user,
                checked_at: now,
                expires_at,
            },
        );
    }

    pub(crate) fn forget(&self, sessions: &[SessionId]) {
        self.entries.forget(sessions);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap_or_default()
    }

    #[test]
    fn a_check_that_read_before_a_revoke_does_not_bring_the_session_back() {
        let cache = SessionCache::new(TimeDelta::seconds(5), 100);
        let (session, user) = (SessionId::generate(), UserId::generate());
        let epoch = cache.epoch();
        // The store said "live"; meanwhile the session is revoked on this instance.
        cache.forget(std::slice::from_ref(&session));
        cache.remember_live(epoch, session.clone(), user.clone(), at(3600), at(0));
        assert!(!cache.is_known_live(&session, &user, at(1)));
    }

    #[test]
    fn a_live_session_is_remembered_for_the_ttl_only() {
        let cache = SessionCache::new(TimeDelta::seconds(5), 100);
        let (session, user) = (SessionId::generate(), UserId::generate());
        cache.remember_live(
            cache.epoch(),
            session.clone(),
            user.clone(),
            at(3600),
            at(0),
        );
        assert!(cache.is_known_live(&session, &user, at(4)));
        assert!(!cache.is_known_live(&session, &user, at(5)));
        assert!(
            !cache.is_known_live(&session, &UserId::generate(), at(1)),
            "another user's token naming this session is not vouched for"
        );
    }
}
