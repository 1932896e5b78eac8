//! The owned-collection path every resource shares, with each resource's extra rules switched
//! on by its [`Features`](crate::model::Features).
//!
//! Reference fields (an experience's `companyId`) must name a live item of the same owner, and
//! the linked items are embedded when an item is read.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use kernel::record::{FieldError, FieldKind, FieldNames, Input, Value};
use kernel::settings::{SettingsDocument, SettingsError, SettingsService};
use kernel::{Clock, Page, PageRequest, StoreError, UserId};

use crate::model::{Item, ItemId, ItemView, ResourceSpec};
use crate::ports::{ContentListener, ListQuery, PortfolioRepository};
use crate::resources::{PROFILE, ProfileFile, resource};
use crate::slug::{is_slug, slugify};

#[derive(Debug, thiserror::Error)]
pub enum PortfolioError {
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    #[error("not found")]
    NotFound,
    #[error("the ids must be every item of the list exactly once")]
    ReorderMismatch,
    /// Reference fields naming no live item of the owner: the request is well formed but
    /// does not fit what is stored.
    #[error("linked items not found")]
    UnknownLink(Vec<FieldError>),
    #[error("slug already in use")]
    SlugTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<SettingsError> for PortfolioError {
    fn from(error: SettingsError) -> Self {
        match error {
            SettingsError::Invalid(errors) => Self::Invalid(errors),
            SettingsError::Store(error) => Self::Store(error),
        }
    }
}

/// Portfolio items and the portfolio profile of their owners.
#[derive(Clone)]
pub struct PortfolioService {
    items: Arc<dyn PortfolioRepository>,
    settings: SettingsService,
    clock: Arc<dyn Clock>,
    listener: Arc<dyn ContentListener>,
}

impl PortfolioService {
    pub fn new(
        items: Arc<dyn PortfolioRepository>,
        settings: SettingsService,
        clock: Arc<dyn Clock>,
        listener: Arc<dyn ContentListener>,
    ) -> Self {
        Self {
            items,
            settings,
            clock,
            listener,
        }
    }

    /// # Errors
    /// [`PortfolioError::Store`] when storage fails.
    pub async fn list(
        &self,
        spec: &'static ResourceSpec,
        owner: &UserId,
        page: PageRequest,
    ) -> Result<Page<ItemView>, PortfolioError> {
        let query = ListQuery {
            page: Some(page),
            only_true: None,
        };
        let page = self.items.list_items(spec, owner, &query).await?;
        Ok(Page {
            items: self.with_links(page.items).await?,
            total: page.total,
            request: page.request,
        })
    }

    /// Every item, grouped by the resource's `group_by` field (in order of first appearance).
    ///
    /// # Errors
    /// [`PortfolioError::NotFound`] when the resource does not group.
    pub async fn grouped(
        &self,
        spec: &'static ResourceSpec,
        owner: &UserId,
    ) -> Result<Vec<(String, Vec<ItemView>)>, PortfolioError> {
        let field = spec.features.group_by.ok_or(PortfolioError::NotFound)?;
        let items = self
            .items
            .list_items(spec, owner, &ListQuery::ALL)
            .await?
            .items;
        let mut groups: Vec<(String, Vec<ItemView>)> = Vec::new();
        for view in self.with_links(items).await? {
            let key = view
                .item
                .fields
                .get(field)
                .and_then(Value::as_text)
                .unwrap_or_default()
                .to_owned();
            match groups.iter_mut().find(|(name, _)| *name == key) {
                Some((_, members)) => members.push(view),
                None => groups.push((key, vec![view])),
            }
        }
        Ok(groups)
    }

    /// An item by id, or (for resources with slugs) by slug.
    ///
    /// # Errors
    /// [`PortfolioError::NotFound`] when the owner has no such live item.
    pub async fn get(
        &self,
        spec: &'static ResourceSpec,
        owner: &UserId,
        id_or_slug: &str,
    ) -> Result<ItemView, PortfolioError> {
        let found = match ItemId::parse(id_or_slug) {
            Ok(id) => self.items.find_item(spec, owner, &id).await?,
            Err(_) => None,
        };
        let found = match (found, spec.features.slug_from) {
            (None, Some(_)) => {
                self.items
                    .find_item_by_slug(spec, owner, &id_or_slug.to_ascii_lowercase())
                    .await?
            }
            (found, _) => found,
        };
        let item = found.ok_or(PortfolioError::NotFound)?;
        Ok(self.with_links(vec![item]).await?.remove(0))
    }

