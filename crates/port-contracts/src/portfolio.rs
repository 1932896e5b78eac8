//! Contracts of `PortfolioRepository` and `SettingsRepository`.

use chrono::{DateTime, TimeDelta, Utc};
use kernel::record::{FieldNames, Record, Value};
use kernel::settings::{SettingsDocument, SettingsRepository};
use kernel::{PageRequest, StoreError, UserId};
use notify_core::preferences::EMAIL_PREFERENCES;
use portfolio_core::model::{Item, ItemId, ResourceSpec};
use portfolio_core::ports::{ListQuery, PortfolioRepository};
use portfolio_core::resources::{BLOG, COMPANIES, CONTACTS, EXPERIENCES, PROFILE, PROJECTS};

use crate::now_ms;

/// The fields a write changes.
fn names(fields: &[&str]) -> FieldNames {
    fields.iter().map(|&field| field.to_owned()).collect()
}

suite!($
    /// Runs the `PortfolioRepository` contract: one test per behaviour.
    portfolio_item_contract, portfolio::portfolio_item_behaviours, dyn PortfolioRepository, [
        an_item_reads_back_as_written_with_every_kind_of_value,
        an_item_is_invisible_to_other_owners_and_other_resources,
        latest_by_date_ordering_puts_undated_items_last_and_ties_newest_first,
        a_manually_ordered_list_pages_over_the_owners_items_only,
        reordering_sets_the_order_of_the_owners_items_only,
        newest_ordering_puts_the_latest_item_first,
        the_boolean_filter_keeps_the_items_where_the_field_is_true,
        a_slug_is_unique_per_owner_and_resource,
        an_item_is_found_by_its_slug,
        an_update_replaces_the_fields_and_the_update_time,
        another_owner_cannot_update_an_item,
        an_item_is_deleted_by_its_owner_once,
        a_deleted_item_is_hidden_and_its_slug_stays_taken,
        the_export_has_every_item_of_the_owner_deleted_ones_too,
        deleting_an_owners_items_frees_their_slugs_and_spares_other_owners,
    ]
);

suite!($
    /// Runs the `SettingsRepository` contract: one test per behaviour.
    settings_contract, portfolio::settings_behaviours, dyn SettingsRepository, [
        a_settings_document_reads_back_for_its_owner_only,
        saving_settings_again_replaces_the_fields_and_keeps_the_creation_time,
        deleting_settings_removes_only_the_named_kinds_of_the_owner,
    ]
);

fn item(
    resource: &'static ResourceSpec,
    owner: &UserId,
    fields: &[(&str, Value)],
    created_at: DateTime<Utc>,
) -> Item {
    Item {
        id: ItemId::generate(),
        owner: owner.clone(),
        resource,
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<Record>(),
        position: created_at.timestamp_millis(),
        created_at,
        updated_at: created_at,
        deleted_at: None,
    }
}

fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

/// `item(…)`, stored.
async fn stored(
    repo: &dyn PortfolioRepository,
    resource: &'static ResourceSpec,
    owner: &UserId,
    fields: &[(&str, Value)],
    created_at: DateTime<Utc>,
) -> Item {
    let stored = item(resource, owner, fields, created_at);
    repo.insert_item(&stored).await.unwrap();
    stored
}

/// A blog post of `owner` with `slug`, stored.
async fn post(repo: &dyn PortfolioRepository, owner: &UserId, slug: &str) -> Item {
    stored(repo, &BLOG, owner, &[("slug", text(slug))], now_ms()).await
}

async fn ids(
    repo: &dyn PortfolioRepository,
    resource: &'static ResourceSpec,
    owner: &UserId,
    query: ListQuery,
) -> Vec<ItemId> {
    let page = repo.list_items(resource, owner, &query).await.unwrap();
    page.items.into_iter().map(|item| item.id).collect()
}

/// Five projects of `owner`, in the order they were created.
async fn projects(repo: &dyn PortfolioRepository, owner: &UserId) -> Vec<ItemId> {
    let t0 = now_ms();
    let mut created = Vec::new();
    for n in 0..5 {
        let title = text(&format!("p{n}"));
        let project = stored(
            repo,
            &PROJECTS,
            owner,
            &[("title", title)],
            t0 + TimeDelta::seconds(n),
        )
        .await;
        created.push(project.id);
    }
    created
}

async fn an_item_reads_back_as_written_with_every_kind_of_value(repo: &dyn PortfolioRepository) {
    let ada = UserId::generate();
    let t0 = now_ms();
    let company = stored(repo, &COMPANIES, &ada, &[("name", text("Acme"))], t0).await;
    let rich = stored(
        repo,
        &EXPERIENCES,
        &ada,
        &[
            ("title", text("Engineer")),
            ("companyId", Value::Ref(company.id.to_string())),
            ("startDate", Value::Date(t0 - TimeDelta::seconds(1000))),
            ("current", Value::Bool(true)),
            (
                "achievements",
                Value::List(vec!["a".into(), "b \"q\"".into()]),
            ),
        ],
        t0,
    )
    .await;
    let found = repo.find_item(&EXPERIENCES, &ada, &rich.id).await.unwrap();
    assert_eq!(found, Some(rich));
}

