//! The ports the portfolio core needs. Each method documents the errors it must return.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kernel::record::FieldNames;
use kernel::{Page, PageRequest, StoreError, UserId};

use crate::model::{Item, ItemId, ResourceSpec};

/// What a list returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListQuery {
    /// `None`: every matching item.
    pub page: Option<PageRequest>,
    /// Only items whose boolean field of this name is true.
    pub only_true: Option<&'static str>,
}

impl ListQuery {
    /// Every live item, unfiltered.
    pub const ALL: Self = Self {
        page: None,
        only_true: None,
    };
}

/// Portfolio items of every resource. Every method is scoped to an owner: an item of another
/// owner is never read, changed or counted. Soft-deleted items are invisible to every method
/// but [`PortfolioRepository::slug_taken`] and [`PortfolioRepository::items_of`].
#[async_trait]
pub trait PortfolioRepository: Send + Sync {
    /// # Errors
    /// [`StoreError::Duplicate`] with key `"slug"` when the owner already has an item of the
    /// resource with this slug.
    async fn insert_item(&self, item: &Item) -> Result<(), StoreError>;

    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn find_item(
        &self,
        resource: &'static ResourceSpec,
        owner: &UserId,
        id: &ItemId,
    ) -> Result<Option<Item>, StoreError>;

    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn find_item_by_slug(
        &self,
        resource: &'static ResourceSpec,
        owner: &UserId,
        slug: &str,
    ) -> Result<Option<Item>, StoreError>;

    /// Whether any item of the owner (soft-deleted included) other than `except` has `slug`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn slug_taken(
        &self,
        resource: &'static ResourceSpec,
        owner: &UserId,
        slug: &str,
        except: Option<&ItemId>,
    ) -> Result<bool, StoreError>;

    /// Live items in the resource's [`crate::model::Ordering`], ties broken by creation time
    /// and then id.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn list_items(
        &self,
        resource: &'static ResourceSpec,
        owner: &UserId,
        query: &ListQuery,
    ) -> Result<Page<Item>, StoreError>;

    /// Writes the `changed` fields of `item` (a field `item` lacks is removed), its position
    /// and `updated_at` to the owner's live item `item.id`, leaving every other stored field
    /// as it is; returns `false` when there is none.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] with key `"slug"` as for inserts.
    async fn update_item(&self, item: &Item, changed: &FieldNames) -> Result<bool, StoreError>;

    /// Marks the owner's live item deleted; returns `false` when there is none.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn soft_delete_item(
        &self,
        resource: &'static ResourceSpec,
        owner: &UserId,
        id: &ItemId,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Sets each listed item's position to its index in `ids`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn set_positions(
        &self,
        resource: &'static ResourceSpec,
        owner: &UserId,
        ids: &[ItemId],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Every item the owner has of every resource, soft-deleted ones included.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn items_of(&self, owner: &UserId) -> Result<Vec<Item>, StoreError>;

    /// Removes every item of the owner, of every resource, for good.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn delete_items_of(&self, owner: &UserId) -> Result<(), StoreError>;
}

/// The public face of a user that a portfolio shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicOwner {
    pub id: UserId,
    pub username: String,
    pub display_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub avatar: Option<String>,
}

/// Finds active users by username for the public portfolio.
#[async_trait]
pub trait OwnerDirectory: Send + Sync {
    /// The active user with this (lower-case) username.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn owner_by_username(&self, username: &str) -> Result<Option<PublicOwner>, StoreError>;
}

/// Told after every change to an owner's portfolio (items or profile), so that caches of the
/// public portfolio can forget it.
pub trait ContentListener: Send + Sync {
    fn content_changed(&self, owner: &UserId);
}
