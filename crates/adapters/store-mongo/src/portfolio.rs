//! Portfolio items (one collection per resource, as the NestJS version had) and settings
//! documents (one collection per kind, one document per user), with the record's fields at
//! the top level of each document.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt as _;
use kernel::record::{FieldKind, FieldNames, Record, Schema, Value};
use kernel::settings::{SettingsDocument, SettingsKind, SettingsRepository};
use kernel::{Page, PageRequest, StoreError, UserId};
use mongodb::Collection;
use mongodb::bson::{Bson, DateTime as BsonTime, Document, doc};
use mongodb::options::FindOptions;
use portfolio_core::model::{Item, ItemId, Ordering, ResourceSpec};
use portfolio_core::ports::{ListQuery, PortfolioRepository};
use portfolio_core::resources::RESOURCES;

use crate::documents::{oid, time};
use crate::identity::same_id;
use crate::indexes::{self, Wanted};
use crate::{MongoStore, lenient, translate};

/// Fields every item document has besides its record.
const BOOKKEEPING: [&str; 6] = [
    "_id",
    "userId",
    "order",
    "createdAt",
    "updatedAt",
    "deletedAt",
];

fn to_bson(value: &Value) -> Result<Bson, StoreError> {
    Ok(match value {
        Value::Null => Bson::Null,
        Value::Bool(flag) => Bson::Boolean(*flag),
        Value::Int(number) => Bson::Int64(*number),
        Value::Float(number) => Bson::Double(*number),
        Value::Text(text) => Bson::String(text.clone()),
        Value::Ref(id) => Bson::ObjectId(oid(id)?),
        Value::Date(at) => Bson::DateTime(time(*at)),
        Value::List(items) => Bson::Array(items.iter().cloned().map(Bson::String).collect()),
    })
}

/// The operator update writing the `changed` fields of `record`: `$set` for those it has,
/// `$unset` for those it lacks (cleared). Nothing else stored is touched, so fields this
/// service does not know, or could not read, survive every write.
fn changes_of(record: &Record, changed: &FieldNames) -> Result<Document, StoreError> {
    let mut set = Document::new();
    let mut unset = Document::new();
    for field in changed {
        match record.get(field) {
            Some(value) => set.insert(field, to_bson(value)?),
            None => unset.insert(field, ""),
        };
    }
    let mut update = doc! { "$set": set };
    if !unset.is_empty() {
        update.insert("$unset", unset);
    }
    Ok(update)
}

fn fields_to_document(record: &Record) -> Result<Document, StoreError> {
    let mut document = Document::new();
    for (field, value) in record.iter() {
        document.insert(field, to_bson(value)?);
    }
    Ok(document)
}

/// Reads the fields the schema knows, tolerating the numeric, boolean, date and id shapes
/// other writers use; a value of no readable shape is left out (and left alone by writes).
fn record_from(schema: &Schema, document: &Document) -> Record {
    document
        .iter()
        .filter(|(name, _)| !BOOKKEEPING.contains(&name.as_str()))
        .filter_map(|(name, bson)| {
            let spec = schema.field(name)?;
            let value = match (spec.kind, bson) {
                (FieldKind::Bool, stored) => Value::Bool(lenient::flag_of(stored)?),
                (FieldKind::Integer { .. }, Bson::Int32(n)) => Value::Int(i64::from(*n)),
                (FieldKind::Integer { .. }, Bson::Int64(n)) => Value::Int(*n),
                (FieldKind::Integer { .. }, Bson::Double(n)) => Value::Int(*n as i64),
                (FieldKind::Decimal { .. }, Bson::Double(n)) => Value::Float(*n),
                (FieldKind::Decimal { .. }, Bson::Int32(n)) => Value::Float(f64::from(*n)),
                (FieldKind::Decimal { .. }, Bson::Int64(n)) => Value::Float(*n as f64),
                (FieldKind::Date, stored) => Value::Date(lenient::date_of(stored)?.to_chrono()),
                (FieldKind::Ref(_), stored) => Value::Ref(lenient::id_of(stored)?.to_hex()),
                (FieldKind::Tags { .. }, Bson::Array(items)) => Value::List(
                    items
                        .iter()
                        .filter_map(|item| item.as_str().map(str::to_owned))
                        .collect(),
                ),
                (
                    FieldKind::Text { .. }
                    | FieldKind::LongText { .. }
                    | FieldKind::Url { .. }
                    | FieldKind::Choice(_),
                    Bson::String(text),
                ) => Value::Text(text.clone()),
                _ => return None,
            };
            Some((name.clone(), value))
        })
        .collect()
}

