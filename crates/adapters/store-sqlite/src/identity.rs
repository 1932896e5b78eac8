//! Users, accounts and sessions as rows.

use async_trait::async_trait;
use auth_core::model::{
    Account, AccountId, Coordinates, DeviceInfo, GeoLocation, ProfileChanges, Role, Session,
    SessionId, StoredToken, TokenPurpose, User, UserId,
};
use auth_core::ports::{AccountRepository, Rotation, SessionRepository, UserRepository};
use chrono::{DateTime, Utc};
use kernel::StoreError;
use rusqlite::{OptionalExtension as _, Row, params};
use serde::{Deserialize, Serialize};

use crate::db::{CachedStatements as _, SqliteStore, id, millis, time, time_opt};

const USER_COLUMNS: &str = "id, username, email, first_name, last_name, display_name, avatar, role, bio, location, website, is_active, last_login_at, created_at, updated_at";

fn user_from(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: id(&row.get::<_, String>(0)?, UserId::parse)?,
        username: row.get(1)?,
        email: row.get(2)?,
        first_name: row.get(3)?,
        last_name: row.get(4)?,
        display_name: row.get(5)?,
        avatar: row.get(6)?,
        role: Role::from_stored(&row.get::<_, String>(7)?),
        bio: row.get(8)?,
        location: row.get(9)?,
        website: row.get(10)?,
        is_active: row.get(11)?,
        last_login_at: time_opt(row.get(12)?),
        created_at: time(row.get(13)?),
        updated_at: time(row.get(14)?),
    })
}

const ACCOUNT_COLUMNS: &str = "id, user_id, email, password_hash, email_verified, verification_hash, verification_expires_at, reset_hash, reset_expires_at, is_active, created_at, updated_at, deletion_hash, deletion_expires_at";

fn token_from(hash: Option<String>, expires: Option<i64>) -> Option<StoredToken> {
    Some(StoredToken {
        hash: hash?,
        expires_at: time(expires?),
    })
}

fn account_from(row: &Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: id(&row.get::<_, String>(0)?, AccountId::parse)?,
        user_id: id(&row.get::<_, String>(1)?, UserId::parse)?,
        email: row.get(2)?,
        password_hash: row.get(3)?,
        email_verified: row.get(4)?,
        email_verification: token_from(row.get(5)?, row.get(6)?),
        password_reset: token_from(row.get(7)?, row.get(8)?),
        account_deletion: token_from(row.get(12)?, row.get(13)?),
        is_active: row.get(9)?,
        created_at: time(row.get(10)?),
        updated_at: time(row.get(11)?),
    })
}

/// A session's location in its JSON column, shaped like the API's and MongoDB's.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredLocation {
    country: Option<String>,
    country_code: Option<String>,
    region: Option<String>,
    city: Option<String>,
    coordinates: Option<StoredCoordinates>,
    timezone: Option<String>,
    isp: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredCoordinates {
    latitude: f64,
    longitude: f64,
}

fn location_json(location: &GeoLocation) -> Option<String> {
    let stored = StoredLocation {
        country: location.country.clone(),
        country_code: location.country_code.clone(),
        region: location.region.clone(),
        city: location.city.clone(),
        coordinates: location.coordinates.map(|c| StoredCoordinates {
            latitude: c.latitude,
            longitude: c.longitude,
        }),
        timezone: location.timezone.clone(),
        isp: location.isp.clone(),
    };
    serde_json::to_string(&stored).ok()
}

/// An unreadable location reads as unknown: it is shown, never relied on, and must not make
/// the whole session unreadable.
fn location_from(json: Option<String>) -> Option<GeoLocation> {
    let stored: StoredLocation = serde_json::from_str(&json?).ok()?;
    Some(GeoLocation {
        country: stored.country,
        country_code: stored.country_code,
        region: stored.region,
        city: stored.city,
        coordinates: stored.coordinates.map(|c| Coordinates {
            latitude: c.latitude,
            longitude: c.longitude,
        }),
        timezone: stored.timezone,
        isp: stored.isp,
    })
}

const SESSION_COLUMNS: &str = "id, user_id, account_id, user_agent, ip_address, device_type, device_name, browser, os, location, is_active, refresh_hash, previous_refresh_hash, rotated_at, last_activity_at, created_at, expires_at";

