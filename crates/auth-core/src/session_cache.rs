//! Remembers, for a few seconds, that a session is live, so that access-token checks do not hit
//! the store on every request. Revocations on this instance drop the entry at once; other
//! instances notice within the cache lifetime.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};

use crate::model::{SessionId, UserId};

#[derive(Clone, Debug)]
struct Entry {
    user: UserId,
    checked_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

#[derive(Debug)]
pub(crate) struct SessionCache {
    ttl: TimeDelta,
    capacity: usize,
    entries: Mutex<HashMap<SessionId, Entry>>,
}

impl SessionCache {
    pub(crate) fn new(ttl: TimeDelta, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `session` is known live for `user` without asking the store.
    pub(crate) fn is_known_live(
        &self,
        session: &SessionId,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> bool {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(session).is_some_and(|entry| {
            &entry.user == user && now < entry.expires_at && now - entry.checked_at < self.ttl
        })
    }

    pub(crate) fn remember_live(
        &self,
        session: SessionId,
        user: UserId,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= self.capacity {
            let ttl = self.ttl;
            entries.retain(|_, entry| now - entry.checked_at < ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(
            session,
            Entry {
                user,
                checked_at: now,
                expires_at,
            },
        );
    }

    pub(crate) fn forget(&self, sessions: &[SessionId]) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for session in sessions {
            entries.remove(session);
        }
    }
}
