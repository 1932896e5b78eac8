//! Portfolio items and settings documents in memory.

use std::cmp::Ordering as CmpOrdering;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kernel::record::{FieldNames, Value};
use kernel::settings::{SettingsDocument, SettingsKind, SettingsRepository};
use kernel::{Page, PageRequest, StoreError, UserId};
use portfolio_core::model::{Item, ItemId, Ordering, ResourceSpec};
use portfolio_core::ports::{ListQuery, PortfolioRepository};

#[derive(Default)]
pub struct MemoryPortfolioStore {
    items: Mutex<Vec<Item>>,
    settings: Mutex<HashMap<(&'static str, UserId), SettingsDocument>>,
}

impl MemoryPortfolioStore {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn items(&self) -> MutexGuard<'_, Vec<Item>> {
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn settings(&self) -> MutexGuard<'_, HashMap<(&'static str, UserId), SettingsDocument>> {
        self.settings.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn is_live_of(item: &Item, resource: &ResourceSpec, owner: &UserId) -> bool {
    item.resource == resource && item.owner == *owner && item.deleted_at.is_none()
}

fn slug_of(item: &Item) -> Option<&str> {
    item.fields.get("slug").and_then(Value::as_text)
}

fn date_of(item: &Item, field: &str) -> Option<DateTime<Utc>> {
    match item.fields.get(field) {
        Some(Value::Date(at)) => Some(*at),
        _ => None,
    }
}

fn compare(ordering: Ordering, a: &Item, b: &Item) -> CmpOrdering {
    let newest_first = || {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| b.id.cmp(&a.id))
    };
    match ordering {
        Ordering::Manual => a
            .position
            .cmp(&b.position)
            .then_with(|| a.created_at.cmp(&b.created_at))
            .then_with(|| a.id.cmp(&b.id)),
        // `None` sorts below every date, so items without one come last.
        Ordering::LatestBy(field) => date_of(b, field)
            .cmp(&date_of(a, field))
            .then_with(newest_first),
        Ordering::Newest => newest_first(),
    }
}

#[async_trait]
impl PortfolioRepository for MemoryPortfolioStore {
    async fn insert_item(&self, item: &Item) -> Result<(), StoreError> {
        let mut items = self.items();
        if let Some(slug) = slug_of(item)
            && items.iter().any(|other| {
                other.resource == item.resource
                    && other.owner == item.owner
                    && slug_of(other) == Some(slug)
            })
        {
            return Err(StoreError::Duplicate { key: "slug" });
        }
        items.push(item.clone());
        Ok(())
    }

    async fn find_item(
        &self,
        resource: &'static ResourceSpec,
        owner: &UserId,
        id: &ItemId,
    ) -> Result<Option<Item>, StoreError> {
        Ok(self
            .items()
            .iter()
            .find(|item| item.id == *id && is_live_of(item, resource, owner))
            .cloned())
    }

    async fn find_item_by_slug(
        &self,
        resource: &'static ResourceSpec,
        owner: &UserId,
        slug: &str,
    ) -> Result<Option<Item>, StoreError> {
        Ok(self
            .items()
            .iter()
            .find(|item| slug_of(item) == Some(slug) && is_live_of(item, resource, owner))
            .cloned())
    }

    async fn slug_taken(
        &self,
        resource: &'static ResourceSpec,
        owner: &UserId,
        slug: &str,
        except: Option<&ItemId>,
    ) -> Result<bool, StoreError> {
        Ok(self.items().iter().any(|item| {
            item.resource == resource
                && item.owner == *owner
                && slug_of(item) == Some(slug)
                && Some(&item.id) != except
        }))
    }