fn session_from(row: &Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        id: id(&row.get::<_, String>(0)?, SessionId::parse)?,
        user_id: id(&row.get::<_, String>(1)?, UserId::parse)?,
        account_id: id(&row.get::<_, String>(2)?, AccountId::parse)?,
        user_agent: row.get(3)?,
        ip_address: row.get(4)?,
        device: DeviceInfo {
            device_type: row.get(5)?,
            device_name: row.get(6)?,
            browser: row.get(7)?,
            os: row.get(8)?,
        },
        location: location_from(row.get(9)?),
        is_active: row.get(10)?,
        refresh_hash: row.get(11)?,
        previous_refresh_hash: row.get(12)?,
        rotated_at: time_opt(row.get(13)?),
        last_activity_at: time(row.get(14)?),
        created_at: time(row.get(15)?),
        expires_at: time(row.get(16)?),
    })
}

impl SqliteStore {
    /// The row of `table` whose `column` is `key` (its `columns`), read by `from`.
    async fn find_by<T: Send + 'static>(
        &self,
        columns: &'static str,
        table: &'static str,
        column: &'static str,
        key: String,
        from: fn(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError> {
        self.read(move |c| {
            let sql = format!("SELECT {columns} FROM {table} WHERE {column} = ?1");
            c.query_row_cached(&sql, [key], from).optional()
        })
        .await
    }
}

#[async_trait]
impl UserRepository for SqliteStore {
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        let u = user.clone();
        self.call(move |c| {
            c.execute_cached(
                &format!("INSERT INTO users ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
                params![
                    u.id.as_str(), u.username, u.email, u.first_name, u.last_name, u.display_name, u.avatar,
                    u.role.as_str(), u.bio, u.location, u.website, u.is_active,
                    u.last_login_at.map(millis), millis(u.created_at), millis(u.updated_at)
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn find_user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        self.find_by(
            USER_COLUMNS,
            "users",
            "id",
            id.as_str().to_owned(),
            user_from,
        )
        .await
    }

    async fn username_taken(&self, username: &str) -> Result<bool, StoreError> {
        let username = username.to_owned();
        self.read(move |c| {
            c.query_row_cached(
                "SELECT EXISTS (SELECT 1 FROM users WHERE username = ?1)",
                [username],
                |r| r.get(0),
            )
        })
        .await
    }

    async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.find_by(
            USER_COLUMNS,
            "users",
            "username",
            username.to_owned(),
            user_from,
        )
        .await
    }

    async fn assign_username(&self, id: &UserId, username: &str) -> Result<bool, StoreError> {
        let (id, username) = (id.clone(), username.to_owned());
        self.call(move |c| {
            c.execute_cached(
                "UPDATE users SET username = ?2 WHERE id = ?1 AND username = ''",
                params![id.as_str(), username],
            )
            .map(|changed| changed == 1)
        })
        .await
    }

    async fn update_profile(
        &self,
        id: &UserId,
        changes: &ProfileChanges,
        at: DateTime<Utc>,
    ) -> Result<Option<User>, StoreError> {
        let (id, changes) = (id.clone(), changes.clone());
        self.call(move |c| {
            let tx = c.unchecked_transaction()?;
            let Some(mut user) =
                tx.query_row_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"), [id.as_str()], user_from).optional()?
            else {
                return Ok(None);
            };
            changes.apply_to(&mut user);
            user.updated_at = at;
            tx.execute_cached(
                "UPDATE users SET first_name = ?2, last_name = ?3, display_name = ?4, bio = ?5, location = ?6, website = ?7, avatar = ?8, updated_at = ?9 WHERE id = ?1",
                params![id.as_str(), user.first_name, user.last_name, user.display_name, user.bio, user.location, user.website, user.avatar, millis(at)],
            )?;
            tx.commit()?;
            Ok(Some(user))
        })
        .await
    }

    async fn record_login(
        &self,
        id: &UserId,
        role: Role,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let id = id.clone();
        self.call(move |c| {
            // A role is only ever raised.
            c.execute_cached(
                "UPDATE users SET role = CASE WHEN ?2 = 'admin' THEN 'admin' ELSE role END, last_login_at = ?3 WHERE id = ?1",
                params![id.as_str(), role.as_str(), millis(at)],
            )
            .map(drop)
        })
        .await
    }

    async fn delete_user(&self, id: &UserId) -> Result<(), StoreError> {
        let id = id.clone();
        self.call(move |c| {
            c.execute_cached("DELETE FROM users WHERE id = ?1", [id.as_str()])
                .map(drop)
        })
        .await
    }
}

#[async_trait]
impl AccountRepository for SqliteStore {
    async fn insert_account(&self, account: &Account) -> Result<(), StoreError> {
        let a = account.clone();
        self.call(move |c| {
            let verification = a.email_verification.as_ref();
            let reset = a.password_reset.as_ref();
            let deletion = a.account_deletion.as_ref();
            c.execute_cached(
                &format!("INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"),
                params![
                    a.id.as_str(), a.user_id.as_str(), a.email, a.password_hash, a.email_verified,
                    verification.map(|t| &t.hash), verification.map(|t| millis(t.expires_at)),
                    reset.map(|t| &t.hash), reset.map(|t| millis(t.expires_at)),
                    a.is_active, millis(a.created_at), millis(a.updated_at),
                    deletion.map(|t| &t.hash), deletion.map(|t| millis(t.expires_at))
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn find_account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        self.find_by(
            ACCOUNT_COLUMNS,
            "accounts",
            "email",
            email.to_owned(),
            account_from,
        )
        .await
    }

    async fn find_account_by_user(&self, user: &UserId) -> Result<Option<Account>, StoreError> {
        self.find_by(
            ACCOUNT_COLUMNS,
            "accounts",
            "user_id",
            user.as_str().to_owned(),
            account_from,
        )
        .await
    }

    async fn set_password_hash(
        &self,
        id: &AccountId,
        hash: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (id, hash) = (id.clone(), hash.to_owned());
        self.call(move |c| {
            c.execute_cached(
                "UPDATE accounts SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
                params![id.as_str(), hash, millis(at)],
            )
            .map(drop)
        })
        .await
    }

    async fn set_token(
        &self,
        id: &AccountId,
        purpose: TokenPurpose,
        token: Option<&StoredToken>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (id, token) = (id.clone(), token.cloned());
        let column = match purpose {
            TokenPurpose::EmailVerification => "verification",
            TokenPurpose::PasswordReset => "reset",
            TokenPurpose::AccountDeletion => "deletion",
        };
        self.call(move |c| {
            c.execute_cached(
                &format!("UPDATE accounts SET {column}_hash = ?2, {column}_expires_at = ?3, updated_at = ?4 WHERE id = ?1"),
                params![id.as_str(), token.as_ref().map(|t| &t.hash), token.as_ref().map(|t| millis(t.expires_at)), millis(at)],
            )
            .map(drop)
        })
        .await
    }

    async fn take_reset_token(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Account>, StoreError> {
        let hash = hash.to_owned();
        self.call(move |c| {
            c.query_row_cached(
                &format!(
                    "UPDATE accounts SET reset_hash = NULL, reset_expires_at = NULL, updated_at = ?2
                     WHERE reset_hash = ?1 AND reset_expires_at > ?2 RETURNING {ACCOUNT_COLUMNS}"
                ),
                params![hash, millis(now)],
                account_from,
            )
            .optional()
        })
        .await
    }

    async fn take_verification_token(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Account>, StoreError> {
        let hash = hash.to_owned();
        self.call(move |c| {
            c.query_row_cached(
                &format!(
                    "UPDATE accounts SET verification_hash = NULL, verification_expires_at = NULL, email_verified = 1, updated_at = ?2
                     WHERE verification_hash = ?1 AND verification_expires_at > ?2 RETURNING {ACCOUNT_COLUMNS}"
                ),
                params![hash, millis(now)],
                account_from,
            )
            .optional()
        })
        .await
    }

    async fn delete_accounts_of(&self, user: &UserId) -> Result<(), StoreError> {
        let user = user.clone();
        self.call(move |c| {
            c.execute_cached("DELETE FROM accounts WHERE user_id = ?1", [user.as_str()])
                .map(drop)
        })
        .await
    }

    async fn clear_expired_deletion_tokens(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.call(move |c| {
            c.execute_cached(
                "UPDATE accounts SET deletion_hash = NULL, deletion_expires_at = NULL
                 WHERE deletion_hash IS NOT NULL AND deletion_expires_at <= ?1",
                [millis(now)],
            )
            .map(|n| n as u64)
        })
        .await
    }
}

#[async_trait]
impl SessionRepository for SqliteStore {
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        let s = session.clone();
        self.call(move |c| {
            c.execute_cached(
                &format!("INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"),
                params![
                    s.id.as_str(), s.user_id.as_str(), s.account_id.as_str(), s.user_agent, s.ip_address,
                    s.device.device_type, s.device.device_name, s.device.browser, s.device.os, s.location.as_ref().and_then(location_json),
                    s.is_active, s.refresh_hash, s.previous_refresh_hash, s.rotated_at.map(millis),
                    millis(s.last_activity_at), millis(s.created_at), millis(s.expires_at)
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn find_session(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.find_by(
            SESSION_COLUMNS,
            "sessions",
            "id",
            id.as_str().to_owned(),
            session_from,
        )
        .await
    }

    async fn rotate_refresh(
        &self,
        id: &SessionId,
        rotation: &Rotation,
    ) -> Result<bool, StoreError> {
        let (id, r) = (id.clone(), rotation.clone());
        self.call(move |c| {
            c.execute_cached(
                "UPDATE sessions SET refresh_hash = ?3, previous_refresh_hash = ?4, rotated_at = ?5,
                        last_activity_at = MAX(last_activity_at, ?5)
                 WHERE id = ?1 AND is_active = 1 AND refresh_hash = ?2",
                params![id.as_str(), r.expected, r.current, r.previous, millis(r.rotated_at)],
            )
            .map(|changed| changed == 1)
        })
        .await
    }

    async fn touch_session(&self, id: &SessionId, at: DateTime<Utc>) -> Result<(), StoreError> {
        let id = id.clone();
        self.call(move |c| {
            c.execute_cached(
                "UPDATE sessions SET last_activity_at = ?2 WHERE id = ?1",
                params![id.as_str(), millis(at)],
            )
            .map(drop)
        })
        .await
    }

    async fn set_session_location(
        &self,
        id: &SessionId,
        location: &GeoLocation,
    ) -> Result<(), StoreError> {
        let (id, json) = (id.clone(), location_json(location));
        self.call(move |c| {
            c.execute_cached(
                "UPDATE sessions SET location = ?2 WHERE id = ?1",
                params![id.as_str(), json],
            )
            .map(drop)
        })
        .await
    }

    async fn session_history(
        &self,
        owner: &UserId,
        limit: usize,
    ) -> Result<Vec<Session>, StoreError> {
        let owner = owner.clone();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            let mut statement = c.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = ?1
                 ORDER BY created_at DESC, id DESC LIMIT ?2"
            ))?;
            let sessions = statement.query_map(params![owner.as_str(), limit], session_from)?;
            sessions.collect()
        })
        .await
    }

    async fn revoke_session(&self, owner: &UserId, id: &SessionId) -> Result<bool, StoreError> {
        let (owner, id) = (owner.clone(), id.clone());
        self.call(move |c| {
            c.execute_cached(
                "UPDATE sessions SET is_active = 0 WHERE id = ?1 AND user_id = ?2 AND is_active = 1",
                params![id.as_str(), owner.as_str()],
            )
            .map(|changed| changed == 1)
        })
        .await
    }

    async fn revoke_sessions_except(
        &self,
        owner: &UserId,
        keep: Option<&SessionId>,
    ) -> Result<Vec<SessionId>, StoreError> {
        let (owner, keep) = (
            owner.clone(),
            keep.map(|k| k.as_str().to_owned()).unwrap_or_default(),
        );
        self.call(move |c| {
            let mut statement = c.prepare_cached(
                "UPDATE sessions SET is_active = 0 WHERE user_id = ?1 AND is_active = 1 AND id != ?2 RETURNING id",
            )?;
            let ids = statement.query_map(params![owner.as_str(), keep], |row| id(&row.get::<_, String>(0)?, SessionId::parse))?;
            ids.collect()
        })
        .await
    }

    async fn list_live_sessions(
        &self,
        owner: &UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError> {
        let owner = owner.clone();
        self.read(move |c| {
            let mut statement = c.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = ?1 AND is_active = 1 AND expires_at > ?2
                 ORDER BY last_activity_at DESC, id DESC"
            ))?;
            let sessions = statement.query_map(params![owner.as_str(), millis(now)], session_from)?;
            sessions.collect()
        })
        .await
    }

    async fn purge_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.call(move |c| {
            c.execute_cached(
                "DELETE FROM sessions WHERE is_active = 0 OR expires_at <= ?1",
                [millis(now)],
            )
            .map(|n| n as u64)
        })
        .await
    }

    async fn delete_sessions_of(&self, user: &UserId) -> Result<(), StoreError> {
        let user = user.clone();
        self.call(move |c| {
            c.execute_cached("DELETE FROM sessions WHERE user_id = ?1", [user.as_str()])
                .map(drop)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use crate::SqliteStore;
    use crate::db::tests::store;

    port_contracts::user_contract!(|| async { store() });
    port_contracts::account_contract!(|| async { store() });
    port_contracts::session_contract!(|| async { store() });
    port_contracts::job_queue_contract!(|| async { store() });

    #[tokio::test]
    async fn data_survives_reopening_the_file() {
        use auth_core::ports::UserRepository as _;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("nested/console.db");
        let user = port_contracts::identity::user("ada", port_contracts::now_ms());
        SqliteStore::open(&path, crate::Durability::Full)
            .unwrap_or_else(|e| panic!("{e}"))
            .insert_user(&user)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let reopened =
            SqliteStore::open(&path, crate::Durability::Full).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            reopened
                .find_user(&user.id)
                .await
                .unwrap_or_else(|e| panic!("{e}")),
            Some(user)
        );
    }
}
