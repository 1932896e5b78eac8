//! The reference deployment, whole: nginx (with `deploy/nginx/console.conf`) in front of two
//! `console-api`, two `console-worker` and two `console-scheduler`, on one Redis, the MongoDB
//! stand-in, an S3-compatible bucket and an SMTP sink. Every request goes through nginx, from
//! client addresses of its own (127.0.0.x), so the per-client limits see each client.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Socket, next_named, send};
use testkit::{MongoStandIn, Nginx, RedisServer, RunningBinary, S3StandIn, SmtpSink};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

const PASSWORD: &str = "Analytical1";

/// The reference site, with the test's ports in place of its examples.
fn site(listen: u16, apis: [u16; 2]) -> String {
    let reference = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/nginx/console.conf"
    ))
    .unwrap();
    reference
        .replace("listen 8080;", &format!("listen 127.0.0.1:{listen};"))
        .replace("127.0.0.1:3001", &format!("127.0.0.1:{}", apis[0]))
        .replace("127.0.0.1:3002", &format!("127.0.0.1:{}", apis[1]))
}

/// A client of the deployment, from its own loopback address.
struct Visitor {
    http: reqwest::Client,
    base: String,
}

impl Visitor {
    fn from(last_octet: u8, nginx: &Nginx) -> Self {
        Self {
            http: reqwest::Client::builder()
                .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet)))
                .build()
                .unwrap(),
            base: format!("http://127.0.0.1:{}", nginx.port),
        }
    }

    /// Status, the instance that answered (nginx's `X-Upstream`) and the JSON body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, String, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let reply = request.send().await.unwrap();
        let upstream = upstream(reply.headers());
        (
            reply.status(),
            upstream,
            reply.json().await.unwrap_or(Value::Null),
        )
    }

    async fn api(&self, method: Method, path: &str, body: Option<Value>, token: &str) -> Value {
        let (status, _, body) = self
            .call(method, &format!("/api/v1{path}"), body, Some(token))
            .await;
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// `POST /api/v1/auth/login` with `body`.
    async fn login(&self, body: &Value) -> (StatusCode, String, Value) {
        self.call(Method::POST, "/api/v1/auth/login", Some(body.clone()), None)
            .await
    }

    /// Registers `email`; answers the access token.
    async fn register(&self, email: &str) -> String {
        let (status, _, body) = self
            .call(
                Method::POST,
                "/api/v1/auth/register",
                Some(json!({"name": "Visitor", "email": email, "password": PASSWORD})),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["data"]["accessToken"].as_str().unwrap().to_owned()
    }
}

fn upstream(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("x-upstream")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Engine.IO long-polling through nginx, as socket.io-client speaks it.
struct Polling<'a> {
    visitor: &'a Visitor,
    sid: String,
}

impl<'a> Polling<'a> {
    fn url(&self) -> String {
        format!(
            "{}/socket.io/?EIO=4&transport=polling&sid={}",
            self.visitor.base, self.sid
        )
    }

    /// A handshake and the Socket.IO connect; answers the session and the instance it lives on.
    async fn connect(visitor: &'a Visitor, token: &str) -> (Self, String) {
        let reply = visitor
            .http
            .get(format!(
                "{}/socket.io/?EIO=4&transport=polling",
                visitor.base
            ))
            .send()
            .await
            .unwrap();
        let instance = upstream(reply.headers());
        let open: Value =
            serde_json::from_str(reply.text().await.unwrap().trim_start_matches('0')).unwrap();
        let session = Self {
            visitor,
            sid: open["sid"].as_str().unwrap().to_owned(),
        };
        session
            .post(&format!("40{}", json!({ "token": token })))
            .await;
        let connected = session.until(|packet| packet.starts_with("40")).await;
        assert!(connected.contains("sid"), "{connected}");
        (session, instance)
    }

    async fn post(&self, packet: &str) {
        let reply = self
            .visitor
            .http
            .post(self.url())
            .body(packet.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::OK, "{packet}");
    }

    async fn emit(&self, event: &str, data: Value) {
        self.post(&format!("42{}", json!([event, data]))).await;
    }

    /// Polls until a packet `wanted` takes; answers it.
    async fn until(&self, wanted: impl Fn(&str) -> bool) -> String {
        for _ in 0..20 {
            let reply = self.visitor.http.get(self.url()).send().await.unwrap();
            assert_eq!(
                reply.status(),
                StatusCode::OK,
                "the session is where it began"
            );
            let body = reply.text().await.unwrap();
            if let Some(found) = body.split('\u{1e}').find(|packet| wanted(packet)) {
                return found.to_owned();
            }
        }
        panic!("no such packet");
    }
}

/// A chat WebSocket through nginx; answers it and the instance it reached.
async fn chat_socket(nginx: &Nginx, token: &str) -> (Socket, String) {
    let request = format!("ws://127.0.0.1:{}/ws/chat?token={token}", nginx.port)
        .into_client_request()
        .unwrap();
    let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    let instance = response
        .headers()
        .get("x-upstream")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (socket, instance)
}

/// Emails to `to` whose subject contains `subject`.
fn delivered(mail: &SmtpSink, to: &str, subject: &str) -> usize {
    mail.received()
        .iter()
        .filter(|m| m.to.iter().any(|t| t == to) && m.subject().contains(subject))
        .count()
}

/// Waits for every registration email of `addresses`, then a little longer for duplicates.
async fn each_registration_email_once(mail: &SmtpSink, addresses: &[String]) {
    for address in addresses {
        mail.wait_for(address, "Welcome").await;
        mail.wait_for(address, "Verify your email").await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for address in addresses {
        for subject in ["Welcome", "Verify your email"] {
            assert_eq!(
                delivered(mail, address, subject),
                1,
                "{subject} to {address}"
            );
        }
    }
}

/// Objects in `bucket` (moto's ListObjectsV2, unsigned).
async fn objects(s3: &S3StandIn, bucket: &str) -> usize {
    let listing = reqwest::get(format!("{}/{bucket}?list-type=2", s3.endpoint()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    listing.matches("<Key>").count()
}

#[tokio::test]
async fn a_deployment_behind_nginx_behaves_as_one() {
    testkit::needs!("the built binaries, nginx, redis-server, the MongoDB and S3 stand-ins");
    let (mail, mongo, redis, s3) = (
        SmtpSink::start().await,
        MongoStandIn::start().await,
        RedisServer::start().await,
        S3StandIn::start().await,
    );
    let bucket = s3.create_bucket().await;
    let mut env = support::deployment_env(&mail, &mongo, "cluster", &redis);
    env.extend([
        ("JOB_VISIBILITY_TIMEOUT_MS", "2000".to_owned()),
        ("TRUSTED_PROXY_HEADER", "X-Forwarded-For".to_owned()),
        ("TRUSTED_PROXIES", "127.0.0.1".to_owned()),
        ("THROTTLE_AUTH_LIMIT", "5".to_owned()),
        ("SESSION_CHECK_TTL", "60s".to_owned()),
        ("PUBLIC_CACHE_TTL", "60s".to_owned()),
        // The schedulers' sample job ticks every second; the others stay out of the way.
        ("SCHEDULER_SAMPLE_JOB_CRON", "* * * * * *".to_owned()),
        ("SCHEDULER_SESSION_CLEANUP_ENABLED", "false".to_owned()),
        (
            "SCHEDULER_EMAIL_QUEUE_MONITORING_ENABLED",
            "false".to_owned(),
        ),
        (
            "SCHEDULER_ACCOUNT_DELETION_TOKEN_CLEANUP_ENABLED",
            "false".to_owned(),
        ),
        (
            "SCHEDULER_JOB_HISTORY_RETENTION_ENABLED",
            "false".to_owned(),
        ),
    ]);
    env.extend(support::bucket_env(&s3, &bucket));
    let dirs: Vec<_> = (0..6).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut apis: Vec<_> = (0..2)
        .map(|n| RunningBinary::start("console-api", dirs[n].path(), &env))
        .collect();
    let mut workers: Vec<_> = (2..4)
        .map(|n| RunningBinary::start("console-worker", dirs[n].path(), &env))
        .collect();
    let mut schedulers: Vec<_> = (4..6)
        .map(|n| RunningBinary::start("console-scheduler", dirs[n].path(), &env))
        .collect();
    for api in &mut apis {
        api.wait_healthy().await;
    }
    let port = testkit::free_port();
    let nginx = Nginx::start(port, &site(port, [apis[0].port, apis[1].port])).await;

    // Registrations, each from its own client: every email sent exactly once.
    let addresses: Vec<String> = (0..6).map(|n| format!("user{n}@example.com")).collect();
    let mut tokens = Vec::new();
    for (n, address) in addresses.iter().enumerate() {
        tokens.push(Visitor::from(10 + n as u8, &nginx).register(address).await);
    }
    each_registration_email_once(&mail, &addresses).await;

    // The auth limit is one budget per client whichever instance answers, and nginx's
    // X-Forwarded-For tells the clients apart.
    let wrong = json!({"email": "user0@example.com", "password": "Wrong-password1"});
    let guesser = Visitor::from(50, &nginx);
    let mut answered_by = std::collections::BTreeSet::new();
    for _ in 0..5 {
        let (status, instance, body) = guesser.login(&wrong).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        answered_by.insert(instance);
    }
    assert_eq!(
        answered_by.len(),
        2,
        "both instances answered: {answered_by:?}"
    );
    let (status, _, _) = guesser.login(&wrong).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _, _) = Visitor::from(51, &nginx).login(&wrong).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "another client has its own budget"
    );

    // A file uploaded through one instance is served by both.
    let owner = Visitor::from(10, &nginx);
    let path = support::upload_pdf(&owner.http, &owner.base, &tokens[0]).await;
    let mut served_by = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let served = owner
            .http
            .get(format!("{}{path}", owner.base))
            .send()
            .await
            .unwrap();
        served_by.insert(upstream(served.headers()));
        assert_eq!(served.status(), StatusCode::OK);
        assert_eq!(served.bytes().await.unwrap().as_ref(), support::PDF);
    }
    assert_eq!(served_by.len(), 2, "{served_by:?}");
    assert_eq!(objects(&s3, &bucket).await, 1);

    // A portfolio made private is gone from every instance at once.
    owner
        .api(
            Method::PATCH,
            "/portfolio/profile",
            Some(json!({"isPublic": true})),
            &tokens[0],
        )
        .await;
    let me = owner.api(Method::GET, "/auth/me", None, &tokens[0]).await;
    let page = format!(
        "/api/v1/public/portfolio/{}",
        me["data"]["username"].as_str().unwrap()
    );
    for _ in 0..4 {
        assert_eq!(
            owner.call(Method::GET, &page, None, None).await.0,
            StatusCode::OK
        );
    }
    owner
        .api(
            Method::PATCH,
            "/portfolio/profile",
            Some(json!({"isPublic": false})),
            &tokens[0],
        )
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..4 {
        assert_eq!(
            owner.call(Method::GET, &page, None, None).await.0,
            StatusCode::NOT_FOUND
        );
    }

    // Chat over WebSocket: two users on different instances hear each other.
    let (mut first, first_at) = chat_socket(&nginx, &tokens[1]).await;
    next_named(&mut first, "connected").await.unwrap();
    let (mut second, second_at) = chat_socket(&nginx, &tokens[2]).await;
    next_named(&mut second, "connected").await.unwrap();
    assert_ne!(first_at, second_at, "nginx spread the sockets");
    send(
        &mut first,
        "message",
        json!({"room": "general", "content": "over ws"}),
    )
    .await;
    assert_eq!(
        next_named(&mut second, "message").await.unwrap()["content"],
        "over ws"
    );

    // Chat over Socket.IO long-polling: each session stays on its instance (nginx routes by
    // client address), and sessions on the two instances share the room.
    let (ada_visitor, ada_token) = (Visitor::from(60, &nginx), &tokens[3]);
    let (ada, ada_at) = Polling::connect(&ada_visitor, ada_token).await;
    let mut others = Vec::new();
    let bob = loop {
        let visitor = Visitor::from(61 + others.len() as u8, &nginx);
        let (session, at) = Polling::connect(&visitor, &tokens[4]).await;
        if at != ada_at {
            drop(session);
            break (visitor, at);
        }
        assert!(others.len() < 30, "every address reached {ada_at}");
        others.push(visitor);
    };
    let (bob, bob_at) = (Polling::connect(&bob.0, &tokens[4]).await.0, bob.1);
    assert_ne!(ada_at, bob_at);
    bob.emit("joinRoom", json!({"room": "team"})).await;
    bob.until(|p| p.contains("userJoined") && p.contains("team"))
        .await;
    ada.emit("joinRoom", json!({"room": "team"})).await;
    ada.until(|p| p.contains("userJoined") && p.contains("team"))
        .await;
    ada.emit(
        "message",
        json!({"room": "team", "content": "over polling"}),
    )
    .await;
    bob.until(|p| p.contains("over polling")).await;

    // A revoked session is refused by every instance at once.
    owner
        .api(Method::POST, "/auth/logout", Some(json!({})), &tokens[5])
        .await;
    for _ in 0..4 {
        let (status, _, _) = owner
            .call(Method::GET, "/api/v1/auth/me", None, Some(&tokens[5]))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    // A worker killed while emails are queued: the other delivers them, those the killed one
    // had claimed included (after JOB_VISIBILITY_TIMEOUT_MS), and what comes after.
    let later: Vec<String> = (0..6).map(|n| format!("later{n}@example.com")).collect();
    for (n, address) in later.iter().enumerate() {
        if n == 3 {
            workers[0].child.kill().unwrap();
        }
        Visitor::from(100 + n as u8, &nginx).register(address).await;
    }
    for address in &later {
        mail.wait_for(address, "Welcome").await;
        mail.wait_for(address, "Verify your email").await;
    }

    // Account deletion: the user's documents, sessions and files are gone from every store.
    owner
        .api(
            Method::POST,
            "/users/account/request-deletion",
            Some(json!({})),
            &tokens[0],
        )
        .await;
    let confirm = mail
        .wait_for("user0@example.com", "Confirm the deletion")
        .await;
    owner
        .api(
            Method::DELETE,
            "/users/account",
            Some(json!({"token": confirm.token().unwrap()})),
            &tokens[0],
        )
        .await;
    mail.wait_for("user0@example.com", "Your account was deleted")
        .await;
    let owner_id = me["data"]["id"].as_str().unwrap();
    let object_id = mongodb::bson::oid::ObjectId::parse_str(owner_id).unwrap();
    for (collection, filter) in [
        ("users", mongodb::bson::doc! {"_id": object_id}),
        (
            "accounts",
            mongodb::bson::doc! {"email": "user0@example.com"},
        ),
        (
            "sessions",
            mongodb::bson::doc! {"userId": {"$in": [object_id]}},
        ),
    ] {
        let left = testkit::stored_documents(&mongo.uri(), "cluster", collection, filter).await;
        assert!(left.is_empty(), "{collection}: {left:?}");
    }
    assert_eq!(objects(&s3, &bucket).await, 0, "the uploaded file is gone");

    // The schedulers ran each tick of the sample job once between them.
    for scheduler in &mut schedulers {
        assert!(scheduler.terminate().await.success());
    }
    let runs = support::each_tick_ran_once(redis.port(), "sample-job");
    let runners: std::collections::BTreeSet<&str> =
        runs.iter().filter_map(|r| r["runner"].as_str()).collect();
    eprintln!("sample-job ticks: {}, run by {runners:?}", runs.len());
    // Clients gone first: a process stopping waits for its open connections.
    drop((first, second, ada, bob, others, nginx));
    for api in &mut apis {
        assert!(api.terminate().await.success());
    }
    assert!(workers[1].terminate().await.success());
}
