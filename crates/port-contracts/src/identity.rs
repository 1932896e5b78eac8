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

pub async fn users(repo: &dyn UserRepository) {
    let now = now_ms();
    let ada = user("ada", now);
    repo.insert_user(&ada).await.unwrap();
    assert_eq!(
        repo.find_user(&ada.id).await.unwrap(),
        Some(ada.clone()),
        "a stored user reads back unchanged"
    );
    assert_eq!(repo.find_user(&UserId::generate()).await.unwrap(), None);

    let twin = user("ada", now);
    assert!(
        matches!(
            repo.insert_user(&twin).await,
            Err(StoreError::Duplicate { key: "username" })
        ),
        "usernames are unique"
    );
    assert_eq!(
        repo.find_user(&twin.id).await.unwrap(),
        None,
        "a refused insert stores nothing"
    );
    assert!(repo.username_taken("ada").await.unwrap());
    assert!(!repo.username_taken("grace").await.unwrap());
    assert_eq!(
        repo.find_user_by_username("ada")
            .await
            .unwrap()
            .map(|u| u.id),
        Some(ada.id.clone())
    );
    assert_eq!(repo.find_user_by_username("grace").await.unwrap(), None);

    let later = now + TimeDelta::seconds(5);
    let changes = ProfileChanges {
        bio: Some(Some("Analyst".into())),
        location: Some(None),
        ..ProfileChanges::default()
    };
    let updated = repo
        .update_profile(&ada.id, &changes, later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.bio.as_deref(), Some("Analyst"));
    assert_eq!(updated.location, None, "Some(None) clears a field");
    assert_eq!(updated.first_name, ada.first_name, "fields not named stay");
    assert_eq!(updated.updated_at, later);
    assert_eq!(repo.find_user(&ada.id).await.unwrap(), Some(updated));
    assert_eq!(
        repo.update_profile(&UserId::generate(), &changes, later)
            .await
            .unwrap(),
        None
    );

    repo.record_login(&ada.id, Role::Admin, later)
        .await
        .unwrap();
    let logged_in = repo.find_user(&ada.id).await.unwrap().unwrap();
    assert_eq!(
        (logged_in.role, logged_in.last_login_at),
        (Role::Admin, Some(later))
    );

    repo.delete_user(&ada.id).await.unwrap();
    assert_eq!(repo.find_user(&ada.id).await.unwrap(), None);
    assert!(!repo.username_taken("ada").await.unwrap());
}

