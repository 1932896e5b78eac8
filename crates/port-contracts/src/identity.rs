//! Contracts of `UserRepository`, `AccountRepository` and `SessionRepository`.

use auth_core::model::{
    Account, AccountId, Coordinates, DeviceInfo, GeoLocation, ProfileChanges, Role, Session,
    SessionId, StoredToken, TokenPurpose, User, UserId,
};
use auth_core::ports::{AccountRepository, Rotation, SessionRepository, UserRepository};
use chrono::{DateTime, TimeDelta, Utc};
use kernel::StoreError;

use crate::now_ms;

#[must_use]
pub fn user(username: &str, at: DateTime<Utc>) -> User {
    User {
        id: UserId::generate(),
        username: username.to_owned(),
        email: format!("{username}@example.com"),
        first_name: Some("Ada".into()),
        last_name: Some("Lovelace".into()),
        display_name: Some("Ada Lovelace".into()),
        avatar: None,
        role: Role::User,
        bio: None,
        location: Some("London".into()),
        website: None,
        is_active: true,
        last_login_at: None,
        created_at: at,
        updated_at: at,
    }
}

#[must_use]
pub fn account(user: &UserId, email: &str, at: DateTime<Utc>) -> Account {
    Account {
        id: AccountId::generate(),
        user_id: user.clone(),
        email: email.to_owned(),
        password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        email_verified: false,
        email_verification: None,
        password_reset: None,
        account_deletion: None,
        is_active: true,
        created_at: at,
        updated_at: at,
    }
}

#[must_use]
pub fn session(user: &UserId, account: &AccountId, at: DateTime<Utc>) -> Session {
    Session {
        id: SessionId::generate(),
        user_id: user.clone(),
        account_id: account.clone(),
        user_agent: Some("Mozilla/5.0".into()),
        ip_address: Some("203.0.113.7".into()),
        device: DeviceInfo {
            device_type: "desktop".into(),
            device_name: "Linux".into(),
            browser: "Firefox".into(),
            os: "Linux".into(),
        },
        location: None,
        is_active: true,
        refresh_hash: format!("hash-{}", SessionId::generate()),
        previous_refresh_hash: None,
        rotated_at: None,
        last_activity_at: at,
        created_at: at,
        expires_at: at + TimeDelta::days(7),
    }
}

/// A location with every part known.
#[must_use]
pub fn london() -> GeoLocation {
    GeoLocation {
        country: Some("United Kingdom".into()),
        country_code: Some("GB".into()),
        region: Some("England".into()),
        city: Some("London".into()),
        coordinates: Some(Coordinates {
            latitude: 51.5142,
            longitude: -0.0931,
        }),
        timezone: Some("Europe/London".into()),
        isp: Some("Andrews & Arnold".into()),
    }
}

suite!($
    /// Runs the `UserRepository` contract: one test per behaviour.
    user_contract, identity::user_behaviours, dyn UserRepository, [
        a_stored_user_reads_back_unchanged,
        a_username_is_unique_and_a_refused_insert_stores_nothing,
        a_user_is_found_by_username,
        a_profile_update_changes_only_the_named_fields,
        a_profile_update_of_an_unknown_user_finds_nobody,
        a_login_records_the_time_and_only_raises_the_role,
        a_username_is_assigned_only_to_a_user_without_one,
        the_avatar_is_set_and_cleared_like_any_profile_field,
        a_deleted_user_is_gone_and_their_username_free,
    ]
);

suite!($
    /// Runs the `AccountRepository` contract: one test per behaviour.
    account_contract, identity::account_behaviours, dyn AccountRepository, [
        an_account_is_found_by_email_and_by_user,
        an_email_has_one_account,
        a_password_hash_is_replaced,
        a_rehashed_account_reads_back_with_its_update_time,
        an_account_deletion_token_is_kept_until_cleared,
        only_expired_deletion_tokens_are_cleared,
        a_reset_token_matches_only_its_hash_until_it_expires,
        a_reset_token_works_once,
        a_verification_token_verifies_the_email_once,
        a_cleared_verification_token_no_longer_verifies,
        deleted_accounts_are_found_neither_by_user_nor_by_email,
    ]
);

