//! The real `console-api` binary: a portfolio published and read publicly with cache
//! validators, then the account deleted, checked afterwards in the embedded database itself.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use auth_core::ports::{AccountRepository as _, UserRepository as _};
use kernel::UserId;
use kernel::settings::SettingsRepository as _;
use portfolio_core::ports::PortfolioRepository as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use store_sqlite::SqliteStore;
use testkit::{RunningBinary, SmtpSink};

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
        etag: Option<&str>,
    ) -> (StatusCode, Option<String>, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(etag) = etag {
            request = request.header("If-None-Match", etag);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let tag = response
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, tag, response.json().await.unwrap_or(Value::Null))
    }

    async fn send(&self, method: Method, path: &str, body: Value, token: Option<&str>) -> Value {
        let (status, _, reply) = self.call(method, path, Some(body), token, None).await;
        assert!(status.is_success(), "{path}: {status} {reply}");
        reply["data"].clone()
    }

    async fn public(&self, path: &str, etag: Option<&str>) -> (StatusCode, Option<String>, Value) {
        self.call(
            Method::GET,
            &format!("/public/portfolio/{path}"),
            None,
            None,
            etag,
        )
        .await
    }
}

#[tokio::test]
async fn publish_read_revalidate_edit_then_delete_the_account_and_everything_in_it() {
    let mail = SmtpSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("SMTP_HOST", "127.0.0.1".to_owned()),
        ("SMTP_PORT", mail.port.to_string()),
        ("FRONTEND_URL", "https://console.test".to_owned()),
        ("ARGON2_MEMORY_COST", "4096".to_owned()),
        ("ARGON2_TIME_COST", "1".to_owned()),
        ("ARGON2_PARALLELISM", "1".to_owned()),
    ];
    let mut api = RunningBinary::start("console-api", dir.path(), &env);
    api.wait_healthy().await;
    let client = Client {
        base: format!("http://127.0.0.1:{}", api.port),
        http: reqwest::Client::new(),
    };
    let registered = client
        .send(
            Method::POST,
            "/auth/register",
            json!({"name": "Ada Lovelace", "email": "ada@example.com", "password": "Analytical1", "username": "ada"}),
            None,
        )
        .await;
    let token = registered["accessToken"].as_str().unwrap().to_owned();
    let owner = UserId::parse(registered["user"]["id"].as_str().unwrap()).unwrap();

    let project = client
        .send(
            Method::POST,
            "/portfolio/projects",
            json!({"title": "Engine"}),
            Some(&token),
        )
        .await;
    let post = client
        .send(
            Method::POST,
            "/portfolio/blog",
            json!({"title": "Notes"}),
            Some(&token),
        )
        .await;
    client
        .send(
            Method::PATCH,
            "/portfolio/profile",
            json!({"isPublic": true}),
            Some(&token),
        )
        .await;
    let (status, _, _) = client.public("ada/blog", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        client.public("ada/blog", None).await.2["data"],
        json!([]),
        "drafts stay private"
    );
    let publish = format!("/portfolio/blog/{}/publish", post["id"].as_str().unwrap());
    client
        .send(
            Method::PATCH,
            &publish,
            json!({"published": true}),
            Some(&token),
        )
        .await;
    let (_, _, blog) = client.public("ada/blog", None).await;
    assert_eq!(blog["data"][0]["slug"], "notes");

    let (status, etag, body) = client.public("ada/projects", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"][0]["title"], "Engine");
    let etag = etag.unwrap();
    let (status, same, _) = client.public("ada/projects", Some(&etag)).await;
    assert_eq!(
        (status, same.as_deref()),
        (StatusCode::NOT_MODIFIED, Some(etag.as_str()))
    );
    let edit = format!("/portfolio/projects/{}", project["id"].as_str().unwrap());
    client
        .send(
            Method::PATCH,
            &edit,
            json!({"title": "Engine II"}),
            Some(&token),
        )
        .await;
    let (status, changed, body) = client.public("ada/projects", Some(&etag)).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(changed.unwrap(), etag);
    assert_eq!(body["data"][0]["title"], "Engine II");

    client
        .send(
            Method::POST,
            "/users/account/request-deletion",
            json!({}),
            Some(&token),
        )
        .await;
    let confirm = mail
        .wait_for("ada@example.com", "Confirm the deletion")
        .await;
    client
        .send(
            Method::DELETE,
            "/users/account",
            json!({"token": confirm.token().unwrap()}),
            Some(&token),
        )
        .await;
    mail.wait_for("ada@example.com", "Your account was deleted")
        .await;
    assert_eq!(client.public("ada", None).await.0, StatusCode::NOT_FOUND);
    assert!(api.terminate().await.success());

    let store = SqliteStore::open(&dir.path().join("data").join("console.db")).unwrap();
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
