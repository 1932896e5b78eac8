//! Two real `console-api` processes started on a database the NestJS version filled
//! (`tests/fixtures/nestjs-database.json`), walked through as its users would: they log in
//! with the passwords they had, find their sessions, portfolio and settings, and nothing the
//! NestJS version stored is lost when they write.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use chrono::Utc;
use jsonwebtoken::{EncodingKey, Header, encode};
use mongodb::bson::{Bson, doc, oid::ObjectId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Client, api_env};
use testkit::{MongoStandIn, RunningBinary, SmtpSink};

const DATABASE: &str = "console";
/// The NestJS deployment's refresh secret; `console-api` gets secrets of its own.
const NESTJS_REFRESH_SECRET: &str = "refresh-secret-of-the-nestjs-deployment-xx";
const REFRESH_SECRET: &str = "refresh-secret-of-the-rust-deployment-xxxxx";
const ADA: &str = "64b000000000000000000a01";
const GRACE: &str = "64b000000000000000000a02";
const ADA_OLD_SESSION: &str = "64b000000000000000000c01";

fn instance_env(mail: &SmtpSink, mongo: &MongoStandIn) -> Vec<(&'static str, String)> {
    let mut env = api_env(mail);
    env.extend([
        ("MONGODB_URI", mongo.uri()),
        ("MONGODB_DATABASE", DATABASE.to_owned()),
        (
            "JWT_ACCESS_SECRET",
            "access-secret-of-the-rust-deployment-xxxxxx".to_owned(),
        ),
        ("JWT_REFRESH_SECRET", REFRESH_SECRET.to_owned()),
        // A logout on one instance is seen by the other at its next check.
        ("SESSION_CHECK_TTL", "1s".to_owned()),
        // The walk makes more sign-in calls than the default limit lets one client make.
        ("THROTTLE_AUTH_LIMIT", "50".to_owned()),
    ]);
    env
}

async fn ok(
    client: &Client,
    method: Method,
    path: &str,
    body: Option<Value>,
    token: &str,
) -> Value {
    let (status, body) = client.call(method, path, body, Some(token)).await;
    assert!(status.is_success(), "{path}: {status} {body}");
    body["data"].clone()
}

async fn stored(mongo: &MongoStandIn, collection: &str, id: &str) -> mongodb::bson::Document {
    let id = ObjectId::parse_str(id).unwrap();
    testkit::stored_documents(&mongo.uri(), DATABASE, collection, doc! { "_id": id })
        .await
        .pop()
        .unwrap()
}

