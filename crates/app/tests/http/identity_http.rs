//! The identity routes over HTTP against the in-process app: every success path and every
//! error path of the contract's identity rows, each checking that nothing changed.

use crate::support::{PASSWORD, spawn_app, spawn_app_with, spawn_app_with_mail, token};
use reqwest::StatusCode;
use serde_json::json;
use testkit::{SinkOptions, SinkTls};

#[tokio::test]
async fn registration_returns_tokens_and_a_user_without_secrets() {
    let app = spawn_app().await;
    let reply = app
        .post(
            "/auth/register",
            json!({"name": "Ada Lovelace", "email": "Ada@Example.com", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let data = reply.data();
    assert_eq!(data["tokenType"], "Bearer");
    assert_eq!(data["expiresIn"], 900);
    let user = &data["user"];
    assert_eq!(
        (user["email"].as_str(), user["username"].as_str()),
        (Some("ada@example.com"), Some("ada"))
    );
    assert_eq!(
        (user["emailVerified"].as_bool(), user["role"].as_str()),
        (Some(false), Some("user"))
    );
    let text = user.to_string().to_lowercase();
    for secret in ["password", "hash", "token"] {
        assert!(!text.contains(secret), "user leaks {secret}: {text}");
    }
    assert_eq!(
        app.me_status(&token(data, "accessToken")).await,
        StatusCode::OK
    );
    app.mail.wait_for("ada@example.com", "Welcome").await;
    let verify = app.mail.wait_for("ada@example.com", "Verify").await;
    assert!(
        verify
            .body
            .contains("https://console.test/verify-email?token="),
        "{}",
        verify.body
    );
}

#[tokio::test]
async fn emails_reach_a_starttls_relay_trusted_through_the_ca_file_and_never_in_clear() {
    let app = spawn_app_with_mail(
        SinkOptions {
            tls: SinkTls::StartTls,
            auth: true,
        },
        &[
            ("SMTP_REQUIRE_TLS", "true"),
            ("SMTP_USER", "mailer"),
            ("SMTP_PASSWORD", "relay-password"),
        ],
    )
    .await;
    app.register("ada@example.com").await;
    let verify = app.mail.wait_for("ada@example.com", "Verify").await;
    assert!(verify.tls && verify.token().is_some(), "{verify:?}");
    let logins = app.mail.logins();
    assert!(
        !logins.is_empty()
            && logins
                .iter()
                .all(|l| l.over_tls && l.user == "mailer" && l.password == "relay-password"),
        "{logins:?}"
    );
}

#[tokio::test]
async fn an_email_registers_once_whatever_its_case() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let reply = app
        .post(
            "/auth/register",
            json!({"name": "Other Ada", "email": "ADA@example.COM", "password": "Different9"}),
            None,
        )
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::CONFLICT, "EMAIL_TAKEN")
    );
    assert!(reply.is_problem());
    assert_eq!(
        app.login("ada@example.com", "Different9").await.status,
        StatusCode::UNAUTHORIZED,
        "the first account is unchanged"
    );
    app.login_ok("ada@example.com").await;
}

#[tokio::test]
async fn usernames_are_derived_unique_or_refused_when_taken() {
    let app = spawn_app().await;
    let first = app.register("ada@one.io").await;
    let second = app.register("ada@two.io").await;
    assert_eq!(first["user"]["username"], "ada");
    assert_eq!(second["user"]["username"], "ada-2");
    let reply = app
        .post(
            "/auth/register",
            json!({"name": "Grace", "email": "g@x.io", "password": PASSWORD, "username": "ADA"}),
            None,
        )
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::CONFLICT, "USERNAME_TAKEN")
    );
    assert_eq!(
        app.login("g@x.io", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED,
        "nothing was created"
    );
}