async fn an_item_is_invisible_to_other_owners_and_other_resources(repo: &dyn PortfolioRepository) {
    let ada = UserId::generate();
    let adas = stored(repo, &EXPERIENCES, &ada, &[("title", text("x"))], now_ms()).await;
    assert_eq!(
        repo.find_item(&EXPERIENCES, &UserId::generate(), &adas.id)
            .await
            .unwrap(),
        None,
        "another owner's item is invisible"
    );
    assert_eq!(
        repo.find_item(&PROJECTS, &ada, &adas.id).await.unwrap(),
        None,
        "an item belongs to one resource"
    );
}

async fn latest_by_date_ordering_puts_undated_items_last_and_ties_newest_first(
    repo: &dyn PortfolioRepository,
) {
    let ada = UserId::generate();
    let t0 = now_ms();
    let at = |seconds: i64| t0 + TimeDelta::seconds(seconds);
    // An experience that started `start` and was created `created` seconds after t0.
    let experience = async |start: i64, created: i64| {
        let started = [("startDate", Value::Date(at(start)))];
        stored(repo, &EXPERIENCES, &ada, &started, at(created)).await
    };
    let latest = experience(-1000, 1).await;
    let older = experience(-5000, 2).await;
    let undated = stored(repo, &EXPERIENCES, &ada, &[("title", text("x"))], at(3)).await;
    let same_date = experience(-5000, 4).await;
    assert_eq!(
        ids(repo, &EXPERIENCES, &ada, ListQuery::ALL).await,
        [latest.id, same_date.id, older.id, undated.id]
    );
}