suite!($
    /// Runs the `SessionRepository` contract: one test per behaviour.
    session_contract, identity::session_behaviours, dyn SessionRepository, [
        a_stored_session_reads_back_unchanged,
        a_refresh_rotation_needs_the_current_hash,
        a_rotated_session_keeps_the_previous_hash_and_cannot_rotate_again,
        touching_a_session_records_its_last_activity,
        a_session_location_is_replaced_whole,
        locating_an_unknown_session_is_no_error,
        live_sessions_are_listed_most_recently_active_first_without_expired_ones,
        another_users_session_is_never_revoked,
        a_session_is_revoked_once,
        a_revoked_session_reads_back_revoked_and_otherwise_unchanged,
        a_revoked_session_cannot_rotate,
        the_session_history_keeps_revoked_sessions_of_the_owner_only,
        the_session_history_is_newest_first_up_to_the_limit,
        revoking_the_other_sessions_spares_the_kept_one_and_other_users,
        purging_removes_every_session_that_is_not_live,
        deleting_a_users_sessions_spares_other_users,
    ]
);

// `UserRepository`

/// The profile change the user behaviours make: one field set, one cleared.
fn analyst() -> ProfileChanges {
    ProfileChanges {
        bio: Some(Some("Analyst".into())),
        location: Some(None),
        ..ProfileChanges::default()
    }
}

async fn a_stored_user_reads_back_unchanged(repo: &dyn UserRepository) {
    let ada = user("ada", now_ms());
    repo.insert_user(&ada).await.unwrap();
    assert_eq!(repo.find_user(&ada.id).await.unwrap(), Some(ada));
    assert_eq!(repo.find_user(&UserId::generate()).await.unwrap(), None);
}

async fn a_username_is_unique_and_a_refused_insert_stores_nothing(repo: &dyn UserRepository) {
    let now = now_ms();
    repo.insert_user(&user("ada", now)).await.unwrap();
    let twin = user("ada", now);
    assert!(matches!(
        repo.insert_user(&twin).await,
        Err(StoreError::Duplicate { key: "username" })
    ));
    assert_eq!(repo.find_user(&twin.id).await.unwrap(), None);
}

async fn a_user_is_found_by_username(repo: &dyn UserRepository) {
    let ada = user("ada", now_ms());
    repo.insert_user(&ada).await.unwrap();
    assert!(repo.username_taken("ada").await.unwrap());
    assert!(!repo.username_taken("grace").await.unwrap());
    assert_eq!(
        repo.find_user_by_username("ada")
            .await
            .unwrap()
            .map(|u| u.id),
        Some(ada.id)
    );
    assert_eq!(repo.find_user_by_username("grace").await.unwrap(), None);
}

async fn a_profile_update_changes_only_the_named_fields(repo: &dyn UserRepository) {
    let now = now_ms();
    let ada = user("ada", now);
    repo.insert_user(&ada).await.unwrap();
    let later = now + TimeDelta::seconds(5);
    let updated = repo
        .update_profile(&ada.id, &analyst(), later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.bio.as_deref(), Some("Analyst"));
    assert_eq!(updated.location, None, "Some(None) clears a field");
    assert_eq!(updated.first_name, ada.first_name, "fields not named stay");
    assert_eq!(updated.updated_at, later);
    assert_eq!(repo.find_user(&ada.id).await.unwrap(), Some(updated));
}

async fn the_avatar_is_set_and_cleared_like_any_profile_field(repo: &dyn UserRepository) {
    let now = now_ms();
    let ada = user("ada", now);
    repo.insert_user(&ada).await.unwrap();
    let url = "https://api.example/uploads/a/user-avatar/b.png";
    let set = ProfileChanges {
        avatar: Some(Some(url.to_owned())),
        ..ProfileChanges::default()
    };
    let updated = repo
        .update_profile(&ada.id, &set, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.avatar.as_deref(), Some(url));
    assert_eq!(updated.bio, ada.bio, "fields not named stay");
    assert_eq!(repo.find_user(&ada.id).await.unwrap(), Some(updated));
    let other = repo
        .update_profile(&ada.id, &analyst(), now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        other.avatar.as_deref(),
        Some(url),
        "a change without it keeps it"
    );
    let clear = ProfileChanges {
        avatar: Some(None),
        ..ProfileChanges::default()
    };
    let cleared = repo
        .update_profile(&ada.id, &clear, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cleared.avatar, None);
    assert_eq!(repo.find_user(&ada.id).await.unwrap().unwrap().avatar, None);
}

