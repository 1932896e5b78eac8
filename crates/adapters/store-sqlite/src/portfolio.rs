//! Portfolio items and settings documents as rows whose fields are a JSON object. Dates are
//! kept as epoch milliseconds so that `json_extract` orders them.
//!
//! Every resource's items share one `portfolio_items` table (a unique index on resource, owner and
//! slug); settings documents share one `settings` table keyed by kind and owner.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kernel::record::{FieldKind, FieldNames, Record, Schema, Value};
use kernel::settings::{SettingsDocument, SettingsKind, SettingsRepository};
use kernel::{Page, PageRequest, StoreError, UserId};
use portfolio_core::model::{Item, ItemId, Ordering, ResourceSpec};
use portfolio_core::ports::{ListQuery, PortfolioRepository};
use portfolio_core::resources::resource;
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension as _, Row, params, params_from_iter};
use serde_json::{Map, Value as Json};

use crate::db::{CachedStatements as _, SqliteStore, id, millis, time, time_opt};

fn to_json(record: &Record) -> String {
    let object: Map<String, Json> = record
        .iter()
        .map(|(field, value)| {
            let json = match value {
                Value::Null => Json::Null,
                Value::Bool(flag) => Json::Bool(*flag),
                Value::Int(number) => Json::from(*number),
                Value::Float(number) => Json::from(*number),
                Value::Text(text) | Value::Ref(text) => Json::String(text.clone()),
                Value::Date(at) => Json::from(millis(*at)),
                Value::List(items) => Json::from(items.clone()),
            };
            (field.to_owned(), json)
        })
        .collect();
    Json::Object(object).to_string()
}

/// Reads the fields the schema knows; anything else in the row is ignored.
fn from_json(schema: &Schema, raw: &str) -> Record {
    let Ok(Json::Object(object)) = serde_json::from_str::<Json>(raw) else {
        return Record::default();
    };
    object
        .into_iter()
        .filter_map(|(name, json)| {
            let spec = schema.field(&name)?;
            let value = match (spec.kind, json) {
                (FieldKind::Bool, Json::Bool(flag)) => Value::Bool(flag),
                (FieldKind::Integer { .. }, json) => Value::Int(json.as_i64()?),
                (FieldKind::Decimal { .. }, json) => Value::Float(json.as_f64()?),
                (FieldKind::Date, json) => Value::Date(time(json.as_i64()?)),
                (FieldKind::Ref(_), Json::String(text)) => Value::Ref(text),
                (FieldKind::Tags { .. }, Json::Array(items)) => Value::List(
                    items
                        .into_iter()
                        .filter_map(|item| item.as_str().map(str::to_owned))
                        .collect(),
                ),
                (_, Json::String(text)) => Value::Text(text),
                _ => return None,
            };
            Some((name, value))
        })
        .collect()
}

const ITEM_COLUMNS: &str =
    "id, resource, owner, fields, position, created_at, updated_at, deleted_at";

fn item_from(row: &Row<'_>) -> rusqlite::Result<Item> {
    let name: String = row.get(1)?;
    let spec = resource(&name).ok_or_else(|| {
        rusqlite::Error::InvalidColumnType(1, name.clone(), rusqlite::types::Type::Text)
    })?;
    Ok(Item {
        id: id(&row.get::<_, String>(0)?, ItemId::parse)?,
        resource: spec,
        owner: id(&row.get::<_, String>(2)?, UserId::parse)?,
        fields: from_json(&spec.schema, &row.get::<_, String>(3)?),
        position: row.get(4)?,
        created_at: time(row.get(5)?),
        updated_at: time(row.get(6)?),
        deleted_at: time_opt(row.get(7)?),
    })
}

fn slug_of(item: &Item) -> Option<String> {
    item.fields
        .get("slug")
        .and_then(Value::as_text)
        .map(str::to_owned)
}

/// The ORDER BY clause of a resource; field names come from the static declarations.
fn order_by(ordering: Ordering) -> String {
    match ordering {
        Ordering::Manual => "position ASC, created_at ASC, id ASC".to_owned(),
        Ordering::LatestBy(field) => {
            format!("json_extract(fields, '$.{field}') DESC, created_at DESC, id DESC")
        }
        Ordering::Newest => "created_at DESC, id DESC".to_owned(),
    }
}

