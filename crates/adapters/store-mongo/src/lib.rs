//! MongoDB adapters of the identity, portfolio and settings storage ports. Collection and
//! field names follow the NestJS version's schemas (`users`, `accounts`, `sessions`,
//! `projects`, …, `portfolioprofiles`; camelCase; ObjectId `_id`), so an existing database can
//! be used as it is. At connect, indexes are created where no index on the same keys exists
//! (an existing database keeps its own).
//!
//! Writes are operator updates of the fields a request changed (`FieldNames`): nothing stored is
//! replaced or `$unset` unless a client cleared it, so what other writers left survives. Where the
//! tests' MongoDB stand-in differs from MongoDB: `docs/mongodb-stand-in.md`.

mod documents;
mod identity;
mod indexes;
mod lenient;
#[cfg(test)]
mod nestjs_tests;
mod portfolio;

use kernel::StoreError;
use kernel::settings::SettingsKind;
use mongodb::bson::{Bson, doc};
use mongodb::{Client, Collection, Database};

use crate::documents::{AccountDoc, SessionDoc, UserDoc};
use crate::indexes::Wanted;

#[derive(Clone)]
pub struct MongoStore {
    database: Database,
}

const DEFAULT_DATABASE: &str = "console";

/// Checks a connection string as the driver reads it, without connecting.
///
/// # Errors
/// What is wrong with it, never the string itself (it may hold a password).
pub fn check_uri(uri: &str) -> Result<(), String> {
    mongodb::options::ConnectionString::parse(uri)
        .map(drop)
        .map_err(|_| "expected a mongodb:// or mongodb+srv:// connection string".to_owned())
}

impl MongoStore {
    /// Connects, picks the database (`database`, else the URI's, else `console`) and creates
    /// the indexes, those of each settings kind's collection included.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the URI is invalid or the server cannot be reached.
    pub async fn connect(
        uri: &str,
        database: Option<&str>,
        settings_kinds: &[&'static SettingsKind],
    ) -> Result<Self, StoreError> {
        let client = Client::with_uri_str(uri)
            .await
            .map_err(StoreError::backend)?;
        let name = database
            .map(str::to_owned)
            .or_else(|| client.default_database().map(|d| d.name().to_owned()))
            .unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
        let store = Self {
            database: client.database(&name),
        };
        store.ping().await?;
        store.ensure_indexes(settings_kinds).await?;
        Ok(store)
    }

    /// # Errors
    /// [`StoreError::Backend`] when the server does not answer.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.database
            .run_command(doc! { "ping": 1 })
            .await
            .map(drop)
            .map_err(StoreError::backend)
    }

    /// A few facts from `serverStatus` for the admin metrics: version, uptime, connections,
    /// operation counters, resident memory (MiB), as dotted names (`connections.current`).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the server does not answer or refuses the command (it
    /// needs the `serverStatus` privilege, which `clusterMonitor` grants).
    pub async fn server_status(&self) -> Result<Vec<(String, String)>, StoreError> {
        const FIELDS: [&str; 12] = [
            "version",
            "uptime",
            "connections.current",
            "connections.available",
            "connections.totalCreated",
            "opcounters.insert",
            "opcounters.query",
            "opcounters.update",
            "opcounters.delete",
            "opcounters.getmore",
            "opcounters.command",
            "mem.resident",
        ];
        let status = self
            .database
            .run_command(doc! { "serverStatus": 1 })
            .await
            .map_err(StoreError::backend)?;
        Ok(FIELDS
            .iter()
            .filter_map(|field| {
                let mut path = field.split('.');
                let first = status.get(path.next()?)?;
                let value = path.try_fold(first, |value, key| value.as_document()?.get(key))?;
                let text = match value {
                    Bson::String(text) => text.clone(),
                    Bson::Int32(n) => n.to_string(),
                    Bson::Int64(n) => n.to_string(),
                    Bson::Double(n) => n.to_string(),
                    _ => return None,
                };
                Some(((*field).to_owned(), text))
            })
            .collect())
    }

    pub(crate) fn users(&self) -> Collection<UserDoc> {
        self.database.collection("users")
    }

