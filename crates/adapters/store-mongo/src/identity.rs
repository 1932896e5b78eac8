//! Users, accounts and sessions as documents.

use async_trait::async_trait;
use auth_core::model::{
    Account, AccountId, GeoLocation, ProfileChanges, Role, Session, SessionId, StoredToken,
    TokenPurpose, User, UserId,
};
use auth_core::ports::{AccountRepository, Rotation, SessionRepository, UserRepository};
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt as _;
use kernel::StoreError;
use mongodb::Collection;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::ReturnDocument;
use tracing::warn;

use crate::documents::{AccountDoc, LocationDoc, SessionDoc, UserDoc, oid, time};
use crate::{MongoStore, translate};

/// Equality on a reference field (`userId`, …), matching both spellings: the NestJS version
/// stored some references as strings. An `$in` uses the index on MongoDB as equality does, and
/// is also the form nx-27017 (the test stand-in) evaluates correctly alongside other
/// conditions (docs/mongodb-stand-in.md).
pub(crate) fn same_id(id: &str) -> Result<Document, StoreError> {
    Ok(doc! { "$in": [Bson::ObjectId(oid(id)?), id] })
}

/// The document of `collection` that `filter` finds, as the domain's value.
async fn find_one_as<D, T>(
    collection: &Collection<D>,
    filter: Document,
    into_domain: fn(D) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError>
where
    D: serde::de::DeserializeOwned + Send + Sync,
{
    let found = collection.find_one(filter).await.map_err(translate)?;
    found.map(into_domain).transpose()
}

/// A pattern matching `address` in any capitalisation and nothing else: each letter becomes a
/// class of its two cases (`[aA]`) and every other character a literal, with no
/// case-insensitive flag (which would also fold `ſ` into `s` and the Kelvin sign into `k`).
/// `$` also matches before a final newline, so a match is confirmed in Rust too.
fn any_capitalisation_of(address: &str) -> Document {
    let mut pattern = String::from("^");
    for c in address.chars() {
        let mut upper = c.to_uppercase();
        match (upper.next(), upper.next()) {
            (Some(upper), None) if upper != c => {
                pattern.extend(['[', c, upper, ']']);
            }
            _ if c.is_alphanumeric() => pattern.push(c),
            _ => pattern.extend(['\\', c]),
        }
    }
    pattern.push('$');
    doc! { "$regex": pattern }
}

fn set_optional(update: &mut Document, field: &str, change: &Option<Option<String>>) {
    if let Some(value) = change {
        update.insert(field, value.clone().map_or(Bson::Null, Bson::String));
    }
}

fn token_fields(
    hash_field: &str,
    expires_field: &str,
    token: Option<&StoredToken>,
    at: DateTime<Utc>,
) -> Document {
    let mut set = doc! { "updatedAt": time(at) };
    set.insert(
        hash_field,
        token.map_or(Bson::Null, |t| Bson::String(t.hash.clone())),
    );
    set.insert(
        expires_field,
        token.map_or(Bson::Null, |t| Bson::DateTime(time(t.expires_at))),
    );
    set
}

impl MongoStore {
    /// A user document as the domain's user, its email taken from its account when the
    /// document has none (the NestJS version kept it there only).
    async fn find_user_where(&self, filter: Document) -> Result<Option<User>, StoreError> {
        match self.users().find_one(filter).await.map_err(translate)? {
            Some(found) => self.user_from(found).await.map(Some),
            None => Ok(None),
        }
    }

    async fn user_from(&self, found: UserDoc) -> Result<User, StoreError> {
        let email = match found.email {
            Some(_) => None,
            None => {
                let owner = UserId::parse(&found.id.to_hex()).map_err(StoreError::backend)?;
                self.find_account_by_user(&owner).await?.map(|a| a.email)
            }
        };
        found.into_domain(email)
    }
}

#[async_trait]
impl UserRepository for MongoStore {
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        self.users()
            .insert_one(UserDoc::from_domain(user)?)
            .await
            .map(drop)
            .map_err(translate)
    }

    async fn find_user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        self.find_user_where(doc! { "_id": oid(id.as_str())? })
            .await
    }

    async fn username_taken(&self, username: &str) -> Result<bool, StoreError> {
        let found = self
            .users()
            .find_one(doc! { "username": username })
            .await
            .map_err(translate)?;
        Ok(found.is_some())
    }

    async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.find_user_where(doc! { "username": username }).await
    }

    async fn assign_username(&self, id: &UserId, username: &str) -> Result<bool, StoreError> {
        let result = self
            .users()
            .update_one(
                doc! { "_id": oid(id.as_str())?, "username": { "$in": [Bson::Null, ""] } },
                doc! { "$set": { "username": username } },
            )
            .await
            .map_err(translate)?;
        Ok(result.matched_count == 1)
    }

    async fn update_profile(
        &self,
        id: &UserId,
        changes: &ProfileChanges,
        at: DateTime<Utc>,
    ) -> Result<Option<User>, StoreError> {
        let mut set = doc! { "updatedAt": time(at) };
        set_optional(&mut set, "firstName", &changes.first_name);
        set_optional(&mut set, "lastName", &changes.last_name);
        set_optional(&mut set, "displayName", &changes.display_name);
        set_optional(&mut set, "bio", &changes.bio);
        set_optional(&mut set, "location", &changes.location);
        set_optional(&mut set, "website", &changes.website);
        set_optional(&mut set, "avatar", &changes.avatar);
        let updated = self
            .users()
            .find_one_and_update(doc! { "_id": oid(id.as_str())? }, doc! { "$set": set })
            .return_document(ReturnDocument::After)
            .await
            .map_err(translate)?;
        match updated {
            Some(updated) => self.user_from(updated).await.map(Some),
            None => Ok(None),
        }
    }

    async fn record_login(
        &self,
        id: &UserId,
        role: Role,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let id = oid(id.as_str())?;
        self.users()
            .update_one(
                doc! { "_id": id },
                doc! { "$set": { "lastLoginAt": time(at) } },
            )
            .await
            .map_err(translate)?;
        // A second, conditional update: only a plain (or missing) role is raised.
        if role == Role::Admin {
            self.users()
                .update_one(
                    doc! { "_id": id, "role": { "$in": [Role::User.as_str(), Bson::Null] } },
                    doc! { "$set": { "role": Role::Admin.as_str() } },
                )
                .await
                .map_err(translate)?;
        }
        Ok(())
    }

    async fn delete_user(&self, id: &UserId) -> Result<(), StoreError> {
        self.users()
            .delete_one(doc! { "_id": oid(id.as_str())? })
            .await
            .map(drop)
            .map_err(translate)
    }
}