#[async_trait]
impl PortfolioRepository for SqliteStore {
    async fn insert_item(&self, item: &Item) -> Result<(), StoreError> {
        let item = item.clone();
        self.call(move |c| {
            c.execute_cached(
                "INSERT INTO portfolio_items (id, resource, owner, fields, slug, position, created_at, updated_at, deleted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    item.id.as_str(),
                    item.resource.name,
                    item.owner.as_str(),
                    to_json(&item.fields),
                    slug_of(&item),
                    item.position,
                    millis(item.created_at),
                    millis(item.updated_at),
                    item.deleted_at.map(millis),
                ],
            )
            .map(|_| ())
        })
        .await
    }

    async fn find_item(
        &self,
        resource: &'static ResourceSpec,
        owner: &UserId,
        id: &ItemId,
    ) -> Result<Option<Item>, StoreError> {
        let (owner, id) = (owner.to_string(), id.to_string());
        self.read(move |c| {
            c.query_row_cached(
                &format!("SELECT {ITEM_COLUMNS} FROM portfolio_items WHERE id = ?1 AND resource = ?2 AND owner = ?3 AND deleted_at IS NULL"),
                params![id, resource.name, owner],
                item_from,
            )
            .optional()
        })
        .await
    }

    async fn find_item_by_slug(
        &self,
        resource: &'static ResourceSpec,
        owner: &UserId,
        slug: &str,
    ) -> Result<Option<Item>, StoreError> {
        let (owner, slug) = (owner.to_string(), slug.to_owned());
        self.read(move |c| {
            c.query_row_cached(
                &format!("SELECT {ITEM_COLUMNS} FROM portfolio_items WHERE slug = ?1 AND resource = ?2 AND owner = ?3 AND deleted_at IS NULL"),
                params![slug, resource.name, owner],
                item_from,
            )
            .optional()
        })
        .await
    }

    async fn slug_taken(
        &self,
        resource: &'static ResourceSpec,
        owner: &UserId,
        slug: &str,
        except: Option<&ItemId>,
    ) -> Result<bool, StoreError> {
        let (owner, slug) = (owner.to_string(), slug.to_owned());
        let except = except.map(ToString::to_string).unwrap_or_default();
        self.read(move |c| {
            c.query_row_cached(
                "SELECT EXISTS (SELECT 1 FROM portfolio_items WHERE slug = ?1 AND resource = ?2 AND owner = ?3 AND id != ?4)",
                params![slug, resource.name, owner, except],
                |row| row.get(0),
            )
        })
        .await
    }

    async fn list_items(
        &self,
        resource: &'static ResourceSpec,
        owner: &UserId,
        query: &ListQuery,
    ) -> Result<Page<Item>, StoreError> {
        let owner = owner.to_string();
        let query = *query;
        self.read(move |c| {
            let mut filter = "resource = ?1 AND owner = ?2 AND deleted_at IS NULL".to_owned();
            if let Some(field) = query.only_true {
                filter.push_str(&format!(" AND json_extract(fields, '$.{field}') = 1"));
            }
            let total: u64 = c.query_row_cached(
                &format!("SELECT COUNT(*) FROM portfolio_items WHERE {filter}"),
                params![resource.name, owner],
                |row| row.get(0),
            )?;
            let request = query.page.unwrap_or(PageRequest {
                page: 1,
                limit: u32::try_from(total).unwrap_or(u32::MAX).max(1),
            });
            let bindings: Vec<SqlValue> = vec![
                resource.name.to_owned().into(),
                owner.into(),
                i64::from(request.limit).into(),
                i64::try_from(request.offset()).unwrap_or(i64::MAX).into(),
            ];
            let mut statement = c.prepare_cached(&format!(
                "SELECT {ITEM_COLUMNS} FROM portfolio_items WHERE {filter} ORDER BY {} LIMIT ?3 OFFSET ?4",
                order_by(resource.ordering)
            ))?;
            let items = statement
                .query_map(params_from_iter(bindings), item_from)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Page {
                items,
                total,
                request,
            })
        })
        .await
    }

    /// Writes the record whole: all it stores is what this service wrote, so nothing outside
    /// `changed` differs.
    async fn update_item(&self, item: &Item, _changed: &FieldNames) -> Result<bool, StoreError> {
        let item = item.clone();
        self.call(move |c| {
            c.execute_cached(
                "UPDATE portfolio_items SET fields = ?1, slug = ?2, position = ?3, updated_at = ?4 WHERE id = ?5 AND resource = ?6 AND owner = ?7 AND deleted_at IS NULL",
                params![
                    to_json(&item.fields),
                    slug_of(&item),
                    item.position,
                    millis(item.updated_at),
                    item.id.as_str(),
                    item.resource.name,
                    item.owner.as_str(),
                ],
            )
            .map(|changed| changed == 1)
        })
        .await
    }

    async fn soft_delete_item(
        &self,
        resource: &'static ResourceSpec,
        owner: &UserId,
        id: &ItemId,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (owner, id) = (owner.to_string(), id.to_string());
        self.call(move |c| {
            c.execute_cached(
                "UPDATE portfolio_items SET deleted_at = ?1, updated_at = ?1 WHERE id = ?2 AND resource = ?3 AND owner = ?4 AND deleted_at IS NULL",
                params![millis(at), id, resource.name, owner],
            )
            .map(|changed| changed == 1)
        })
        .await
    }

    async fn set_positions(
        &self,
        resource: &'static ResourceSpec,
        owner: &UserId,
        ids: &[ItemId],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let owner = owner.to_string();
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        self.call(move |c| {
            let transaction = c.unchecked_transaction()?;
            {
                let mut statement = transaction.prepare_cached(
                    "UPDATE portfolio_items SET position = ?1, updated_at = ?2 WHERE id = ?3 AND resource = ?4 AND owner = ?5 AND deleted_at IS NULL",
                )?;
                for (position, id) in ids.iter().enumerate() {
                    let position = i64::try_from(position).unwrap_or(i64::MAX);
                    statement.execute(params![position, millis(at), id, resource.name, owner])?;
                }
            }
            transaction.commit()
        })
        .await
    }

    async fn items_of(&self, owner: &UserId) -> Result<Vec<Item>, StoreError> {
        let owner = owner.to_string();
        self.read(move |c| {
            let mut statement = c.prepare_cached(&format!(
                "SELECT {ITEM_COLUMNS} FROM portfolio_items WHERE owner = ?1 ORDER BY resource, created_at, id"
            ))?;
            statement
                .query_map(params![owner], item_from)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .await
    }

    async fn delete_items_of(&self, owner: &UserId) -> Result<(), StoreError> {
        let owner = owner.to_string();
        self.call(move |c| {
            c.execute_cached(
                "DELETE FROM portfolio_items WHERE owner = ?1",
                params![owner],
            )
            .map(|_| ())
        })
        .await
    }
}

#[async_trait]
impl SettingsRepository for SqliteStore {
    async fn load_settings(
        &self,
        kind: &'static SettingsKind,
        owner: &UserId,
    ) -> Result<Option<SettingsDocument>, StoreError> {
        let owner = owner.to_string();
        self.read(move |c| {
            c.query_row_cached(
                "SELECT fields, created_at, updated_at FROM settings WHERE kind = ?1 AND owner = ?2",
                params![kind.name, owner],
                |row| {
                    Ok(SettingsDocument {
                        fields: from_json(&kind.schema, &row.get::<_, String>(0)?),
                        created_at: time(row.get(1)?),
                        updated_at: time(row.get(2)?),
                    })
                },
            )
            .optional()
        })
        .await
    }

    async fn save_settings(
        &self,
        kind: &'static SettingsKind,
        owner: &UserId,
        document: &SettingsDocument,
        _changed: &FieldNames,
    ) -> Result<(), StoreError> {
        let owner = owner.to_string();
        let document = document.clone();
        self.call(move |c| {
            c.execute_cached(
                "INSERT INTO settings (kind, owner, fields, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (kind, owner) DO UPDATE SET fields = excluded.fields, updated_at = excluded.updated_at",
                params![
                    kind.name,
                    owner,
                    to_json(&document.fields),
                    millis(document.created_at),
                    millis(document.updated_at),
                ],
            )
            .map(|_| ())
        })
        .await
    }

    async fn delete_settings_of(
        &self,
        owner: &UserId,
        kinds: &[&'static SettingsKind],
    ) -> Result<(), StoreError> {
        let owner = owner.to_string();
        let kinds: Vec<&'static str> = kinds.iter().map(|kind| kind.name).collect();
        self.call(move |c| {
            let mut statement =
                c.prepare_cached("DELETE FROM settings WHERE kind = ?1 AND owner = ?2")?;
            for kind in kinds {
                statement.execute(params![kind, owner])?;
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use crate::db::tests::store;

    port_contracts::portfolio_item_contract!(|| async { store() });
    port_contracts::settings_contract!(|| async { store() });
}
