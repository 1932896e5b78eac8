//! Rendered answers about one owner's content — the public portfolio pages, and the owner's own
//! lists — kept until their owner changes anything (the portfolio core tells us through
//! `ContentListener`) or `ttl` passes (which bounds staleness when another instance made the
//! change). The cache is bounded by the bytes it holds and drops expired pages by itself, so
//! crawling many usernames cannot grow memory without limit. `ViewPages` keeps each user's
//! `GET /auth/me` answer beside the identity core's view it was rendered from.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::web::Bytes;
use auth_core::model::UserView;
use kernel::UserId;
use portfolio_core::ports::ContentListener;
use sha2::{Digest as _, Sha256};

/// One rendered answer.
#[derive(Debug)]
pub struct CachedPage {
    pub owner: UserId,
    pub etag: String,
    pub body: Bytes,
}

pub struct PageCache {
    pages: moka::sync::Cache<String, Arc<CachedPage>>,
    /// Bumped by every invalidation, so that a page rendered from data read before a change
    /// is not kept after it.
    generation: AtomicU64,
    enabled: bool,
}

/// A strong validator of `body`: the first 128 bits of its SHA-256, so every instance, of any
/// version, gives the same bytes the same tag (std's hashers promise neither).
fn etag_of(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(body)[..16]))
}

/// What the cache may hold, in bytes of keys and bodies.
const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

impl PageCache {
    #[must_use]
    pub fn new(ttl: Duration) -> Self {
        Self::with_max_bytes(ttl, DEFAULT_MAX_BYTES)
    }

    #[must_use]
    pub fn with_max_bytes(ttl: Duration, max_bytes: u64) -> Self {
        Self {
            pages: moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|key: &String, page: &Arc<CachedPage>| {
                    u32::try_from(key.len() + page.body.len() + page.etag.len()).unwrap_or(u32::MAX)
                })
                .time_to_live(ttl.max(Duration::from_millis(1)))
                .support_invalidation_closures()
                .build(),
            generation: AtomicU64::new(0),
            enabled: !ttl.is_zero(),
        }
    }

    /// The generation to hand back to [`PageCache::store`] after rendering.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub fn lookup(&self, key: &str) -> Option<Arc<CachedPage>> {
        self.pages.get(key)
    }

    /// Keeps a rendered page unless its owner's content changed since `generation`.
    pub fn store(
        &self,
        key: String,
        owner: UserId,
        body: Bytes,
        generation: u64,
    ) -> Arc<CachedPage> {
        let page = Arc::new(CachedPage {
            owner,
            etag: etag_of(&body),
            body,
        });
        if self.enabled && self.generation() == generation {
            self.pages.insert(key.clone(), Arc::clone(&page));
            // An invalidation between the check and the insert may have missed this page.
            if self.generation() != generation {
                self.pages.invalidate(&key);
            }
        }
        page
    }
}

/// The owners' own lists, apart from the public pages: they live only `SESSION_CHECK_TTL`
/// (another instance's write shows within that), where public pages may live longer.
pub struct OwnerPages(pub PageCache);

impl ContentListener for OwnerPages {
    fn content_changed(&self, owner: &UserId) {
        self.0.content_changed(owner);
    }
}

/// Each user's rendered view (`GET /auth/me`). The identity core hands out the same
/// `Arc<UserView>` while the view is unchanged and a new one after any write to the user or
/// account, so an answer is served only for the very view it was rendered from: nothing needs
/// forgetting, and rendering (most of the route's own work) happens once per view.
pub struct ViewPages {
    pages: moka::sync::Cache<UserId, (Arc<UserView>, Bytes)>,
    enabled: bool,
}

impl ViewPages {
    /// Views live in the core at most `ttl` (`SESSION_CHECK_TTL`), so no answer is kept longer.
    #[must_use]
    pub fn new(ttl: Duration) -> Self {
        Self {
            pages: moka::sync::Cache::builder()
                .max_capacity(DEFAULT_MAX_BYTES / 2)
                .weigher(|_, (_, body): &(Arc<UserView>, Bytes)| {
                    u32::try_from(body.len()).unwrap_or(u32::MAX)
                })
                .time_to_live(ttl.max(Duration::from_millis(1)))
                .build(),
            enabled: !ttl.is_zero(),
        }
    }

