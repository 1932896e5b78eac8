//! The real `console-api` binary: a portfolio published and read publicly with cache
//! validators, then the account deleted, checked afterwards in the embedded database itself.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use auth_core::ports::{AccountRepository as _, UserRepository as _};
use kernel::UserId;
use kernel::settings::SettingsRepository as _;
use portfolio_core::ports::PortfolioRepository as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use store_sqlite::SqliteStore;
use support::{Client, api_env};
use testkit::{RunningBinary, SmtpSink};

/// A request that must succeed; its `data`.
async fn send(
    client: &Client,
    method: Method,
    path: &str,
    body: Value,
    token: Option<&str>,
) -> Value {
    let reply = client.request(method, path, Some(body), token, None).await;
    assert!(
        reply.status.is_success(),
        "{path}: {} {}",
        reply.status,
        reply.body
    );
    reply.body["data"].clone()
}

async fn public(
    client: &Client,
    path: &str,
    etag: Option<&str>,
) -> (StatusCode, Option<String>, Value) {
    let reply = client
        .request(
            Method::GET,
            &format!("/public/portfolio/{path}"),
            None,
            None,
            etag,
        )
        .await;
    (reply.status, reply.etag, reply.body)
}

#[tokio::test]
async fn publish_read_revalidate_edit_then_delete_the_account_and_everything_in_it() {
    testkit::needs!("the built binaries");
    let mail = SmtpSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut api = RunningBinary::start("console-api", dir.path(), &api_env(&mail));
    api.wait_healthy().await;
    let client = Client::for_binary(&api);
    let registered = send(&client, Method::POST,
            "/auth/register",
            json!({"name": "Ada Lovelace", "email": "ada@example.com", "password": "Analytical1", "username": "ada"}),
            None,
        )
        .await;
    let token = registered["accessToken"].as_str().unwrap().to_owned();
    let owner = UserId::parse(registered["user"]["id"].as_str().unwrap()).unwrap();

    let project = send(
        &client,
        Method::POST,
        "/portfolio/projects",
        json!({"title": "Engine"}),
        Some(&token),
    )
    .await;
    let post = send(
        &client,
        Method::POST,
        "/portfolio/blog",
        json!({"title": "Notes"}),
        Some(&token),
    )
    .await;
    send(
        &client,
        Method::PATCH,
        "/portfolio/profile",
        json!({"isPublic": true}),
        Some(&token),
    )
    .await;
    let (status, _, _) = public(&client, "ada/blog", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        public(&client, "ada/blog", None).await.2["data"],
        json!([]),
        "drafts stay private"
    );
    let publish = format!("/portfolio/blog/{}/publish", post["id"].as_str().unwrap());
    send(
        &client,
        Method::PATCH,
        &publish,
        json!({"published": true}),
        Some(&token),
    )
    .await;
    let (_, _, blog) = public(&client, "ada/blog", None).await;
    assert_eq!(blog["data"][0]["slug"], "notes");

    let (status, etag, body) = public(&client, "ada/projects", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"][0]["title"], "Engine");
    let etag = etag.unwrap();
    let (status, same, _) = public(&client, "ada/projects", Some(&etag)).await;
    assert_eq!(
        (status, same.as_deref()),
        (StatusCode::NOT_MODIFIED, Some(etag.as_str()))
    );
    let edit = format!("/portfolio/projects/{}", project["id"].as_str().unwrap());
    send(
        &client,
        Method::PATCH,
        &edit,
        json!({"title": "Engine II"}),
        Some(&token),
    )
    .await;
    let (status, changed, body) = public(&client, "ada/projects", Some(&etag)).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(changed.unwrap(), etag);
    assert_eq!(body["data"][0]["title"], "Engine II");

    send(
        &client,
        Method::POST,
        "/users/account/request-deletion",
        json!({}),
        Some(&token),
    )
    .await;
    let confirm = mail
        .wait_for("ada@example.com", "Confirm the deletion")
        .await;
    send(
        &client,
        Method::DELETE,
        "/users/account",
        json!({"token": confirm.token().unwrap()}),
        Some(&token),
    )
    .await;
    mail.wait_for("ada@example.com", "Your account was deleted")
        .await;
    assert_eq!(public(&client, "ada", None).await.0, StatusCode::NOT_FOUND);
    assert!(api.terminate().await.success());

    let store = SqliteStore::open(
        &dir.path().join("data").join("console.db"),
        store_sqlite::Durability::Full,
    )
    .unwrap();
    assert!(
        store.find_user(&owner).await.unwrap().is_none(),
        "user row gone"
    );
    assert!(
        store.find_account_by_user(&owner).await.unwrap().is_none(),
        "account gone"
    );
    assert!(
        store.items_of(&owner).await.unwrap().is_empty(),
        "portfolio items gone"
    );
    assert!(
        store
            .load_settings(&portfolio_core::resources::PROFILE, &owner)
            .await
            .unwrap()
            .is_none(),
        "portfolio profile gone"
    );
    let sessions = auth_core::ports::SessionRepository::list_live_sessions(
        &store,
        &owner,
        chrono::Utc::now() - chrono::TimeDelta::days(30),
    )
    .await
    .unwrap();
    assert!(sessions.is_empty(), "sessions gone");
}
