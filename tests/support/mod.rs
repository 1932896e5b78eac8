//! What the end-to-end tests share: the environment a real `console-api` runs with (its mail
//! going to the test's SMTP sink, cheap argon2) and a small HTTP client for it.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

use reqwest::{Method, StatusCode};
use serde_json::Value;
use testkit::{MongoStandIn, RedisServer, RunningBinary, S3StandIn, SmtpSink};

/// The environment of a `console-api` whose emails reach `mail`.
pub fn api_env(mail: &SmtpSink) -> Vec<(&'static str, String)> {
    vec![
        ("SMTP_HOST", "127.0.0.1".to_owned()),
        ("SMTP_PORT", mail.port.to_string()),
        ("FRONTEND_URL", "https://console.test".to_owned()),
        ("ARGON2_MEMORY_COST", "4096".to_owned()),
        ("ARGON2_TIME_COST", "1".to_owned()),
        ("ARGON2_PARALLELISM", "1".to_owned()),
    ]
}

/// The environment every process of a deployment on `mongo` (database `database`) and `redis`
/// shares: its stores, the payload key and the JWT secrets.
pub fn deployment_env(
    mail: &SmtpSink,
    mongo: &MongoStandIn,
    database: &str,
    redis: &RedisServer,
) -> Vec<(&'static str, String)> {
    let mut env = api_env(mail);
    env.extend([
        ("MONGODB_URI", mongo.uri()),
        ("MONGODB_DATABASE", database.to_owned()),
        ("REDIS_URL", redis.url()),
        (
            "JOB_PAYLOAD_KEY",
            "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0".to_owned(),
        ),
        (
            "JWT_ACCESS_SECRET",
            "deployment-access-secret-0123456789abcdef".to_owned(),
        ),
        (
            "JWT_REFRESH_SECRET",
            "deployment-refresh-secret-0123456789abcde".to_owned(),
        ),
    ]);
    env
}

/// Registers `email` (name Ada Lovelace, password `Analytical1`); answers its access token.
pub async fn register(client: &Client, email: &str) -> String {
    let (status, body) = client
        .post(
            "/auth/register",
            serde_json::json!({"name": "Ada Lovelace", "email": email, "password": "Analytical1"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["data"]["accessToken"].as_str().unwrap().to_owned()
}

/// Registers `email` and verifies it with the link mailed to `mail`; its registration's emails
/// are delivered when this returns.
pub async fn register_verified(client: &Client, mail: &SmtpSink, email: &str) {
    register(client, email).await;
    mail.wait_for(email, "Welcome").await;
    let verify = mail.wait_for(email, "Verify").await;
    let token = serde_json::json!({"token": verify.token().unwrap()});
    let (status, body) = client.post("/auth/verify-email", token, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Signs `email` in (password of [`register`]); answers the access token.
pub async fn sign_in(client: &Client, email: &str) -> String {
    let (status, body) = client
        .post(
            "/auth/login",
            serde_json::json!({"email": email, "password": "Analytical1"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]["accessToken"].as_str().unwrap().to_owned()
}

/// One answer: status, `ETag` (when sent) and the JSON body (`null` when there is none).
pub struct Reply {
    pub status: StatusCode,
    pub etag: Option<String>,
    pub body: Value,
}

pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    #[must_use]
    pub fn for_binary(api: &RunningBinary) -> Self {
        Self {
            base: format!("http://127.0.0.1:{}", api.port),
            http: reqwest::Client::new(),
        }
    }

    /// A request to `/api/v1{path}`.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
        if_none_match: Option<&str>,
    ) -> Reply {
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(etag) = if_none_match {
            request = request.header("If-None-Match", etag);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let etag = response
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_owned());
        Reply {
            status,
            etag,
            body: response.json().await.unwrap_or(Value::Null),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let reply = self.request(method, path, body, token, None).await;
        (reply.status, reply.body)
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body), token).await
    }
}

/// The environment that keeps uploads in `bucket` of `s3`.
pub fn bucket_env(s3: &S3StandIn, bucket: &str) -> Vec<(&'static str, String)> {
    vec![
        ("S3_BUCKET", bucket.to_owned()),
        ("S3_ENDPOINT", s3.endpoint()),
        ("S3_FORCE_PATH_STYLE", "true".to_owned()),
        ("S3_ACCESS_KEY_ID", "testing".to_owned()),
        ("S3_SECRET_ACCESS_KEY", "testing".to_owned()),
    ]
}

/// A small valid PDF.
pub const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";

/// Uploads [`PDF`] with `http` to `POST {base}/api/v1/upload/document`; answers the path of
/// the URL it was given (`/uploads/…`).
pub async fn upload_pdf(http: &reqwest::Client, base: &str, token: &str) -> String {
    let body = [
        &b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cv.pdf\"\r\nContent-Type: application/pdf\r\n\r\n"[..],
        PDF,
        b"\r\n--b--\r\n",
    ]
    .concat();
    let uploaded: Value = http
        .post(format!("{base}/api/v1/upload/document"))
        .bearer_auth(token)
        .header("Content-Type", "multipart/form-data; boundary=b")
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = uploaded["data"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{uploaded}"));
    url[url.find("/uploads/").unwrap()..].to_owned()
}

/// The runs of the cron job `job` recorded in the Redis on `port`; fails when a tick ran twice
/// or the job ran fewer than twice.
pub fn each_tick_ran_once(port: u16, job: &str) -> Vec<Value> {
    let output = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &port.to_string(),
            "LRANGE",
            &format!("{{console}}:cron:runs:{job}"),
            "0",
            "-1",
        ])
        .output()
        .unwrap();
    let runs: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let mut ticks: Vec<i64> = runs.iter().map(|r| r["tick"].as_i64().unwrap()).collect();
    assert!(ticks.len() >= 2, "the job ran on its schedule: {runs:?}");
    ticks.sort_unstable();
    ticks.dedup();
    assert_eq!(ticks.len(), runs.len(), "no tick ran twice: {runs:?}");
    runs
}

/// A chat WebSocket.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn send(socket: &mut Socket, event: &str, data: Value) {
    futures_util::SinkExt::send(
        socket,
        tokio_tungstenite::tungstenite::Message::text(
            serde_json::json!({ "event": event, "data": data }).to_string(),
        ),
    )
    .await
    .unwrap();
}

/// The data of the next event named `name` (others skipped); `None` when the socket closes.
pub async fn next_named(socket: &mut Socket, name: &str) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            futures_util::StreamExt::next(socket),
        )
        .await
        .unwrap_or_else(|_| panic!("no {name} event"));
        match frame {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
                let event: Value = serde_json::from_str(&text).unwrap();
                if event["event"] == name {
                    return Some(event["data"].clone());
                }
            }
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_)) | Err(_)) | None => {
                return None;
            }
            Some(Ok(_)) => {}
        }
    }
}