async fn a_manually_ordered_list_pages_over_the_owners_items_only(repo: &dyn PortfolioRepository) {
    let ada = UserId::generate();
    let created = projects(repo, &ada).await;
    stored(
        repo,
        &PROJECTS,
        &UserId::generate(),
        &[("title", text("bob's"))],
        now_ms(),
    )
    .await;
    let page = repo
        .list_items(
            &PROJECTS,
            &ada,
            &ListQuery {
                page: Some(PageRequest { page: 2, limit: 2 }),
                only_true: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 5, "only the owner's items count");
    assert_eq!(
        page.items.into_iter().map(|i| i.id).collect::<Vec<_>>(),
        created[2..4]
    );
}

async fn reordering_sets_the_order_of_the_owners_items_only(repo: &dyn PortfolioRepository) {
    let ada = UserId::generate();
    let created = projects(repo, &ada).await;
    let reversed: Vec<ItemId> = created.iter().rev().cloned().collect();
    let later = now_ms() + TimeDelta::seconds(20);
    repo.set_positions(&PROJECTS, &ada, &reversed, later)
        .await
        .unwrap();
    assert_eq!(ids(repo, &PROJECTS, &ada, ListQuery::ALL).await, reversed);
    repo.set_positions(&PROJECTS, &UserId::generate(), &created, later)
        .await
        .unwrap();
    assert_eq!(
        ids(repo, &PROJECTS, &ada, ListQuery::ALL).await,
        reversed,
        "another owner cannot reorder these items"
    );
}

async fn newest_ordering_puts_the_latest_item_first(repo: &dyn PortfolioRepository) {
    let ada = UserId::generate();
    let t0 = now_ms();
    let first = stored(repo, &BLOG, &ada, &[("slug", text("hello"))], t0).await;
    let second = stored(
        repo,
        &BLOG,
        &ada,
        &[("slug", text("second"))],
        t0 + TimeDelta::seconds(1),
    )
    .await;
    assert_eq!(
        ids(repo, &BLOG, &ada, ListQuery::ALL).await,
        [second.id, first.id]
    );
}

async fn the_boolean_filter_keeps_the_items_where_the_field_is_true(
    repo: &dyn PortfolioRepository,
) {
    let ada = UserId::generate();
    let t0 = now_ms();
    let active = stored(repo, &CONTACTS, &ada, &[("active", Value::Bool(true))], t0).await;
    stored(
        repo,
        &CONTACTS,
        &ada,
        &[("active", Value::Bool(false))],
        t0 + TimeDelta::seconds(1),
    )
    .await;
    let only_active = ListQuery {
        page: None,
        only_true: Some("active"),
    };
    assert_eq!(ids(repo, &CONTACTS, &ada, only_active).await, [active.id]);
}

async fn a_slug_is_unique_per_owner_and_resource(repo: &dyn PortfolioRepository) {
    let ada = UserId::generate();
    post(repo, &ada, "hello").await;
    let clash = item(&BLOG, &ada, &[("slug", text("hello"))], now_ms());
    assert!(matches!(
        repo.insert_item(&clash).await,
        Err(StoreError::Duplicate { key: "slug" })
    ));
    let bobs = item(
        &BLOG,
        &UserId::generate(),
        &[("slug", text("hello"))],
        now_ms(),
    );
    repo.insert_item(&bobs)
        .await
        .expect("another owner may use the same slug");
    let mut renamed = post(repo, &ada, "second").await;
    renamed.fields.set("slug", text("hello"));
    assert!(matches!(
        repo.update_item(&renamed, &names(&["slug"])).await,
        Err(StoreError::Duplicate { key: "slug" })
    ));
}

async fn an_item_is_found_by_its_slug(repo: &dyn PortfolioRepository) {
    let ada = UserId::generate();
    let hello = post(repo, &ada, "hello").await;
    let by_slug = repo.find_item_by_slug(&BLOG, &ada, "hello").await.unwrap();
    assert_eq!(by_slug.map(|i| i.id), Some(hello.id.clone()));
    assert!(repo.slug_taken(&BLOG, &ada, "hello", None).await.unwrap());
    assert!(
        !repo
            .slug_taken(&BLOG, &ada, "hello", Some(&hello.id))
            .await
            .unwrap(),
        "an item does not clash with itself"
    );
}

async fn an_update_replaces_the_fields_and_the_update_time(repo: &dyn PortfolioRepository) {
    let ada = UserId::generate();
    let mut changed = post(repo, &ada, "hello").await;
    changed.fields.set("title", text("Changed"));
    changed.updated_at += TimeDelta::seconds(10);
    assert!(
        repo.update_item(&changed, &names(&["title"]))
            .await
            .unwrap()
    );
    assert_eq!(
        repo.find_item(&BLOG, &ada, &changed.id).await.unwrap(),
        Some(changed.clone())
    );
    let mut cleared = changed.clone();
    cleared
        .fields
        .merge([("title".to_owned(), Value::Null)].into_iter().collect());
    cleared.updated_at += TimeDelta::seconds(1);
    assert!(
        repo.update_item(&cleared, &names(&["title"]))
            .await
            .unwrap()
    );
    assert_eq!(
        repo.find_item(&BLOG, &ada, &changed.id).await.unwrap(),
        Some(cleared),
        "a field the record no longer has is gone"
    );
}

async fn another_owner_cannot_update_an_item(repo: &dyn PortfolioRepository) {
    let ada = UserId::generate();
    let adas = post(repo, &ada, "hello").await;
    let mut stolen = adas.clone();
    stolen.owner = UserId::generate();
    stolen.fields.set("slug", text("stolen"));
    assert!(!repo.update_item(&stolen, &names(&["slug"])).await.unwrap());
    assert_eq!(
        repo.find_item(&BLOG, &ada, &adas.id).await.unwrap(),
        Some(adas)
    );
}

async fn an_item_is_deleted_by_its_owner_once(repo: &dyn PortfolioRepository) {
    let ada = UserId::generate();
    let adas = post(repo, &ada, "hello").await;
    let now = now_ms();
    assert!(
        !repo
            .soft_delete_item(&BLOG, &UserId::generate(), &adas.id, now)
            .await
            .unwrap()
    );
    assert!(
        repo.soft_delete_item(&BLOG, &ada, &adas.id, now)
            .await
            .unwrap()
    );
    assert!(
        !repo
            .soft_delete_item(&BLOG, &ada, &adas.id, now + TimeDelta::seconds(1))
            .await
            .unwrap()
    );
}

async fn a_deleted_item_is_hidden_and_its_slug_stays_taken(repo: &dyn PortfolioRepository) {
    let ada = UserId::generate();
    let deleted = post(repo, &ada, "hello").await;
    let kept = post(repo, &ada, "second").await;
    repo.soft_delete_item(&BLOG, &ada, &deleted.id, now_ms())
        .await
        .unwrap();
    assert_eq!(
        repo.find_item(&BLOG, &ada, &deleted.id).await.unwrap(),
        None
    );
    assert_eq!(
        repo.find_item_by_slug(&BLOG, &ada, "hello").await.unwrap(),
        None
    );
    assert_eq!(ids(repo, &BLOG, &ada, ListQuery::ALL).await, [kept.id]);
    assert!(repo.slug_taken(&BLOG, &ada, "hello", None).await.unwrap());
    assert!(
        !repo
            .update_item(&deleted, &names(&["title"]))
            .await
            .unwrap(),
        "deleted items stay deleted"
    );
}

async fn the_export_has_every_item_of_the_owner_deleted_ones_too(repo: &dyn PortfolioRepository) {
    let ada = UserId::generate();
    let created = projects(repo, &ada).await;
    let deleted = post(repo, &ada, "hello").await;
    stored(repo, &COMPANIES, &ada, &[("name", text("Acme"))], now_ms()).await;
    post(repo, &UserId::generate(), "bobs").await;
    let deleted_at = now_ms();
    repo.soft_delete_item(&BLOG, &ada, &deleted.id, deleted_at)
        .await
        .unwrap();
    let exported = repo.items_of(&ada).await.unwrap();
    assert_eq!(
        exported.len(),
        created.len() + 2,
        "every item of every resource, deleted ones too"
    );
    let deleted = exported.iter().find(|i| i.id == deleted.id).unwrap();
    assert_eq!(deleted.deleted_at, Some(deleted_at));
}

async fn deleting_an_owners_items_frees_their_slugs_and_spares_other_owners(
    repo: &dyn PortfolioRepository,
) {
    let (ada, bob) = (UserId::generate(), UserId::generate());
    projects(repo, &ada).await;
    let deleted = post(repo, &ada, "hello").await;
    repo.soft_delete_item(&BLOG, &ada, &deleted.id, now_ms())
        .await
        .unwrap();
    post(repo, &bob, "hello").await;
    projects(repo, &bob).await;
    repo.delete_items_of(&ada).await.unwrap();
    assert!(repo.items_of(&ada).await.unwrap().is_empty());
    assert!(!repo.slug_taken(&BLOG, &ada, "hello", None).await.unwrap());
    assert_eq!(
        repo.items_of(&bob).await.unwrap().len(),
        6,
        "bob keeps his items"
    );
}

// `SettingsRepository`

/// A public profile with a multi-line bio, written at `at`.
fn profile(at: DateTime<Utc>) -> SettingsDocument {
    let mut fields = Record::default();
    fields.set("isPublic", Value::Bool(true));
    fields.set("bio", text("line one\nline two"));
    SettingsDocument {
        fields,
        created_at: at,
        updated_at: at,
    }
}

async fn a_settings_document_reads_back_for_its_owner_only(repo: &dyn SettingsRepository) {
    let ada = UserId::generate();
    assert_eq!(repo.load_settings(&PROFILE, &ada).await.unwrap(), None);
    let first = profile(now_ms());
    repo.save_settings(&PROFILE, &ada, &first, &first.fields.names())
        .await
        .unwrap();
    assert_eq!(
        repo.load_settings(&PROFILE, &ada).await.unwrap(),
        Some(first)
    );
    assert_eq!(
        repo.load_settings(&PROFILE, &UserId::generate())
            .await
            .unwrap(),
        None
    );
}

async fn saving_settings_again_replaces_the_fields_and_keeps_the_creation_time(
    repo: &dyn SettingsRepository,
) {
    let ada = UserId::generate();
    let t0 = now_ms();
    let first = profile(t0);
    repo.save_settings(&PROFILE, &ada, &first, &first.fields.names())
        .await
        .unwrap();
    let mut second = first.clone();
    second.fields.set("isPublic", Value::Bool(false));
    second.created_at = t0 + TimeDelta::seconds(5);
    second.updated_at = t0 + TimeDelta::seconds(5);
    repo.save_settings(&PROFILE, &ada, &second, &names(&["isPublic"]))
        .await
        .unwrap();
    let stored = repo.load_settings(&PROFILE, &ada).await.unwrap().unwrap();
    assert_eq!(stored.fields, second.fields, "a save replaces the fields");
    assert_eq!(
        (stored.created_at, stored.updated_at),
        (t0, second.updated_at),
        "the first creation time is kept"
    );
}

async fn deleting_settings_removes_only_the_named_kinds_of_the_owner(
    repo: &dyn SettingsRepository,
) {
    let (ada, bob) = (UserId::generate(), UserId::generate());
    let document = profile(now_ms());
    repo.save_settings(&PROFILE, &ada, &document, &document.fields.names())
        .await
        .unwrap();
    repo.save_settings(&PROFILE, &bob, &document, &document.fields.names())
        .await
        .unwrap();
    repo.save_settings(
        &EMAIL_PREFERENCES,
        &ada,
        &document,
        &document.fields.names(),
    )
    .await
    .unwrap();
    repo.delete_settings_of(&ada, &[&PROFILE]).await.unwrap();
    assert_eq!(repo.load_settings(&PROFILE, &ada).await.unwrap(), None);
    assert!(
        repo.load_settings(&EMAIL_PREFERENCES, &ada)
            .await
            .unwrap()
            .is_some(),
        "only the named kinds go"
    );
    assert!(repo.load_settings(&PROFILE, &bob).await.unwrap().is_some());
}