    /// # Errors
    /// [`PortfolioError::Invalid`] naming every bad field; [`PortfolioError::UnknownLink`]
    /// naming each reference to an item the owner does not have;
    /// [`PortfolioError::SlugTaken`] when a given slug is in use.
    pub async fn create(
        &self,
        spec: &'static ResourceSpec,
        owner: &UserId,
        input: Vec<(String, Input)>,
    ) -> Result<ItemView, PortfolioError> {
        let mut fields = spec.schema.create(input).map_err(PortfolioError::Invalid)?;
        self.check_links(spec, owner, &fields).await?;
        let now = self.clock.now();
        let id = ItemId::generate();
        if let Some(source) = spec.features.slug_from {
            let slug = match fields.get("slug").and_then(Value::as_text) {
                Some(given) => self.claim_slug(spec, owner, given, None).await?,
                None => {
                    let base = slugify(fields.get(source).and_then(Value::as_text).unwrap_or(""));
                    self.free_slug(spec, owner, &base).await?
                }
            };
            fields.set("slug", Value::Text(slug));
        }
        let item = Item {
            id,
            owner: owner.clone(),
            resource: spec,
            fields,
            position: now.timestamp_millis(),
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        self.items.insert_item(&item).await.map_err(slug_conflict)?;
        self.listener.content_changed(owner);
        Ok(self.with_links(vec![item]).await?.remove(0))
    }

    /// Applies the given fields; a slug changes only when one is given.
    ///
    /// # Errors
    /// As [`PortfolioService::create`], and [`PortfolioError::NotFound`].
    pub async fn update(
        &self,
        spec: &'static ResourceSpec,
        owner: &UserId,
        id: &str,
        input: Vec<(String, Input)>,
    ) -> Result<ItemView, PortfolioError> {
        let mut item = self.owned(spec, owner, id).await?;
        let mut changes = spec.schema.patch(input).map_err(PortfolioError::Invalid)?;
        self.check_links(spec, owner, &changes).await?;
        if spec.features.slug_from.is_some() {
            match changes.get("slug").and_then(Value::as_text) {
                Some(given) => {
                    let slug = self.claim_slug(spec, owner, given, Some(&item.id)).await?;
                    changes.set("slug", Value::Text(slug));
                }
                // A slug cannot be cleared: links to the post must keep working. Asking to
                // clear it changes nothing.
                None => changes.remove("slug"),
            }
        }
        let changed = changes.names();
        item.fields.merge(changes);
        self.save(item, &changed).await
    }

    /// Sets `published`, and `publishedAt` when a post becomes published (cleared when not).
    ///
    /// # Errors
    /// [`PortfolioError::NotFound`] for resources without publishing or unknown items.
    pub async fn publish(
        &self,
        spec: &'static ResourceSpec,
        owner: &UserId,
        id: &str,
        published: bool,
    ) -> Result<ItemView, PortfolioError> {
        if !spec.features.publishing {
            return Err(PortfolioError::NotFound);
        }
        let mut item = self.owned(spec, owner, id).await?;
        let was_published = item.fields.get("published").and_then(Value::as_bool) == Some(true);
        // `publishedAt` is written only when it changes: a stored date this service could not
        // read is not replaced by a re-publish.
        let mut changed = FieldNames::from(["published".to_owned()]);
        if !published || !was_published {
            changed.insert("publishedAt".to_owned());
        }
        item.fields.set("published", Value::Bool(published));
        if !published {
            item.fields.set("publishedAt", Value::Null);
        } else if !was_published {
            item.fields
                .set("publishedAt", Value::Date(self.clock.now()));
        }
        self.save(item, &changed).await
    }

    /// # Errors
    /// [`PortfolioError::NotFound`] when the owner has no such live item.
    pub async fn delete(
        &self,
        spec: &'static ResourceSpec,
        owner: &UserId,
        id: &str,
    ) -> Result<(), PortfolioError> {
        let id = ItemId::parse(id).map_err(|_| PortfolioError::NotFound)?;
        if !self
            .items
            .soft_delete_item(spec, owner, &id, self.clock.now())
            .await?
        {
            return Err(PortfolioError::NotFound);
        }
        self.listener.content_changed(owner);
        Ok(())
    }

    /// Puts the owner's items in the given order; `ids` must be all of them, once each.
    ///
    /// # Errors
    /// [`PortfolioError::NotFound`] for resources without ordering;
    /// [`PortfolioError::ReorderMismatch`] when `ids` is not exactly the owner's items.
    pub async fn reorder(
        &self,
        spec: &'static ResourceSpec,
        owner: &UserId,
        ids: &[String],
    ) -> Result<Vec<ItemView>, PortfolioError> {
        if !spec.features.reorder {
            return Err(PortfolioError::NotFound);
        }
        let ids = ids
            .iter()
            .map(|raw| ItemId::parse(raw))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| PortfolioError::ReorderMismatch)?;
        let mut current: HashMap<ItemId, Item> = self
            .items
            .list_items(spec, owner, &ListQuery::ALL)
            .await?
            .items
            .into_iter()
            .map(|item| (item.id.clone(), item))
            .collect();
        let given: HashSet<&ItemId> = ids.iter().collect();
        if given.len() != ids.len()
            || given.len() != current.len()
            || !ids.iter().all(|id| current.contains_key(id))
        {
            return Err(PortfolioError::ReorderMismatch);
        }
        let now = self.clock.now();
        self.items.set_positions(spec, owner, &ids, now).await?;
        self.listener.content_changed(owner);
        // The new order is known; reading it back would only repeat the list query.
        let reordered = ids
            .iter()
            .zip(0_i64..)
            .filter_map(|(id, position)| {
                current.remove(id).map(|mut item| {
                    item.position = position;
                    item.updated_at = now;
                    item
                })
            })
            .collect();
        self.with_links(reordered).await
    }