    pub(crate) fn accounts(&self) -> Collection<AccountDoc> {
        self.database.collection("accounts")
    }

    pub(crate) fn sessions(&self) -> Collection<SessionDoc> {
        self.database.collection("sessions")
    }

    async fn ensure_indexes(
        &self,
        settings_kinds: &[&'static SettingsKind],
    ) -> Result<(), StoreError> {
        indexes::ensure(
            &self.users(),
            &[
                Wanted::new(doc! { "username": 1 }, USERNAME_INDEX).unique(),
                Wanted::new(doc! { "role": 1 }, "users_role"),
            ],
        )
        .await?;
        indexes::ensure(
            &self.accounts(),
            &[
                Wanted::new(doc! { "email": 1 }, EMAIL_INDEX).unique(),
                Wanted::new(doc! { "userId": 1 }, "accounts_user"),
                Wanted::new(
                    doc! { "emailVerificationToken": 1 },
                    "accounts_verification_token",
                ),
                Wanted::new(doc! { "passwordResetToken": 1 }, "accounts_reset_token"),
            ],
        )
        .await?;
        indexes::ensure(
            &self.sessions(),
            &[
                Wanted::new(doc! { "userId": 1, "isActive": 1 }, "sessions_user_active"),
                Wanted::new(doc! { "expiresAt": 1 }, "sessions_expiry_ttl")
                    .expiring(std::time::Duration::ZERO),
            ],
        )
        .await?;
        self.ensure_portfolio_indexes(settings_kinds).await
    }
}

const USERNAME_INDEX: &str = "users_username_unique";
const EMAIL_INDEX: &str = "accounts_email_unique";

/// Translates a driver error, recognising unique-index violations by the violated index's
/// name (ours, Mongoose's `<field>_1`, or the stand-in's `idx_<collection>_<fields>`) rather
/// than the whole message, which also quotes the duplicate value.
pub(crate) fn translate(error: mongodb::error::Error) -> StoreError {
    use mongodb::error::{ErrorKind, WriteFailure};
    if let ErrorKind::Write(WriteFailure::WriteError(write)) = error.kind.as_ref()
        && write.code == 11000
        && let Some(key) = violated_index(&write.message).and_then(duplicate_key)
    {
        return StoreError::Duplicate { key };
    }
    StoreError::backend(error)
}

/// The index named in a duplicate-key message: `… index: email_1 dup key: { … }` (MongoDB)
/// or `… index 'idx_accounts_email'` (nx-27017).
fn violated_index(message: &str) -> Option<&str> {
    if let Some((_, rest)) = message.split_once("index: ") {
        return rest.split_whitespace().next();
    }
    let (_, rest) = message.split_once("index '")?;
    rest.split('\'').next()
}

/// Which uniqueness an index enforces, by the field its name mentions.
fn duplicate_key(index: &str) -> Option<&'static str> {
    ["slug", "username", "email", "userId"]
        .into_iter()
        .find(|field| index.contains(field))
}

#[cfg(test)]
mod translate_tests {
    use super::*;

    #[test]
    fn the_index_name_decides_the_key_not_the_quoted_value() {
        for (message, key) in [
            (
                r#"E11000 duplicate key error collection: console.blogs index: userId_1_slug_1 dup key: { userId: ObjectId('64b0'), slug: "email-tips" }"#,
                Some("slug"),
            ),
            (
                r#"E11000 duplicate key error collection: console.accounts index: email_1 dup key: { email: "username@x.io" }"#,
                Some("email"),
            ),
            (
                r#"E11000 duplicate key error collection: console.users index: users_username_unique dup key: { username: "email" }"#,
                Some("username"),
            ),
            (
                "UNIQUE constraint failed: index 'idx_preferences_userId'",
                Some("userId"),
            ),
            (
                "E11000 duplicate key error collection: c.x index: _id_ dup key: { _id: 1 }",
                None,
            ),
        ] {
            assert_eq!(
                violated_index(message).and_then(duplicate_key),
                key,
                "{message}"
            );
        }
    }
}
