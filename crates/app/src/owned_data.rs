//! The identity core's `OwnedData` port: everything a user has in the portfolio and
//! settings stores and among the uploaded files, erased when their account is deleted.

use std::sync::Arc;

use async_trait::async_trait;
use auth_core::ports::OwnedData;
use kernel::settings::SettingsRepository;
use kernel::{StoreError, UserId};
use media_core::MediaService;
use portfolio_core::ports::{ContentListener, PortfolioRepository};

use crate::storage::SETTINGS_KINDS;

pub struct StoredOwnedData {
    pub portfolio: Arc<dyn PortfolioRepository>,
    pub settings: Arc<dyn SettingsRepository>,
    /// The caches of rendered content, told when a user's content is erased.
    pub caches: Arc<dyn ContentListener>,
    pub media: Arc<MediaService>,
}

/// Several listeners told as one (the public pages and the owners' own lists).
pub struct ContentListeners(pub Vec<Arc<dyn ContentListener>>);

impl ContentListener for ContentListeners {
    fn content_changed(&self, owner: &UserId) {
        for listener in &self.0 {
            listener.content_changed(owner);
        }
    }
}

#[async_trait]
impl OwnedData for StoredOwnedData {
    async fn erase_owned_data(&self, owner: &UserId) -> Result<(), StoreError> {
        self.portfolio.delete_items_of(owner).await?;
        self.settings
            .delete_settings_of(owner, &SETTINGS_KINDS)
            .await?;
        self.media.erase_files_of(owner).await?;
        self.caches.content_changed(owner);
        Ok(())
    }
}
