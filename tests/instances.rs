//! Two real `console-api` processes on one MongoDB stand-in and one `redis-server` behave as
//! one: users on different instances share rooms, history and presence; a socket whose
//! session is revoked on the other instance closes; the rate limits are one budget.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Client, Socket, next_named, send};
use testkit::{MongoStandIn, RedisServer, RunningBinary, S3StandIn, SmtpSink};
use tokio_tungstenite::connect_async;

fn instance_env(
    mail: &SmtpSink,
    mongo: &MongoStandIn,
    redis: &RedisServer,
) -> Vec<(&'static str, String)> {
    let mut env = support::deployment_env(mail, mongo, "chat", redis);
    env.extend([
        ("SESSION_CHECK_TTL", "1s".to_owned()),
        ("WS_SESSION_CHECK_INTERVAL", "1s".to_owned()),
    ]);
    env
}

async fn access_token(client: &Client, email: &str) -> String {
    let (status, body) = client
        .post(
            "/auth/register",
            json!({"name": email.split('@').next().unwrap(), "email": email, "password": "Analytical1"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["data"]["accessToken"].as_str().unwrap().to_owned()
}

async fn socket(api: &RunningBinary, token: &str) -> Socket {
    let (socket, _) = connect_async(format!("ws://127.0.0.1:{}/ws/chat?token={token}", api.port))
        .await
        .expect("the socket opens");
    socket
}

/// Waits until `socket` hears that `name` joined `room` (other joins skipped).
async fn joined(socket: &mut Socket, room: &str, name: &str) {
    loop {
        let joined = next_named(socket, "userJoined").await.unwrap();
        if (joined["room"].as_str(), joined["displayName"].as_str()) == (Some(room), Some(name)) {
            return;
        }
    }
}

/// What the instances share: an SMTP sink, MongoDB and Redis.
async fn services() -> (SmtpSink, MongoStandIn, RedisServer) {
    (
        SmtpSink::start().await,
        MongoStandIn::start().await,
        RedisServer::start().await,
    )
}

/// Two instances of `env`, healthy.
async fn two_instances(
    env: &[(&'static str, String)],
) -> (RunningBinary, RunningBinary, [tempfile::TempDir; 2]) {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut one = RunningBinary::start("console-api", dirs[0].path(), env);
    let mut two = RunningBinary::start("console-api", dirs[1].path(), env);
    one.wait_healthy().await;
    two.wait_healthy().await;
    (one, two, dirs)
}

#[tokio::test]
async fn the_auth_limit_is_one_budget_whichever_instance_is_hit_and_fails_closed_without_redis() {
    testkit::needs!("the built binaries and redis-server");
    let (mail, mongo, mut redis) = services().await;
    let mut env = instance_env(&mail, &mongo, &redis);
    env.push(("THROTTLE_AUTH_LIMIT", "4".to_owned()));
    let (one, two, _dirs) = two_instances(&env).await;
    let (one, two) = (Client::for_binary(&one), Client::for_binary(&two));
    let token = access_token(&one, "ada@example.com").await;
    let wrong = json!({"email": "ada@example.com", "password": "Wrong-password1"});
    for client in [&two, &one, &two] {
        let (status, body) = client.post("/auth/login", wrong.clone(), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    for client in [&one, &two] {
        let (status, body) = client.post("/auth/login", wrong.clone(), None).await;
        assert_eq!(
            status,
            StatusCode::TOO_MANY_REQUESTS,
            "the fifth sign-in request, on either instance: {body}"
        );
    }

    redis.kill();
    let (status, body) = one.post("/auth/login", wrong.clone(), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "NOT_READY");
    let (status, body) = two
        .call(reqwest::Method::GET, "/auth/me", None, Some(&token))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the general limit counts in the process meanwhile: {body}"
    );
}

/// How long `answer` took to become `wanted`, asked every 20 ms; fails after `limit`.
async fn time_until<F, Fut>(limit: Duration, wanted: StatusCode, mut answer: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StatusCode>,
{
    let started = std::time::Instant::now();
    loop {
        let status = answer().await;
        if status == wanted {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "still {status} after {limit:?}, not {wanted}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_logout_or_a_hidden_portfolio_on_one_instance_is_forgotten_by_the_other_at_once() {
    testkit::needs!("the built binaries and redis-server");
    let (mail, mongo, redis) = services().await;
    // Caches that would hold the stale answers for a long while, had nobody told them.
    let mut env = instance_env(&mail, &mongo, &redis);
    env.retain(|(name, _)| *name != "SESSION_CHECK_TTL");
    env.extend([
        ("SESSION_CHECK_TTL", "60s".to_owned()),
        ("PUBLIC_CACHE_TTL", "60s".to_owned()),
    ]);
    let (one, two, _dirs) = two_instances(&env).await;
    let (one, two) = (Client::for_binary(&one), Client::for_binary(&two));
    let token = access_token(&one, "ada@example.com").await;
    let (status, _) = one
        .call(
            reqwest::Method::PATCH,
            "/portfolio/profile",
            Some(json!({"isPublic": true})),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, me) = two
        .call(reqwest::Method::GET, "/auth/me", None, Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let page = format!(
        "/public/portfolio/{}",
        me["data"]["username"].as_str().unwrap()
    );
    let public = || async {
        two.request(reqwest::Method::GET, &page, None, None, None)
            .await
    };
    let first = public().await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let again = public().await;
    assert_eq!(again.etag, first.etag, "the same bytes, the same tag");
    let from_one = one
        .request(reqwest::Method::GET, &page, None, None, None)
        .await;
    assert_eq!(
        from_one.etag, first.etag,
        "the tag is the bytes', not the instance's"
    );

    let (status, _) = one
        .call(
            reqwest::Method::PATCH,
            "/portfolio/profile",
            Some(json!({"isPublic": false})),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let hidden = time_until(Duration::from_secs(5), StatusCode::NOT_FOUND, || async {
        two.request(
            reqwest::Method::GET,
            &page,
            None,
            None,
            first.etag.as_deref(),
        )
        .await
        .status
    })
    .await;

    let (status, _) = one.post("/auth/logout", json!({}), Some(&token)).await;
    assert!(status.is_success());
    let refused = time_until(Duration::from_secs(5), StatusCode::UNAUTHORIZED, || async {
        two.call(reqwest::Method::GET, "/auth/me", None, Some(&token))
            .await
            .0
    })
    .await;
    eprintln!("on the other instance: hidden after {hidden:?}, signed out after {refused:?}");
}

#[tokio::test]
async fn a_file_uploaded_through_one_instance_is_served_by_the_other_from_the_bucket() {
    testkit::needs!("the built binaries, redis-server and the S3 stand-in (moto)");
    let ((mail, mongo, redis), s3) = (services().await, S3StandIn::start().await);
    let mut env = instance_env(&mail, &mongo, &redis);
    env.extend([("S3_PREFIX", "uploads".to_owned())]);
    env.extend(support::bucket_env(&s3, &s3.create_bucket().await));
    let (one, two, _dirs) = two_instances(&env).await;
    let token = access_token(&Client::for_binary(&one), "ada@example.com").await;
    let http = reqwest::Client::new();
    let path = support::upload_pdf(&http, &format!("http://127.0.0.1:{}", one.port), &token).await;
    for api in [&two, &one] {
        let served = http
            .get(format!("http://127.0.0.1:{}{path}", api.port))
            .send()
            .await
            .unwrap();
        assert_eq!(
            served.status(),
            StatusCode::OK,
            "{path} on port {}",
            api.port
        );
        assert_eq!(served.bytes().await.unwrap().as_ref(), support::PDF);
    }
    let ready: Value = http
        .get(format!("http://127.0.0.1:{}/api/v1/health/ready", two.port))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        ready.to_string().contains("files"),
        "the bucket is probed: {ready}"
    );
}

#[tokio::test]
async fn chat_sockets_per_user_and_address_and_messages_are_counted_over_both_instances() {
    testkit::needs!("the built binaries and redis-server");
    let (mail, mongo, redis) = services().await;
    let mut env = instance_env(&mail, &mongo, &redis);
    env.extend([
        ("WS_MAX_CONNECTIONS_PER_USER", "2".to_owned()),
        ("WS_MAX_CONNECTIONS_PER_IP", "3".to_owned()),
        ("WS_RATE_LIMIT_PER_MINUTE", "4".to_owned()),
    ]);
    let (one, two, _dirs) = two_instances(&env).await;
    let ada = access_token(&Client::for_binary(&one), "ada@example.com").await;
    let mut on_one = socket(&one, &ada).await;
    next_named(&mut on_one, "connected").await.unwrap();
    let mut on_two = socket(&two, &ada).await;
    next_named(&mut on_two, "connected").await.unwrap();
    let third = connect_async(format!("ws://127.0.0.1:{}/ws/chat?token={ada}", one.port)).await;
    assert!(
        matches!(&third, Err(tokio_tungstenite::tungstenite::Error::Http(answer)) if answer.status() == StatusCode::TOO_MANY_REQUESTS),
        "a third socket, on either instance: {third:?}"
    );
    // The address's third socket (another user's) is taken; a fourth is refused on either.
    let bob = access_token(&Client::for_binary(&two), "bob@example.com").await;
    let mut bobs = socket(&two, &bob).await;
    next_named(&mut bobs, "connected").await.unwrap();
    let carl = access_token(&Client::for_binary(&one), "carl@example.com").await;
    let fourth = connect_async(format!("ws://127.0.0.1:{}/ws/chat?token={carl}", one.port)).await;
    assert!(
        matches!(&fourth, Err(tokio_tungstenite::tungstenite::Error::Http(answer)) if answer.status() == StatusCode::TOO_MANY_REQUESTS),
        "a fourth socket from the address: {fourth:?}"
    );
    drop(bobs);
    for _ in 0..2 {
        for socket in [&mut on_one, &mut on_two] {
            send(
                socket,
                "message",
                json!({ "room": "general", "content": "hi" }),
            )
            .await;
        }
    }
    send(
        &mut on_one,
        "message",
        json!({ "room": "general", "content": "fifth" }),
    )
    .await;
    let refused = next_named(&mut on_one, "error").await.unwrap();
    assert_eq!(refused["code"], "TOO_MANY_REQUESTS", "{refused}");
}

#[tokio::test]
async fn users_on_two_instances_share_rooms_history_and_presence() {
    testkit::needs!("the built binaries and redis-server");
    let (mail, mongo, redis) = services().await;
    let env = instance_env(&mail, &mongo, &redis);
    let (one, two, _dirs) = two_instances(&env).await;
    let ada = access_token(&Client::for_binary(&one), "ada@example.com").await;
    let bob = access_token(&Client::for_binary(&two), "bob@example.com").await;

    let mut adas = socket(&one, &ada).await;
    next_named(&mut adas, "connected").await.unwrap();
    let mut bobs = socket(&two, &bob).await;
    next_named(&mut bobs, "connected").await.unwrap();
    let online = next_named(&mut adas, "presence").await.unwrap();
    assert_eq!(
        (online["displayName"].as_str(), online["status"].as_str()),
        (Some("bob"), Some("online"))
    );

    // Each join is heard before the next step: Ada's own, so that she hears Bob's; Bob's, so
    // that his instance has him in the room when her message comes.
    send(&mut adas, "joinRoom", json!({ "room": "team" })).await;
    joined(&mut adas, "team", "ada").await;
    send(&mut bobs, "joinRoom", json!({ "room": "team" })).await;
    joined(&mut adas, "team", "bob").await;
    send(
        &mut adas,
        "message",
        json!({ "room": "team", "content": "across instances" }),
    )
    .await;
    let received = next_named(&mut bobs, "message").await.unwrap();
    assert_eq!(received["content"], "across instances");
    assert_eq!(received["displayName"], "ada");

    send(&mut bobs, "history", json!({ "room": "team" })).await;
    let history = next_named(&mut bobs, "history").await.unwrap();
    assert_eq!(
        history["messages"][0]["content"], "across instances",
        "kept in Redis"
    );

    // Bob signs out on the other instance: his socket there closes, and ada sees him offline.
    let (status, _) = Client::for_binary(&one)
        .post("/auth/logout", json!({}), Some(&bob))
        .await;
    assert!(status.is_success());
    assert_eq!(
        next_named(&mut bobs, "never").await,
        None,
        "bob's socket closed"
    );
    let offline = next_named(&mut adas, "presence").await.unwrap();
    assert_eq!(offline["status"], "offline");
}
