//! The identity core's `OwnedData` port: everything a user has in the portfolio and
//! settings stores, erased when their account is deleted.

use std::sync::Arc;

use async_trait::async_trait;
use auth_core::ports::OwnedData;
use kernel::settings::SettingsRepository;
use kernel::{StoreError, UserId};
use portfolio_core::ports::{ContentListener, PortfolioRepository};

use crate::storage::SETTINGS_KINDS;

pub struct StoredOwnedData {
    pub portfolio: Arc<dyn PortfolioRepository>,
    pub settings: Arc<dyn SettingsRepository>,
    pub public_cache: Arc<dyn ContentListener>,
}

#[async_trait]
impl OwnedData for StoredOwnedData {
    async fn erase_owned_data(&self, owner: &UserId) -> Result<(), StoreError> {
        self.portfolio.delete_items_of(owner).await?;
        self.settings
            .delete_settings_of(owner, &SETTINGS_KINDS)
            .await?;
        self.public_cache.content_changed(owner);
        Ok(())
    }
}
