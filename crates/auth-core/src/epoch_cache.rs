//! A bounded, expiring cache of answers read from the store, where forgetting an entry wins
//! every race with a concurrent read that is about to remember it.
//!
//! The race: a reader loads a value from the store, a writer changes the store and forgets the
//! entry, then the reader stores what it loaded — the stale value outlives the write. Every
//! `forget` bumps an epoch *before* dropping entries; a reader notes the epoch before loading
//! and, after remembering, takes its entry back if the epoch moved. Whatever the interleaving,
//! either the drop comes after the insert or the reader sees the new epoch. The epoch is
//! global: a write anywhere makes concurrent reads skip caching once, which costs a store read.

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What a reader notes before loading from the store.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Epoch(u64);

pub(crate) struct EpochCache<K, V> {
    entries: moka::sync::Cache<K, V>,
    epoch: AtomicU64,
    enabled: bool,
}

impl<K, V> EpochCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// At most `capacity` entries, each for `ttl` (zero: nothing is remembered).
    pub(crate) fn new(ttl: Duration, capacity: u64) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl.max(Duration::from_millis(1)))
                .build(),
            epoch: AtomicU64::new(0),
            enabled: !ttl.is_zero(),
        }
    }

    pub(crate) fn get(&self, key: &K) -> Option<V> {
        self.entries.get(key)
    }

    /// To be taken before loading from the store, and handed to [`EpochCache::remember`].
    pub(crate) fn epoch(&self) -> Epoch {
        Epoch(self.epoch.load(Ordering::SeqCst))
    }

    /// Remembers what was loaded since `epoch`, unless something was forgotten meanwhile.
    pub(crate) fn remember(&self, epoch: Epoch, key: K, value: V) {
        if !self.enabled || self.epoch.load(Ordering::SeqCst) != epoch.0 {
            return;
        }
        self.entries.insert(key.clone(), value);
        if self.epoch.load(Ordering::SeqCst) != epoch.0 {
            self.entries.invalidate(&key);
        }
    }

    pub(crate) fn forget(&self, keys: &[K]) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for key in keys {
            self.entries.invalidate(key);
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_loaded_before_a_forget_is_not_remembered() {
        let cache = EpochCache::new(Duration::from_secs(5), 100);
        let epoch = cache.epoch();
        cache.forget(&["ada"]);
        cache.remember(epoch, "ada", "stale");
        assert_eq!(cache.get(&"ada"), None);
        let epoch = cache.epoch();
        cache.remember(epoch, "ada", "fresh");
        assert_eq!(cache.get(&"ada"), Some("fresh"));
    }

    #[test]
    fn the_cache_holds_at_most_its_capacity() {
        let cache = EpochCache::new(Duration::from_secs(60), 100);
        for n in 0..2_000_u32 {
            cache.remember(cache.epoch(), n, n);
        }
        assert!(cache.len() <= 100);
    }

    #[test]
    fn a_zero_lifetime_remembers_nothing() {
        let cache = EpochCache::new(Duration::ZERO, 100);
        cache.remember(cache.epoch(), 1, 1);
        assert_eq!(cache.get(&1), None);
    }
}