    /// The answer rendered from `view`, rendering it when this view has none yet.
    ///
    /// # Errors
    /// What `render` returns.
    pub fn answer<E>(
        &self,
        view: &Arc<UserView>,
        render: impl FnOnce(&UserView) -> Result<Bytes, E>,
    ) -> Result<Bytes, E> {
        if let Some((rendered_from, body)) = self.pages.get(&view.user.id)
            && Arc::ptr_eq(&rendered_from, view)
        {
            return Ok(body);
        }
        let body = render(view)?;
        if self.enabled {
            self.pages
                .insert(view.user.id.clone(), (Arc::clone(view), body.clone()));
        }
        Ok(body)
    }
}

impl ContentListener for PageCache {
    fn content_changed(&self, owner: &UserId) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let owner = owner.clone();
        if let Err(error) = self
            .pages
            .invalidate_entries_if(move |_, page| page.owner == owner)
        {
            // Only possible without invalidation closures, which the builder enables; drop
            // everything rather than serve a stale page.
            tracing::error!(%error, "public cache: targeted invalidation failed; clearing");
            self.pages.invalidate_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_by_the_owner_forgets_their_pages_only() {
        let cache = PageCache::new(Duration::from_secs(60));
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
    fn an_etag_is_the_digest_of_the_bytes_alone() {
        // SHA-256("hello") begins 2cf24dba5fb0a30e26e83b2ac5b9e29e.
        assert_eq!(etag_of(b"hello"), "\"2cf24dba5fb0a30e26e83b2ac5b9e29e\"");
        let cache = PageCache::new(Duration::from_secs(60));
        let page = cache.store(
            "ada".into(),
            UserId::generate(),
            Bytes::from_static(b"hello"),
            cache.generation(),
        );
        assert_eq!(page.etag, etag_of(b"hello"));
    }

    #[test]
    fn a_page_rendered_before_a_change_is_not_kept() {
        let cache = PageCache::new(Duration::from_secs(60));
        let ada = UserId::generate();
        let before = cache.generation();
        cache.content_changed(&ada);
        cache.store("ada".into(), ada, Bytes::from_static(b"old"), before);
        assert!(cache.lookup("ada").is_none());
    }

    #[test]
    fn the_cache_is_bounded_by_bytes() {
        let cache = PageCache::with_max_bytes(Duration::from_secs(60), 100_000);
        let body = Bytes::from(vec![b'x'; 1_000]);
        for n in 0..5_000 {
            cache.store(format!("user{n}"), UserId::generate(), body.clone(), 0);
        }
        cache.pages.run_pending_tasks();
        assert!(cache.pages.weighted_size() <= 100_000);
        assert!(cache.pages.entry_count() < 200);
    }

    #[test]
    fn expired_pages_are_dropped() {
        let cache = PageCache::new(Duration::from_millis(20));
        cache.store(
            "ada".into(),
            UserId::generate(),
            Bytes::from_static(b"a"),
            0,
        );
        std::thread::sleep(Duration::from_millis(40));
        cache.pages.run_pending_tasks();
        assert!(cache.lookup("ada").is_none());
        assert_eq!(cache.pages.entry_count(), 0, "not merely hidden, gone");
    }

    #[test]
    fn a_view_answer_is_served_only_for_the_view_it_was_rendered_from() {
        let pages = ViewPages::new(Duration::from_secs(60));
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let view = Arc::new(UserView {
            user: auth_core::model::User {
                id: UserId::generate(),
                username: "ada".into(),
                email: "ada@example.com".into(),
                first_name: None,
                last_name: None,
                display_name: None,
                avatar: None,
                role: auth_core::model::Role::User,
                bio: None,
                location: None,
                website: None,
                is_active: true,
                last_login_at: None,
                created_at: now,
                updated_at: now,
            },
            email_verified: false,
        });
        let render = |text: &'static str| move |_: &UserView| Ok::<_, ()>(Bytes::from(text));
        assert_eq!(
            pages.answer(&view, render("first")),
            Ok(Bytes::from("first"))
        );
        assert_eq!(
            pages.answer(&view, render("again")),
            Ok(Bytes::from("first"))
        );
        let changed = Arc::new(UserView {
            email_verified: true,
            ..UserView::clone(&view)
        });
        assert_eq!(
            pages.answer(&changed, render("changed")),
            Ok(Bytes::from("changed")),
            "an equal-looking but new view is rendered again"
        );
        assert_eq!(
            pages.answer(&view, render("old view")),
            Ok(Bytes::from("old view"))
        );
    }

    #[test]
    fn different_bodies_get_different_etags() {
        let cache = PageCache::new(Duration::from_secs(60));
        let ada = UserId::generate();
        let a = cache.store("a".into(), ada.clone(), Bytes::from_static(b"one"), 0);
        let b = cache.store("b".into(), ada, Bytes::from_static(b"two"), 0);
        assert_ne!(a.etag, b.etag);
    }
}
