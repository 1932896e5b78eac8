//! Users, accounts and sessions in maps behind one mutex.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use auth_core::model::{
    Account, AccountId, GeoLocation, ProfileChanges, Role, Session, SessionId, StoredToken,
    TokenPurpose, User, UserId,
};
use auth_core::ports::{AccountRepository, Rotation, SessionRepository, UserRepository};
use chrono::{DateTime, Utc};
use kernel::StoreError;

#[derive(Default)]
struct Tables {
    users: HashMap<UserId, User>,
    accounts: HashMap<AccountId, Account>,
    sessions: HashMap<SessionId, Session>,
}

#[derive(Default)]
pub struct MemoryIdentityStore {
    tables: Mutex<Tables>,
}

impl MemoryIdentityStore {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn live_token(token: Option<&StoredToken>, hash: &str, now: DateTime<Utc>) -> bool {
    token.is_some_and(|t| t.hash == hash && t.expires_at > now)
}

#[async_trait]
impl UserRepository for MemoryIdentityStore {
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        let mut tables = self.lock();
        if tables.users.values().any(|u| u.username == user.username) {
            return Err(StoreError::Duplicate { key: "username" });
        }
        tables.users.insert(user.id.clone(), user.clone());
        Ok(())
    }

    async fn find_user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        Ok(self.lock().users.get(id).cloned())
    }

    async fn username_taken(&self, username: &str) -> Result<bool, StoreError> {
        Ok(self.lock().users.values().any(|u| u.username == username))
    }

    async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        Ok(self
            .lock()
            .users
            .values()
            .find(|u| u.username == username)
            .cloned())
    }

    async fn assign_username(&self, id: &UserId, username: &str) -> Result<bool, StoreError> {
        let mut tables = self.lock();
        if !tables.users.get(id).is_some_and(|u| u.username.is_empty()) {
            return Ok(false);
        }
        if tables.users.values().any(|u| u.username == username) {
            return Err(StoreError::Duplicate { key: "username" });
        }
        if let Some(user) = tables.users.get_mut(id) {
            username.clone_into(&mut user.username);
        }
        Ok(true)
    }

    async fn update_profile(
        &self,
        id: &UserId,
        changes: &ProfileChanges,
        at: DateTime<Utc>,
    ) -> Result<Option<User>, StoreError> {
        let mut tables = self.lock();
        Ok(tables.users.get_mut(id).map(|user| {
            changes.apply_to(user);
            user.updated_at = at;
            user.clone()
        }))
    }

    async fn record_login(
        &self,
        id: &UserId,
        role: Role,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if let Some(user) = self.lock().users.get_mut(id) {
            if role == Role::Admin {
                user.role = role;
            }
            user.last_login_at = Some(at);
        }
        Ok(())
    }

    async fn delete_user(&self, id: &UserId) -> Result<(), StoreError> {
        self.lock().users.remove(id);
        Ok(())
    }
}

#[async_trait]
impl AccountRepository for MemoryIdentityStore {
    async fn insert_account(&self, account: &Account) -> Result<(), StoreError> {
        let mut tables = self.lock();
        if tables.accounts.values().any(|a| a.email == account.email) {
            return Err(StoreError::Duplicate { key: "email" });
        }
        tables.accounts.insert(account.id.clone(), account.clone());
        Ok(())
    }