fn date_of(document: &Document, field: &str) -> Option<DateTime<Utc>> {
    document
        .get(field)
        .and_then(lenient::date_of)
        .map(BsonTime::to_chrono)
}

fn item_from(resource: &'static ResourceSpec, document: &Document) -> Result<Item, StoreError> {
    let id = document
        .get_object_id("_id")
        .map_err(StoreError::backend)?
        .to_hex();
    let Some(owner) = document.get("userId").and_then(lenient::id_of) else {
        return Err(StoreError::message(format!("item {id} has no userId")));
    };
    let position = match document.get("order") {
        Some(Bson::Int32(n)) => i64::from(*n),
        Some(Bson::Int64(n)) => *n,
        Some(Bson::Double(n)) => *n as i64,
        _ => 0,
    };
    let created_at = date_of(document, "createdAt").unwrap_or_default();
    Ok(Item {
        id: ItemId::parse(&id).map_err(StoreError::backend)?,
        owner: UserId::parse(&owner.to_hex()).map_err(StoreError::backend)?,
        resource,
        fields: record_from(&resource.schema, document),
        position,
        created_at,
        updated_at: date_of(document, "updatedAt").unwrap_or(created_at),
        deleted_at: date_of(document, "deletedAt"),
    })
}

fn sort(ordering: Ordering) -> Document {
    match ordering {
        Ordering::Manual => doc! { "order": 1, "createdAt": 1, "_id": 1 },
        Ordering::LatestBy(field) => {
            let mut sort = Document::new();
            sort.insert(field, -1);
            sort.insert("createdAt", -1);
            sort.insert("_id", -1);
            sort
        }
        Ordering::Newest => doc! { "createdAt": -1, "_id": -1 },
    }
}

/// The owner's live items of a resource. `deletedAt` is matched with `$in: [null]`, which
/// MongoDB treats exactly as `deletedAt: null` (null or missing) and the test stand-in
/// evaluates correctly (docs/mongodb-stand-in.md).
fn live(owner: &UserId) -> Result<Document, StoreError> {
    Ok(doc! { "userId": same_id(owner.as_str())?, "deletedAt": { "$in": [Bson::Null] } })
}

impl MongoStore {
    fn items(&self, resource: &ResourceSpec) -> Collection<Document> {
        self.database.collection(resource.collection)
    }

    fn settings_of(&self, kind: &SettingsKind) -> Collection<Document> {
        self.database.collection(kind.collection)
    }

    async fn find_items(
        &self,
        resource: &'static ResourceSpec,
        filter: Document,
        options: Option<FindOptions>,
    ) -> Result<Vec<Item>, StoreError> {
        let documents: Vec<Document> = self
            .items(resource)
            .find(filter)
            .with_options(options)
            .await
            .map_err(translate)?
            .try_collect()
            .await
            .map_err(translate)?;
        documents.iter().map(|d| item_from(resource, d)).collect()
    }

    async fn find_one_item(
        &self,
        resource: &'static ResourceSpec,
        filter: Document,
    ) -> Result<Option<Item>, StoreError> {
        let found = self
            .items(resource)
            .find_one(filter)
            .await
            .map_err(translate)?;
        found.map(|d| item_from(resource, &d)).transpose()
    }

