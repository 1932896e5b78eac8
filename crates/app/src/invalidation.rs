//! The deployment's invalidation channel (Redis): what this instance announces after its
//! writes, and what it forgets when another instance announces. Without Redis there is one
//! instance and nobody to tell.

use std::sync::Arc;

use anyhow::Context as _;
use auth_core::IdentityService;
use futures_util::StreamExt as _;
use kernel::UserId;
use kernel::invalidation::{AloneInvalidations, Forget, Invalidations};
use portfolio_core::ports::ContentListener;
use store_redis::RedisInvalidations;

use crate::config::Settings;
use crate::storage::Storage;

/// This instance's side of the channel.
pub struct Channel {
    pub announcer: Arc<dyn Invalidations>,
    redis: Option<Arc<RedisInvalidations>>,
}

impl Channel {
    #[must_use]
    pub fn of(settings: &Settings, storage: &Storage) -> Self {
        match (&storage.redis, &settings.redis) {
            (Some(connection), Some(config)) => {
                let redis = Arc::new(RedisInvalidations::new(connection, &config.key_prefix));
                Self {
                    announcer: redis.clone(),
                    redis: Some(redis),
                }
            }
            _ => Self {
                announcer: Arc::new(AloneInvalidations),
                redis: None,
            },
        }
    }

    /// Subscribes, then forgets in `identity` and `caches` whatever the other instances
    /// announce, until the process ends.
    ///
    /// # Errors
    /// When the channel cannot be subscribed to.
    pub async fn listen(
        &self,
        identity: Arc<IdentityService>,
        caches: Arc<dyn ContentListener>,
    ) -> anyhow::Result<()> {
        let Some(redis) = &self.redis else {
            return Ok(());
        };
        let mut announced = redis
            .subscribe()
            .await
            .context("cannot subscribe to the invalidation channel")?;
        tokio::spawn(async move {
            while let Some(forget) = announced.next().await {
                identity.forget_announced(&forget);
                // A user's name and picture show on their public pages too.
                if let Forget::Content(owner) | Forget::User(owner) = &forget {
                    caches.content_changed(owner);
                }
            }
        });
        Ok(())
    }
}

/// Tells the other instances when an owner's content changed.
pub struct AnnouncedContent(pub Arc<dyn Invalidations>);

impl ContentListener for AnnouncedContent {
    fn content_changed(&self, owner: &UserId) {
        self.0.announce(Forget::Content(owner.clone()));
    }
}
