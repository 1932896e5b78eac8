//! The indexes the adapter relies on, created only where no index on the same keys exists.
//!
//! A database the NestJS version filled already has Mongoose's indexes (`email_1`,
//! `expiresAt_1`, `userId_1_deletedAt_1`, …). MongoDB refuses a second index on the same keys
//! under another name (IndexOptionsConflict), so an existing index on our keys is reused
//! whatever its name; when it lacks a property we rely on (uniqueness, expiry) the log says
//! what that means and how to fix it, and the service starts.

use std::time::Duration;

use futures_util::TryStreamExt as _;
use kernel::StoreError;
use mongodb::bson::{Bson, Document};
use mongodb::error::ErrorKind;
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};
use tracing::{info, warn};

/// An index the adapter wants on a collection.
#[derive(Clone, Debug)]
pub struct Wanted {
    pub keys: Document,
    pub name: String,
    pub unique: bool,
    /// Documents expire this long after the date in the (single) key field.
    pub expire_after: Option<Duration>,
}

impl Wanted {
    pub fn new(keys: Document, name: impl Into<String>) -> Self {
        Self {
            keys,
            name: name.into(),
            unique: false,
            expire_after: None,
        }
    }

    #[must_use]
    pub fn unique(self) -> Self {
        Self {
            unique: true,
            ..self
        }
    }

    #[must_use]
    pub fn expiring(self, after: Duration) -> Self {
        Self {
            expire_after: Some(after),
            ..self
        }
    }

    fn model(&self) -> IndexModel {
        IndexModel::builder()
            .keys(self.keys.clone())
            .options(
                IndexOptions::builder()
                    .name(self.name.clone())
                    .unique(self.unique.then_some(true))
                    .expire_after(self.expire_after)
                    .build(),
            )
            .build()
    }
}

/// What to do about one wanted index, given those that exist.
#[derive(Debug, PartialEq)]
pub enum Decision {
    Create,
    /// An index on the same keys exists under `name`; `lacking` lists what it does not give.
    Reuse {
        name: String,
        lacking: Vec<&'static str>,
    },
}

/// Keys compared by field, order and direction, whatever number type spells the direction.
fn key_spec(keys: &Document) -> Vec<(String, String)> {
    keys.iter()
        .map(|(field, direction)| {
            let direction = match direction {
                Bson::Int32(n) => n.to_string(),
                Bson::Int64(n) => n.to_string(),
                #[allow(clippy::cast_possible_truncation)]
                Bson::Double(n) => (*n as i64).to_string(),
                other => other.to_string(),
            };
            (field.clone(), direction)
        })
        .collect()
}

/// What `index` lacks of `wanted`'s guarantees. A partial or collated unique index does not
/// make every value unique, so it does not count as `unique`.
fn lacking(wanted: &Wanted, index: &IndexModel) -> Vec<&'static str> {
    let options = index.options.as_ref();
    let mut lacking = Vec::new();
    let fully_unique = options.is_some_and(|o| {
        o.unique == Some(true) && o.partial_filter_expression.is_none() && o.collation.is_none()
    });
    if wanted.unique && !fully_unique {
        lacking.push("unique");
    }
    if wanted.expire_after.is_some() && options.and_then(|o| o.expire_after).is_none() {
        lacking.push("expireAfterSeconds");
    }
    lacking
}

/// Decides, for `wanted`, whether to create it or reuse one of `existing` on the same keys
/// (the one that gives the most of what is wanted).
#[must_use]
pub fn decide(wanted: &Wanted, existing: &[IndexModel]) -> Decision {
    let keys = key_spec(&wanted.keys);
    existing
        .iter()
        .filter(|index| key_spec(&index.keys) == keys)
        .map(|index| (index, lacking(wanted, index)))
        .min_by_key(|(_, lacking)| lacking.len())
        .map_or(Decision::Create, |(index, lacking)| Decision::Reuse {
            name: index
                .options
                .as_ref()
                .and_then(|o| o.name.clone())
                .unwrap_or_else(|| wanted.name.clone()),
            lacking,
        })
}

/// Creates what is missing of `wanted` on `collection`, reusing indexes on the same keys.
pub async fn ensure<T: Send + Sync>(
    collection: &Collection<T>,
    wanted: &[Wanted],
) -> Result<(), StoreError> {
    let existing = existing(collection).await?;
    let mut missing = Vec::new();
    for index in wanted {
        match decide(index, &existing) {
            Decision::Create => missing.push(index.model()),
            Decision::Reuse { name, lacking } if lacking.is_empty() => {
                if name != index.name {
                    info!(collection = collection.name(), index = %name, "reusing an existing index");
                }
            }
            Decision::Reuse { name, lacking } => warn!(
                collection = collection.name(),
                index = %name,
                keys = %index.keys,
                lacking = ?lacking,
                "an existing index lacks a property this service relies on; it is kept as it \
                 is: without `unique` the service's own checks are the only guard against \
                 duplicates, without `expireAfterSeconds` expired documents stay until the \
                 scheduled cleanup. Drop the index and restart to have it recreated."
            ),
        }
    }
    if !missing.is_empty() {
        collection
            .create_indexes(missing)
            .await
            .map_err(StoreError::backend)?;
    }
    Ok(())
}