#[tokio::test]
async fn invalid_registrations_name_each_bad_field_and_create_nothing() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"name": "A", "email": "not-an-email", "password": "weak"}),
            vec!["name", "email", "password"],
        ),
        (
            json!({"name": "Ada", "email": "a@x.io", "password": "alllowercase1"}),
            vec!["password"],
        ),
        (
            json!({"name": "Ada", "email": "a@x.io", "password": PASSWORD, "username": "no spaces"}),
            vec!["username"],
        ),
        (
            json!({"name": "x".repeat(51), "email": "a@x.io", "password": PASSWORD}),
            vec!["name"],
        ),
        (
            json!({"name": "Ada", "email": {"$ne": null}, "password": PASSWORD}),
            vec!["email"],
        ),
        (
            json!({"name": "Ada", "email": "a@x.io", "password": PASSWORD, "role": "admin"}),
            vec![],
        ),
        (json!({"email": "a@x.io", "password": PASSWORD}), vec![]),
    ];
    for (body, fields) in cases {
        let reply = app.post("/auth/register", body.clone(), None).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, "VALIDATION_ERROR"),
            "{body}"
        );
        assert!(reply.is_problem(), "{:?}", reply.body);
        if !fields.is_empty() {
            let mut named = reply.fields();
            named.sort();
            let mut expected: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
            expected.sort();
            assert_eq!(named, expected, "{body}");
        } else {
            assert_eq!(reply.fields().len(), 1, "{:?}", reply.body);
        }
    }
    assert_eq!(
        app.login("a@x.io", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(
        app.mail.received().is_empty(),
        "no email for a refused registration"
    );
}

#[tokio::test]
async fn unknown_email_and_wrong_password_fail_identically() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let wrong = app.login("ada@example.com", "Wrong12345").await;
    let unknown = app.login("nobody@example.com", PASSWORD).await;
    for reply in [&wrong, &unknown] {
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS")
        );
        assert!(reply.is_problem());
    }
    let strip = |v: &serde_json::Value| {
        let mut v = v.clone();
        for volatile in ["requestId", "timestamp"] {
            v.as_object_mut().unwrap().remove(volatile);
        }
        v
    };
    assert_eq!(strip(&wrong.body), strip(&unknown.body));
}

#[tokio::test]
async fn login_records_the_device_and_address_of_the_session() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    let reply = app
        .send(
            app.http
                .post(app.url("/auth/login"))
                .header("user-agent", firefox)
                .json(&json!({"email": "ada@example.com", "password": PASSWORD})),
        )
        .await;
    let access = token(reply.data(), "accessToken");
    let sessions = app.get("/sessions", Some(&access)).await;
    let current: Vec<_> = sessions
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["current"] == true)
        .collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["browser"], "Firefox 128");
    assert_eq!(current[0]["os"], "Linux");
    assert_eq!(current[0]["deviceType"], "desktop");
    assert_eq!(current[0]["ipAddress"], "127.0.0.1");
    assert_eq!(
        sessions.data().as_array().unwrap().len(),
        2,
        "the registration session and this one"
    );
}

