//! Contracts of `PortfolioRepository` and `SettingsRepository`.

use chrono::{DateTime, TimeDelta, Utc};
use kernel::record::{Record, Value};
use kernel::settings::{SettingsDocument, SettingsRepository};
use kernel::{PageRequest, UserId};
use notify_core::preferences::EMAIL_PREFERENCES;
use portfolio_core::model::{Item, ItemId, ResourceSpec};
use portfolio_core::ports::{ListQuery, PortfolioRepository};
use portfolio_core::resources::{BLOG, COMPANIES, CONTACTS, EXPERIENCES, PROFILE, PROJECTS};

use crate::now_ms;

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

async fn ids(
    repo: &dyn PortfolioRepository,
    resource: &'static ResourceSpec,
    owner: &UserId,
    query: ListQuery,
) -> Vec<ItemId> {
    let page = repo.list_items(resource, owner, &query).await.unwrap();
    page.items.into_iter().map(|item| item.id).collect()
}

pub async fn portfolio_items(repo: &dyn PortfolioRepository) {
    let ada = UserId::generate();
    let bob = UserId::generate();
    let t0 = now_ms();
    let at = |seconds: i64| t0 + TimeDelta::seconds(seconds);

    // Every value kind survives the round trip exactly.
    let company = item(&COMPANIES, &ada, &[("name", text("Acme"))], at(0));
    repo.insert_item(&company).await.unwrap();
    let rich = item(
        &EXPERIENCES,
        &ada,
        &[
            ("title", text("Engineer")),
            ("companyId", Value::Ref(company.id.to_string())),
            ("startDate", Value::Date(at(-1000))),
            ("current", Value::Bool(true)),
            (
                "achievements",
                Value::List(vec!["a".into(), "b \"q\"".into()]),
            ),
        ],
        at(1),
    );
    repo.insert_item(&rich).await.unwrap();
    let found = repo.find_item(&EXPERIENCES, &ada, &rich.id).await.unwrap();
    assert_eq!(found.as_ref(), Some(&rich), "items read back as written");
    assert_eq!(
        repo.find_item(&EXPERIENCES, &bob, &rich.id).await.unwrap(),
        None,
        "another owner's item is invisible"
    );
    assert_eq!(
        repo.find_item(&PROJECTS, &ada, &rich.id).await.unwrap(),
        None,
        "an item belongs to one resource"
    );

    // Latest-by-date ordering puts items without the date last, ties newest first.
    let older = item(
        &EXPERIENCES,
        &ada,
        &[("startDate", Value::Date(at(-5000)))],
        at(2),
    );
    let undated = item(&EXPERIENCES, &ada, &[("title", text("x"))], at(3));
    let same_date = item(
        &EXPERIENCES,
        &ada,
        &[("startDate", Value::Date(at(-5000)))],
        at(4),
    );
    for it in [&older, &undated, &same_date] {
        repo.insert_item(it).await.unwrap();
    }
    assert_eq!(
        ids(repo, &EXPERIENCES, &ada, ListQuery::ALL).await,
        [
            rich.id.clone(),
            same_date.id.clone(),
            older.id.clone(),
            undated.id.clone()
        ]
    );

    // Manual ordering, pagination and reordering.
    let projects: Vec<Item> = (0..5)
        .map(|n| {
            item(
                &PROJECTS,
                &ada,
                &[("title", text(&format!("p{n}")))],
                at(10 + n),
            )
        })
        .collect();
    for project in &projects {
        repo.insert_item(project).await.unwrap();
    }
    repo.insert_item(&item(&PROJECTS, &bob, &[("title", text("bob's"))], at(9)))
        .await
        .unwrap();
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
        page.items.iter().map(|i| i.id.clone()).collect::<Vec<_>>(),
        [projects[2].id.clone(), projects[3].id.clone()]
    );
    let reversed: Vec<ItemId> = projects.iter().rev().map(|p| p.id.clone()).collect();
    repo.set_positions(&PROJECTS, &ada, &reversed, at(20))
        .await
        .unwrap();
    assert_eq!(ids(repo, &PROJECTS, &ada, ListQuery::ALL).await, reversed);
    repo.set_positions(&PROJECTS, &bob, &reversed, at(21))
        .await
        .unwrap();
    assert_eq!(
        ids(repo, &PROJECTS, &ada, ListQuery::ALL).await,
        reversed,
        "another owner cannot reorder these items"
    );

    // Newest ordering and the boolean filter.
    let active = item(&CONTACTS, &ada, &[("active", Value::Bool(true))], at(30));
    let inactive = item(&CONTACTS, &ada, &[("active", Value::Bool(false))], at(31));
    repo.insert_item(&active).await.unwrap();
    repo.insert_item(&inactive).await.unwrap();
    let only_active = ListQuery {
        page: None,
        only_true: Some("active"),
    };
    assert_eq!(
        ids(repo, &CONTACTS, &ada, only_active).await,
        std::slice::from_ref(&active.id)
    );
    let post_a = item(&BLOG, &ada, &[("slug", text("hello"))], at(40));
    let post_b = item(&BLOG, &ada, &[("slug", text("second"))], at(41));
    repo.insert_item(&post_a).await.unwrap();
    repo.insert_item(&post_b).await.unwrap();
    assert_eq!(
        ids(repo, &BLOG, &ada, ListQuery::ALL).await,
        [post_b.id.clone(), post_a.id.clone()],
        "newest first"
    );

    // Slugs are unique per owner and resource, found by slug, and stay taken once deleted.
    let clash = item(&BLOG, &ada, &[("slug", text("hello"))], at(42));
    assert!(matches!(
        repo.insert_item(&clash).await,
        Err(kernel::StoreError::Duplicate { key: "slug" })
    ));
    repo.insert_item(&item(&BLOG, &bob, &[("slug", text("hello"))], at(43)))
        .await
        .expect("another owner may use the same slug");
    let by_slug = repo.find_item_by_slug(&BLOG, &ada, "hello").await.unwrap();
    assert_eq!(by_slug.map(|i| i.id), Some(post_a.id.clone()));
    let mut renamed = post_b.clone();
    renamed.fields.set("slug", text("hello"));
    assert!(matches!(
        repo.update_item(&renamed).await,
        Err(kernel::StoreError::Duplicate { key: "slug" })
    ));
    assert!(repo.slug_taken(&BLOG, &ada, "hello", None).await.unwrap());
    assert!(
        !repo
            .slug_taken(&BLOG, &ada, "hello", Some(&post_a.id))
            .await
            .unwrap()
    );

    // Updates replace fields, position and updated_at, only for the owner's live item.
    let mut changed = post_a.clone();
    changed.fields.set("slug", text("hello"));
    changed.fields.set("title", text("Changed"));
    changed.updated_at = at(50);
    assert!(repo.update_item(&changed).await.unwrap());
    assert_eq!(
        repo.find_item(&BLOG, &ada, &post_a.id).await.unwrap(),
        Some(changed.clone())
    );
    let mut cleared = changed.clone();
    cleared
        .fields
        .merge([("title".to_owned(), Value::Null)].into_iter().collect());
    cleared.updated_at = at(51);
    assert!(repo.update_item(&cleared).await.unwrap());
    assert_eq!(
        repo.find_item(&BLOG, &ada, &post_a.id).await.unwrap(),
        Some(cleared),
        "a field the record no longer has is gone"
    );
    let mut stolen = changed.clone();
    stolen.owner = bob.clone();
    stolen.fields.set("slug", text("stolen"));
    assert!(!repo.update_item(&stolen).await.unwrap(), "not bob's item");

    // Soft delete hides the item everywhere but keeps it for export and slug checks.
    assert!(
        !repo
            .soft_delete_item(&BLOG, &bob, &post_a.id, at(60))
            .await
            .unwrap()
    );
    assert!(
        repo.soft_delete_item(&BLOG, &ada, &post_a.id, at(60))
            .await
            .unwrap()
    );
    assert!(
        !repo
            .soft_delete_item(&BLOG, &ada, &post_a.id, at(61))
            .await
            .unwrap()
    );
    assert_eq!(repo.find_item(&BLOG, &ada, &post_a.id).await.unwrap(), None);
    assert_eq!(
        repo.find_item_by_slug(&BLOG, &ada, "hello").await.unwrap(),
        None
    );
    assert_eq!(
        ids(repo, &BLOG, &ada, ListQuery::ALL).await,
        std::slice::from_ref(&post_b.id)
    );
    assert!(repo.slug_taken(&BLOG, &ada, "hello", None).await.unwrap());
    assert!(
        !repo.update_item(&changed).await.unwrap(),
        "deleted items stay deleted"
    );

    let exported = repo.items_of(&ada).await.unwrap();
    assert_eq!(
        exported.len(),
        14,
        "every item of every resource, deleted ones too"
    );
    let deleted = exported.iter().find(|i| i.id == post_a.id).unwrap();
    assert_eq!(deleted.deleted_at, Some(at(60)));

    repo.delete_items_of(&ada).await.unwrap();
    assert!(repo.items_of(&ada).await.unwrap().is_empty());
    assert!(!repo.slug_taken(&BLOG, &ada, "hello", None).await.unwrap());
    assert_eq!(
        repo.items_of(&bob).await.unwrap().len(),
        2,
        "bob keeps his items"
    );
}