#[async_trait]
impl AccountRepository for MongoStore {
    async fn insert_account(&self, account: &Account) -> Result<(), StoreError> {
        self.accounts()
            .insert_one(AccountDoc::from_domain(account)?)
            .await
            .map(drop)
            .map_err(translate)
    }

    async fn find_account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        // Every address this service writes is lower case, so the indexed equality finds it.
        // Only on a miss (an unknown address, or one another writer stored with capitals) is
        // the email index scanned whole by the pattern: O(accounts) index keys, no documents.
        if let Some(found) = self
            .accounts()
            .find_one(doc! { "email": email })
            .await
            .map_err(translate)?
        {
            return found.into_domain().map(Some);
        }
        let candidates: Vec<AccountDoc> = self
            .accounts()
            .find(doc! { "email": any_capitalisation_of(email) })
            .sort(doc! { "_id": 1 })
            .limit(2)
            .await
            .map_err(translate)?
            .try_collect()
            .await
            .map_err(translate)?;
        let mut same = candidates
            .into_iter()
            .filter(|candidate| candidate.email.to_lowercase() == email);
        let first = same.next();
        if same.next().is_some() {
            warn!("two accounts share an address in different capitals; the older one signs in");
        }
        first.map(AccountDoc::into_domain).transpose()
    }

    async fn find_account_by_user(&self, user: &UserId) -> Result<Option<Account>, StoreError> {
        let filter = doc! { "userId": same_id(user.as_str())? };
        find_one_as(&self.accounts(), filter, AccountDoc::into_domain).await
    }

    async fn set_password_hash(
        &self,
        id: &AccountId,
        hash: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.accounts()
            .update_one(
                doc! { "_id": oid(id.as_str())? },
                doc! { "$set": { "password": hash, "updatedAt": time(at) } },
            )
            .await
            .map(drop)
            .map_err(translate)
    }

    async fn set_token(
        &self,
        id: &AccountId,
        purpose: TokenPurpose,
        token: Option<&StoredToken>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (hash_field, expires_field) = match purpose {
            TokenPurpose::EmailVerification => {
                ("emailVerificationToken", "emailVerificationExpires")
            }
            TokenPurpose::PasswordReset => ("passwordResetToken", "passwordResetExpires"),
            TokenPurpose::AccountDeletion => ("accountDeletionToken", "accountDeletionExpires"),
        };
        let set = token_fields(hash_field, expires_field, token, at);
        self.accounts()
            .update_one(doc! { "_id": oid(id.as_str())? }, doc! { "$set": set })
            .await
            .map(drop)
            .map_err(translate)
    }

    async fn take_reset_token(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Account>, StoreError> {
        let taken = self
            .accounts()
            .find_one_and_update(
                doc! { "passwordResetToken": hash, "passwordResetExpires": { "$gt": time(now) } },
                doc! { "$set": token_fields("passwordResetToken", "passwordResetExpires", None, now) },
            )
            .return_document(ReturnDocument::After)
            .await
            .map_err(translate)?;
        taken.map(AccountDoc::into_domain).transpose()
    }

    async fn take_verification_token(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Account>, StoreError> {
        let mut set = token_fields(
            "emailVerificationToken",
            "emailVerificationExpires",
            None,
            now,
        );
        set.insert("emailVerified", true);
        let taken = self
            .accounts()
            .find_one_and_update(
                doc! { "emailVerificationToken": hash, "emailVerificationExpires": { "$gt": time(now) } },
                doc! { "$set": set },
            )
            .return_document(ReturnDocument::After)
            .await
            .map_err(translate)?;
        taken.map(AccountDoc::into_domain).transpose()
    }

    async fn delete_accounts_of(&self, user: &UserId) -> Result<(), StoreError> {
        self.accounts()
            .delete_many(doc! { "userId": same_id(user.as_str())? })
            .await
            .map(drop)
            .map_err(translate)
    }

    async fn clear_expired_deletion_tokens(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let result = self
            .accounts()
            .update_many(
                doc! { "accountDeletionExpires": { "$lte": time(now) } },
                doc! { "$unset": { "accountDeletionToken": "", "accountDeletionExpires": "" } },
            )
            .await
            .map_err(translate)?;
        Ok(result.modified_count)
    }
}

#[async_trait]
impl SessionRepository for MongoStore {
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        self.sessions()
            .insert_one(SessionDoc::from_domain(session)?)
            .await
            .map(drop)
            .map_err(translate)
    }

    async fn find_session(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let filter = doc! { "_id": oid(id.as_str())? };
        find_one_as(&self.sessions(), filter, SessionDoc::into_domain).await
    }

    async fn rotate_refresh(
        &self,
        id: &SessionId,
        rotation: &Rotation,
    ) -> Result<bool, StoreError> {
        let result = self
            .sessions()
            .update_one(
                doc! { "_id": oid(id.as_str())?, "isActive": true, "refreshTokenHash": &rotation.expected },
                doc! {
                    "$set": {
                        "refreshTokenHash": &rotation.current,
                        "previousRefreshTokenHash": &rotation.previous,
                        "rotatedAt": time(rotation.rotated_at),
                    },
                    "$max": { "lastActivityAt": time(rotation.rotated_at) },
                },
            )
            .await
            .map_err(translate)?;
        Ok(result.matched_count == 1)
    }

    async fn touch_session(&self, id: &SessionId, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.sessions()
            .update_one(
                doc! { "_id": oid(id.as_str())? },
                doc! { "$set": { "lastActivityAt": time(at) } },
            )
            .await
            .map(drop)
            .map_err(translate)
    }

    async fn set_session_location(
        &self,
        id: &SessionId,
        location: &GeoLocation,
    ) -> Result<(), StoreError> {
        let location = mongodb::bson::to_bson(&LocationDoc::from_domain(location))
            .map_err(StoreError::backend)?;
        self.sessions()
            .update_one(
                doc! { "_id": oid(id.as_str())? },
                doc! { "$set": { "location": location } },
            )
            .await
            .map(drop)
            .map_err(translate)
    }

    async fn session_history(
        &self,
        owner: &UserId,
        limit: usize,
    ) -> Result<Vec<Session>, StoreError> {
        let docs: Vec<SessionDoc> = self
            .sessions()
            .find(doc! { "userId": same_id(owner.as_str())? })
            .sort(doc! { "createdAt": -1, "_id": -1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await
            .map_err(translate)?
            .try_collect()
            .await
            .map_err(translate)?;
        docs.into_iter().map(SessionDoc::into_domain).collect()
    }

    async fn revoke_session(&self, owner: &UserId, id: &SessionId) -> Result<bool, StoreError> {
        let result = self
            .sessions()
            .update_one(
                doc! { "_id": oid(id.as_str())?, "userId": same_id(owner.as_str())?, "isActive": true },
                doc! { "$set": { "isActive": false } },
            )
            .await
            .map_err(translate)?;
        Ok(result.modified_count == 1)
    }

    async fn revoke_sessions_except(
        &self,
        owner: &UserId,
        keep: Option<&SessionId>,
    ) -> Result<Vec<SessionId>, StoreError> {
        let mut filter = doc! { "userId": same_id(owner.as_str())?, "isActive": true };
        if let Some(keep) = keep {
            filter.insert("_id", doc! { "$ne": oid(keep.as_str())? });
        }
        let targets: Vec<SessionDoc> = self
            .sessions()
            .find(filter.clone())
            .await
            .map_err(translate)?
            .try_collect()
            .await
            .map_err(translate)?;
        let ids: Vec<_> = targets.iter().map(|s| s.id).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        filter.insert("_id", doc! { "$in": &ids });
        self.sessions()
            .update_many(filter, doc! { "$set": { "isActive": false } })
            .await
            .map_err(translate)?;
        targets
            .into_iter()
            .map(|s| s.into_domain().map(|s| s.id))
            .collect()
    }

    async fn list_live_sessions(
        &self,
        owner: &UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError> {
        let docs: Vec<SessionDoc> = self
            .sessions()
            .find(doc! { "userId": same_id(owner.as_str())?, "isActive": true, "expiresAt": { "$gt": time(now) } })
            .sort(doc! { "lastActivityAt": -1, "_id": -1 })
            .await
            .map_err(translate)?
            .try_collect()
            .await
            .map_err(translate)?;
        docs.into_iter().map(SessionDoc::into_domain).collect()
    }

    async fn purge_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let result = self
            .sessions()
            .delete_many(
                doc! { "$or": [ { "isActive": false }, { "expiresAt": { "$lte": time(now) } } ] },
            )
            .await
            .map_err(translate)?;
        Ok(result.deleted_count)
    }

    async fn delete_sessions_of(&self, user: &UserId) -> Result<(), StoreError> {
        self.sessions()
            .delete_many(doc! { "userId": same_id(user.as_str())? })
            .await
            .map(drop)
            .map_err(translate)
    }
}

#[cfg(test)]
mod pattern_tests {
    use super::any_capitalisation_of;

    /// What MongoDB's regex would match, checked with the pattern itself: every character
    /// but letters is escaped, and each letter is a two-case class.
    #[test]
    fn an_address_becomes_literals_and_two_case_classes() {
        let pattern = any_capitalisation_of("a.b+c(d)\\é@x-y.io");
        assert_eq!(
            pattern.get_str("$regex"),
            Ok(r"^[aA]\.[bB]\+[cC]\([dD]\)\\[éÉ]\@[xX]\-[yY]\.[iI][oO]$")
        );
        assert!(
            !pattern.contains_key("$options"),
            "no case-insensitive flag"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use testkit::MongoStandIn;

    use kernel::settings::SettingsKind;
    use notify_core::preferences::EMAIL_PREFERENCES;
    use portfolio_core::resources::PROFILE;

    use crate::MongoStore;

    /// The settings kinds the contract suite uses.
    const SETTINGS_KINDS: [&SettingsKind; 2] = [&PROFILE, &EMAIL_PREFERENCES];

    /// A database of its own for each test: the tests of a process share one stand-in, since
    /// starting one takes most of a second.
    fn fresh_database() -> String {
        static CREATED: AtomicUsize = AtomicUsize::new(0);
        let n = CREATED.fetch_add(1, Ordering::Relaxed);
        format!("contract_{}_{n}", std::process::id())
    }

    async fn connect(database: &str) -> MongoStore {
        let server = MongoStandIn::shared().await;
        MongoStore::connect(&server.uri(), Some(database), &SETTINGS_KINDS)
            .await
            .unwrap_or_else(|e| panic!("connect to {database}: {e}"))
    }

    /// An empty store; nothing needs to outlive it.
    async fn store() -> ((), MongoStore) {
        ((), connect(&fresh_database()).await)
    }

    port_contracts::user_contract!(needs "the MongoDB stand-in", store);
    port_contracts::account_contract!(needs "the MongoDB stand-in", store);
    port_contracts::session_contract!(needs "the MongoDB stand-in", store);
    port_contracts::portfolio_item_contract!(needs "the MongoDB stand-in", store);
    port_contracts::settings_contract!(needs "the MongoDB stand-in", store);

    #[tokio::test]
    async fn connecting_twice_keeps_the_indexes_idempotent() {
        testkit::needs!("the MongoDB stand-in");
        let database = fresh_database();
        connect(&database).await;
        connect(&database).await;
    }
}