#[tokio::test]
async fn forged_expired_unsigned_and_refresh_tokens_are_not_access_tokens() {
    let app = spawn_app_with(&[("JWT_ACCESS_TOKEN_EXPIRATION", "1s")]).await;
    let data = app.register("ada@example.com").await;
    let access = token(&data, "accessToken");
    let refresh = token(&data, "refreshToken");
    let payload = access.split('.').nth(1).unwrap();
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    let mut tampered = access.clone();
    tampered.pop();
    tampered.push(if access.ends_with('A') { 'B' } else { 'A' });
    for bad in [
        unsigned.as_str(),
        tampered.as_str(),
        refresh.as_str(),
        "garbage",
        "",
    ] {
        let reply = app.get("/auth/me", Some(bad)).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            "{bad}"
        );
        assert!(reply.is_problem());
    }
    assert_eq!(
        app.get("/auth/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        app.me_status(&access).await,
        StatusCode::UNAUTHORIZED,
        "an expired token is refused"
    );
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_session() {
    let app = spawn_app().await;
    let first = app.register("ada@example.com").await;
    let rotated = app.refresh(&first).await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    let second = rotated.data().clone();
    assert_ne!(
        token(&second, "refreshToken"),
        token(&first, "refreshToken")
    );
    assert_eq!(
        app.me_status(&token(&second, "accessToken")).await,
        StatusCode::OK
    );

    let reuse = app.refresh(&first).await;
    assert_eq!(
        (reuse.status, reuse.code()),
        (StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN")
    );
    assert_eq!(
        app.me_status(&token(&second, "accessToken")).await,
        StatusCode::UNAUTHORIZED,
        "theft revokes the session at once"
    );
    let after = app.refresh(&second).await;
    assert_eq!(
        after.status,
        StatusCode::UNAUTHORIZED,
        "the newest token of a revoked session is dead too"
    );
    let other = app.login_ok("ada@example.com").await;
    assert_eq!(
        app.me_status(&token(&other, "accessToken")).await,
        StatusCode::OK,
        "other sessions are unaffected"
    );
}

#[tokio::test]
async fn within_the_reuse_interval_the_previous_refresh_token_may_be_retried() {
    let app = spawn_app_with(&[("JWT_REFRESH_REUSE_INTERVAL", "30")]).await;
    let first = app.register("ada@example.com").await;
    let lost = app.refresh(&first).await;
    assert_eq!(lost.status, StatusCode::OK);
    let retry = app.refresh(&first).await;
    assert_eq!(retry.status, StatusCode::OK, "{:?}", retry.body);
    assert_eq!(
        app.me_status(&token(retry.data(), "accessToken")).await,
        StatusCode::OK
    );
    let next = app.refresh(retry.data()).await;
    assert_eq!(
        next.status,
        StatusCode::OK,
        "the retried pair is the current one"
    );
}

#[tokio::test]
async fn invalid_refresh_requests_are_refused() {
    let app = spawn_app().await;
    let data = app.register("ada@example.com").await;
    for body in [
        json!({"refreshToken": token(&data, "accessToken")}),
        json!({"refreshToken": "nonsense"}),
    ] {
        let reply = app.post("/auth/refresh", body, None).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN")
        );
    }
    let reply = app.post("/auth/refresh", json!({}), None).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.me_status(&token(&data, "accessToken")).await,
        StatusCode::OK,
        "failed refreshes change nothing"
    );
}