    async fn find_account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        Ok(self
            .lock()
            .accounts
            .values()
            .find(|a| a.email == email)
            .cloned())
    }

    async fn find_account_by_user(&self, user: &UserId) -> Result<Option<Account>, StoreError> {
        Ok(self
            .lock()
            .accounts
            .values()
            .find(|a| &a.user_id == user)
            .cloned())
    }

    async fn set_password_hash(
        &self,
        id: &AccountId,
        hash: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if let Some(account) = self.lock().accounts.get_mut(id) {
            hash.clone_into(&mut account.password_hash);
            account.updated_at = at;
        }
        Ok(())
    }

    async fn set_token(
        &self,
        id: &AccountId,
        purpose: TokenPurpose,
        token: Option<&StoredToken>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if let Some(account) = self.lock().accounts.get_mut(id) {
            let slot = match purpose {
                TokenPurpose::EmailVerification => &mut account.email_verification,
                TokenPurpose::PasswordReset => &mut account.password_reset,
                TokenPurpose::AccountDeletion => &mut account.account_deletion,
            };
            *slot = token.cloned();
            account.updated_at = at;
        }
        Ok(())
    }

    async fn take_reset_token(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Account>, StoreError> {
        let mut tables = self.lock();
        let found = tables
            .accounts
            .values_mut()
            .find(|a| live_token(a.password_reset.as_ref(), hash, now));
        Ok(found.map(|account| {
            let before = account.clone();
            account.password_reset = None;
            account.updated_at = now;
            before
        }))
    }

    async fn take_verification_token(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Account>, StoreError> {
        let mut tables = self.lock();
        let found = tables
            .accounts
            .values_mut()
            .find(|a| live_token(a.email_verification.as_ref(), hash, now));
        Ok(found.map(|account| {
            account.email_verification = None;
            account.email_verified = true;
            account.updated_at = now;
            account.clone()
        }))
    }

    async fn delete_accounts_of(&self, user: &UserId) -> Result<(), StoreError> {
        self.lock().accounts.retain(|_, a| &a.user_id != user);
        Ok(())
    }

    async fn clear_expired_deletion_tokens(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tables = self.lock();
        let mut cleared = 0;
        for account in tables.accounts.values_mut() {
            if account
                .account_deletion
                .as_ref()
                .is_some_and(|token| token.expires_at <= now)
            {
                account.account_deletion = None;
                cleared += 1;
            }
        }
        Ok(cleared)
    }
}

#[async_trait]
impl SessionRepository for MemoryIdentityStore {
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        self.lock()
            .sessions
            .insert(session.id.clone(), session.clone());
        Ok(())
    }

    async fn find_session(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        Ok(self.lock().sessions.get(id).cloned())
    }

    async fn rotate_refresh(
        &self,
        id: &SessionId,
        rotation: &Rotation,
    ) -> Result<bool, StoreError> {
        let mut tables = self.lock();
        let Some(session) = tables.sessions.get_mut(id) else {
            return Ok(false);
        };
        if !session.is_active || session.refresh_hash != rotation.expected {
            return Ok(false);
        }
        session.refresh_hash.clone_from(&rotation.current);
        session.previous_refresh_hash = Some(rotation.previous.clone());
        session.rotated_at = Some(rotation.rotated_at);
        session.last_activity_at = rotation.rotated_at.max(session.last_activity_at);
        Ok(true)
    }

    async fn touch_session(&self, id: &SessionId, at: DateTime<Utc>) -> Result<(), StoreError> {
        if let Some(session) = self.lock().sessions.get_mut(id) {
            session.last_activity_at = at;
        }
        Ok(())
    }

    async fn set_session_location(
        &self,
        id: &SessionId,
        location: &GeoLocation,
    ) -> Result<(), StoreError> {
        if let Some(session) = self.lock().sessions.get_mut(id) {
            session.location = Some(location.clone());
        }
        Ok(())
    }

    async fn session_history(
        &self,
        owner: &UserId,
        limit: usize,
    ) -> Result<Vec<Session>, StoreError> {
        let tables = self.lock();
        let mut sessions: Vec<Session> = tables
            .sessions
            .values()
            .filter(|s| &s.user_id == owner)
            .cloned()
            .collect();
        sessions.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        sessions.truncate(limit);
        Ok(sessions)
    }

    async fn revoke_session(&self, owner: &UserId, id: &SessionId) -> Result<bool, StoreError> {
        let mut tables = self.lock();
        match tables.sessions.get_mut(id) {
            Some(session) if &session.user_id == owner && session.is_active => {
                session.is_active = false;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn revoke_sessions_except(
        &self,
        owner: &UserId,
        keep: Option<&SessionId>,
    ) -> Result<Vec<SessionId>, StoreError> {
        let mut tables = self.lock();
        let mut revoked = Vec::new();
        for session in tables.sessions.values_mut() {
            if &session.user_id == owner && session.is_active && Some(&session.id) != keep {
                session.is_active = false;
                revoked.push(session.id.clone());
            }
        }
        Ok(revoked)
    }

    async fn list_live_sessions(
        &self,
        owner: &UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError> {
        let tables = self.lock();
        let mut sessions: Vec<Session> = tables
            .sessions
            .values()
            .filter(|s| &s.user_id == owner && s.is_live(now))
            .cloned()
            .collect();
        sessions.sort_by(|a, b| {
            b.last_activity_at
                .cmp(&a.last_activity_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        Ok(sessions)
    }

    async fn purge_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tables = self.lock();
        let count = tables.sessions.len();
        tables.sessions.retain(|_, s| s.is_live(now));
        Ok((count - tables.sessions.len()) as u64)
    }

    async fn delete_sessions_of(&self, user: &UserId) -> Result<(), StoreError> {
        self.lock().sessions.retain(|_, s| &s.user_id != user);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryIdentityStore;

    port_contracts::user_contract!(|| async { ((), MemoryIdentityStore::new()) });
    port_contracts::account_contract!(|| async { ((), MemoryIdentityStore::new()) });
    port_contracts::session_contract!(|| async { ((), MemoryIdentityStore::new()) });
}
