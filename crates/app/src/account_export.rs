//! The HTTP edge's `AccountExporter`: an account's data export, gathered from the identity,
//! portfolio, settings and media services.
//!
//! It is typed data (the user, live sessions, the settings of every kind deletion erases, every
//! portfolio item, the uploaded files), which `routes/account.rs` renders as JSON or CSV.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use auth_core::IdentityService;
use auth_core::model::Principal;
use http_api::{AccountExport, AccountExporter, ExportError, StorageUse};
use kernel::Clock;
use kernel::settings::SettingsService;
use media_core::MediaService;
use portfolio_core::PortfolioService;
use portfolio_core::model::ItemView;

use crate::storage::SETTINGS_KINDS;

pub struct ServiceAccountExporter {
    pub identity: Arc<IdentityService>,
    pub portfolio: Arc<PortfolioService>,
    pub settings: Arc<SettingsService>,
    pub media: Arc<MediaService>,
    pub clock: Arc<dyn Clock>,
}

#[async_trait]
impl AccountExporter for ServiceAccountExporter {
    async fn export(&self, caller: &Principal) -> Result<AccountExport, ExportError> {
        let owner = &caller.user_id;
        let (user, sessions) = self.identity.export_identity(caller).await?;
        let sessions = sessions
            .into_iter()
            .map(|session| {
                let current = session.id == caller.session_id;
                (session, current)
            })
            .collect();
        // The kinds an account's deletion erases: the export shows what deletion removes.
        let mut settings = Vec::new();
        for kind in SETTINGS_KINDS {
            if let Some(document) = self.settings.find(kind, owner).await? {
                settings.push((kind, document));
            }
        }
        let mut portfolio: BTreeMap<&'static str, Vec<ItemView>> = BTreeMap::new();
        for item in self.portfolio.export(owner).await? {
            let section = item.resource.name;
            let view = ItemView {
                item,
                linked: Vec::new(),
            };
            portfolio.entry(section).or_default().push(view);
        }
        Ok(AccountExport {
            exported_at: self.clock.now(),
            user,
            sessions,
            settings,
            portfolio,
            files: self.media.files_of(owner).await?,
            storage: StorageUse {
                used_bytes: self.media.usage(owner).await?,
                quota_bytes: self.media.policy().quota_bytes,
            },
        })
    }
}