#[tokio::test]
async fn logout_ends_the_current_session_only() {
    let app = spawn_app().await;
    let first = app.register("ada@example.com").await;
    let second = app.login_ok("ada@example.com").await;
    let reply = app
        .post(
            "/auth/logout",
            json!({}),
            Some(&token(&first, "accessToken")),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        app.me_status(&token(&first, "accessToken")).await,
        StatusCode::UNAUTHORIZED
    );
    let refresh = app.refresh(&first).await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.me_status(&token(&second, "accessToken")).await,
        StatusCode::OK
    );
    assert_eq!(
        app.post("/auth/logout", json!({}), None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn password_reset_is_single_use_and_ends_every_session() {
    let app = spawn_app().await;
    let data = app.register("ada@example.com").await;
    let unknown = app
        .post(
            "/auth/forgot-password",
            json!({"email": "nobody@example.com"}),
            None,
        )
        .await;
    let known = app
        .post(
            "/auth/forgot-password",
            json!({"email": "ADA@example.com"}),
            None,
        )
        .await;
    assert_eq!(
        (unknown.status, known.status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(
        unknown.body, known.body,
        "the answer does not reveal whether the email exists"
    );
    let mail = app.mail.wait_for("ada@example.com", "Reset").await;
    assert!(
        mail.body
            .contains("https://console.test/reset-password?token="),
        "{}",
        mail.body
    );
    let reset_token = mail.token().unwrap();

    let weak = app
        .post(
            "/auth/reset-password",
            json!({"token": reset_token, "password": "weak"}),
            None,
        )
        .await;
    assert_eq!(
        (weak.status, weak.fields()),
        (StatusCode::BAD_REQUEST, vec!["password".to_owned()])
    );
    let forged = app
        .post(
            "/auth/reset-password",
            json!({"token": "f".repeat(64), "password": "Brand9New"}),
            None,
        )
        .await;
    assert_eq!(
        (forged.status, forged.code()),
        (StatusCode::BAD_REQUEST, "INVALID_TOKEN")
    );
    app.login_ok("ada@example.com").await;

    let reset = app
        .post(
            "/auth/reset-password",
            json!({"token": reset_token, "password": "Brand9New"}),
            None,
        )
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{:?}", reset.body);
    assert_eq!(
        app.me_status(&token(&data, "accessToken")).await,
        StatusCode::UNAUTHORIZED,
        "every session ends"
    );
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("ada@example.com", "Brand9New").await.status,
        StatusCode::OK
    );
    let again = app
        .post(
            "/auth/reset-password",
            json!({"token": reset_token, "password": "Third9One"}),
            None,
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::BAD_REQUEST, "INVALID_TOKEN"),
        "single use"
    );
    assert_eq!(
        app.login("ada@example.com", "Brand9New").await.status,
        StatusCode::OK,
        "a refused reset changes nothing"
    );
    app.mail
        .wait_for("ada@example.com", "password was changed")
        .await;
}

#[tokio::test]
async fn email_verification_works_once_and_resend_replaces_the_link() {
    let app = spawn_app().await;
    let data = app.register("ada@example.com").await;
    let access = token(&data, "accessToken");
    let first = app
        .mail
        .wait_for("ada@example.com", "Verify")
        .await
        .token()
        .unwrap();
    assert_eq!(
        app.post("/auth/resend-verification", json!({}), Some(&access))
            .await
            .status,
        StatusCode::OK
    );
    let resent = loop {
        let mails: Vec<_> = app
            .mail
            .received()
            .into_iter()
            .filter(|m| m.subject().contains("Verify"))
            .collect();
        if mails.len() == 2 {
            break mails[1].token().unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let stale = app
        .post("/auth/verify-email", json!({"token": first}), None)
        .await;
    assert_eq!(
        (stale.status, stale.code()),
        (StatusCode::BAD_REQUEST, "INVALID_TOKEN"),
        "the older link stopped working"
    );
    assert_eq!(
        app.get("/auth/me", Some(&access)).await.data()["emailVerified"],
        false
    );

    assert_eq!(
        app.post("/auth/verify-email", json!({"token": resent}), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/auth/me", Some(&access)).await.data()["emailVerified"],
        true
    );
    let reused = app
        .post("/auth/verify-email", json!({"token": resent}), None)
        .await;
    assert_eq!(
        (reused.status, reused.code()),
        (StatusCode::BAD_REQUEST, "INVALID_TOKEN")
    );
    let resend = app
        .post("/auth/resend-verification", json!({}), Some(&access))
        .await;
    assert_eq!(
        (resend.status, resend.code()),
        (StatusCode::BAD_REQUEST, "EMAIL_ALREADY_VERIFIED")
    );
}

#[tokio::test]
async fn changing_the_password_checks_the_current_one_and_ends_other_sessions() {
    let app = spawn_app().await;
    let first = app.register("ada@example.com").await;
    let second = app.login_ok("ada@example.com").await;
    let access = token(&first, "accessToken");
    let wrong = app
        .post(
            "/auth/change-password",
            json!({"currentPassword": "Wrong1234", "newPassword": "Brand9New"}),
            Some(&access),
        )
        .await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (StatusCode::BAD_REQUEST, "INVALID_CURRENT_PASSWORD")
    );
    let weak = app
        .post(
            "/auth/change-password",
            json!({"currentPassword": PASSWORD, "newPassword": "weak"}),
            Some(&access),
        )
        .await;
    assert_eq!(
        (weak.status, weak.fields()),
        (StatusCode::BAD_REQUEST, vec!["newPassword".to_owned()])
    );
    assert_eq!(
        app.me_status(&token(&second, "accessToken")).await,
        StatusCode::OK,
        "refusals change nothing"
    );
    app.login_ok("ada@example.com").await;

    let changed = app
        .post(
            "/auth/change-password",
            json!({"currentPassword": PASSWORD, "newPassword": "Brand9New"}),
            Some(&access),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_eq!(
        app.me_status(&access).await,
        StatusCode::OK,
        "the current session stays"
    );
    assert_eq!(
        app.me_status(&token(&second, "accessToken")).await,
        StatusCode::UNAUTHORIZED,
        "other sessions end"
    );
    assert_eq!(
        app.login("ada@example.com", "Brand9New").await.status,
        StatusCode::OK
    );
    app.mail
        .wait_for("ada@example.com", "password was changed")
        .await;
}

#[tokio::test]
async fn profile_updates_validate_each_field_and_change_nothing_on_error() {
    let app = spawn_app().await;
    let access = token(&app.register("ada@example.com").await, "accessToken");
    let bad = app
        .patch(
            "/users/profile",
            json!({"firstName": "R2D2", "website": "javascript:alert(1)", "bio": "b".repeat(501)}),
            &access,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let mut fields = bad.fields();
    fields.sort();
    assert_eq!(fields, ["bio", "firstName", "website"]);
    assert_eq!(
        app.get("/auth/me", Some(&access)).await.data()["firstName"],
        "Ada"
    );
    let unknown = app
        .patch("/users/profile", json!({"role": "admin"}), &access)
        .await;
    assert_eq!(
        (unknown.status, unknown.fields()),
        (StatusCode::BAD_REQUEST, vec!["role".to_owned()])
    );
    let mut read = app.get("/auth/me", Some(&access)).await.data().clone();
    read["bio"] = json!("Sent back whole");
    let whole = app.patch("/users/profile", read, &access).await;
    assert_eq!(whole.status, StatusCode::OK, "{:?}", whole.body);
    assert_eq!(whole.data()["bio"], "Sent back whole");
    let stranger = app
        .patch("/users/profile", json!({"favouriteColour": "red"}), &access)
        .await;
    assert_eq!(stranger.fields(), ["favouriteColour"]);
    assert_eq!(
        app.get("/auth/me", Some(&access)).await.data()["role"],
        "user"
    );

    let ok = app
        .patch("/users/profile", json!({"firstName": "Augusta", "website": "https://ada.dev", "location": null, "bio": "Analyst"}), &access)
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    let me = app.get("/auth/me", Some(&access)).await;
    assert_eq!(me.data()["firstName"], "Augusta");
    assert_eq!(me.data()["lastName"], "Lovelace", "absent fields stay");
    assert_eq!(me.data()["website"], "https://ada.dev");
    assert_eq!(me.data()["location"], serde_json::Value::Null);
}

#[tokio::test]
async fn sessions_are_owner_scoped() {
    let app = spawn_app().await;
    let ada = app.register("ada@example.com").await;
    let ada_other = app.login_ok("ada@example.com").await;
    let grace = app.register("grace@example.com").await;
    let ada_access = token(&ada, "accessToken");
    let grace_access = token(&grace, "accessToken");
    let ada_sessions = app.get("/sessions", Some(&ada_access)).await;
    let ada_ids: Vec<String> = ada_sessions
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ada_ids.len(), 2);

    for id in &ada_ids {
        let reply = app.delete(&format!("/sessions/{id}"), &grace_access).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::NOT_FOUND, "SESSION_NOT_FOUND")
        );
    }
    for bad in ["not-an-id", "000000000000000000000000"] {
        assert_eq!(
            app.delete(&format!("/sessions/{bad}"), &ada_access)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(
        app.me_status(&token(&ada_other, "accessToken")).await,
        StatusCode::OK,
        "nothing of Ada's was revoked"
    );

    let other_id = ada_ids
        .iter()
        .find(|id| app_current(&ada_sessions, id) == Some(false))
        .unwrap();
    assert_eq!(
        app.delete(&format!("/sessions/{other_id}"), &ada_access)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.me_status(&token(&ada_other, "accessToken")).await,
        StatusCode::UNAUTHORIZED
    );

    let third = app.login_ok("ada@example.com").await;
    let revoked = app.delete("/sessions", &ada_access).await;
    assert_eq!(
        (revoked.status, revoked.data()["revoked"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    assert_eq!(
        app.me_status(&token(&third, "accessToken")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.me_status(&ada_access).await,
        StatusCode::OK,
        "the current session stays"
    );
    assert_eq!(
        app.me_status(&grace_access).await,
        StatusCode::OK,
        "other users are untouched"
    );
}

fn app_current(sessions: &crate::support::Reply, id: &str) -> Option<bool> {
    sessions.data().as_array()?.iter().find(|s| s["id"] == id)?["current"].as_bool()
}

#[tokio::test]
async fn admin_emails_get_the_admin_role_once_the_address_is_verified() {
    let app = spawn_app_with(&[("ADMIN_EMAILS", "Boss@Example.com, other@example.com")]).await;
    let boss = app.register("boss@example.com").await;
    assert_eq!(
        boss["user"]["role"], "user",
        "anyone can sign up with a listed address; it counts once proven"
    );
    let verify = app
        .mail
        .wait_for("boss@example.com", "Verify")
        .await
        .token()
        .unwrap();
    let verified = app
        .post("/auth/verify-email", json!({"token": verify}), None)
        .await;
    assert_eq!(verified.status, StatusCode::OK);
    let refreshed = app.refresh(&boss).await;
    assert_eq!(refreshed.data()["user"]["role"], "admin");
    let me = app
        .get("/auth/me", Some(&token(refreshed.data(), "accessToken")))
        .await;
    assert_eq!(me.data()["role"], "admin");
    assert_eq!(
        app.register("ada@example.com").await["user"]["role"],
        "user"
    );
}

#[tokio::test]
async fn the_identity_flow_runs_on_mongodb_too() {
    testkit::needs!("the MongoDB stand-in");
    let mongo = testkit::MongoStandIn::start().await;
    let uri = mongo.uri();
    let app = spawn_app_with(&[("MONGODB_URI", &uri), ("MONGODB_DATABASE", "identity_flow")]).await;
    assert_eq!(app.get("/health", None).await.data()["mode"], "mongodb");
    let first = app.register("ada@example.com").await;
    let duplicate = app
        .post(
            "/auth/register",
            json!({"name": "Ada", "email": "ADA@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(duplicate.code(), "EMAIL_TAKEN");
    let second = app.login_ok("ada@example.com").await;
    let rotated = app.refresh(&second).await;
    assert_eq!(rotated.status, StatusCode::OK);
    let reuse = app.refresh(&second).await;
    assert_eq!(reuse.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.me_status(&token(rotated.data(), "accessToken")).await,
        StatusCode::UNAUTHORIZED
    );
    let verify = app
        .mail
        .wait_for("ada@example.com", "Verify")
        .await
        .token()
        .unwrap();
    assert_eq!(
        app.post("/auth/verify-email", json!({"token": verify}), None)
            .await
            .status,
        StatusCode::OK
    );
    let me = app
        .get("/auth/me", Some(&token(&first, "accessToken")))
        .await;
    assert_eq!(me.data()["emailVerified"], true);
    let sessions = app
        .get("/sessions", Some(&token(&first, "accessToken")))
        .await;
    assert_eq!(
        sessions.data().as_array().unwrap().len(),
        1,
        "the revoked session is not listed"
    );
    assert_eq!(app.get("/health/ready", None).await.status, StatusCode::OK);
}

const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";

/// Logs in as `email` from `ip` (through the trusted proxy header) with `user_agent`.
async fn login_from(
    app: &crate::support::TestApp,
    email: &str,
    ip: &str,
    user_agent: &str,
) -> serde_json::Value {
    let reply = app
        .send(
            app.http
                .post(app.url("/auth/login"))
                .header("x-forwarded-for", ip)
                .header("user-agent", user_agent)
                .json(&json!({"email": email, "password": PASSWORD})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.data().clone()
}

/// The caller's current session, once `ready` says it is complete (the location is filled in
/// in the background).
async fn current_session(
    app: &crate::support::TestApp,
    access: &str,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> (serde_json::Value, Vec<serde_json::Value>) {
    for _ in 0..100 {
        let sessions = app.get("/sessions", Some(access)).await;
        let all = sessions.data().as_array().cloned().unwrap_or_default();
        if let Some(current) = all.iter().find(|s| s["current"] == true)
            && ready(current)
        {
            return (current.clone(), all);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the current session never became ready");
}

fn maxmind() -> [(&'static str, &'static str); 3] {
    [
        ("LOCATION_PROVIDER", "maxmind"),
        ("LOCATION_MAXMIND_DB_PATH", testkit::GEOIP2_CITY_TEST_DB),
        ("TRUSTED_PROXY_HEADER", "X-Forwarded-For"),
    ]
}

#[tokio::test]
async fn sessions_show_where_their_address_is_once_it_is_looked_up() {
    let app = spawn_app_with(&maxmind()).await;
    app.register("ada@example.com").await;
    let data = login_from(&app, "ada@example.com", "81.2.69.142", SAFARI_IPHONE).await;
    let access = token(&data, "accessToken");
    let (current, all) = current_session(&app, &access, |s| !s["location"].is_null()).await;
    assert_eq!(
        current["location"],
        json!({
            "country": "United Kingdom",
            "countryCode": "GB",
            "region": "England",
            "city": "London",
            "coordinates": {"latitude": 51.5142, "longitude": -0.0931},
            "timezone": "Europe/London",
            "isp": null,
        })
    );
    assert_eq!(
        (&current["browser"], &current["os"], &current["deviceName"]),
        (&json!("Safari 17.4"), &json!("iOS 17.4"), &json!("iPhone"))
    );
    let registration = all.iter().find(|s| s["current"] == false).unwrap();
    assert_eq!(
        registration["location"],
        serde_json::Value::Null,
        "a loopback address names no place"
    );
    let export = app.get("/users/account/export", Some(&access)).await;
    assert!(
        export.body["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["location"]["city"] == "London"),
        "the export lists the location too"
    );
    let doc = app
        .send(app.http.get(app.url("/docs/openapi.json")))
        .await
        .body;
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["LocationDto"]["properties"]["countryCode"].is_object());
    assert!(
        schemas["SessionDto"]["properties"]["location"]
            .to_string()
            .contains("#/components/schemas/LocationDto"),
        "{}",
        schemas["SessionDto"]["properties"]["location"]
    );
}

#[tokio::test]
async fn a_failing_location_service_never_fails_a_login() {
    let service = testkit::HttpStub::start(|_| testkit::StubReply {
        status: 500,
        ..testkit::StubReply::json("{}")
    })
    .await;
    let url = format!("{}/json", service.url());
    let app = spawn_app_with(&[
        ("LOCATION_PROVIDER", "http"),
        ("LOCATION_API_URL", &url),
        ("TRUSTED_PROXY_HEADER", "X-Forwarded-For"),
    ])
    .await;
    app.register("ada@example.com").await;
    let data = login_from(&app, "ada@example.com", "81.2.69.142", SAFARI_IPHONE).await;
    for _ in 0..100 {
        if !service.requests().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(service.requests().len(), 1, "the service was asked once");
    let (current, _) = current_session(&app, &token(&data, "accessToken"), |_| true).await;
    assert_eq!(current["location"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_sign_in_from_a_new_device_is_emailed_even_with_account_activity_emails_off() {
    let app = spawn_app_with(&maxmind()).await;
    let data = app.register("ada@example.com").await;
    let reply = app
        .patch(
            "/email/preferences",
            json!({"accountActivity": false}),
            &token(&data, "accessToken"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    login_from(&app, "ada@example.com", "81.2.69.142", SAFARI_IPHONE).await;
    let mail = app
        .mail
        .wait_for("ada@example.com", "New sign-in to your account")
        .await;
    for fact in [
        "Device: iPhone",
        "Browser: Safari 17.4",
        "Operating system: iOS 17.4",
        "IP address: 81.2.69.142",
        "Location: London, England, United Kingdom",
    ] {
        assert!(mail.body.contains(fact), "{fact} in {}", mail.body);
    }
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_emails_the_owner() {
    let app = spawn_app().await;
    let first = app.register("ada@example.com").await;
    assert_eq!(app.refresh(&first).await.status, StatusCode::OK);
    assert_eq!(app.refresh(&first).await.status, StatusCode::UNAUTHORIZED);
    let mail = app
        .mail
        .wait_for(
            "ada@example.com",
            "A session of your account was signed out",
        )
        .await;
    assert!(mail.body.contains("Change your password"), "{}", mail.body);
    assert!(mail.body.contains("IP address: 127.0.0.1"), "{}", mail.body);
}