async fn a_profile_update_of_an_unknown_user_finds_nobody(repo: &dyn UserRepository) {
    assert_eq!(
        repo.update_profile(&UserId::generate(), &analyst(), now_ms())
            .await
            .unwrap(),
        None
    );
}

async fn a_login_records_the_time_and_only_raises_the_role(repo: &dyn UserRepository) {
    let now = now_ms();
    let ada = user("ada", now);
    repo.insert_user(&ada).await.unwrap();
    let later = now + TimeDelta::seconds(5);
    repo.record_login(&ada.id, Role::Admin, later)
        .await
        .unwrap();
    let logged_in = repo.find_user(&ada.id).await.unwrap().unwrap();
    assert_eq!(
        (logged_in.role, logged_in.last_login_at),
        (Role::Admin, Some(later))
    );
    let latest = later + TimeDelta::seconds(5);
    repo.record_login(&ada.id, Role::User, latest)
        .await
        .unwrap();
    let again = repo.find_user(&ada.id).await.unwrap().unwrap();
    assert_eq!(
        (again.role, again.last_login_at),
        (Role::Admin, Some(latest)),
        "a stored role is never lowered"
    );
}

async fn a_username_is_assigned_only_to_a_user_without_one(repo: &dyn UserRepository) {
    let now = now_ms();
    let unnamed = user("", now);
    repo.insert_user(&unnamed).await.unwrap();
    repo.insert_user(&user("grace", now)).await.unwrap();
    assert!(matches!(
        repo.assign_username(&unnamed.id, "grace").await,
        Err(StoreError::Duplicate { key: "username" })
    ));
    assert!(repo.assign_username(&unnamed.id, "ada").await.unwrap());
    assert!(
        !repo.assign_username(&unnamed.id, "ada2").await.unwrap(),
        "a username, once given, stays"
    );
    assert!(
        !repo
            .assign_username(&UserId::generate(), "ada3")
            .await
            .unwrap()
    );
    let named = repo.find_user(&unnamed.id).await.unwrap().unwrap();
    assert_eq!(
        named,
        User {
            username: "ada".into(),
            ..unnamed
        }
    );
    assert!(!repo.username_taken("ada2").await.unwrap());
}

async fn a_deleted_user_is_gone_and_their_username_free(repo: &dyn UserRepository) {
    let ada = user("ada", now_ms());
    repo.insert_user(&ada).await.unwrap();
    repo.delete_user(&ada.id).await.unwrap();
    assert_eq!(repo.find_user(&ada.id).await.unwrap(), None);
    assert!(!repo.username_taken("ada").await.unwrap());
}

// `AccountRepository`

/// Ada's account, stored.
async fn stored_account(repo: &dyn AccountRepository) -> Account {
    let ada = account(&UserId::generate(), "ada@example.com", now_ms());
    repo.insert_account(&ada).await.unwrap();
    ada
}

/// The account as stored now.
async fn reread_account(repo: &dyn AccountRepository, account: &Account) -> Account {
    repo.find_account_by_user(&account.user_id)
        .await
        .unwrap()
        .unwrap()
}

/// The hash of the one-time tokens the account behaviours set.
const TOKEN_HASH: &str = "token-hash";

/// Ada's account, stored with a `purpose` token (of hash `TOKEN_HASH`) valid for an hour;
/// with the token and when it was set.
async fn account_with_token(
    repo: &dyn AccountRepository,
    purpose: TokenPurpose,
) -> (Account, StoredToken, DateTime<Utc>) {
    let ada = stored_account(repo).await;
    let now = now_ms();
    let token = StoredToken {
        hash: TOKEN_HASH.into(),
        expires_at: now + TimeDelta::hours(1),
    };
    repo.set_token(&ada.id, purpose, Some(&token), now)
        .await
        .unwrap();
    (ada, token, now)
}

