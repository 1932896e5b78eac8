//! The adapter on a database the NestJS version filled (`tests/fixtures/nestjs-database.json`):
//! it starts on its Mongoose indexes, reads every document, and its writes keep what it cannot
//! read. (Which index is reused is unit-tested in `indexes.rs`: the stand-in merges indexes on
//! the same keys silently, where MongoDB would refuse the second.)

use std::sync::atomic::{AtomicUsize, Ordering};

use auth_core::model::{Role, SessionId, UserId};
use auth_core::ports::{AccountRepository, SessionRepository, UserRepository};
use auth_core::preferences::APP_PREFERENCES;
use chrono::{TimeZone as _, Utc};
use kernel::record::{FieldNames, Value};
use kernel::settings::{SettingsDocument, SettingsRepository};
use mongodb::bson::{Bson, Document, doc, oid::ObjectId};
use portfolio_core::model::ItemId;
use portfolio_core::ports::{ListQuery, PortfolioRepository};
use portfolio_core::resources::{PROFILE, PROJECTS, SKILLS};
use testkit::MongoStandIn;

use crate::MongoStore;

const ADA: &str = "64b000000000000000000a01";
const GRACE: &str = "64b000000000000000000a02";
const LINUS: &str = "64b000000000000000000a03";
const ADA_SESSION: &str = "64b000000000000000000c01";
const ADA_SKILL: &str = "64b000000000000000000d02";

/// The fixture in a database of its own, and the adapter connected to it.
async fn nestjs_database() -> (String, String, MongoStore) {
    static LOADED: AtomicUsize = AtomicUsize::new(0);
    let database = format!(
        "nestjs_{}_{}",
        std::process::id(),
        LOADED.fetch_add(1, Ordering::Relaxed)
    );
    let uri = MongoStandIn::shared().await.uri();
    testkit::load_nestjs_fixture(&uri, &database).await;
    let store = MongoStore::connect(&uri, Some(&database), &[&PROFILE, &APP_PREFERENCES])
        .await
        .unwrap_or_else(|e| panic!("starting on the NestJS database: {e}"));
    (uri, database, store)
}

fn user(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}

async fn raw(uri: &str, database: &str, collection: &str, id: &str) -> Document {
    let id = ObjectId::parse_str(id).unwrap();
    testkit::stored_documents(uri, database, collection, doc! { "_id": id })
        .await
        .pop()
        .unwrap_or_else(|| panic!("{collection} {id} is stored"))
}

fn names(fields: &[&str]) -> FieldNames {
    fields.iter().map(|&field| field.to_owned()).collect()
}

#[tokio::test]
async fn users_without_username_or_email_read_with_their_accounts_address() {
    testkit::needs!("the MongoDB stand-in");
    let (_, _, store) = nestjs_database().await;
    let ada = store.find_user(&user(ADA)).await.unwrap().unwrap();
    assert_eq!(
        (ada.username.as_str(), ada.email.as_str()),
        ("", "ada.lovelace@example.com")
    );
    assert_eq!(ada.display_name.as_deref(), Some("Ada Lovelace"));
    let grace = store.find_user(&user(GRACE)).await.unwrap().unwrap();
    assert_eq!(
        grace.email, "grace@example.com",
        "found through a string userId"
    );
    assert!(grace.is_active, "stored as 1");
    assert_eq!(
        grace.created_at,
        Utc.with_ymd_and_hms(2026, 4, 1, 9, 0, 0).unwrap(),
        "stored as a string"
    );
    assert_eq!(grace.role, Role::User, "an unknown role grants nothing");
}

