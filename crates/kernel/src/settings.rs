//! Per-user settings documents (preference sets, the portfolio profile): one record of each
//! kind per user, created with the schema's defaults on first read.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::record::{FieldError, FieldNames, Input, Record, Schema};
use crate::{Clock, StoreError, UserId};

/// One kind of settings document.
#[derive(Debug)]
pub struct SettingsKind {
    /// A stable name (also the SQLite discriminator).
    pub name: &'static str,
    /// The MongoDB collection.
    pub collection: &'static str,
    pub schema: Schema,
}

/// A user's document of one kind.
#[derive(Clone, Debug, PartialEq)]
pub struct SettingsDocument {
    pub fields: Record,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Storage of settings documents, keyed by kind and owner.
#[async_trait]
pub trait SettingsRepository: Send + Sync {
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn load_settings(
        &self,
        kind: &'static SettingsKind,
        owner: &UserId,
    ) -> Result<Option<SettingsDocument>, StoreError>;

    /// Stores the owner's document of `kind`: inserts it, or writes the `changed` fields of it
    /// (a field `document` lacks is removed) and `updated_at`, keeping the stored
    /// `created_at` and every other stored field.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn save_settings(
        &self,
        kind: &'static SettingsKind,
        owner: &UserId,
        document: &SettingsDocument,
        changed: &FieldNames,
    ) -> Result<(), StoreError>;

    /// Removes the documents of `owner` of each of `kinds`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn delete_settings_of(
        &self,
        owner: &UserId,
        kinds: &[&'static SettingsKind],
    ) -> Result<(), StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid settings")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads, changes and resets settings documents of any kind.
#[derive(Clone)]
pub struct SettingsService {
    repository: Arc<dyn SettingsRepository>,
    clock: Arc<dyn Clock>,
}

impl SettingsService {
    pub fn new(repository: Arc<dyn SettingsRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { repository, clock }
    }

    /// The owner's document, stored with the defaults first when there is none.
    ///
    /// # Errors
    /// [`SettingsError::Store`] when storage fails.
    pub async fn get(
        &self,
        kind: &'static SettingsKind,
        owner: &UserId,
    ) -> Result<SettingsDocument, SettingsError> {
        match self.find(kind, owner).await? {
            Some(document) => Ok(document),
            // Nothing changes: a document stored meanwhile keeps its fields.
            None => {
                self.store(
                    kind,
                    owner,
                    kind.schema.defaults(),
                    None,
                    &FieldNames::new(),
                )
                .await
            }
        }
    }

    /// The owner's stored document, if one was ever stored (reading creates nothing). Fields
    /// added to the schema after the document was stored read as their defaults.
    ///
    /// # Errors
    /// [`SettingsError::Store`] when storage fails.
    pub async fn find(
        &self,
        kind: &'static SettingsKind,
        owner: &UserId,
    ) -> Result<Option<SettingsDocument>, SettingsError> {
        let stored = self.repository.load_settings(kind, owner).await?;
        Ok(stored.map(|mut document| {
            let mut fields = kind.schema.defaults();
            fields.merge(document.fields);
            document.fields = fields;
            document
        }))
    }

    /// Validates `input` against the kind's schema and applies it; `null` puts a field back to
    /// its default.
    ///
    /// # Errors
    /// [`SettingsError::Invalid`] naming every bad field; nothing is stored then.
    pub async fn update(
        &self,
        kind: &'static SettingsKind,
        owner: &UserId,
        input: Vec<(String, Input)>,
    ) -> Result<SettingsDocument, SettingsError> {
        let changes = kind.schema.patch(input).map_err(SettingsError::Invalid)?;
        let changed = changes.names();
        let (mut fields, created_at) = match self.find(kind, owner).await? {
            Some(document) => (document.fields, Some(document.created_at)),
            None => (kind.schema.defaults(), None),
        };
        fields.merge(changes);
        // A cleared field is back to its default, as every later read shows it.
        let mut document = kind.schema.defaults();
        document.merge(fields);
        self.store(kind, owner, document, created_at, &changed)
            .await
    }

    /// Puts the owner's document back to the defaults.
    ///
    /// # Errors
    /// [`SettingsError::Store`] when storage fails.
    pub async fn reset(
        &self,
        kind: &'static SettingsKind,
        owner: &UserId,
    ) -> Result<SettingsDocument, SettingsError> {
        let stored = self.repository.load_settings(kind, owner).await?;
        let created_at = stored.map(|document| document.created_at);
        let every_field = kind
            .schema
            .fields
            .iter()
            .map(|field| field.name.to_owned())
            .collect();
        self.store(
            kind,
            owner,
            kind.schema.defaults(),
            created_at,
            &every_field,
        )
        .await
    }

    /// Saves `fields`; `created_at` is the stored document's (`None`: it is new).
    async fn store(
        &self,
        kind: &'static SettingsKind,
        owner: &UserId,
        fields: Record,
        created_at: Option<DateTime<Utc>>,
        changed: &FieldNames,
    ) -> Result<SettingsDocument, SettingsError> {
        let now = self.clock.now();
        let document = SettingsDocument {
            fields,
            created_at: created_at.unwrap_or(now),
            updated_at: now,
        };
        self.repository
            .save_settings(kind, owner, &document, changed)
            .await?;
        Ok(document)
    }
}
