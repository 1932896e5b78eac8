//! `/api/v1/health*`: liveness, readiness, and Redis.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use async_trait::async_trait;
use serde::Serialize;
use utoipa::ToSchema;

use crate::envelope::{self, Envelope};
use crate::problem::{ApiError, ErrorCode, FieldError, Problem};

/// A dependency whose health decides readiness.
#[async_trait]
pub trait ReadinessProbe: Send + Sync {
    fn name(&self) -> &'static str;
    /// # Errors
    /// Why the dependency is not usable.
    async fn check(&self) -> Result<(), String>;
}

/// A server the process depends on (Redis, the database), as the health and admin endpoints
/// report it.
#[async_trait]
pub trait ServerFacts: Send + Sync {
    /// A few facts from the server: version, memory, connections, operations.
    ///
    /// # Errors
    /// Why the server cannot be reached, or would not tell.
    async fn facts(&self) -> Result<Vec<(String, String)>, String>;
}

/// What readiness asks, and since when the process runs.
pub struct Health {
    pub probes: Vec<Arc<dyn ReadinessProbe>>,
    /// Longest a probe may take before its dependency counts as down (shorter than a load
    /// balancer's probe, so the balancer hears "not ready" rather than nothing).
    pub probe_timeout: Duration,
    pub started: Instant,
    pub mode: &'static str,
    /// Redis, when the deployment uses it.
    pub redis: Option<Arc<dyn ServerFacts>>,
    /// Where accounts live: MongoDB or the embedded file.
    pub database: Arc<dyn ServerFacts>,
}

/// What the public Redis health shows of `INFO`; the admin metrics show more.
const PUBLIC_REDIS_FACTS: [&str; 6] = [
    "redis_version",
    "uptime_in_seconds",
    "connected_clients",
    "used_memory",
    "maxmemory",
    "maxmemory_policy",
];

/// Redis's state.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedisHealth {
    /// `up`, or `not_configured` (the embedded default runs without Redis).
    #[schema(example = "up")]
    pub status: &'static str,
    /// Facts from `INFO` (redis_version, used_memory, connected_clients, …).
    pub info: std::collections::BTreeMap<String, String>,
}

/// Whether Redis answers, with a few facts about it; 503 when it is configured and down.
#[utoipa::path(get, path = "/api/v1/health/redis", tag = "health",
    responses(
        (status = 200, description = "Up, or not configured", body = Envelope<RedisHealth>),
        (status = 503, description = "`NOT_READY`: Redis is configured and does not answer", body = Problem),
    ))]
pub async fn redis(health: web::Data<Health>) -> Result<HttpResponse, ApiError> {
    let Some(redis) = &health.redis else {
        return Ok(envelope::ok(
            "Redis is not configured",
            RedisHealth {
                status: "not_configured",
                info: std::collections::BTreeMap::new(),
            },
        ));
    };
    match redis.facts().await {
        Ok(facts) => Ok(envelope::ok(
            "Redis is up",
            RedisHealth {
                status: "up",
                info: facts
                    .into_iter()
                    .filter(|(name, _)| PUBLIC_REDIS_FACTS.contains(&name.as_str()))
                    .collect(),
            },
        )),
        Err(reason) => {
            tracing::warn!(%reason, "Redis health check failed");
            Err(ApiError {
                errors: vec![FieldError {
                    field: "redis".to_owned(),
                    code: "down".to_owned(),
                    message: "not reachable".to_owned(),
                }],
                ..ApiError::new(ErrorCode::NotReady, "Redis is down")
            })
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Liveness {
    /// `ok`, or `starting` while the process waits for its storage and queue at start (every
    /// other route answers 503 `NOT_READY` meanwhile).
    #[schema(example = "ok")]
    pub status: &'static str,
    pub version: &'static str,
    /// Where accounts are stored: `embedded` (SQLite under `DATA_DIR`) or `mongodb`
    /// (`starting` before the process knows).
    pub mode: &'static str,
    pub uptime_seconds: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProbeResult {
    pub name: &'static str,
    #[schema(example = "up")]
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/api/v1/health", tag = "health", responses((status = 200, body = Envelope<Liveness>)))]
pub async fn live(health: web::Data<Health>) -> HttpResponse {
    envelope::ok(
        "OK",
        Liveness {
            status: "ok",
            version: env!("CARGO_PKG_VERSION"),
            mode: health.mode,
            uptime_seconds: health.started.elapsed().as_secs(),
        },
    )
}

/// The liveness answer while the process waits for its dependencies at start
/// ([`crate::serve_starting`]).
pub async fn starting() -> HttpResponse {
    envelope::ok(
        "OK",
        Liveness {
            status: "starting",
            version: env!("CARGO_PKG_VERSION"),
            mode: "starting",
            uptime_seconds: 0,
        },
    )
}

/// Every dependency (storage, queue) answers; 503 naming each one that does not.
#[utoipa::path(get, path = "/api/v1/health/ready", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Envelope<Vec<ProbeResult>>),
        (status = 503, description = "`NOT_READY`; `errors` names each failing dependency", body = Problem),
    ))]
pub async fn ready(health: web::Data<Health>) -> Result<HttpResponse, ApiError> {
    let mut results = Vec::new();
    let mut failures = Vec::new();
    let timeout = health.probe_timeout;
    let checks = health.probes.iter().map(|probe| async move {
        let answer = tokio::time::timeout(timeout, probe.check()).await;
        (
            probe,
            answer.unwrap_or_else(|_| Err("no answer in time".to_owned())),
        )
    });
    for (probe, answer) in futures_util::future::join_all(checks).await {
        match answer {
            Ok(()) => results.push(ProbeResult {
                name: probe.name(),
                status: "up",
            }),
            Err(reason) => {
                tracing::warn!(dependency = probe.name(), %reason, "readiness check failed");
                failures.push(FieldError {
                    field: probe.name().to_owned(),
                    code: "down".to_owned(),
                    message: "not reachable".to_owned(),
                });
            }
        }
    }
    if failures.is_empty() {
        Ok(envelope::ok("Ready", results))
    } else {
        Err(ApiError {
            errors: failures,
            ..ApiError::new(ErrorCode::NotReady, "A dependency is down")
        })
    }
}