    /// Every item the owner has, soft-deleted ones included (for the data export).
    ///
    /// # Errors
    /// [`PortfolioError::Store`] when storage fails.
    pub async fn export(&self, owner: &UserId) -> Result<Vec<Item>, PortfolioError> {
        Ok(self.items.items_of(owner).await?)
    }

    /// The owner's portfolio profile, created with defaults on first read.
    ///
    /// # Errors
    /// [`PortfolioError::Store`] when storage fails.
    pub async fn profile(&self, owner: &UserId) -> Result<SettingsDocument, PortfolioError> {
        Ok(self.settings.get(&PROFILE, owner).await?)
    }

    /// The owner's profile as stored, without creating one.
    pub(crate) async fn stored_profile(
        &self,
        owner: &UserId,
    ) -> Result<Option<kernel::record::Record>, PortfolioError> {
        let document = self.settings.find(&PROFILE, owner).await?;
        Ok(document.map(|document| document.fields))
    }

    /// # Errors
    /// [`PortfolioError::Invalid`] naming every bad field.
    pub async fn update_profile(
        &self,
        owner: &UserId,
        input: Vec<(String, Input)>,
    ) -> Result<SettingsDocument, PortfolioError> {
        let document = self.settings.update(&PROFILE, owner, input).await?;
        self.listener.content_changed(owner);
        Ok(document)
    }

    /// Points one of the profile's file fields at `url` (validated like any profile write);
    /// returns the profile and the URL the field held before, so its file can be removed.
    ///
    /// # Errors
    /// [`PortfolioError::Invalid`] when `url` is not a valid URL for the field.
    pub async fn set_profile_file(
        &self,
        owner: &UserId,
        file: ProfileFile,
        url: &str,
    ) -> Result<(SettingsDocument, Option<String>), PortfolioError> {
        let previous =
            self.stored_profile(owner)
                .await?
                .and_then(|fields| match fields.get(file.field()) {
                    Some(Value::Text(url)) => Some(url.clone()),
                    _ => None,
                });
        let input = vec![(file.field().to_owned(), Input::Text(url.to_owned()))];
        let document = self.update_profile(owner, input).await?;
        Ok((document, previous))
    }

    /// Live items of a resource, for the public view.
    pub(crate) async fn visible(
        &self,
        spec: &'static ResourceSpec,
        owner: &UserId,
    ) -> Result<Vec<ItemView>, PortfolioError> {
        let query = ListQuery {
            page: None,
            only_true: spec.features.public_when,
        };
        let items = self.items.list_items(spec, owner, &query).await?.items;
        self.with_links(items).await
    }