pub async fn settings(repo: &dyn SettingsRepository) {
    let ada = UserId::generate();
    let bob = UserId::generate();
    let t0 = now_ms();
    assert_eq!(repo.load_settings(&PROFILE, &ada).await.unwrap(), None);
    let mut fields = Record::default();
    fields.set("isPublic", Value::Bool(true));
    fields.set("bio", text("line one\nline two"));
    let first = SettingsDocument {
        fields,
        created_at: t0,
        updated_at: t0,
    };
    repo.save_settings(&PROFILE, &ada, &first).await.unwrap();
    assert_eq!(
        repo.load_settings(&PROFILE, &ada).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(repo.load_settings(&PROFILE, &bob).await.unwrap(), None);

    let mut second = first.clone();
    second.fields.set("isPublic", Value::Bool(false));
    second.created_at = t0 + TimeDelta::seconds(5);
    second.updated_at = t0 + TimeDelta::seconds(5);
    repo.save_settings(&PROFILE, &ada, &second).await.unwrap();
    let stored = repo.load_settings(&PROFILE, &ada).await.unwrap().unwrap();
    assert_eq!(stored.fields, second.fields, "a save replaces the fields");
    assert_eq!(
        (stored.created_at, stored.updated_at),
        (t0, second.updated_at),
        "the first creation time is kept"
    );

    repo.save_settings(&PROFILE, &bob, &first).await.unwrap();
    repo.save_settings(&EMAIL_PREFERENCES, &ada, &first)
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