    /// Creates the per-resource and per-kind indexes that are missing.
    pub(crate) async fn ensure_portfolio_indexes(
        &self,
        kinds: &[&'static SettingsKind],
    ) -> Result<(), StoreError> {
        for resource in RESOURCES {
            let mut wanted = vec![Wanted::new(
                doc! { "userId": 1, "deletedAt": 1 },
                format!("{}_owner_live", resource.collection),
            )];
            if resource.features.slug_from.is_some() {
                wanted.push(
                    Wanted::new(
                        doc! { "userId": 1, "slug": 1 },
                        format!("{}_slug_unique", resource.collection),
                    )
                    .unique(),
                );
            }
            indexes::ensure(&self.items(resource), &wanted).await?;
        }
        for kind in kinds {
            let wanted = Wanted::new(
                doc! { "userId": 1 },
                format!("{}_user_unique", kind.collection),
            )
            .unique();
            indexes::ensure(&self.settings_of(kind), &[wanted]).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl PortfolioRepository for MongoStore {
    async fn insert_item(&self, item: &Item) -> Result<(), StoreError> {
        let mut document = doc! {
            "_id": oid(item.id.as_str())?,
            "userId": oid(item.owner.as_str())?,
            "order": item.position,
            "createdAt": time(item.created_at),
            "updatedAt": time(item.updated_at),
            "deletedAt": item.deleted_at.map_or(Bson::Null, |at| Bson::DateTime(time(at))),
        };
        document.extend(fields_to_document(&item.fields)?);
        self.items(item.resource)
            .insert_one(document)
            .await
            .map(drop)
            .map_err(translate)
    }

    async fn find_item(
        &self,
        resource: &'static ResourceSpec,
        owner: &UserId,
        id: &ItemId,
    ) -> Result<Option<Item>, StoreError> {
        let mut filter = live(owner)?;
        filter.insert("_id", oid(id.as_str())?);
        self.find_one_item(resource, filter).await
    }

    async fn find_item_by_slug(
        &self,
        resource: &'static ResourceSpec,
        owner: &UserId,
        slug: &str,
    ) -> Result<Option<Item>, StoreError> {
        let mut filter = live(owner)?;
        filter.insert("slug", slug);
        self.find_one_item(resource, filter).await
    }

    async fn slug_taken(
        &self,
        resource: &'static ResourceSpec,
        owner: &UserId,
        slug: &str,
        except: Option<&ItemId>,
    ) -> Result<bool, StoreError> {
        let mut filter = doc! { "userId": same_id(owner.as_str())?, "slug": slug };
        if let Some(except) = except {
            filter.insert("_id", doc! { "$ne": oid(except.as_str())? });
        }
        Ok(self.find_one_item(resource, filter).await?.is_some())
    }

    async fn list_items(
        &self,
        resource: &'static ResourceSpec,
        owner: &UserId,
        query: &ListQuery,
    ) -> Result<Page<Item>, StoreError> {
        let mut filter = live(owner)?;
        if let Some(field) = query.only_true {
            filter.insert(field, true);
        }
        // Counted from the matching ids: the test stand-in's count_documents miscounts filters
        // on ObjectId fields (docs/mongodb-stand-in.md); a portfolio section is small.
        let ids: Vec<Document> = self
            .items(resource)
            .find(filter.clone())
            .projection(doc! { "_id": 1 })
            .await
            .map_err(translate)?
            .try_collect()
            .await
            .map_err(translate)?;
        let total = ids.len() as u64;
        let request = query.page.unwrap_or(PageRequest {
            page: 1,
            limit: u32::try_from(total).unwrap_or(u32::MAX).max(1),
        });
        let options = FindOptions::builder()
            .sort(sort(resource.ordering))
            .skip(request.offset())
            .limit(i64::from(request.limit))
            .build();
        let items = self.find_items(resource, filter, Some(options)).await?;
        Ok(Page {
            items,
            total,
            request,
        })
    }

    async fn update_item(&self, item: &Item, changed: &FieldNames) -> Result<bool, StoreError> {
        let mut filter = live(&item.owner)?;
        filter.insert("_id", oid(item.id.as_str())?);
        let mut update = changes_of(&item.fields, changed)?;
        let set = update
            .get_document_mut("$set")
            .map_err(StoreError::backend)?;
        set.insert("order", item.position);
        set.insert("updatedAt", time(item.updated_at));
        let result = self
            .items(item.resource)
            .update_one(filter, update)
            .await
            .map_err(translate)?;
        Ok(result.matched_count == 1)
    }

    async fn soft_delete_item(
        &self,
        resource: &'static ResourceSpec,
        owner: &UserId,
        id: &ItemId,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut filter = live(owner)?;
        filter.insert("_id", oid(id.as_str())?);
        let result = self
            .items(resource)
            .update_one(
                filter,
                doc! { "$set": { "deletedAt": time(at), "updatedAt": time(at) } },
            )
            .await
            .map_err(translate)?;
        Ok(result.matched_count == 1)
    }

    async fn set_positions(
        &self,
        resource: &'static ResourceSpec,
        owner: &UserId,
        ids: &[ItemId],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for (position, id) in ids.iter().enumerate() {
            let mut filter = live(owner)?;
            filter.insert("_id", oid(id.as_str())?);
            let position = i64::try_from(position).unwrap_or(i64::MAX);
            self.items(resource)
                .update_one(
                    filter,
                    doc! { "$set": { "order": position, "updatedAt": time(at) } },
                )
                .await
                .map_err(translate)?;
        }
        Ok(())
    }

    async fn items_of(&self, owner: &UserId) -> Result<Vec<Item>, StoreError> {
        let mut all = Vec::new();
        for resource in RESOURCES {
            let filter = doc! { "userId": same_id(owner.as_str())? };
            all.extend(self.find_items(resource, filter, None).await?);
        }
        Ok(all)
    }

    async fn delete_items_of(&self, owner: &UserId) -> Result<(), StoreError> {
        for resource in RESOURCES {
            self.items(resource)
                .delete_many(doc! { "userId": same_id(owner.as_str())? })
                .await
                .map_err(translate)?;
        }
        Ok(())
    }
}

#[async_trait]
impl SettingsRepository for MongoStore {
    async fn load_settings(
        &self,
        kind: &'static SettingsKind,
        owner: &UserId,
    ) -> Result<Option<SettingsDocument>, StoreError> {
        let found = self
            .settings_of(kind)
            .find_one(doc! { "userId": same_id(owner.as_str())? })
            .await
            .map_err(translate)?;
        Ok(found.map(|document| {
            let created_at = date_of(&document, "createdAt").unwrap_or_default();
            SettingsDocument {
                fields: record_from(&kind.schema, &document),
                created_at,
                updated_at: date_of(&document, "updatedAt").unwrap_or(created_at),
            }
        }))
    }

    async fn save_settings(
        &self,
        kind: &'static SettingsKind,
        owner: &UserId,
        document: &SettingsDocument,
        changed: &FieldNames,
    ) -> Result<(), StoreError> {
        // An upsert: the changed fields always, the rest of the document only when it is new.
        let mut update = changes_of(&document.fields, changed)?;
        update
            .get_document_mut("$set")
            .map_err(StoreError::backend)?
            .insert("updatedAt", time(document.updated_at));
        let mut on_insert = doc! {
            "userId": oid(owner.as_str())?,
            "createdAt": time(document.created_at),
        };
        for (field, value) in document.fields.iter() {
            if !changed.contains(field) {
                on_insert.insert(field, to_bson(value)?);
            }
        }
        update.insert("$setOnInsert", on_insert);
        let filter = doc! { "userId": same_id(owner.as_str())? };
        let collection = self.settings_of(kind);
        let upsert = || {
            collection
                .update_one(filter.clone(), update.clone())
                .upsert(true)
        };
        match upsert().await.map_err(translate) {
            // Two first saves raced and the other inserted: this one is now an update.
            Err(StoreError::Duplicate { .. }) => upsert().await.map(drop).map_err(translate),
            other => other.map(drop),
        }
    }

    async fn delete_settings_of(
        &self,
        owner: &UserId,
        kinds: &[&'static SettingsKind],
    ) -> Result<(), StoreError> {
        for kind in kinds {
            self.settings_of(kind)
                .delete_many(doc! { "userId": same_id(owner.as_str())? })
                .await
                .map_err(translate)?;
        }
        Ok(())
    }
}