async fn an_account_is_found_by_email_and_by_user(repo: &dyn AccountRepository) {
    let ada = stored_account(repo).await;
    assert_eq!(
        repo.find_account_by_email("ada@example.com").await.unwrap(),
        Some(ada.clone())
    );
    assert_eq!(
        repo.find_account_by_user(&ada.user_id).await.unwrap(),
        Some(ada)
    );
    assert_eq!(
        repo.find_account_by_email("nobody@example.com")
            .await
            .unwrap(),
        None
    );
}

async fn an_email_has_one_account(repo: &dyn AccountRepository) {
    stored_account(repo).await;
    assert!(matches!(
        repo.insert_account(&account(&UserId::generate(), "ada@example.com", now_ms()))
            .await,
        Err(StoreError::Duplicate { key: "email" })
    ));
}

async fn a_password_hash_is_replaced(repo: &dyn AccountRepository) {
    let ada = stored_account(repo).await;
    repo.set_password_hash(&ada.id, "new-hash", now_ms())
        .await
        .unwrap();
    assert_eq!(reread_account(repo, &ada).await.password_hash, "new-hash");
}

async fn a_rehashed_account_reads_back_with_its_update_time(repo: &dyn AccountRepository) {
    let ada = stored_account(repo).await;
    let later = now_ms() + TimeDelta::seconds(5);
    repo.set_password_hash(&ada.id, "rehashed", later)
        .await
        .unwrap();
    assert_eq!(
        repo.find_account_by_email("ada@example.com").await.unwrap(),
        Some(Account {
            password_hash: "rehashed".into(),
            updated_at: later,
            ..ada
        })
    );
}

async fn an_account_deletion_token_is_kept_until_cleared(repo: &dyn AccountRepository) {
    let (ada, deletion, now) = account_with_token(repo, TokenPurpose::AccountDeletion).await;
    assert_eq!(
        reread_account(repo, &ada).await.account_deletion,
        Some(deletion)
    );
    repo.set_token(&ada.id, TokenPurpose::AccountDeletion, None, now)
        .await
        .unwrap();
    assert_eq!(reread_account(repo, &ada).await.account_deletion, None);
}

async fn only_expired_deletion_tokens_are_cleared(repo: &dyn AccountRepository) {
    let (ada, deletion, now) = account_with_token(repo, TokenPurpose::AccountDeletion).await;
    assert_eq!(repo.clear_expired_deletion_tokens(now).await.unwrap(), 0);
    assert_eq!(
        reread_account(repo, &ada).await.account_deletion,
        Some(deletion)
    );
    let later = now + TimeDelta::hours(2);
    assert_eq!(repo.clear_expired_deletion_tokens(later).await.unwrap(), 1);
    assert_eq!(reread_account(repo, &ada).await.account_deletion, None);
    assert_eq!(repo.clear_expired_deletion_tokens(later).await.unwrap(), 0);
}

async fn a_reset_token_matches_only_its_hash_until_it_expires(repo: &dyn AccountRepository) {
    let (_, _, now) = account_with_token(repo, TokenPurpose::PasswordReset).await;
    assert_eq!(
        repo.take_reset_token("other-hash", now).await.unwrap(),
        None,
        "only the right hash matches"
    );
    assert_eq!(
        repo.take_reset_token(TOKEN_HASH, now + TimeDelta::hours(2))
            .await
            .unwrap(),
        None,
        "an expired token does not match"
    );
}

async fn a_reset_token_works_once(repo: &dyn AccountRepository) {
    let (ada, _, now) = account_with_token(repo, TokenPurpose::PasswordReset).await;
    let taken = repo
        .take_reset_token(TOKEN_HASH, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.id, ada.id);
    assert_eq!(repo.take_reset_token(TOKEN_HASH, now).await.unwrap(), None);
    assert_eq!(reread_account(repo, &ada).await.password_reset, None);
}

async fn a_verification_token_verifies_the_email_once(repo: &dyn AccountRepository) {
    let (ada, verify, now) = account_with_token(repo, TokenPurpose::EmailVerification).await;
    assert_eq!(
        reread_account(repo, &ada).await.email_verification,
        Some(verify)
    );
    let verified = repo
        .take_verification_token(TOKEN_HASH, now)
        .await
        .unwrap()
        .unwrap();
    assert!(verified.email_verified && verified.email_verification.is_none());
    assert!(reread_account(repo, &ada).await.email_verified);
    assert_eq!(
        repo.take_verification_token(TOKEN_HASH, now).await.unwrap(),
        None
    );
}

