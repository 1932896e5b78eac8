//! Portfolio, public portfolio and preference routes over HTTP against the in-process app:
//! every resource through the generic path, each resource's own rules, the ownership matrix,
//! bad input that changes nothing, and the public view with its cache validators.

use crate::support::{TestApp, spawn_app, token};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A minimal valid body for each resource.
fn samples() -> Vec<(&'static str, Value)> {
    vec![
        (
            "projects",
            json!({"title": "Console", "url": "https://example.com", "tags": ["rust"]}),
        ),
        ("companies", json!({"name": "Acme", "foundedYear": 1999})),
        (
            "skills",
            json!({"name": "Rust", "category": "languages", "level": 90}),
        ),
        (
            "experiences",
            json!({"title": "Engineer", "startDate": "2020-01-01"}),
        ),
        (
            "education",
            json!({"institution": "MIT", "degree": "BSc", "gpa": 3.9}),
        ),
        (
            "certifications",
            json!({"name": "CKA", "issuer": "CNCF", "issueDate": "2023-05-01"}),
        ),
        (
            "blog",
            json!({"title": "Hello World", "content": "First post"}),
        ),
        (
            "testimonials",
            json!({"name": "Grace", "content": "Great work", "rating": 5}),
        ),
        (
            "contacts",
            json!({"platform": "github", "url": "https://github.com/ada"}),
        ),
    ]
}

async fn user(app: &TestApp, email: &str) -> String {
    token(&app.register(email).await, "accessToken")
}

async fn create(app: &TestApp, who: &str, resource: &str, body: Value) -> Value {
    let reply = app
        .post(&format!("/portfolio/{resource}"), body, Some(who))
        .await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "{resource}: {:?}",
        reply.body
    );
    reply.data().clone()
}

async fn total(app: &TestApp, who: &str, resource: &str) -> u64 {
    let reply = app.get(&format!("/portfolio/{resource}"), Some(who)).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["meta"]["total"].as_u64().unwrap()
}