#[tokio::test]
async fn accounts_match_any_capitalisation_and_may_have_no_password() {
    testkit::needs!("the MongoDB stand-in");
    let (_, _, store) = nestjs_database().await;
    let ada = store
        .find_account_by_email("ada.lovelace@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ada.email, "ada.lovelace@example.com");
    assert!(
        ada.password_hash
            .starts_with("$argon2id$v=19$m=65536,t=3,p=4$")
    );
    assert_eq!(
        ada.password_reset,
        Some(ada.password_reset.clone().unwrap())
    );
    let linus = store
        .find_account_by_user(&user(LINUS))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(linus.password_hash, "", "OAuth accounts have no password");
    let grace = store
        .find_account_by_user(&user(GRACE))
        .await
        .unwrap()
        .unwrap();
    assert!(!grace.email_verified, "stored as 0");
    for near in [
        "ada.lovelace@example.co",
        "adaxlovelace@example.com",
        "ada.lovelace@example.com\n",
        "ada.lovelaſe@example.com",
    ] {
        assert_eq!(
            store.find_account_by_email(near).await.unwrap(),
            None,
            "the match is exact but for case: {near:?}"
        );
    }
}

#[tokio::test]
async fn old_sessions_list_with_their_location_and_cannot_be_refreshed() {
    testkit::needs!("the MongoDB stand-in");
    let (_, _, store) = nestjs_database().await;
    let live = store
        .list_live_sessions(&user(ADA), Utc::now())
        .await
        .unwrap();
    let old = live
        .iter()
        .find(|s| s.id == SessionId::parse(ADA_SESSION).unwrap())
        .expect("the NestJS session is listed");
    assert_eq!(old.refresh_hash, "");
    assert!(!old.is_refreshable(Utc::now()));
    let location = old.location.clone().unwrap();
    assert_eq!(
        (location.city.as_deref(), location.isp.as_deref()),
        (Some("London"), Some("Andrews & Arnold"))
    );
    assert_eq!(old.device.browser, "Safari 17.4");
}

#[tokio::test]
async fn items_read_through_string_owners_and_writes_keep_unread_fields() {
    testkit::needs!("the MongoDB stand-in");
    let (uri, database, store) = nestjs_database().await;
    let ada = user(ADA);
    let skills = store
        .list_items(&SKILLS, &ada, &ListQuery::ALL)
        .await
        .unwrap();
    let mut skill = skills
        .items
        .into_iter()
        .next()
        .expect("the string-owned skill");
    assert_eq!(
        skill.fields.get("level"),
        None,
        "a text level is not a number"
    );
    skill.fields.set("name", Value::Text("Analysis".into()));
    assert!(store.update_item(&skill, &names(&["name"])).await.unwrap());
    let stored = raw(&uri, &database, "skills", ADA_SKILL).await;
    assert_eq!(stored.get_str("name"), Ok("Analysis"));
    assert_eq!(stored.get_str("level"), Ok("expert"), "{stored}");
    assert_eq!(
        stored.get_str("userId"),
        Ok(ADA),
        "the owner keeps its spelling"
    );

    let project = &store
        .list_items(&PROJECTS, &ada, &ListQuery::ALL)
        .await
        .unwrap()
        .items[0];
    let mut cleared = project.clone();
    cleared.fields.merge(
        [("description".to_owned(), Value::Null)]
            .into_iter()
            .collect(),
    );
    assert!(
        store
            .update_item(&cleared, &names(&["description"]))
            .await
            .unwrap()
    );
    let stored = raw(&uri, &database, "projects", &project.id.to_string()).await;
    assert!(!stored.contains_key("description"), "cleared: {stored}");
    assert_eq!(stored.get("views"), Some(&Bson::Int32(42)));
    assert!(stored.contains_key("legacy"));
    assert_eq!(stored.get_str("title"), Ok("Analytical Engine notes"));
    assert_eq!(
        store
            .find_item(
                &PROJECTS,
                &ada,
                &ItemId::parse(&project.id.to_string()).unwrap()
            )
            .await
            .unwrap()
            .map(|item| item.fields.get("description").cloned()),
        Some(None)
    );
}

#[tokio::test]
async fn settings_writes_keep_the_fields_the_nestjs_version_had() {
    testkit::needs!("the MongoDB stand-in");
    let (uri, database, store) = nestjs_database().await;
    let ada = user(ADA);
    let stored = store
        .load_settings(&APP_PREFERENCES, &ada)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.fields.get("compactMode"), Some(&Value::Bool(true)));
    let mut changed = stored.fields.clone();
    changed.set("theme", Value::Text("light".into()));
    let document = SettingsDocument {
        fields: changed,
        updated_at: Utc::now(),
        ..stored
    };
    store
        .save_settings(&APP_PREFERENCES, &ada, &document, &names(&["theme"]))
        .await
        .unwrap();
    let raw = raw(&uri, &database, "preferences", "64b000000000000000000e02").await;
    assert_eq!(raw.get_str("theme"), Ok("light"));
    assert_eq!(raw.get("sidebarCollapsed"), Some(&Bson::Boolean(true)));
    assert_eq!(
        raw.get("compactMode"),
        Some(&Bson::Int32(1)),
        "not rewritten"
    );
    assert_eq!(
        testkit::stored_documents(&uri, &database, "preferences", doc! {})
            .await
            .len(),
        1,
        "updated in place, not inserted"
    );
}

#[tokio::test]
async fn a_login_keeps_an_unknown_role_and_a_username_is_given_once() {
    testkit::needs!("the MongoDB stand-in");
    let (uri, database, store) = nestjs_database().await;
    store
        .record_login(&user(GRACE), Role::User, Utc::now())
        .await
        .unwrap();
    let grace = raw(&uri, &database, "users", GRACE).await;
    assert_eq!(grace.get_str("role"), Ok("moderator"));
    assert!(grace.get_datetime("lastLoginAt").is_ok());
    store
        .record_login(&user(ADA), Role::Admin, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        raw(&uri, &database, "users", ADA).await.get_str("role"),
        Ok("admin")
    );

    assert!(
        store
            .assign_username(&user(ADA), "adalovelace")
            .await
            .unwrap()
    );
    assert!(!store.assign_username(&user(ADA), "other").await.unwrap());
    let ada = store
        .find_user_by_username("adalovelace")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ada.email, "ada.lovelace@example.com");
}
