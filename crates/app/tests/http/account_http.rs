//! Account deletion and data export over HTTP against the in-process app.

use crate::support::{PASSWORD, TestApp, spawn_app, token};
use reqwest::StatusCode;
use serde_json::json;

async fn deletion_token(app: &TestApp, access: &str, email: &str) -> String {
    let reply = app
        .post("/users/account/request-deletion", json!({}), Some(access))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let mail = app.mail.wait_for(email, "Confirm the deletion").await;
    assert!(
        mail.body
            .contains("https://console.test/account/confirm-deletion?token="),
        "{}",
        mail.body
    );
    mail.token().unwrap()
}

#[tokio::test]
async fn deleting_an_account_needs_its_own_emailed_token_and_removes_everything() {
    let app = spawn_app().await;
    let ada = token(&app.register("ada@example.com").await, "accessToken");
    let bob = token(&app.register("bob@example.com").await, "accessToken");
    for who in [&ada, &bob] {
        app.post("/portfolio/projects", json!({"title": "Mine"}), Some(who))
            .await;
        app.patch("/portfolio/profile", json!({"isPublic": true}), who)
            .await;
        app.patch("/settings/preferences", json!({"theme": "dark"}), who)
            .await;
    }
    let adas_token = deletion_token(&app, &ada, "ada@example.com").await;

    let missing = app
        .send(app.http.delete(app.url("/users/account")).bearer_auth(&bob))
        .await;
    assert_eq!(
        (missing.status, missing.fields()),
        (StatusCode::BAD_REQUEST, vec!["token".to_owned()])
    );
    let stolen = app
        .send(
            app.http
                .delete(app.url("/users/account"))
                .bearer_auth(&bob)
                .json(&json!({"token": adas_token})),
        )
        .await;
    assert_eq!(
        (stolen.status, stolen.code()),
        (StatusCode::BAD_REQUEST, "INVALID_TOKEN")
    );
    assert_eq!(
        app.me_status(&bob).await,
        StatusCode::OK,
        "bob's account is untouched"
    );
    assert_eq!(app.me_status(&ada).await, StatusCode::OK, "and so is ada's");

    let deleted = app
        .send(
            app.http
                .delete(app.url(&format!("/users/account?token={adas_token}")))
                .bearer_auth(&ada),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{:?}", deleted.body);
    app.mail
        .wait_for("ada@example.com", "Your account was deleted")
        .await;
    assert_eq!(app.me_status(&ada).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    let public = app
        .send(app.http.get(app.url("/public/portfolio/ada")))
        .await;
    assert_eq!(public.status, StatusCode::NOT_FOUND);
    let bobs = app
        .send(app.http.get(app.url("/public/portfolio/bob/projects")))
        .await;
    assert_eq!(
        bobs.data().as_array().unwrap().len(),
        1,
        "bob keeps his portfolio"
    );
    let again = app.register("ada@example.com").await;
    let fresh = token(&again, "accessToken");
    let projects = app.get("/portfolio/projects", Some(&fresh)).await;
    assert_eq!(
        projects.body["meta"]["total"], 0,
        "nothing of the old account remains"
    );
    let prefs = app.get("/settings/preferences", Some(&fresh)).await;
    assert_eq!(prefs.data()["theme"], "system");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_racing_a_deletion_leave_nothing_of_the_user_behind() {
    use portfolio_core::ports::PortfolioRepository as _;
    let app = std::sync::Arc::new(spawn_app().await);
    let registered = app.register("ada@example.com").await;
    let ada = token(&registered, "accessToken");
    let owner = kernel::UserId::parse(registered["user"]["id"].as_str().unwrap()).unwrap();
    let confirmation = deletion_token(&app, &ada, "ada@example.com").await;
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let (app, ada) = (std::sync::Arc::clone(&app), ada.clone());
            tokio::spawn(async move {
                let mut accepted = 0;
                for attempt in 0..2_000 {
                    let reply = if attempt % 2 == 0 {
                        let title = format!("writer {writer}, attempt {attempt}");
                        app.post("/portfolio/projects", json!({"title": title}), Some(&ada))
                            .await
                    } else {
                        app.patch("/settings/preferences", json!({"theme": "dark"}), &ada)
                            .await
                    };
                    match reply.status {
                        StatusCode::CREATED | StatusCode::OK => accepted += 1,
                        StatusCode::UNAUTHORIZED => return accepted,
                        other => panic!("unexpected {other}: {:?}", reply.body),
                    }
                }
                accepted
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let deleted = app
        .send(
            app.http
                .delete(app.url(&format!("/users/account?token={confirmation}")))
                .bearer_auth(&ada),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{:?}", deleted.body);
    let mut accepted = 0;
    for writer in writers {
        accepted += writer.await.unwrap();
    }
    assert!(accepted > 0, "the writers ran before the deletion");

    let store = store_sqlite::SqliteStore::open(
        &app.data_dir().join("console.db"),
        store_sqlite::Durability::Full,
    )
    .unwrap();
    assert!(
        store.items_of(&owner).await.unwrap().is_empty(),
        "a racing write recreated portfolio items"
    );
    for kind in [
        &auth_core::preferences::APP_PREFERENCES,
        &portfolio_core::resources::PROFILE,
    ] {
        assert!(
            kernel::settings::SettingsRepository::load_settings(&store, kind, &owner)
                .await
                .unwrap()
                .is_none(),
            "a racing write recreated {}",
            kind.name
        );
    }
}

#[tokio::test]
async fn the_export_holds_everything_but_secrets_as_json_or_csv() {
    let app = spawn_app().await;
    let ada = token(&app.register("ada@example.com").await, "accessToken");
    app.post(
        "/portfolio/projects",
        json!({"title": "Kept, \"quoted\""}),
        Some(&ada),
    )
    .await;
    let gone = app
        .post("/portfolio/skills", json!({"name": "=cmd()"}), Some(&ada))
        .await;
    let gone_id = gone.data()["id"].as_str().unwrap().to_owned();
    app.delete(&format!("/portfolio/skills/{gone_id}"), &ada)
        .await;
    app.patch("/settings/preferences", json!({"theme": "dark"}), &ada)
        .await;

    let json_export = app
        .send(
            app.http
                .get(app.url("/users/account/export"))
                .bearer_auth(&ada),
        )
        .await;
    assert_eq!(json_export.status, StatusCode::OK);
    let disposition = json_export.headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"console-export-")
            && disposition.ends_with(".json\"")
    );
    let export = &json_export.body;
    assert_eq!(export["user"]["email"], "ada@example.com");
    assert_eq!(export["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(export["settings"]["appPreferences"]["theme"], "dark");
    assert_eq!(
        export["portfolio"]["projects"][0]["title"],
        "Kept, \"quoted\""
    );
    assert!(
        export["portfolio"]["skills"][0]["deletedAt"].is_string(),
        "soft-deleted items are stored, so exported"
    );
    let text = export.to_string().to_lowercase();
    for secret in ["password", "$argon2", "hash", "refresh"] {
        assert!(!text.contains(secret), "export leaks {secret}");
    }

    let csv = app
        .send(
            app.http
                .get(app.url("/users/account/export?format=csv"))
                .bearer_auth(&ada),
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let raw = app
        .http
        .get(app.url("/users/account/export?format=csv"))
        .bearer_auth(&ada)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(raw.starts_with("section,id,field,value\r\n"));
    assert!(raw.contains("portfolio.projects,"));
    assert!(raw.contains("\"Kept, \"\"quoted\"\"\""), "{raw}");
    assert!(raw.contains("'=cmd()"), "formulas are defused: {raw}");
    assert!(raw.contains(&format!("portfolio.skills,{gone_id},deletedAt,")));

    let bad = app
        .get("/users/account/export?format=xml", Some(&ada))
        .await;
    assert_eq!(bad.fields(), ["format"]);
    assert_eq!(
        app.get("/users/account/export", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}
