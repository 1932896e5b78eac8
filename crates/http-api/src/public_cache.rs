//! Rendered public portfolio answers, kept until their owner changes anything (the portfolio
//! core tells us through `ContentListener`) or `ttl` passes (which bounds staleness when
//! another instance made the change).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use kernel::UserId;
use portfolio_core::ports::ContentListener;

/// One rendered answer.
#[derive(Debug)]
pub struct CachedPage {
    pub owner: UserId,
    pub etag: String,
    pub body: Bytes,
    stored_at: Instant,
}

pub struct PublicCache {
    entries: RwLock<HashMap<String, Arc<CachedPage>>>,
    /// Bumped by every invalidation, so that a page rendered from data read before a change
    /// is not stored after it.
    generation: AtomicU64,
    ttl: Duration,
}

impl PublicCache {
    #[must_use]
    pub fn new(ttl: Duration) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            ttl,
        }
    }

    /// The generation to hand back to [`PublicCache::store`] after rendering.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn lookup(&self, key: &str) -> Option<Arc<CachedPage>> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(key)
            .filter(|page| page.stored_at.elapsed() < self.ttl)
            .cloned()
    }

    /// Keeps a rendered page unless its owner's content changed since `generation`.
    pub fn store(
        &self,
        key: String,
        owner: UserId,
        body: Bytes,
        generation: u64,
    ) -> Arc<CachedPage> {
        let mut hasher = DefaultHasher::new();
        body.hash(&mut hasher);
        let page = Arc::new(CachedPage {
            owner,
            etag: format!("\"{:016x}{:08x}\"", hasher.finish(), body.len()),
            body,
            stored_at: Instant::now(),
        });
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if self.generation.load(Ordering::Acquire) == generation && !self.ttl.is_zero() {
            entries.insert(key, Arc::clone(&page));
        }
        page
    }
}

impl ContentListener for PublicCache {
    fn content_changed(&self, owner: &UserId) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.retain(|_, page| page.owner != *owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_by_the_owner_forgets_their_pages_only() {
        let cache = PublicCache::new(Duration::from_secs(60));
        let (ada, bob) = (UserId::generate(), UserId::generate());
        let generation = cache.generation();
        cache.store(
            "ada".into(),
            ada.clone(),
            Bytes::from_static(b"a"),
            generation,
        );
        cache.store("bob".into(), bob, Bytes::from_static(b"b"), generation);
        cache.content_changed(&ada);
        assert!(cache.lookup("ada").is_none());
        assert!(cache.lookup("bob").is_some());
    }

    #[test]
    fn a_page_rendered_before_a_change_is_not_kept() {
        let cache = PublicCache::new(Duration::from_secs(60));
        let ada = UserId::generate();
        let before = cache.generation();
        cache.content_changed(&ada);
        cache.store("ada".into(), ada, Bytes::from_static(b"old"), before);
        assert!(cache.lookup("ada").is_none());
    }

    #[test]
    fn different_bodies_get_different_etags() {
        let cache = PublicCache::new(Duration::from_secs(60));
        let ada = UserId::generate();
        let a = cache.store("a".into(), ada.clone(), Bytes::from_static(b"one"), 0);
        let b = cache.store("b".into(), ada, Bytes::from_static(b"two"), 0);
        assert_ne!(a.etag, b.etag);
    }
}