pub async fn accounts(repo: &dyn AccountRepository) {
    let now = now_ms();
    let owner = UserId::generate();
    let ada = account(&owner, "ada@example.com", now);
    repo.insert_account(&ada).await.unwrap();
    assert_eq!(
        repo.find_account_by_email("ada@example.com").await.unwrap(),
        Some(ada.clone())
    );
    assert_eq!(
        repo.find_account_by_user(&owner).await.unwrap(),
        Some(ada.clone())
    );
    assert_eq!(
        repo.find_account_by_email("nobody@example.com")
            .await
            .unwrap(),
        None
    );
    assert!(
        matches!(
            repo.insert_account(&account(&UserId::generate(), "ada@example.com", now))
                .await,
            Err(StoreError::Duplicate { key: "email" })
        ),
        "one account per email"
    );

    repo.set_password_hash(&ada.id, "new-hash", now)
        .await
        .unwrap();
    assert_eq!(
        repo.find_account_by_user(&owner)
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "new-hash"
    );

    let deletion = StoredToken {
        hash: "deletion-hash".into(),
        expires_at: now + TimeDelta::hours(24),
    };
    repo.set_token(&ada.id, TokenPurpose::AccountDeletion, Some(&deletion), now)
        .await
        .unwrap();
    let stored = repo
        .find_account_by_user(&ada.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.account_deletion,
        Some(deletion),
        "the deletion token is kept"
    );
    repo.set_token(&ada.id, TokenPurpose::AccountDeletion, None, now)
        .await
        .unwrap();
    let stored = repo
        .find_account_by_user(&ada.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.account_deletion, None, "and can be cleared");

    let reset = StoredToken {
        hash: "reset-hash".into(),
        expires_at: now + TimeDelta::hours(1),
    };
    repo.set_token(&ada.id, TokenPurpose::PasswordReset, Some(&reset), now)
        .await
        .unwrap();
    assert_eq!(
        repo.take_reset_token("other-hash", now).await.unwrap(),
        None,
        "only the right hash matches"
    );
    assert_eq!(
        repo.take_reset_token("reset-hash", now + TimeDelta::hours(2))
            .await
            .unwrap(),
        None,
        "an expired token does not match"
    );
    let taken = repo
        .take_reset_token("reset-hash", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.id, ada.id);
    assert_eq!(
        repo.take_reset_token("reset-hash", now).await.unwrap(),
        None,
        "a reset token works once"
    );
    assert_eq!(
        repo.find_account_by_user(&owner)
            .await
            .unwrap()
            .unwrap()
            .password_reset,
        None
    );

    let verify = StoredToken {
        hash: "verify-hash".into(),
        expires_at: now + TimeDelta::hours(24),
    };
    repo.set_token(&ada.id, TokenPurpose::EmailVerification, Some(&verify), now)
        .await
        .unwrap();
    assert_eq!(
        repo.find_account_by_user(&owner)
            .await
            .unwrap()
            .unwrap()
            .email_verification,
        Some(verify.clone())
    );
    let verified = repo
        .take_verification_token("verify-hash", now)
        .await
        .unwrap()
        .unwrap();
    assert!(verified.email_verified && verified.email_verification.is_none());
    assert!(
        repo.find_account_by_user(&owner)
            .await
            .unwrap()
            .unwrap()
            .email_verified
    );
    assert_eq!(
        repo.take_verification_token("verify-hash", now)
            .await
            .unwrap(),
        None,
        "a verification token works once"
    );

    repo.set_token(&ada.id, TokenPurpose::EmailVerification, Some(&verify), now)
        .await
        .unwrap();
    repo.set_token(&ada.id, TokenPurpose::EmailVerification, None, now)
        .await
        .unwrap();
    assert_eq!(
        repo.take_verification_token("verify-hash", now)
            .await
            .unwrap(),
        None,
        "a cleared token is gone"
    );

    repo.delete_accounts_of(&owner).await.unwrap();
    assert_eq!(repo.find_account_by_user(&owner).await.unwrap(), None);
    assert_eq!(
        repo.find_account_by_email("ada@example.com").await.unwrap(),
        None
    );
}