async fn a_cleared_verification_token_no_longer_verifies(repo: &dyn AccountRepository) {
    let (ada, _, now) = account_with_token(repo, TokenPurpose::EmailVerification).await;
    repo.set_token(&ada.id, TokenPurpose::EmailVerification, None, now)
        .await
        .unwrap();
    assert_eq!(
        repo.take_verification_token(TOKEN_HASH, now).await.unwrap(),
        None
    );
}

async fn deleted_accounts_are_found_neither_by_user_nor_by_email(repo: &dyn AccountRepository) {
    let ada = stored_account(repo).await;
    repo.delete_accounts_of(&ada.user_id).await.unwrap();
    assert_eq!(repo.find_account_by_user(&ada.user_id).await.unwrap(), None);
    assert_eq!(
        repo.find_account_by_email("ada@example.com").await.unwrap(),
        None
    );
}

// `SessionRepository`

/// A session of `owner` created (and last active) at `at`, stored.
async fn stored_session(
    repo: &dyn SessionRepository,
    owner: &UserId,
    at: DateTime<Utc>,
) -> Session {
    let stored = session(owner, &AccountId::generate(), at);
    repo.insert_session(&stored).await.unwrap();
    stored
}

/// A session of `owner`, stored and revoked.
async fn stored_revoked_session(repo: &dyn SessionRepository, owner: &UserId) -> Session {
    let revoked = stored_session(repo, owner, now_ms()).await;
    assert!(repo.revoke_session(owner, &revoked.id).await.unwrap());
    revoked
}

/// A session that expired a day ago, stored.
async fn stored_expired_session(repo: &dyn SessionRepository, owner: &UserId) -> Session {
    let now = now_ms();
    let mut expired = session(owner, &AccountId::generate(), now - TimeDelta::days(8));
    expired.expires_at = now - TimeDelta::days(1);
    repo.insert_session(&expired).await.unwrap();
    expired
}

/// The session as stored now.
async fn reread_session(repo: &dyn SessionRepository, session: &Session) -> Session {
    repo.find_session(&session.id).await.unwrap().unwrap()
}

/// A rotation from `session`'s current hash to `next`.
fn rotation_of(session: &Session, at: DateTime<Utc>) -> Rotation {
    Rotation {
        expected: session.refresh_hash.clone(),
        current: "next".into(),
        previous: session.refresh_hash.clone(),
        rotated_at: at,
    }
}

async fn live_ids(repo: &dyn SessionRepository, owner: &UserId) -> Vec<SessionId> {
    repo.list_live_sessions(owner, now_ms())
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect()
}

async fn a_stored_session_reads_back_unchanged(repo: &dyn SessionRepository) {
    let ada = UserId::generate();
    let plain = stored_session(repo, &ada, now_ms()).await;
    assert_eq!(repo.find_session(&plain.id).await.unwrap(), Some(plain));
    let located = Session {
        location: Some(london()),
        ..session(&ada, &AccountId::generate(), now_ms())
    };
    repo.insert_session(&located).await.unwrap();
    assert_eq!(
        repo.find_session(&located.id).await.unwrap(),
        Some(located),
        "a session stored with a location reads back unchanged"
    );
}

async fn a_refresh_rotation_needs_the_current_hash(repo: &dyn SessionRepository) {
    let now = now_ms();
    let stored = stored_session(repo, &UserId::generate(), now).await;
    let stale = Rotation {
        expected: "not-current".into(),
        previous: "not-current".into(),
        ..rotation_of(&stored, now + TimeDelta::seconds(30))
    };
    assert!(!repo.rotate_refresh(&stored.id, &stale).await.unwrap());
}

