//! Remembers, for a few seconds, that a session is live, so that access-token checks do not hit
//! the store on every request. Revocations on this instance drop the entry at once; other
//! instances notice within the cache lifetime (`SESSION_CHECK_TTL`).
//!
//! A revoke must win every race with a concurrent liveness check that read the session just
//! before the revoke: the check would otherwise put the dead session back after the revoke
//! dropped it. Every revoke bumps an epoch *before* dropping entries; a check notes the epoch
//! before reading the store and, after remembering its answer, takes it back if the epoch
//! moved. Whichever order the steps interleave in, either the revoke's drop comes after the
//! insert, or the check sees the new epoch.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};

use crate::model::{SessionId, UserId};

#[derive(Clone, Debug)]
struct Entry {
    user: UserId,
    checked_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// What a liveness check notes before reading the store.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Epoch(u64);

pub(crate) struct SessionCache {
    ttl: TimeDelta,
    entries: moka::sync::Cache<SessionId, Entry>,
    revocations: AtomicU64,
}

impl SessionCache {
    /// At most `capacity` sessions are remembered; beyond that the least recently used go.
    pub(crate) fn new(ttl: TimeDelta, capacity: u64) -> Self {
        let lifetime = ttl.to_std().unwrap_or_default();
        Self {
            ttl,
            entries: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(lifetime.max(std::time::Duration::from_millis(1)))
                .build(),
            revocations: AtomicU64::new(0),
        }
    }

    /// Whether `session` is known live for `user` without asking the store.
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
        Epoch(self.revocations.load(Ordering::SeqCst))
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
        if self.ttl <= TimeDelta::zero() {
            return;
        }
        let key = session.clone();
        self.entries.insert(
            session,
            Entry {
                user,
                checked_at: now,
                expires_at,
            },
        );
        if self.revocations.load(Ordering::SeqCst) != epoch.0 {
            self.entries.invalidate(&key);
        }
    }

    pub(crate) fn forget(&self, sessions: &[SessionId]) {
        self.revocations.fetch_add(1, Ordering::SeqCst);
        for session in sessions {
            self.entries.invalidate(session);
        }
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

    #[test]
    fn the_cache_holds_at_most_its_capacity() {
        let cache = SessionCache::new(TimeDelta::seconds(60), 100);
        for _ in 0..2_000 {
            cache.remember_live(
                cache.epoch(),
                SessionId::generate(),
                UserId::generate(),
                at(3600),
                at(0),
            );
        }
        cache.entries.run_pending_tasks();
        assert!(cache.entries.entry_count() <= 100);
    }
}