/// The collection's indexes; none when the collection does not exist yet.
async fn existing<T: Send + Sync>(
    collection: &Collection<T>,
) -> Result<Vec<IndexModel>, StoreError> {
    const NAMESPACE_NOT_FOUND: i32 = 26;
    match collection.list_indexes().await {
        Ok(cursor) => cursor.try_collect().await.map_err(StoreError::backend),
        Err(error) if matches!(error.kind.as_ref(), ErrorKind::Command(command) if command.code == NAMESPACE_NOT_FOUND) => {
            Ok(Vec::new())
        }
        Err(error) => Err(StoreError::backend(error)),
    }
}

#[cfg(test)]
mod tests {
    use mongodb::bson::doc;

    use super::*;

    fn mongoose(keys: Document, name: &str, unique: bool, ttl: Option<u64>) -> IndexModel {
        IndexModel::builder()
            .keys(keys)
            .options(
                IndexOptions::builder()
                    .name(name.to_owned())
                    .unique(unique.then_some(true))
                    .expire_after(ttl.map(Duration::from_secs))
                    .build(),
            )
            .build()
    }

    #[test]
    fn an_index_on_the_same_keys_is_reused_whatever_its_name_and_number_type() {
        let existing = [
            mongoose(doc! { "_id": 1 }, "_id_", false, None),
            mongoose(doc! { "email": 1_i32 }, "email_1", true, None),
            mongoose(
                doc! { "userId": 1.0, "deletedAt": 1_i64 },
                "userId_1_deletedAt_1",
                false,
                None,
            ),
        ];
        assert_eq!(
            decide(
                &Wanted::new(doc! { "email": 1 }, "accounts_email_unique").unique(),
                &existing
            ),
            Decision::Reuse {
                name: "email_1".into(),
                lacking: vec![]
            }
        );
        assert_eq!(
            decide(
                &Wanted::new(doc! { "userId": 1, "deletedAt": 1 }, "projects_owner_live"),
                &existing
            ),
            Decision::Reuse {
                name: "userId_1_deletedAt_1".into(),
                lacking: vec![]
            }
        );
    }

    #[test]
    fn a_partial_unique_index_is_not_unique_and_a_full_one_is_preferred() {
        let partial = IndexModel::builder()
            .keys(doc! { "email": 1 })
            .options(
                IndexOptions::builder()
                    .name("email_active".to_owned())
                    .unique(true)
                    .partial_filter_expression(doc! { "isActive": true })
                    .build(),
            )
            .build();
        let wanted = Wanted::new(doc! { "email": 1 }, "accounts_email_unique").unique();
        assert_eq!(
            decide(&wanted, std::slice::from_ref(&partial)),
            Decision::Reuse {
                name: "email_active".into(),
                lacking: vec!["unique"]
            }
        );
        let full = mongoose(doc! { "email": 1 }, "email_1", true, None);
        assert_eq!(
            decide(&wanted, &[partial, full]),
            Decision::Reuse {
                name: "email_1".into(),
                lacking: vec![]
            }
        );
    }

    #[test]
    fn key_order_and_direction_matter() {
        let existing = [
            mongoose(doc! { "deletedAt": 1, "userId": 1 }, "a", false, None),
            mongoose(doc! { "email": -1 }, "b", false, None),
        ];
        for wanted in [
            Wanted::new(doc! { "userId": 1, "deletedAt": 1 }, "x"),
            Wanted::new(doc! { "email": 1 }, "y"),
        ] {
            assert_eq!(decide(&wanted, &existing), Decision::Create, "{wanted:?}");
        }
    }

    #[test]
    fn a_reused_index_names_the_guarantees_it_lacks() {
        let existing = [
            mongoose(doc! { "username": 1 }, "username_1", false, None),
            mongoose(doc! { "expiresAt": 1 }, "expiresAt_1", false, None),
        ];
        assert_eq!(
            decide(
                &Wanted::new(doc! { "username": 1 }, "users_username_unique").unique(),
                &existing
            ),
            Decision::Reuse {
                name: "username_1".into(),
                lacking: vec!["unique"]
            }
        );
        assert_eq!(
            decide(
                &Wanted::new(doc! { "expiresAt": 1 }, "sessions_expiry_ttl")
                    .expiring(Duration::ZERO),
                &existing
            ),
            Decision::Reuse {
                name: "expiresAt_1".into(),
                lacking: vec!["expireAfterSeconds"]
            }
        );
    }
}