fn signed(claims: &Value, secret: &str) -> String {
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn a_nestjs_database_serves_its_users_and_keeps_what_it_stored() {
    testkit::needs!("the built binaries and the MongoDB stand-in");
    let mongo = MongoStandIn::start().await;
    testkit::load_nestjs_fixture(&mongo.uri(), DATABASE).await;
    let mail = SmtpSink::start().await;
    let (first_dir, second_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut first = RunningBinary::start(
        "console-api",
        first_dir.path(),
        &instance_env(&mail, &mongo),
    );
    let mut second = RunningBinary::start(
        "console-api",
        second_dir.path(),
        &instance_env(&mail, &mongo),
    );
    first.wait_healthy().await;
    second.wait_healthy().await;
    let (one, other) = (Client::for_binary(&first), Client::for_binary(&second));

    // The address was stored with capitals and the hash with NestJS's argon2 parameters
    // (rehashed to this deployment's at this login).
    let login = json!({ "email": "ada.lovelace@example.com", "password": "Engine-Notes-1843" });
    let (status, body) = one.post("/auth/login", login, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = body["data"]["accessToken"].as_str().unwrap().to_owned();
    let me = ok(&one, Method::GET, "/auth/me", None, &access).await;
    assert_eq!(me["email"], "ada.lovelace@example.com");
    assert_eq!(
        me["username"], "adalovelace",
        "derived from the email, as at registration"
    );
    assert_eq!(me["displayName"], "Ada Lovelace");
    let account = stored(&mongo, "accounts", "64b000000000000000000b01").await;
    assert!(
        account
            .get_str("password")
            .unwrap()
            .contains("m=4096,t=1,p=1"),
        "rehashed at login: {account}"
    );
    assert_eq!(
        account.get_str("email"),
        Ok("Ada.Lovelace@Example.com"),
        "kept as stored"
    );
    let me_again = ok(&other, Method::GET, "/auth/me", None, &access).await;
    assert_eq!(
        me_again["email"], "ada.lovelace@example.com",
        "readable after the rehash"
    );

    // The NestJS session is listed with its location; its refresh tokens cannot be honoured,
    // and presenting one ends nothing.
    let sessions = ok(&one, Method::GET, "/sessions", None, &access).await;
    let listed = sessions.as_array().unwrap();
    let old = listed
        .iter()
        .find(|s| s["id"] == ADA_OLD_SESSION)
        .unwrap_or_else(|| panic!("the old session is listed: {sessions}"));
    assert_eq!(old["location"]["city"], "London", "{old}");
    let now = Utc::now().timestamp();
    // The NestJS version's own refresh token, and one in this service's shape for the old
    // session (which has no refresh-token hash to match).
    for (claims, secret) in [
        (
            json!({ "sub": ADA, "email": "Ada.Lovelace@Example.com", "sessionId": ADA_OLD_SESSION, "iat": now, "exp": now + 3600 }),
            NESTJS_REFRESH_SECRET,
        ),
        (
            json!({ "sub": ADA, "sid": ADA_OLD_SESSION, "type": "refresh", "jti": "", "iat": now, "exp": now + 3600 }),
            REFRESH_SECRET,
        ),
    ] {
        let token = signed(&claims, secret);
        let (status, body) = one
            .post("/auth/refresh", json!({ "refreshToken": token }), None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{claims}: {body}");
    }
    let sessions = ok(&one, Method::GET, "/sessions", None, &access).await;
    assert!(
        sessions
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == ADA_OLD_SESSION),
        "a refused old token is not treated as a stolen one"
    );

    // Portfolio: an item whose owner is a string and whose level is text, patched back.
    let skills = ok(&one, Method::GET, "/portfolio/skills", None, &access).await;
    let skill = serde_json::to_string(&skills).unwrap();
    assert!(skill.contains("Mathematics"), "{skills}");
    let patched = ok(
        &one,
        Method::PATCH,
        "/portfolio/skills/64b000000000000000000d02",
        Some(json!({ "name": "Analysis" })),
        &access,
    )
    .await;
    assert_eq!(patched["name"], "Analysis");
    let skill = stored(&mongo, "skills", "64b000000000000000000d02").await;
    assert_eq!(skill.get_str("level"), Ok("expert"), "{skill}");
    let project = ok(
        &one,
        Method::PATCH,
        "/portfolio/projects/64b000000000000000000d01",
        Some(json!({ "featured": false })),
        &access,
    )
    .await;
    assert_eq!(project["featured"], false);
    let project = stored(&mongo, "projects", "64b000000000000000000d01").await;
    assert_eq!(project.get("views"), Some(&Bson::Int32(42)), "{project}");
    assert!(project.contains_key("legacy"));

    // Settings: fields only the NestJS version knew survive a PATCH.
    let preferences = ok(
        &one,
        Method::PATCH,
        "/settings/preferences",
        Some(json!({ "theme": "light" })),
        &access,
    )
    .await;
    assert_eq!(preferences["theme"], "light");
    assert_eq!(preferences["compactMode"], true, "stored as 1");
    let raw = testkit::stored_documents(&mongo.uri(), DATABASE, "preferences", doc! {}).await;
    assert_eq!(raw.len(), 1);
    assert_eq!(raw[0].get("sidebarCollapsed"), Some(&Bson::Boolean(true)));
    ok(
        &one,
        Method::PATCH,
        "/portfolio/profile",
        Some(json!({ "headline": "Mathematician and writer" })),
        &access,
    )
    .await;
    let profile = stored(&mongo, "portfolioprofiles", "64b000000000000000000e01").await;
    assert!(profile.contains_key("seo"), "{profile}");
    assert_eq!(profile.get("showTestimonials"), Some(&Bson::Boolean(false)));

    // The public page, by the derived username.
    let (status, page) = other
        .call(Method::GET, "/public/portfolio/adalovelace", None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let page = serde_json::to_string(&page).unwrap();
    assert!(
        page.contains("Analytical Engine notes")
            && page.contains("Sketch of the Analytical Engine"),
        "{page}"
    );
    let (status, _) = other
        .call(
            Method::GET,
            "/public/portfolio/adalovelace/testimonials",
            None,
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a hidden section stays hidden"
    );

    // A user whose account has a string userId, a boolean stored as 0 and an unknown role.
    let (status, body) = other
        .post(
            "/auth/login",
            json!({ "email": "grace@example.com", "password": "Compiler-Notes-1952" }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["user"]["emailVerified"], false);
    assert_eq!(
        stored(&mongo, "users", GRACE).await.get_str("role"),
        Ok("moderator")
    );

    // One account per address, whatever its capitals.
    let (status, body) = other
        .post(
            "/auth/register",
            json!({ "name": "Ada Again", "email": "ADA.LOVELACE@example.com", "password": "Another-Pass-12" }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // An OAuth account has no password: the usual refusal.
    let (status, body) = one
        .post(
            "/auth/login",
            json!({ "email": "linus@example.com", "password": "Anything-At-All-1" }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // A reset link the NestJS version emailed (its raw token stored) no longer works.
    let (status, body) = one
        .post(
            "/auth/reset-password",
            json!({ "token": "raw-reset-token-the-old-version-emailed", "password": "Brand-New-Pass-1" }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // A logout on one instance ends the session on the other.
    let (status, body) = one.post("/auth/logout", json!({}), Some(&access)).await;
    assert!(status.is_success(), "{status} {body}");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (status, body) = other
        .call(Method::GET, "/auth/me", None, Some(&access))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}