async fn a_rotated_session_keeps_the_previous_hash_and_cannot_rotate_again(
    repo: &dyn SessionRepository,
) {
    let now = now_ms();
    let stored = stored_session(repo, &UserId::generate(), now).await;
    let later = now + TimeDelta::seconds(30);
    let rotation = rotation_of(&stored, later);
    assert!(repo.rotate_refresh(&stored.id, &rotation).await.unwrap());
    assert!(
        !repo.rotate_refresh(&stored.id, &rotation).await.unwrap(),
        "a rotated hash cannot rotate again"
    );
    let rotated = reread_session(repo, &stored).await;
    assert_eq!(rotated.refresh_hash, "next");
    assert_eq!(
        rotated.previous_refresh_hash.as_deref(),
        Some(stored.refresh_hash.as_str())
    );
    assert_eq!(rotated.rotated_at, Some(later));
}

async fn touching_a_session_records_its_last_activity(repo: &dyn SessionRepository) {
    let now = now_ms();
    let stored = stored_session(repo, &UserId::generate(), now).await;
    let later = now + TimeDelta::seconds(30);
    repo.touch_session(&stored.id, later).await.unwrap();
    assert_eq!(reread_session(repo, &stored).await.last_activity_at, later);
}

async fn a_session_location_is_replaced_whole(repo: &dyn SessionRepository) {
    let stored = stored_session(repo, &UserId::generate(), now_ms()).await;
    repo.set_session_location(&stored.id, &london())
        .await
        .unwrap();
    assert_eq!(
        reread_session(repo, &stored).await.location,
        Some(london()),
        "a location reads back whole"
    );
    let country_only = GeoLocation {
        country_code: Some("SE".into()),
        ..GeoLocation::default()
    };
    repo.set_session_location(&stored.id, &country_only)
        .await
        .unwrap();
    assert_eq!(
        reread_session(repo, &stored).await.location,
        Some(country_only),
        "a new location replaces the old one, and unknown parts stay unknown"
    );
}

async fn locating_an_unknown_session_is_no_error(repo: &dyn SessionRepository) {
    repo.set_session_location(&SessionId::generate(), &london())
        .await
        .unwrap();
}

async fn live_sessions_are_listed_most_recently_active_first_without_expired_ones(
    repo: &dyn SessionRepository,
) {
    let (ada, grace) = (UserId::generate(), UserId::generate());
    let now = now_ms();
    let touched = stored_session(repo, &ada, now - TimeDelta::seconds(2)).await;
    let recent = stored_session(repo, &ada, now).await;
    let older = stored_session(repo, &ada, now - TimeDelta::seconds(1)).await;
    stored_expired_session(repo, &ada).await;
    stored_session(repo, &grace, now).await;
    repo.touch_session(&touched.id, now + TimeDelta::seconds(30))
        .await
        .unwrap();
    assert_eq!(
        live_ids(repo, &ada).await,
        [touched.id, recent.id, older.id]
    );
}

async fn another_users_session_is_never_revoked(repo: &dyn SessionRepository) {
    let adas = stored_session(repo, &UserId::generate(), now_ms()).await;
    assert!(
        !repo
            .revoke_session(&UserId::generate(), &adas.id)
            .await
            .unwrap()
    );
    assert!(reread_session(repo, &adas).await.is_active);
}

async fn a_session_is_revoked_once(repo: &dyn SessionRepository) {
    let ada = UserId::generate();
    let stored = stored_session(repo, &ada, now_ms()).await;
    assert!(repo.revoke_session(&ada, &stored.id).await.unwrap());
    assert!(
        !repo.revoke_session(&ada, &stored.id).await.unwrap(),
        "revoking twice reports nothing revoked"
    );
}

async fn a_revoked_session_reads_back_revoked_and_otherwise_unchanged(
    repo: &dyn SessionRepository,
) {
    let ada = UserId::generate();
    let stored = stored_session(repo, &ada, now_ms()).await;
    assert!(repo.revoke_session(&ada, &stored.id).await.unwrap());
    assert_eq!(
        reread_session(repo, &stored).await,
        Session {
            is_active: false,
            ..stored
        }
    );
}

async fn a_revoked_session_cannot_rotate(repo: &dyn SessionRepository) {
    let revoked = stored_revoked_session(repo, &UserId::generate()).await;
    let rotation = rotation_of(&revoked, now_ms() + TimeDelta::seconds(30));
    assert!(!repo.rotate_refresh(&revoked.id, &rotation).await.unwrap());
}

