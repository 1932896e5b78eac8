//! The real `console-api` binary with a real SMTP server: one user's whole identity journey,
//! then a restart that must keep data and tokens.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Client, api_env};
use testkit::{RunningBinary, SmtpSink};

fn text(value: &Value, key: &str) -> String {
    value["data"][key].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn register_verify_login_refresh_reuse_sessions_reset_logout_and_restart() {
    testkit::needs!("the built binaries");
    let mail = SmtpSink::start().await;
    let data = tempfile::tempdir().unwrap();
    let env = api_env(&mail);
    let mut api = RunningBinary::start("console-api", data.path(), &env);
    api.wait_healthy().await;
    let client = Client::for_binary(&api);

    let (status, registered) = client
        .post(
            "/auth/register",
            json!({"name": "Ada Lovelace", "email": "ada@example.com", "password": "Analytical1"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let verify = mail.wait_for("ada@example.com", "Verify").await;
    assert!(
        verify
            .body
            .contains("https://console.test/verify-email?token=")
    );
    let (status, _) = client
        .post(
            "/auth/verify-email",
            json!({"token": verify.token().unwrap()}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, login) = client
        .post(
            "/auth/login",
            json!({"email": "ada@example.com", "password": "Analytical1"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(login["data"]["user"]["emailVerified"], true);
    let (status, refreshed) = client
        .post(
            "/auth/refresh",
            json!({"refreshToken": text(&login, "refreshToken")}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, reuse) = client
        .post(
            "/auth/refresh",
            json!({"refreshToken": text(&login, "refreshToken")}),
            None,
        )
        .await;
    assert_eq!(
        (status, reuse["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("INVALID_REFRESH_TOKEN"))
    );
    let (status, _) = client
        .call(
            reqwest::Method::GET,
            "/auth/me",
            None,
            Some(&text(&refreshed, "accessToken")),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "reuse revoked the login session"
    );

    let first_access = text(&registered, "accessToken");
    let (status, sessions) = client
        .call(reqwest::Method::GET, "/sessions", None, Some(&first_access))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sessions["data"].as_array().unwrap().len(),
        1,
        "only the registration session is live"
    );

    // A restart keeps users, sessions and the generated signing secrets.
    assert!(api.terminate().await.success(), "SIGTERM exits 0");
    let mut api = RunningBinary::start("console-api", data.path(), &env);
    api.wait_healthy().await;
    let client = Client::for_binary(&api);
    let (status, me) = client
        .call(reqwest::Method::GET, "/auth/me", None, Some(&first_access))
        .await;
    assert_eq!(
        (status, me["data"]["email"].as_str()),
        (StatusCode::OK, Some("ada@example.com"))
    );

    let (status, _) = client
        .post(
            "/auth/forgot-password",
            json!({"email": "ada@example.com"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let reset = mail.wait_for("ada@example.com", "Reset").await;
    let (status, _) = client
        .post(
            "/auth/reset-password",
            json!({"token": reset.token().unwrap(), "password": "Brand9New"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    mail.wait_for("ada@example.com", "password was changed")
        .await;
    let (status, _) = client
        .call(reqwest::Method::GET, "/auth/me", None, Some(&first_access))
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a reset ends every session"
    );

    let (status, login) = client
        .post(
            "/auth/login",
            json!({"email": "ada@example.com", "password": "Brand9New"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let access = text(&login, "accessToken");
    let (status, _) = client.post("/auth/logout", json!({}), Some(&access)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = client
        .call(reqwest::Method::GET, "/auth/me", None, Some(&access))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(api.terminate().await.success());
}
