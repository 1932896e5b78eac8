//! `spawn_app()`: the whole API in-process on port 0, with a fresh data directory and a real
//! SMTP sink, plus one helper per kind of request.

use std::collections::HashMap;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use testkit::{SinkOptions, SinkTls, SmtpSink};

pub const PASSWORD: &str = "Analytical1";

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub mail: SmtpSink,
    _data: tempfile::TempDir,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    pub fn fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(|f| f["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    pub fn is_problem(&self) -> bool {
        self.headers
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"))
            && self.body["success"] == json!(false)
            && self.body["statusCode"] == json!(self.status.as_u16())
            && self.body["requestId"].as_str()
                == self
                    .headers
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    spawn_app_with_mail(SinkOptions::default(), overrides).await
}

/// The app sending to a sink started with `options`; with TLS, `SMTP_TLS_CA_FILE` names the
/// sink's CA.
pub async fn spawn_app_with_mail(options: SinkOptions, overrides: &[(&str, &str)]) -> TestApp {
    let mail = SmtpSink::start_with(options).await;
    let data = tempfile::tempdir().expect("temp dir");
    let mut env: HashMap<String, String> = [
        ("PORT", "0".to_owned()),
        ("DATA_DIR", data.path().display().to_string()),
        ("LOG_LEVEL", "warn".to_owned()),
        ("ARGON2_MEMORY_COST", "1024".to_owned()),
        ("ARGON2_TIME_COST", "1".to_owned()),
        ("ARGON2_PARALLELISM", "1".to_owned()),
        ("THROTTLE_LIMIT", "10000".to_owned()),
        ("THROTTLE_AUTH_LIMIT", "10000".to_owned()),
        ("SMTP_HOST", "127.0.0.1".to_owned()),
        ("SMTP_PORT", mail.port.to_string()),
        ("FRONTEND_URL", "https://console.test".to_owned()),
        ("EMAIL_QUEUE_BACKOFF_MS", "100".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if options.tls != SinkTls::None {
        let ca = data.path().join("smtp-ca.pem");
        std::fs::write(&ca, mail.ca_pem()).expect("CA file written");
        env.insert("SMTP_TLS_CA_FILE".to_owned(), ca.display().to_string());
    }
    for (k, v) in overrides {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    let settings = app::Settings::from_lookup(&move |name| env.get(name).cloned())
        .expect("valid test settings");
    let api = app::Api::build(settings).await.expect("app builds");
    let base = format!("http://127.0.0.1:{}", api.port());
    tokio::spawn(api.run_until_stopped(std::future::pending()));
    TestApp {
        base,
        http: reqwest::Client::new(),
        mail,
        _data: data,
    }
}

impl TestApp {
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body read");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }

    /// The app's `DATA_DIR`, to look at what it stored.
    pub fn data_dir(&self) -> &std::path::Path {
        self._data.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> Reply {
        let mut request = self.http.post(self.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.send(self.http.delete(self.url(path)).bearer_auth(token))
            .await
    }

    pub async fn patch(&self, path: &str, body: Value, token: &str) -> Reply {
        self.send(
            self.http
                .patch(self.url(path))
                .json(&body)
                .bearer_auth(token),
        )
        .await
    }

    /// Registers `email` and returns the `data` of the answer (tokens and user).
    pub async fn register(&self, email: &str) -> Value {
        let reply = self
            .post(
                "/auth/register",
                json!({"name": "Ada Lovelace", "email": email, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        reply.body["data"].clone()
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/auth/login",
            json!({"email": email, "password": password}),
            None,
        )
        .await
    }

    pub async fn login_ok(&self, email: &str) -> Value {
        let reply = self.login(email, PASSWORD).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body["data"].clone()
    }

    /// Exchanges the refresh token in `data` (a register/login/refresh answer's `data`).
    pub async fn refresh(&self, data: &Value) -> Reply {
        self.post(
            "/auth/refresh",
            json!({"refreshToken": token(data, "refreshToken")}),
            None,
        )
        .await
    }

    pub async fn me_status(&self, token: &str) -> StatusCode {
        self.get("/auth/me", Some(token)).await.status
    }
}

pub fn token(data: &Value, which: &str) -> String {
    data[which].as_str().expect("token in data").to_owned()
}
