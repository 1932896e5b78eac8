//! What the end-to-end tests share: the environment a real `console-api` runs with (its mail
//! going to the test's SMTP sink, cheap argon2) and a small HTTP client for it.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

use reqwest::{Method, StatusCode};
use serde_json::Value;
use testkit::{RunningBinary, SmtpSink};

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