pub async fn sessions(repo: &dyn SessionRepository) {
    let now = now_ms();
    let (ada, grace) = (UserId::generate(), UserId::generate());
    let account = AccountId::generate();
    let first = session(&ada, &account, now);
    repo.insert_session(&first).await.unwrap();
    assert_eq!(
        repo.find_session(&first.id).await.unwrap(),
        Some(first.clone()),
        "a stored session reads back unchanged"
    );

    let later = now + TimeDelta::seconds(30);
    let rotation = Rotation {
        expected: "not-current".into(),
        current: "next".into(),
        previous: "not-current".into(),
        rotated_at: later,
    };
    assert!(
        !repo.rotate_refresh(&first.id, &rotation).await.unwrap(),
        "rotation needs the current hash"
    );
    let rotation = Rotation {
        expected: first.refresh_hash.clone(),
        previous: first.refresh_hash.clone(),
        ..rotation
    };
    assert!(repo.rotate_refresh(&first.id, &rotation).await.unwrap());
    assert!(
        !repo.rotate_refresh(&first.id, &rotation).await.unwrap(),
        "a rotated hash cannot rotate again"
    );
    let rotated = repo.find_session(&first.id).await.unwrap().unwrap();
    assert_eq!(rotated.refresh_hash, "next");
    assert_eq!(
        rotated.previous_refresh_hash.as_deref(),
        Some(first.refresh_hash.as_str())
    );
    assert_eq!(rotated.rotated_at, Some(later));

    repo.touch_session(&first.id, later).await.unwrap();
    assert_eq!(
        repo.find_session(&first.id)
            .await
            .unwrap()
            .unwrap()
            .last_activity_at,
        later
    );

    repo.set_session_location(&first.id, &london())
        .await
        .unwrap();
    assert_eq!(
        repo.find_session(&first.id)
            .await
            .unwrap()
            .unwrap()
            .location,
        Some(london()),
        "a location reads back whole"
    );
    let country_only = GeoLocation {
        country_code: Some("SE".into()),
        ..GeoLocation::default()
    };
    repo.set_session_location(&first.id, &country_only)
        .await
        .unwrap();
    assert_eq!(
        repo.find_session(&first.id)
            .await
            .unwrap()
            .unwrap()
            .location,
        Some(country_only),
        "a new location replaces the old one, and unknown parts stay unknown"
    );
    repo.set_session_location(&SessionId::generate(), &london())
        .await
        .unwrap();

    let second = Session {
        location: Some(london()),
        ..session(&ada, &account, now)
    };
    let third = session(&ada, &account, now - TimeDelta::seconds(1));
    let mut expired = session(&ada, &account, now - TimeDelta::days(8));
    expired.expires_at = now - TimeDelta::days(1);
    let other = session(&grace, &AccountId::generate(), now);
    for s in [&second, &third, &expired, &other] {
        repo.insert_session(s).await.unwrap();
    }
    assert_eq!(
        repo.find_session(&second.id).await.unwrap(),
        Some(second.clone()),
        "a session stored with a location reads back unchanged"
    );
    let live: Vec<SessionId> = repo
        .list_live_sessions(&ada, now)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(
        live,
        vec![first.id.clone(), second.id.clone(), third.id.clone()],
        "live sessions, most recent first, expired left out"
    );

    assert!(
        !repo.revoke_session(&grace, &first.id).await.unwrap(),
        "another user's session is never revoked"
    );
    assert!(
        repo.find_session(&first.id)
            .await
            .unwrap()
            .unwrap()
            .is_active
    );
    assert!(repo.revoke_session(&ada, &third.id).await.unwrap());
    assert!(
        !repo.revoke_session(&ada, &third.id).await.unwrap(),
        "revoking twice reports nothing revoked"
    );
    let rotation = Rotation {
        expected: third.refresh_hash.clone(),
        ..rotation
    };
    assert!(
        !repo.rotate_refresh(&third.id, &rotation).await.unwrap(),
        "a revoked session cannot rotate"
    );

    let history = repo.session_history(&ada, 10).await.unwrap();
    let ids: Vec<&SessionId> = history.iter().map(|s| &s.id).collect();
    for kept in [&first.id, &second.id, &third.id] {
        assert!(
            ids.contains(&kept),
            "the history has live and revoked sessions: {ids:?}"
        );
    }
    // Stores may drop expired sessions on their own, so the expired one may be missing.
    assert!(
        ids.iter()
            .all(|id| [&first.id, &second.id, &third.id, &expired.id].contains(id)),
        "only the owner's sessions: {ids:?}"
    );
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

    // Stores may drop expired sessions on their own (MongoDB's TTL index), so the expired one
    // may or may not be among the revoked.
    let revoked = repo
        .revoke_sessions_except(&ada, Some(&first.id))
        .await
        .unwrap();
    assert!(
        revoked.contains(&second.id),
        "active sessions but the kept one are revoked"
    );
    assert!(
        revoked
            .iter()
            .all(|id| id == &second.id || id == &expired.id),
        "only those: {revoked:?}"
    );
    let live: Vec<SessionId> = repo
        .list_live_sessions(&ada, now)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(live, vec![first.id.clone()]);
    assert!(
        repo.find_session(&other.id)
            .await
            .unwrap()
            .unwrap()
            .is_active,
        "other users are untouched"
    );

    let purged = repo.purge_sessions(now).await.unwrap();
    assert!(
        purged >= 2,
        "every session that is not live is purged ({purged})"
    );
    for gone in [&second.id, &third.id, &expired.id] {
        assert!(repo.find_session(gone).await.unwrap().is_none());
    }
    assert!(
        repo.find_session(&first.id).await.unwrap().is_some(),
        "live sessions stay"
    );

    repo.delete_sessions_of(&ada).await.unwrap();
    assert!(repo.find_session(&first.id).await.unwrap().is_none());
    assert!(repo.find_session(&other.id).await.unwrap().is_some());
}