    async fn list_items(
        &self,
        resource: &'static ResourceSpec,
        owner: &UserId,
        query: &ListQuery,
    ) -> Result<Page<Item>, StoreError> {
        let mut matching: Vec<Item> = self
            .items()
            .iter()
            .filter(|item| is_live_of(item, resource, owner))
            .filter(|item| {
                query
                    .only_true
                    .is_none_or(|field| item.fields.get(field) == Some(&Value::Bool(true)))
            })
            .cloned()
            .collect();
        matching.sort_by(|a, b| compare(resource.ordering, a, b));
        let total = matching.len() as u64;
        let request = query.page.unwrap_or(PageRequest {
            page: 1,
            limit: u32::try_from(matching.len()).unwrap_or(u32::MAX).max(1),
        });
        let items = matching
            .into_iter()
            .skip(usize::try_from(request.offset()).unwrap_or(usize::MAX))
            .take(request.limit as usize)
            .collect();
        Ok(Page {
            items,
            total,
            request,
        })
    }

    /// Keeps every field of a record whole: all it stores is what this service wrote, so
    /// nothing outside `changed` differs.
    async fn update_item(&self, item: &Item, _changed: &FieldNames) -> Result<bool, StoreError> {
        let mut items = self.items();
        if let Some(slug) = slug_of(item)
            && items.iter().any(|other| {
                other.id != item.id
                    && other.resource == item.resource
                    && other.owner == item.owner
                    && slug_of(other) == Some(slug)
            })
        {
            return Err(StoreError::Duplicate { key: "slug" });
        }
        let Some(stored) = items
            .iter_mut()
            .find(|stored| stored.id == item.id && is_live_of(stored, item.resource, &item.owner))
        else {
            return Ok(false);
        };
        stored.fields = item.fields.clone();
        stored.position = item.position;
        stored.updated_at = item.updated_at;
        Ok(true)
    }

    async fn soft_delete_item(
        &self,
        resource: &'static ResourceSpec,
        owner: &UserId,
        id: &ItemId,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut items = self.items();
        let found = items
            .iter_mut()
            .find(|item| item.id == *id && is_live_of(item, resource, owner));
        Ok(found.map(|item| item.deleted_at = Some(at)).is_some())
    }

    async fn set_positions(
        &self,
        resource: &'static ResourceSpec,
        owner: &UserId,
        ids: &[ItemId],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut items = self.items();
        for (position, id) in ids.iter().enumerate() {
            if let Some(item) = items
                .iter_mut()
                .find(|item| item.id == *id && is_live_of(item, resource, owner))
            {
                item.position = i64::try_from(position).unwrap_or(i64::MAX);
                item.updated_at = at;
            }
        }
        Ok(())
    }

    async fn items_of(&self, owner: &UserId) -> Result<Vec<Item>, StoreError> {
        Ok(self
            .items()
            .iter()
            .filter(|item| item.owner == *owner)
            .cloned()
            .collect())
    }

    async fn delete_items_of(&self, owner: &UserId) -> Result<(), StoreError> {
        self.items().retain(|item| item.owner != *owner);
        Ok(())
    }
}

#[async_trait]
impl SettingsRepository for MemoryPortfolioStore {
    async fn load_settings(
        &self,
        kind: &'static SettingsKind,
        owner: &UserId,
    ) -> Result<Option<SettingsDocument>, StoreError> {
        Ok(self.settings().get(&(kind.name, owner.clone())).cloned())
    }

    async fn save_settings(
        &self,
        kind: &'static SettingsKind,
        owner: &UserId,
        document: &SettingsDocument,
        _changed: &FieldNames,
    ) -> Result<(), StoreError> {
        let mut settings = self.settings();
        let key = (kind.name, owner.clone());
        let created_at = settings
            .get(&key)
            .map_or(document.created_at, |d| d.created_at);
        settings.insert(
            key,
            SettingsDocument {
                created_at,
                ..document.clone()
            },
        );
        Ok(())
    }

    async fn delete_settings_of(
        &self,
        owner: &UserId,
        kinds: &[&'static SettingsKind],
    ) -> Result<(), StoreError> {
        self.settings().retain(|(kind, stored_owner), _| {
            stored_owner != owner || !kinds.iter().any(|k| k.name == *kind)
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryPortfolioStore;

    port_contracts::portfolio_item_contract!(|| async { ((), MemoryPortfolioStore::new()) });
    port_contracts::settings_contract!(|| async { ((), MemoryPortfolioStore::new()) });
}