    async fn owned(
        &self,
        spec: &'static ResourceSpec,
        owner: &UserId,
        id: &str,
    ) -> Result<Item, PortfolioError> {
        let id = ItemId::parse(id).map_err(|_| PortfolioError::NotFound)?;
        self.items
            .find_item(spec, owner, &id)
            .await?
            .ok_or(PortfolioError::NotFound)
    }

    async fn save(&self, mut item: Item, changed: &FieldNames) -> Result<ItemView, PortfolioError> {
        item.updated_at = self.clock.now();
        if !self
            .items
            .update_item(&item, changed)
            .await
            .map_err(slug_conflict)?
        {
            return Err(PortfolioError::NotFound);
        }
        self.listener.content_changed(&item.owner);
        Ok(self.with_links(vec![item]).await?.remove(0))
    }

    /// Every reference field must name a live item of the same owner.
    async fn check_links(
        &self,
        spec: &'static ResourceSpec,
        owner: &UserId,
        fields: &kernel::record::Record,
    ) -> Result<(), PortfolioError> {
        let mut errors = Vec::new();
        for field in spec.schema.fields {
            let (FieldKind::Ref(target), Some(Value::Ref(raw))) =
                (field.kind, fields.get(field.name))
            else {
                continue;
            };
            let linked = match (resource(target), ItemId::parse(raw)) {
                (Some(target), Ok(id)) => self.items.find_item(target, owner, &id).await?,
                _ => None,
            };
            if linked.is_none() {
                errors.push(FieldError {
                    field: field.name.to_owned(),
                    code: "not_found",
                    message: "must be the id of one of your items".to_owned(),
                });
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(PortfolioError::UnknownLink(errors))
        }
    }

    /// Puts each item's linked items beside it. Each linked resource is read once per call
    /// (all of the owner's live items), not once per reference, so a list costs one query per
    /// linked resource.
    async fn with_links(&self, items: Vec<Item>) -> Result<Vec<ItemView>, PortfolioError> {
        let mut targets: HashMap<(&'static str, UserId), Vec<Item>> = HashMap::new();
        let mut views = Vec::with_capacity(items.len());
        for item in items {
            let mut linked = Vec::new();
            for field in item.resource.schema.fields {
                let (FieldKind::Ref(target), Some(Value::Ref(raw))) =
                    (field.kind, item.fields.get(field.name))
                else {
                    continue;
                };
                let Some(target) = resource(target) else {
                    continue;
                };
                let candidates = match targets.entry((target.name, item.owner.clone())) {
                    Entry::Occupied(entry) => entry.into_mut(),
                    Entry::Vacant(entry) => {
                        let all = self.items.list_items(target, &item.owner, &ListQuery::ALL);
                        entry.insert(all.await?.items)
                    }
                };
                if let Some(found) = candidates.iter().find(|c| c.id.as_str() == raw) {
                    linked.push((field.name, found.clone()));
                }
            }
            views.push(ItemView { item, linked });
        }
        Ok(views)
    }

    async fn claim_slug(
        &self,
        spec: &'static ResourceSpec,
        owner: &UserId,
        given: &str,
        except: Option<&ItemId>,
    ) -> Result<String, PortfolioError> {
        let slug = given.to_ascii_lowercase();
        if !is_slug(&slug) {
            return Err(PortfolioError::Invalid(vec![FieldError {
                field: "slug".to_owned(),
                code: "slug",
                message: "must be lower-case letters, digits and single hyphens".to_owned(),
            }]));
        }
        if self.items.slug_taken(spec, owner, &slug, except).await? {
            return Err(PortfolioError::SlugTaken);
        }
        Ok(slug)
    }

    /// `base`, or `base-2`, `base-3`, … whichever the owner has not used.
    async fn free_slug(
        &self,
        spec: &'static ResourceSpec,
        owner: &UserId,
        base: &str,
    ) -> Result<String, PortfolioError> {
        let mut candidate = base.to_owned();
        let mut suffix = 2;
        while self.items.slug_taken(spec, owner, &candidate, None).await? {
            candidate = format!("{base}-{suffix}");
            suffix += 1;
        }
        Ok(candidate)
    }
}

fn slug_conflict(error: StoreError) -> PortfolioError {
    match error {
        StoreError::Duplicate { key: "slug" } => PortfolioError::SlugTaken,
        other => PortfolioError::Store(other),
    }
}
