//! The portfolio core's `OwnerDirectory`, answered from the identity store.

use std::sync::Arc;

use async_trait::async_trait;
use auth_core::ports::UserRepository;
use kernel::StoreError;
use portfolio_core::ports::{OwnerDirectory, PublicOwner};

pub struct UserDirectory(pub Arc<dyn UserRepository>);

#[async_trait]
impl OwnerDirectory for UserDirectory {
    async fn owner_by_username(&self, username: &str) -> Result<Option<PublicOwner>, StoreError> {
        let user = self.0.find_user_by_username(username).await?;
        Ok(user.filter(|user| user.is_active).map(|user| PublicOwner {
            id: user.id,
            username: user.username,
            display_name: user.display_name,
            first_name: user.first_name,
            last_name: user.last_name,
            avatar: user.avatar,
        }))
    }
}