async fn the_session_history_keeps_revoked_sessions_of_the_owner_only(
    repo: &dyn SessionRepository,
) {
    let (ada, grace) = (UserId::generate(), UserId::generate());
    let now = now_ms();
    let live = stored_session(repo, &ada, now).await;
    let revoked = stored_revoked_session(repo, &ada).await;
    let expired = stored_expired_session(repo, &ada).await;
    stored_session(repo, &grace, now).await;
    let history = repo.session_history(&ada, 10).await.unwrap();
    let ids: Vec<&SessionId> = history.iter().map(|s| &s.id).collect();
    assert!(
        ids.contains(&&live.id) && ids.contains(&&revoked.id),
        "the history has live and revoked sessions: {ids:?}"
    );
    // Stores may drop expired sessions on their own, so the expired one may be missing.
    assert!(
        ids.iter()
            .all(|id| [&live.id, &revoked.id, &expired.id].contains(id)),
        "only the owner's sessions: {ids:?}"
    );
}

async fn the_session_history_is_newest_first_up_to_the_limit(repo: &dyn SessionRepository) {
    let ada = UserId::generate();
    let now = now_ms();
    for seconds in [1, 3, 2] {
        stored_session(repo, &ada, now - TimeDelta::seconds(seconds)).await;
    }
    let history = repo.session_history(&ada, 10).await.unwrap();
    assert_eq!(history.len(), 3);
    assert!(
        history
            .windows(2)
            .all(|pair| pair[0].created_at >= pair[1].created_at),
        "most recently created first"
    );
    assert_eq!(
        repo.session_history(&ada, 2).await.unwrap().len(),
        2,
        "at most the limit"
    );
}

async fn revoking_the_other_sessions_spares_the_kept_one_and_other_users(
    repo: &dyn SessionRepository,
) {
    let (ada, grace) = (UserId::generate(), UserId::generate());
    let now = now_ms();
    let kept = stored_session(repo, &ada, now).await;
    let other = stored_session(repo, &ada, now).await;
    stored_revoked_session(repo, &ada).await;
    let expired = stored_expired_session(repo, &ada).await;
    let graces = stored_session(repo, &grace, now).await;
    let revoked = repo
        .revoke_sessions_except(&ada, Some(&kept.id))
        .await
        .unwrap();
    assert!(
        revoked.contains(&other.id),
        "active sessions but the kept one are revoked"
    );
    // Stores may drop expired sessions on their own (MongoDB's TTL index), so the expired one
    // may or may not be among the revoked.
    assert!(
        revoked
            .iter()
            .all(|id| id == &other.id || id == &expired.id),
        "only those: {revoked:?}"
    );
    assert_eq!(live_ids(repo, &ada).await, [kept.id]);
    assert!(
        reread_session(repo, &graces).await.is_active,
        "other users are untouched"
    );
}

async fn purging_removes_every_session_that_is_not_live(repo: &dyn SessionRepository) {
    let ada = UserId::generate();
    let now = now_ms();
    let live = stored_session(repo, &ada, now).await;
    let gone = [
        stored_revoked_session(repo, &ada).await,
        stored_revoked_session(repo, &ada).await,
        stored_expired_session(repo, &ada).await,
    ];
    let purged = repo.purge_sessions(now).await.unwrap();
    // Stores may drop expired sessions on their own, so the expired one may be gone already.
    assert!(
        purged >= 2,
        "every session that is not live is purged ({purged})"
    );
    for session in &gone {
        assert!(repo.find_session(&session.id).await.unwrap().is_none());
    }
    assert!(
        repo.find_session(&live.id).await.unwrap().is_some(),
        "live sessions stay"
    );
}

async fn deleting_a_users_sessions_spares_other_users(repo: &dyn SessionRepository) {
    let (ada, grace) = (UserId::generate(), UserId::generate());
    let now = now_ms();
    let adas = stored_session(repo, &ada, now).await;
    let graces = stored_session(repo, &grace, now).await;
    repo.delete_sessions_of(&ada).await.unwrap();
    assert!(repo.find_session(&adas.id).await.unwrap().is_none());
    assert!(repo.find_session(&graces.id).await.unwrap().is_some());
}