fn id(item: &Value) -> String {
    item["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_resource_supports_create_read_update_list_and_soft_delete() {
    let app = spawn_app().await;
    let ada = user(&app, "ada@example.com").await;
    for (resource, body) in samples() {
        let item = create(&app, &ada, resource, body.clone()).await;
        let first_field = body.as_object().unwrap().keys().next().unwrap().clone();
        assert_eq!(item[&first_field], body[&first_field], "{resource}");
        assert!(item["createdAt"].is_string() && item["userId"].is_string());

        let path = format!("/portfolio/{resource}/{}", id(&item));
        let read = app.get(&path, Some(&ada)).await;
        assert_eq!(read.status, StatusCode::OK);
        assert_eq!(read.data(), &item, "{resource} reads back as created");

        let list = app.get(&format!("/portfolio/{resource}"), Some(&ada)).await;
        assert_eq!(list.body["meta"]["total"], 1, "{resource}");
        assert_eq!(list.data()[0]["id"], item["id"]);

        let changed = app
            .patch(&path, json!({first_field.clone(): "Changed"}), &ada)
            .await;
        assert_eq!(
            changed.status,
            StatusCode::OK,
            "{resource}: {:?}",
            changed.body
        );
        assert_eq!(
            app.get(&path, Some(&ada)).await.data()[&first_field],
            "Changed"
        );

        assert_eq!(app.delete(&path, &ada).await.status, StatusCode::OK);
        assert_eq!(app.get(&path, Some(&ada)).await.code(), "NOT_FOUND");
        assert_eq!(app.delete(&path, &ada).await.status, StatusCode::NOT_FOUND);
        assert_eq!(total(&app, &ada, resource).await, 0, "{resource}");
    }
}

#[tokio::test]
async fn another_user_can_neither_read_change_delete_nor_reorder_items() {
    let app = spawn_app().await;
    let ada = user(&app, "ada@example.com").await;
    let bob = user(&app, "bob@example.com").await;
    for (resource, body) in samples() {
        let item = create(&app, &ada, resource, body).await;
        let path = format!("/portfolio/{resource}/{}", id(&item));
        assert_eq!(
            app.get(&path, Some(&bob)).await.status,
            StatusCode::NOT_FOUND,
            "{resource}"
        );
        let patch = app.patch(&path, json!({}), &bob).await;
        assert_eq!(patch.status, StatusCode::NOT_FOUND, "{resource}");
        assert_eq!(
            app.delete(&path, &bob).await.status,
            StatusCode::NOT_FOUND,
            "{resource}"
        );
        assert_eq!(
            total(&app, &bob, resource).await,
            0,
            "{resource}: bob sees none"
        );
        if ["projects", "skills", "testimonials", "contacts"].contains(&resource) {
            let reorder = app
                .patch(
                    &format!("/portfolio/{resource}/reorder"),
                    json!({"ids": [id(&item)]}),
                    &bob,
                )
                .await;
            assert_eq!(
                (reorder.status, reorder.code()),
                (StatusCode::CONFLICT, "REORDER_MISMATCH"),
                "{resource}"
            );
        }
        let unchanged = app.get(&path, Some(&ada)).await;
        assert_eq!(
            unchanged.data(),
            &item,
            "{resource}: ada's item is untouched"
        );
        assert_eq!(
            app.get(&format!("/portfolio/{resource}"), None)
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn bad_input_names_each_field_and_stores_nothing() {
    let app = spawn_app().await;
    let ada = user(&app, "ada@example.com").await;
    let cases = [
        (
            "projects",
            json!({"title": "x", "url": "javascript:alert(1)"}),
            "url",
        ),
        ("projects", json!({"title": {"$ne": null}}), "title"),
        (
            "projects",
            json!({"title": "x", "userId": "6b0000000000000000000000"}),
            "userId",
        ),
        ("projects", json!({"description": "no title"}), "title"),
        ("projects", json!({"title": "x".repeat(201)}), "title"),
        (
            "testimonials",
            json!({"name": "G", "content": "c", "rating": 6}),
            "rating",
        ),
        ("skills", json!({"name": "Rust", "level": 101}), "level"),
        (
            "experiences",
            json!({"title": "E", "startDate": "yesterday"}),
            "startDate",
        ),
        (
            "experiences",
            json!({"title": "E", "startDate": "2020-01-01", "companyId": "nope"}),
            "companyId",
        ),
        (
            "blog",
            json!({"title": "T", "published": true}),
            "published",
        ),
        (
            "contacts",
            json!({"platform": "x", "url": "ftp://example.com"}),
            "url",
        ),
    ];
    for (resource, body, field) in cases {
        let reply = app
            .post(&format!("/portfolio/{resource}"), body, Some(&ada))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{resource}: {:?}",
            reply.body
        );
        assert_eq!(reply.code(), "VALIDATION_ERROR");
        assert!(
            reply.fields().contains(&field.to_owned()),
            "{resource}: {:?}",
            reply.body
        );
        assert_eq!(total(&app, &ada, resource).await, 0);
    }
    let broken = app
        .send(
            app.http
                .post(app.url("/portfolio/projects"))
                .bearer_auth(&ada)
                .header("content-type", "application/json")
                .body("{\"title\": "),
        )
        .await;
    assert_eq!(
        (broken.status, broken.code()),
        (StatusCode::BAD_REQUEST, "INVALID_JSON")
    );
    let form = app
        .send(
            app.http
                .post(app.url("/portfolio/projects"))
                .bearer_auth(&ada)
                .header("content-type", "text/plain")
                .body("title=x"),
        )
        .await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    for path in [
        "/portfolio/projects/not-an-id",
        "/portfolio/projects/{\"$ne\":1}",
        "/portfolio/widgets",
    ] {
        let reply = app.get(path, Some(&ada)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert!(reply.is_problem());
    }
    let page = app
        .get("/portfolio/projects?page=0&limit=500", Some(&ada))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(page.fields(), ["page", "limit"]);
    assert_eq!(total(&app, &ada, "projects").await, 0);
}

#[tokio::test]
async fn lists_paginate_with_meta() {
    let app = spawn_app().await;
    let ada = user(&app, "ada@example.com").await;
    for n in 0..5 {
        create(
            &app,
            &ada,
            "companies",
            json!({"name": format!("Company {n}")}),
        )
        .await;
    }
    let reply = app
        .get("/portfolio/companies?page=2&limit=2", Some(&ada))
        .await;
    assert_eq!(reply.data().as_array().unwrap().len(), 2);
    assert_eq!(
        reply.body["meta"],
        json!({"page": 2, "limit": 2, "total": 5, "totalPages": 3, "hasNextPage": true, "hasPrevPage": true})
    );
}

#[tokio::test]
async fn every_list_query_within_the_documented_bounds_is_accepted() {
    let app = spawn_app().await;
    let ada = user(&app, "ada@example.com").await;
    for query in [
        "",
        "?page=1",
        "?page=1000000",
        "?limit=1",
        "?limit=100&page=3",
        "?grouped=false",
        "?grouped=true&limit=100",
    ] {
        let reply = app
            .get(&format!("/portfolio/skills{query}"), Some(&ada))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{query}: {:?}", reply.body);
    }
    for (query, field) in [
        ("?page=0", "page"),
        ("?page=1000001", "page"),
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?limit=1.5", "limit"),
        ("?grouped=yes", "grouped"),
    ] {
        let reply = app
            .get(&format!("/portfolio/skills{query}"), Some(&ada))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(reply.fields(), [field], "{query}");
    }
}

#[tokio::test]
async fn null_clears_an_optional_field_and_puts_a_preference_back_to_its_default() {
    let app = spawn_app().await;
    let ada = user(&app, "ada@example.com").await;
    let project = create(
        &app,
        &ada,
        "projects",
        json!({"title": "P", "description": "d", "featured": true}),
    )
    .await;
    let path = format!("/portfolio/projects/{}", id(&project));
    let cleared = app
        .patch(&path, json!({"description": null, "featured": null}), &ada)
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{:?}", cleared.body);
    assert!(cleared.data().get("description").is_none());
    let required = app.patch(&path, json!({"title": null}), &ada).await;
    assert_eq!(
        required.fields(),
        ["title"],
        "a required field cannot be cleared"
    );
    app.patch("/settings/preferences", json!({"compactMode": true}), &ada)
        .await;
    let reset = app
        .patch("/settings/preferences", json!({"compactMode": null}), &ada)
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{:?}", reset.body);
    assert_eq!(reset.data()["compactMode"], false);
}

#[tokio::test]
async fn deleting_an_item_answers_a_message_without_data() {
    let app = spawn_app().await;
    let ada = user(&app, "ada@example.com").await;
    let item = create(&app, &ada, "projects", json!({"title": "P"})).await;
    let reply = app
        .delete(&format!("/portfolio/projects/{}", id(&item)), &ada)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body,
        json!({"success": true, "message": "Project deleted", "data": null})
    );
}

#[tokio::test]
async fn dates_are_taken_only_as_rfc_3339_dates_or_date_times() {
    let app = spawn_app().await;
    let ada = user(&app, "ada@example.com").await;
    for (date, ok) in [
        ("2020-01-05", true),
        ("2020-01-05T10:00:00z", true),
        ("2020-01-05T10:00:00.25+02:00", true),
        ("2020-1-5", false),
        ("2020-01-05 10:00:00Z", false),
        ("2021-02-29", false),
    ] {
        let reply = app
            .post(
                "/portfolio/experiences",
                json!({"title": "E", "startDate": date}),
                Some(&ada),
            )
            .await;
        let expected = if ok {
            StatusCode::CREATED
        } else {
            StatusCode::BAD_REQUEST
        };
        assert_eq!(reply.status, expected, "{date}: {:?}", reply.body);
    }
}

#[tokio::test]
async fn reordering_sets_the_list_order_and_requires_every_id_once() {
    let app = spawn_app().await;
    let ada = user(&app, "ada@example.com").await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(id(&create(
            &app,
            &ada,
            "projects",
            json!({"title": format!("P{n}")}),
        )
        .await));
    }
    let listed = |reply: &crate::support::Reply| -> Vec<String> {
        reply.data().as_array().unwrap().iter().map(id).collect()
    };
    assert_eq!(
        listed(&app.get("/portfolio/projects", Some(&ada)).await),
        ids,
        "creation order"
    );
    let reversed: Vec<String> = ids.iter().rev().cloned().collect();
    let reply = app
        .patch(
            "/portfolio/projects/reorder",
            json!({"ids": reversed}),
            &ada,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(
        listed(&app.get("/portfolio/projects", Some(&ada)).await),
        reversed
    );
    let later = id(&create(&app, &ada, "projects", json!({"title": "P3"})).await);
    assert_eq!(
        listed(&app.get("/portfolio/projects", Some(&ada)).await).last(),
        Some(&later)
    );

    // Well-formed ids that are not all of the items conflict with what is stored; a body
    // that breaks the documented shape (repeats, not ids) is a bad request.
    for (bad, status) in [
        (json!({"ids": [ids[0]]}), StatusCode::CONFLICT),
        (
            json!({"ids": [ids[0], ids[1], ids[2], "0123456789abcdef01234567"]}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"ids": [ids[0], ids[0], ids[1], later]}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"ids": [ids[0], "nope"]}), StatusCode::BAD_REQUEST),
        (json!({"ids": "x"}), StatusCode::BAD_REQUEST),
    ] {
        let reply = app.patch("/portfolio/projects/reorder", bad, &ada).await;
        assert_eq!(reply.status, status, "{:?}", reply.body);
        assert_eq!(reply.fields(), ["ids"], "{:?}", reply.body);
    }
    assert_eq!(
        listed(&app.get("/portfolio/projects", Some(&ada)).await)[..3],
        reversed[..]
    );
    let companies = app
        .patch("/portfolio/companies/reorder", json!({"ids": []}), &ada)
        .await;
    assert_eq!(
        companies.status,
        StatusCode::NOT_FOUND,
        "companies have no order"
    );
}

#[tokio::test]
async fn blog_posts_get_unique_stable_slugs_and_publish_with_a_date() {
    let app = spawn_app().await;
    let ada = user(&app, "ada@example.com").await;
    let first = create(&app, &ada, "blog", json!({"title": "Hello, World!"})).await;
    let second = create(&app, &ada, "blog", json!({"title": "Hello world"})).await;
    assert_eq!(
        (first["slug"].as_str(), second["slug"].as_str()),
        (Some("hello-world"), Some("hello-world-2"))
    );
    assert_eq!(first["published"], false);

    let path = format!("/portfolio/blog/{}", id(&first));
    let retitled = app.patch(&path, json!({"title": "Renamed"}), &ada).await;
    assert_eq!(
        retitled.data()["slug"],
        "hello-world",
        "a title edit keeps the slug"
    );
    let by_slug = app.get("/portfolio/blog/hello-world", Some(&ada)).await;
    assert_eq!(by_slug.data()["id"], first["id"]);
    let taken = app
        .patch(&path, json!({"slug": "hello-world-2"}), &ada)
        .await;
    assert_eq!(
        (taken.status, taken.code()),
        (StatusCode::CONFLICT, "SLUG_TAKEN")
    );
    let bad = app.patch(&path, json!({"slug": "Not A Slug"}), &ada).await;
    assert_eq!(bad.fields(), ["slug"]);
    let renamed = app.patch(&path, json!({"slug": "my-post"}), &ada).await;
    assert_eq!(renamed.data()["slug"], "my-post");

    let published = app
        .patch(&format!("{path}/publish"), json!({"published": true}), &ada)
        .await;
    assert_eq!(published.data()["published"], true);
    assert!(published.data()["publishedAt"].is_string());
    let unpublished = app
        .patch(
            &format!("{path}/publish"),
            json!({"published": false}),
            &ada,
        )
        .await;
    assert_eq!(unpublished.data()["published"], false);
    assert!(unpublished.data().get("publishedAt").is_none());
    let not_blog = app
        .patch(
            "/portfolio/projects/6b0000000000000000000000/publish",
            json!({"published": true}),
            &ada,
        )
        .await;
    assert_eq!(not_blog.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn skills_group_by_category_and_experiences_embed_their_company() {
    let app = spawn_app().await;
    let ada = user(&app, "ada@example.com").await;
    let bob = user(&app, "bob@example.com").await;
    for (name, category) in [
        ("Rust", "languages"),
        ("Postgres", "databases"),
        ("Go", "languages"),
    ] {
        create(
            &app,
            &ada,
            "skills",
            json!({"name": name, "category": category}),
        )
        .await;
    }
    let grouped = app.get("/portfolio/skills?grouped=true", Some(&ada)).await;
    let groups: Vec<(String, usize)> = grouped
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["category"].as_str().unwrap().to_owned(),
                g["items"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        [("languages".to_owned(), 2), ("databases".to_owned(), 1)]
    );

    let company = create(&app, &ada, "companies", json!({"name": "Acme"})).await;
    let bobs_company = create(&app, &bob, "companies", json!({"name": "Bob Inc"})).await;
    create(
        &app,
        &ada,
        "experiences",
        json!({"title": "Old", "startDate": "2015-01-01"}),
    )
    .await;
    create(
        &app,
        &ada,
        "experiences",
        json!({"title": "New", "startDate": "2021-06-01", "companyId": id(&company)}),
    )
    .await;
    let list = app.get("/portfolio/experiences", Some(&ada)).await;
    let items = list.data().as_array().unwrap();
    assert_eq!(
        (items[0]["title"].as_str(), items[1]["title"].as_str()),
        (Some("New"), Some("Old"))
    );
    assert_eq!(
        items[0]["companyId"]["name"], "Acme",
        "the company is embedded"
    );
    let foreign = app
        .post(
            "/portfolio/experiences",
            json!({"title": "X", "startDate": "2020-01-01", "companyId": id(&bobs_company)}),
            Some(&ada),
        )
        .await;
    assert_eq!(
        (foreign.status, foreign.code(), foreign.fields()),
        (
            StatusCode::CONFLICT,
            "LINK_NOT_FOUND",
            vec!["companyId".to_owned()]
        ),
        "another user's company cannot be linked"
    );
}

async fn public(app: &TestApp, path: &str, etag: Option<&str>) -> crate::support::Reply {
    let mut request = app.http.get(app.url(&format!("/public/portfolio/{path}")));
    if let Some(etag) = etag {
        request = request.header("If-None-Match", etag);
    }
    app.send(request).await
}

fn etag(reply: &crate::support::Reply) -> String {
    reply.headers["etag"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_public_portfolio_shows_only_what_its_owner_made_public() {
    let app = spawn_app().await;
    let ada = user(&app, "ada@example.com").await;
    let project = create(&app, &ada, "projects", json!({"title": "Visible"})).await;
    let gone = create(&app, &ada, "projects", json!({"title": "Deleted"})).await;
    app.delete(&format!("/portfolio/projects/{}", id(&gone)), &ada)
        .await;
    let draft = create(&app, &ada, "blog", json!({"title": "Draft"})).await;
    let post = create(&app, &ada, "blog", json!({"title": "Live"})).await;
    app.patch(
        &format!("/portfolio/blog/{}/publish", id(&post)),
        json!({"published": true}),
        &ada,
    )
    .await;

    assert_eq!(
        public(&app, "ada", None).await.status,
        StatusCode::NOT_FOUND,
        "private by default"
    );
    let profile = app.get("/portfolio/profile", Some(&ada)).await;
    assert_eq!(profile.data()["isPublic"], false);
    let made_public = app
        .patch(
            "/portfolio/profile",
            json!({"isPublic": true, "showSkills": false, "headline": "Engineer"}),
            &ada,
        )
        .await;
    assert_eq!(made_public.status, StatusCode::OK, "{:?}", made_public.body);

    let whole = public(&app, "ADA", None).await;
    assert_eq!(whole.status, StatusCode::OK, "{:?}", whole.body);
    assert_eq!(whole.data()["user"]["username"], "ada");
    assert_eq!(whole.data()["profile"]["headline"], "Engineer");
    assert!(whole.data()["profile"].get("isPublic").is_none());
    assert!(
        whole.data()["sections"].get("skills").is_none(),
        "hidden section"
    );
    let text = whole.body.to_string();
    for private in ["ada@example.com", "userId", "Deleted", "Draft", "deletedAt"] {
        assert!(
            !text.contains(private),
            "public portfolio leaks {private}: {text}"
        );
    }
    assert!(text.contains("Live") && text.contains("Visible"));
    assert_eq!(id(&whole.data()["sections"]["projects"][0]), id(&project));
    let _ = draft;

    assert_eq!(
        public(&app, "ada/skills", None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        public(&app, "ada/widgets", None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        public(&app, "nobody", None).await.status,
        StatusCode::NOT_FOUND
    );
    let blog = public(&app, "ada/blog", None).await;
    assert_eq!(
        blog.data().as_array().unwrap().len(),
        1,
        "only published posts"
    );

    let projects = public(&app, "ada/projects", None).await;
    assert_eq!(
        projects.headers["cache-control"],
        "public, max-age=0, must-revalidate"
    );
    let first_tag = etag(&projects);
    let again = public(&app, "ada/projects", Some(&first_tag)).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(etag(&again), first_tag);

    app.patch(
        &format!("/portfolio/projects/{}", id(&project)),
        json!({"title": "Edited"}),
        &ada,
    )
    .await;
    let edited = public(&app, "ada/projects", Some(&first_tag)).await;
    assert_eq!(edited.status, StatusCode::OK, "an edit changes the ETag");
    assert_ne!(etag(&edited), first_tag);
    assert_eq!(edited.data()[0]["title"], "Edited");

    app.patch("/portfolio/profile", json!({"isPublic": false}), &ada)
        .await;
    assert_eq!(
        public(&app, "ada/projects", None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_public_experience_does_not_reveal_a_company_while_companies_are_hidden() {
    let app = spawn_app().await;
    let ada = user(&app, "ada@example.com").await;
    let company = create(&app, &ada, "companies", json!({"name": "Secret Employer"})).await;
    create(
        &app,
        &ada,
        "experiences",
        json!({"title": "Engineer", "companyId": id(&company), "startDate": "2020-01-01"}),
    )
    .await;
    app.patch(
        "/portfolio/profile",
        json!({"isPublic": true, "showCompanies": false}),
        &ada,
    )
    .await;
    for path in ["ada", "ada/experiences"] {
        let reply = public(&app, path, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        let text = reply.body.to_string();
        assert!(text.contains("Engineer"), "{text}");
        assert!(
            !text.contains("Secret Employer") && !text.contains(&id(&company)),
            "{path} reveals the hidden company: {text}"
        );
    }
    app.patch("/portfolio/profile", json!({"showCompanies": true}), &ada)
        .await;
    let shown = public(&app, "ada/experiences", None).await;
    assert_eq!(shown.data()[0]["companyId"]["name"], "Secret Employer");
}

#[tokio::test]
async fn every_write_shows_in_the_next_list_read_at_once() {
    let app = spawn_app().await;
    let ada = user(&app, "ada@example.com").await;
    let titles = |reply: crate::support::Reply| -> Vec<String> {
        reply
            .data()
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let list = || app.get("/portfolio/projects", Some(&ada));
    assert!(titles(list().await).is_empty());
    let first = create(&app, &ada, "projects", json!({"title": "First"})).await;
    assert_eq!(titles(list().await), ["First"]);
    let second = create(&app, &ada, "projects", json!({"title": "Second"})).await;
    app.patch(
        &format!("/portfolio/projects/{}", id(&first)),
        json!({"title": "Renamed"}),
        &ada,
    )
    .await;
    assert_eq!(titles(list().await), ["Renamed", "Second"]);
    app.patch(
        "/portfolio/projects/reorder",
        json!({"ids": [id(&second), id(&first)]}),
        &ada,
    )
    .await;
    assert_eq!(titles(list().await), ["Second", "Renamed"]);
    app.delete(&format!("/portfolio/projects/{}", id(&second)), &ada)
        .await;
    assert_eq!(titles(list().await), ["Renamed"]);
    let bob = user(&app, "bob@example.com").await;
    assert!(
        titles(app.get("/portfolio/projects", Some(&bob)).await).is_empty(),
        "each owner has their own lists"
    );
}

#[tokio::test]
async fn preferences_start_at_defaults_validate_changes_and_reset() {
    let app = spawn_app().await;
    let ada = user(&app, "ada@example.com").await;
    let bob = user(&app, "bob@example.com").await;
    let defaults = app.get("/settings/preferences", Some(&ada)).await;
    assert_eq!(defaults.data()["theme"], "system");
    let changed = app
        .patch(
            "/settings/preferences",
            json!({"theme": "dark", "language": "fr"}),
            &ada,
        )
        .await;
    assert_eq!(changed.data()["theme"], "dark");
    let bad = app
        .patch(
            "/settings/preferences",
            json!({"theme": "neon", "language": "de"}),
            &ada,
        )
        .await;
    assert_eq!(bad.fields(), ["theme"]);
    let after = app.get("/settings/preferences", Some(&ada)).await;
    assert_eq!(
        (
            after.data()["theme"].as_str(),
            after.data()["language"].as_str()
        ),
        (Some("dark"), Some("fr"))
    );
    assert_eq!(
        app.get("/settings/preferences", Some(&bob)).await.data()["theme"],
        "system"
    );
    let reset = app
        .post("/settings/preferences/reset", json!({}), Some(&ada))
        .await;
    assert_eq!(reset.data()["theme"], "system");

    for (path, field, default) in [
        ("/notifications/preferences", "inAppNotifications", true),
        ("/email/preferences", "marketing", false),
    ] {
        assert_eq!(
            app.get(path, Some(&ada)).await.data()[field],
            default,
            "{path}"
        );
        let flipped = app.patch(path, json!({field: !default}), &ada).await;
        assert_eq!(flipped.data()[field], !default, "{path}");
        let wrong = app.patch(path, json!({field: "yes"}), &ada).await;
        assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(
            app.get(path, Some(&ada)).await.data()[field],
            !default,
            "{path}"
        );
        assert_eq!(app.get(path, None).await.status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn the_portfolio_runs_on_mongodb_too() {
    testkit::needs!("the MongoDB stand-in");
    let mongo = testkit::MongoStandIn::start().await;
    let uri = mongo.uri();
    let app =
        crate::support::spawn_app_with(&[("MONGODB_URI", &uri), ("MONGODB_DATABASE", "portfolio")])
            .await;
    let ada = user(&app, "ada@example.com").await;
    let bob = user(&app, "bob@example.com").await;
    for (resource, body) in samples() {
        let item = create(&app, &ada, resource, body).await;
        let path = format!("/portfolio/{resource}/{}", id(&item));
        assert_eq!(app.get(&path, Some(&ada)).await.data(), &item, "{resource}");
        assert_eq!(
            app.get(&path, Some(&bob)).await.status,
            StatusCode::NOT_FOUND,
            "{resource}"
        );
        assert_eq!(total(&app, &ada, resource).await, 1, "{resource}");
    }
    let taken = app
        .post(
            "/portfolio/blog",
            json!({"title": "Hello World"}),
            Some(&ada),
        )
        .await;
    assert_eq!(taken.data()["slug"], "hello-world-2");
    app.patch("/portfolio/profile", json!({"isPublic": true}), &ada)
        .await;
    let page = public(&app, "ada/projects", None).await;
    assert_eq!(page.data().as_array().unwrap().len(), 1);
    let prefs = app
        .patch("/email/preferences", json!({"marketing": true}), &ada)
        .await;
    assert_eq!(prefs.data()["marketing"], true);
    assert_eq!(
        app.get("/email/preferences", Some(&ada)).await.data()["marketing"],
        true
    );
}

#[tokio::test]
async fn the_portfolio_profile_refuses_bad_fields_and_keeps_its_values() {
    let app = spawn_app().await;
    let ada = user(&app, "ada@example.com").await;
    let first = app.get("/portfolio/profile", Some(&ada)).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(
        (
            first.data()["isPublic"].as_bool(),
            first.data()["showProjects"].as_bool()
        ),
        (Some(false), Some(true)),
        "created with defaults on first read"
    );
    let set = app
        .patch(
            "/portfolio/profile",
            json!({"headline": "Engineer", "availableForHire": true}),
            &ada,
        )
        .await;
    assert_eq!(set.status, StatusCode::OK);
    let bad = app
        .patch(
            "/portfolio/profile",
            json!({"headline": "Other", "avatar": "javascript:x", "isPublic": "yes", "userId": "x", "owner": "x"}),
            &ada,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let mut fields = bad.fields();
    fields.sort();
    assert_eq!(
        fields,
        ["avatar", "isPublic", "owner"],
        "userId is read-back bookkeeping and ignored; owner is unknown"
    );
    let after = app.get("/portfolio/profile", Some(&ada)).await;
    assert_eq!(
        after.data()["headline"],
        "Engineer",
        "a refused change changes nothing"
    );
    assert_eq!(after.data()["availableForHire"], true);
    assert_eq!(
        app.get("/portfolio/profile", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_word_after_a_collection_is_an_item_unless_the_collection_has_that_route() {
    let app = spawn_app().await;
    let ada = user(&app, "ada@example.com").await;
    let post = create(
        &app,
        &ada,
        "blog",
        json!({"title": "Reorder", "content": "On ordering things"}),
    )
    .await;
    assert_eq!(post["slug"], "reorder");
    let by_slug = app.get("/portfolio/blog/reorder", Some(&ada)).await;
    assert_eq!(
        (by_slug.status, &by_slug.data()["id"]),
        (StatusCode::OK, &post["id"]),
        "a post whose slug is `reorder` is read by it"
    );
    let company = app.get("/portfolio/companies/reorder", Some(&ada)).await;
    assert_eq!(
        (company.status, company.code()),
        (StatusCode::NOT_FOUND, "NOT_FOUND"),
        "companies have no order: `reorder` is an id, and no company has it"
    );
    for (path, allow) in [
        ("/portfolio/companies/reorder", "GET, PATCH, DELETE"),
        ("/portfolio/projects/reorder", "PATCH"),
    ] {
        let put = app
            .send(app.http.put(app.url(path)).bearer_auth(&ada))
            .await;
        assert_eq!(put.headers["allow"], allow, "{path}");
    }
}
