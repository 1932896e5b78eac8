//! Jobs in the distributed shape, over the real binaries and a real `redis-server` (alone, as
//! a Cluster, or under a Sentinel): the API only enqueues, any number of workers drain, a
//! worker killed mid-job loses nothing, a failover loses no acknowledged email, and SIGTERM
//! lets the job in hand finish.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use support::{Client, api_env};
use testkit::{RedisCluster, RedisSentinel, RedisServer, RunningBinary, SmtpSink};

const PAYLOAD_KEY: &str = "4f0e1b2c3d4a5b6c7d8e9fa0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0";

/// The environment of every process of one deployment: the same Redis, key prefix and
/// payload key.
fn deployment(mail: &SmtpSink, redis_url: String) -> Vec<(&'static str, String)> {
    let mut env = api_env(mail);
    env.extend([
        ("REDIS_URL", redis_url),
        ("JOB_PAYLOAD_KEY", PAYLOAD_KEY.to_owned()),
        ("JOB_VISIBILITY_TIMEOUT_MS", "2000".to_owned()),
        ("EMAIL_QUEUE_BACKOFF_MS", "200".to_owned()),
    ]);
    env
}

/// `env` with `key` set to `value`.
fn with(
    env: &[(&'static str, String)],
    key: &'static str,
    value: String,
) -> Vec<(&'static str, String)> {
    let mut env: Vec<_> = env.iter().filter(|(k, _)| *k != key).cloned().collect();
    env.push((key, value));
    env
}

/// A deployment whose Redis commands give up after a second, so that an outage shows soon.
fn impatient(mail: &SmtpSink, redis_url: String) -> Vec<(&'static str, String)> {
    with(
        &deployment(mail, redis_url),
        "REDIS_TIMEOUT_MS",
        "1000".to_owned(),
    )
}

/// Registers `count` people (`user<n>@example.com`), one every `pause`, in the background;
/// answers the client and each address with the status its registration got.
fn register_many(
    client: Client,
    count: usize,
    pause: Duration,
) -> tokio::task::JoinHandle<(Client, Vec<(String, StatusCode)>)> {
    tokio::spawn(async move {
        let mut answers = Vec::new();
        for n in 0..count {
            let email = format!("user{n}@example.com");
            let body = json!({"name": "Ada Lovelace", "email": email, "password": "Analytical1"});
            let (status, _) = client.post("/auth/register", body, None).await;
            answers.push((email, status));
            tokio::time::sleep(pause).await;
        }
        (client, answers)
    })
}

#[tokio::test]
async fn with_redis_the_api_only_enqueues_and_a_worker_delivers() {
    testkit::needs!("the built binaries, redis-server and Chromium");
    let (mail, redis) = (SmtpSink::start().await, RedisServer::start().await);
    let env = deployment(&mail, redis.url());
    let data = tempfile::tempdir().unwrap();
    let mut api = RunningBinary::start("console-api", data.path(), &env);
    api.wait_healthy().await;
    let client = Client::for_binary(&api);
    let (status, redis_health) = client
        .call(reqwest::Method::GET, "/health/redis", None, None)
        .await;
    assert_eq!(
        (status, &redis_health["data"]["status"]),
        (StatusCode::OK, &json!("up"))
    );
    assert!(redis_health["data"]["info"]["redis_version"].is_string());
    let (status, ready) = client
        .call(reqwest::Method::GET, "/health/ready", None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    support::register(&client, "ada@example.com").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(mail.received().is_empty(), "the API sends nothing itself");

    let mut worker = RunningBinary::start("console-worker", data.path(), &env);
    let verify = mail.wait_for("ada@example.com", "Verify").await;
    assert!(
        verify.token().is_some(),
        "the sealed payload opened in another process"
    );
    assert!(
        worker.terminate().await.success(),
        "the worker exits 0 on SIGTERM"
    );
    assert!(api.terminate().await.success());
}

#[tokio::test]
async fn over_tls_the_api_enqueues_and_a_worker_delivers_through_rediss() {
    testkit::needs!("the built binaries, redis-server and Chromium");
    let (mail, redis) = (SmtpSink::start().await, RedisServer::start_tls().await);
    let data = tempfile::tempdir().unwrap();
    let ca_file = data.path().join("redis-ca.pem");
    std::fs::write(&ca_file, redis.ca_pem().unwrap()).unwrap();
    let env = with(
        &deployment(&mail, redis.url()),
        "REDIS_TLS_CA_FILE",
        ca_file.display().to_string(),
    );
    assert!(redis.url().starts_with("rediss://"));
    let mut api = RunningBinary::start("console-api", data.path(), &env);
    api.wait_healthy().await;
    let client = Client::for_binary(&api);
    let (status, ready) = client
        .call(reqwest::Method::GET, "/health/ready", None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    support::register(&client, "ada@example.com").await;
    let mut worker = RunningBinary::start("console-worker", data.path(), &env);
    let verify = mail.wait_for("ada@example.com", "Verify").await;
    assert!(verify.token().is_some());
    assert!(worker.terminate().await.success());
    assert!(api.terminate().await.success());
}

/// Runs `name` with `env` until it exits on its own (a refusal at start): status and stderr.
/// Runs `name` in `dir` until it exits (it is expected to refuse to start): its exit code and
/// what it wrote to stderr.
fn refused_at_start(
    name: &str,
    dir: &std::path::Path,
    env: &[(&'static str, String)],
) -> (Option<i32>, String) {
    let output = std::process::Command::new(testkit::workspace_binary(name))
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("LOG_LEVEL", "warn")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn without_mongodb_a_worker_or_scheduler_on_another_database_refuses_to_start() {
    testkit::needs!("the built binaries, redis-server and Chromium");
    let (mail, redis) = (SmtpSink::start().await, RedisServer::start().await);
    let env = deployment(&mail, redis.url());
    let data = tempfile::tempdir().unwrap();
    let mut api = RunningBinary::start("console-api", data.path(), &env);
    api.wait_healthy().await;
    // Another DATA_DIR (another host): an empty database, not the api's.
    let elsewhere = tempfile::tempdir().unwrap();
    for name in ["console-worker", "console-scheduler"] {
        let (status, stderr) = refused_at_start(name, elsewhere.path(), &env);
        assert_ne!(status, Some(0), "{name}");
        assert!(
            stderr.contains("DATA_DIR") && stderr.contains("MONGODB_URI"),
            "{name}: {stderr}"
        );
    }
    // With MongoDB, nothing is embedded: a process anywhere opens no database file at all.
    let mongo = testkit::MongoStandIn::start().await;
    let shared = with(&env, "MONGODB_URI", mongo.uri());
    let anywhere = tempfile::tempdir().unwrap();
    let mut worker = RunningBinary::start("console-worker", anywhere.path(), &shared);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        worker.child.try_wait().unwrap().is_none(),
        "the worker runs"
    );
    assert!(
        !anywhere.path().join("data/console.db").exists(),
        "no embedded database was made"
    );
    assert!(worker.terminate().await.success());
    assert!(api.terminate().await.success());
}

#[tokio::test]
async fn a_process_with_another_payload_key_refuses_to_start_and_a_rotation_moves_the_deployment() {
    testkit::needs!("the built binaries, redis-server and Chromium");
    let (mail, redis) = (SmtpSink::start().await, RedisServer::start().await);
    let env = deployment(&mail, redis.url());
    let data = tempfile::tempdir().unwrap();
    let mut api = RunningBinary::start("console-api", data.path(), &env);
    api.wait_healthy().await;
    let other_key = "ab".repeat(32);
    let stranger = with(&env, "JOB_PAYLOAD_KEY", other_key.clone());
    let (status, stderr) = refused_at_start("console-worker", data.path(), &stranger);
    assert_ne!(status, Some(0));
    assert!(stderr.contains("JOB_PAYLOAD_KEY"), "{stderr}");
    // Without a key at all, a generated one is refused outright.
    let keyless: Vec<_> = env
        .iter()
        .filter(|(k, _)| *k != "JOB_PAYLOAD_KEY")
        .cloned()
        .collect();
    let (status, stderr) = refused_at_start("console-worker", data.path(), &keyless);
    assert_ne!(status, Some(0));
    assert!(stderr.contains("JOB_PAYLOAD_KEY must be set"), "{stderr}");
    // A worker rotating to the new key, the old one among its previous keys, starts and moves
    // the deployment: then a process with only the old key is the stranger.
    let rotating = with(
        &stranger,
        "JOB_PAYLOAD_KEYS_PREVIOUS",
        PAYLOAD_KEY.to_owned(),
    );
    let mut worker = RunningBinary::start("console-worker", data.path(), &rotating);
    support::register(&Client::for_binary(&api), "ada@example.com").await;
    let verify = mail.wait_for("ada@example.com", "Verify").await;
    assert!(verify.token().is_some(), "the old key's job opened");
    let (status, stderr) = refused_at_start("console-worker", data.path(), &env);
    assert_ne!(status, Some(0));
    assert!(stderr.contains("JOB_PAYLOAD_KEY"), "{stderr}");
    assert!(worker.terminate().await.success());
    assert!(api.terminate().await.success());
}

#[tokio::test]
async fn processes_started_while_redis_is_down_wait_for_it_and_then_serve() {
    testkit::needs!("the built binaries, redis-server and Chromium");
    let mail = SmtpSink::start().await;
    let port = testkit::free_port();
    let mut env = api_env(&mail);
    env.extend([
        ("REDIS_URL", format!("redis://127.0.0.1:{port}")),
        ("JOB_PAYLOAD_KEY", PAYLOAD_KEY.to_owned()),
    ]);
    let data = tempfile::tempdir().unwrap();
    let mut api = RunningBinary::start("console-api", data.path(), &env);
    let mut worker = RunningBinary::start("console-worker", data.path(), &env);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(api.child.try_wait().unwrap().is_none(), "the api waits");
    assert!(
        worker.child.try_wait().unwrap().is_none(),
        "the worker waits"
    );
    answers_that_it_is_starting(&Client::for_binary(&api)).await;
    // A process stopped while it waits stops at once, and cleanly.
    let mut impatient = RunningBinary::start("console-scheduler", data.path(), &env);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(impatient.terminate().await.success());
    let _redis = RedisServer::start_on(port).await;
    api.wait_healthy().await;
    support::register(&Client::for_binary(&api), "ada@example.com").await;
    let verify = mail.wait_for("ada@example.com", "Verify").await;
    assert!(verify.token().is_some());
    assert!(worker.terminate().await.success());
    assert!(api.terminate().await.success());
}

/// What a process waiting for its storage or queue at start answers: alive, not ready, every
/// route 503 `NOT_READY` with `Retry-After`.
async fn answers_that_it_is_starting(client: &Client) {
    let (status, live) = client
        .call(reqwest::Method::GET, "/health", None, None)
        .await;
    assert_eq!(
        (status, &live["data"]["status"]),
        (StatusCode::OK, &json!("starting"))
    );
    for path in ["/health/ready", "/auth/me"] {
        let (status, body) = client.call(reqwest::Method::GET, path, None, None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert_eq!(body["code"], "NOT_READY", "{path}");
    }
}

#[tokio::test]
async fn a_process_started_while_mongodb_is_down_waits_for_it_and_then_serves() {
    testkit::needs!("the built binaries, redis-server and Chromium");
    let mail = SmtpSink::start().await;
    let port = testkit::free_port();
    let mut env = api_env(&mail);
    env.push((
        "MONGODB_URI",
        format!("mongodb://127.0.0.1:{port}/?directConnection=true&serverSelectionTimeoutMS=500"),
    ));
    let data = tempfile::tempdir().unwrap();
    let mut api = RunningBinary::start("console-api", data.path(), &env);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(api.child.try_wait().unwrap().is_none(), "the api waits");
    answers_that_it_is_starting(&Client::for_binary(&api)).await;
    let _mongo = testkit::MongoStandIn::start_on(port).await;
    api.wait_healthy().await;
    support::register(&Client::for_binary(&api), "ada@example.com").await;
    assert!(api.terminate().await.success());
}

#[tokio::test]
async fn readiness_says_not_ready_when_redis_does_not_answer_in_time() {
    testkit::needs!("the built binaries, redis-server and Chromium");
    let (mail, redis) = (SmtpSink::start().await, RedisServer::start().await);
    let env = with(
        &deployment(&mail, redis.url()),
        "READY_TIMEOUT_MS",
        "500".to_owned(),
    );
    let data = tempfile::tempdir().unwrap();
    let mut api = RunningBinary::start("console-api", data.path(), &env);
    api.wait_healthy().await;
    let client = Client::for_binary(&api);
    // Redis stalls for 3 s (a failover, a slow disk): the probe answers "not ready" within
    // READY_TIMEOUT_MS instead of waiting for it.
    let mut stall = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port().to_string(), "DEBUG", "SLEEP", "3"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = client
        .call(reqwest::Method::GET, "/health/ready", None, None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "NOT_READY");
    assert_eq!(body["errors"][0]["field"], "queue");
    assert!(
        stall.try_wait().unwrap().is_none(),
        "answered while Redis still slept"
    );
    stall.wait().unwrap();
    let (status, _) = client
        .call(reqwest::Method::GET, "/health/ready", None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "ready again once Redis answers");
    assert!(api.terminate().await.success());
}

/// What `request` answers once it is not 503 (asked every 200 ms, for up to 10 s), as a client
/// following `Retry-After` would see.
async fn until_not_503<F, Fut>(request: F) -> (StatusCode, serde_json::Value)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (StatusCode, serde_json::Value)>,
{
    for _ in 0..50 {
        let (status, reply) = request().await;
        if status != StatusCode::SERVICE_UNAVAILABLE {
            return (status, reply);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("still 503 after 10 s");
}

#[tokio::test]
async fn a_registration_while_redis_is_down_is_undone_and_answered_503() {
    testkit::needs!("the built binaries, redis-server and Chromium");
    let mail = SmtpSink::start().await;
    let mut redis = RedisServer::start().await;
    let env = impatient(&mail, redis.url());
    let data = tempfile::tempdir().unwrap();
    let mut api = RunningBinary::start("console-api", data.path(), &env);
    api.wait_healthy().await;
    let client = Client::for_binary(&api);
    redis.kill();
    let body =
        json!({"name": "Ada Lovelace", "email": "ada@example.com", "password": "Analytical1"});
    let (status, refused) = client.post("/auth/register", body.clone(), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{refused}");
    assert_eq!(refused["code"], "NOT_READY");
    let _redis = RedisServer::start_on(redis.port()).await;
    // Nothing was kept: the same registration succeeds once Redis is back, and its email goes.
    let (status, reply) = until_not_503(|| client.post("/auth/register", body.clone(), None)).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let mut worker = RunningBinary::start("console-worker", data.path(), &env);
    let verify = mail.wait_for("ada@example.com", "Verify").await;
    assert!(verify.token().is_some());
    assert!(worker.terminate().await.success());
    assert!(api.terminate().await.success());
}

#[tokio::test]
async fn redis_restarted_while_people_register_leaves_no_half_made_account_and_loses_no_email() {
    testkit::needs!("the built binaries, redis-server and Chromium");
    let mail = SmtpSink::start().await;
    let mut redis = RedisServer::start_durable().await;
    let env = impatient(&mail, redis.url());
    let env = with(&env, "THROTTLE_AUTH_LIMIT", "1000".to_owned());
    let data = tempfile::tempdir().unwrap();
    let mut api = RunningBinary::start("console-api", data.path(), &env);
    let mut worker = RunningBinary::start("console-worker", data.path(), &env);
    api.wait_healthy().await;
    let client = Client::for_binary(&api);
    let registering = register_many(client, 40, Duration::from_millis(100));
    tokio::time::sleep(Duration::from_millis(800)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.restart().await;
    let (client, answers) = registering.await.unwrap();
    let refused: Vec<&String> = answers
        .iter()
        .filter(|(_, status)| *status == StatusCode::SERVICE_UNAVAILABLE)
        .map(|(email, _)| email)
        .collect();
    assert!(
        answers
            .iter()
            .all(|(_, status)| *status == StatusCode::CREATED
                || *status == StatusCode::SERVICE_UNAVAILABLE),
        "201 or 503, never a 500: {answers:?}"
    );
    assert!(!refused.is_empty(), "the outage was seen: {answers:?}");
    // Nothing half-made: each refused registration succeeds when sent again, once the API
    // counts sign-in requests again (its rate limiter waits 2 s before asking Redis anew).
    for email in &refused {
        let body = json!({"name": "Ada Lovelace", "email": email, "password": "Analytical1"});
        let (status, reply) =
            until_not_503(|| client.post("/auth/register", body.clone(), None)).await;
        assert_eq!(status, StatusCode::CREATED, "{email}: {reply}");
    }
    for (email, _) in &answers {
        mail.wait_for(email, "Verify").await;
    }
    assert!(worker.terminate().await.success());
    assert!(api.terminate().await.success());
}

#[tokio::test]
async fn a_password_reset_asked_for_while_redis_is_down_is_delivered_once_it_is_back() {
    testkit::needs!("the built binaries, redis-server and Chromium");
    let mail = SmtpSink::start().await;
    // Durable: an email queued just before the outage is still there after it.
    let mut redis = RedisServer::start_durable().await;
    let env = impatient(&mail, redis.url());
    let data = tempfile::tempdir().unwrap();
    let mut api = RunningBinary::start("console-api", data.path(), &env);
    api.wait_healthy().await;
    let client = Client::for_binary(&api);
    // Every write of this Redis waits for its disk: a sign-up counted slower than the auth
    // limit waits for it is refused (503, "try again shortly"), and a client tries again.
    let (status, body) = until_not_503(|| {
        client.post(
            "/auth/register",
            json!({"name": "Ada Lovelace", "email": "ada@example.com", "password": "Analytical1"}),
            None,
        )
    })
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Redis goes away as the request is handled: refused (503), or answered and its email
    // queued before the outage or again and again in the process until Redis is back.
    let asked = client.post(
        "/auth/forgot-password",
        json!({"email": "ada@example.com"}),
        None,
    );
    let ((), (status, body)) = tokio::join!(
        async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            redis.kill();
        },
        asked
    );
    assert!(
        status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
        "{body}"
    );
    // While Redis is down the request is refused, never lost: the auth limit fails closed.
    let (refused, body) = client
        .post(
            "/auth/forgot-password",
            json!({"email": "ada@example.com"}),
            None,
        )
        .await;
    assert_eq!(refused, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "NOT_READY");
    tokio::time::sleep(Duration::from_secs(3)).await;
    redis.restart().await;
    if status != StatusCode::OK {
        let (status, body) = until_not_503(|| {
            client.post(
                "/auth/forgot-password",
                json!({"email": "ada@example.com"}),
                None,
            )
        })
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let mut worker = RunningBinary::start("console-worker", data.path(), &env);
    let reset = mail.wait_for("ada@example.com", "Reset").await;
    let token = reset.token().expect("a reset link");
    let (status, body) = until_not_503(|| {
        client.post(
            "/auth/reset-password",
            json!({"token": token, "password": "Difference2"}),
            None,
        )
    })
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the link that arrived works: {body}"
    );
    assert!(worker.terminate().await.success());
    assert!(api.terminate().await.success());
}

#[tokio::test]
async fn a_worker_killed_mid_job_loses_nothing_another_worker_delivers_it() {
    testkit::needs!("the built binaries, redis-server and Chromium");
    let (mail, redis) = (SmtpSink::start().await, RedisServer::start().await);
    let env = deployment(&mail, redis.url());
    // An SMTP server that accepts connections and never answers: the first worker hangs in
    // the middle of sending.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stuck_env = with(
        &env,
        "SMTP_PORT",
        black_hole.local_addr().unwrap().port().to_string(),
    );
    let data = tempfile::tempdir().unwrap();
    let mut api = RunningBinary::start("console-api", data.path(), &env);
    api.wait_healthy().await;
    let mut stuck = RunningBinary::start("console-worker", data.path(), &stuck_env);
    tokio::time::sleep(Duration::from_millis(500)).await;
    support::register(&Client::for_binary(&api), "grace@example.com").await;
    // Let the stuck worker take the job, then kill it without a chance to clean up.
    for _ in 0..50 {
        if black_hole.accept().is_ok() {
            break;
        }
    }
    stuck.child.kill().unwrap();
    stuck.child.wait().unwrap();
    assert!(mail.received().is_empty());

    let _healthy = RunningBinary::start("console-worker", data.path(), &env);
    let verify = mail.wait_for("grace@example.com", "Verify").await;
    assert!(verify.token().is_some());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let verifications = mail
        .received()
        .iter()
        .filter(|m| m.subject().contains("Verify"))
        .count();
    assert_eq!(verifications, 1, "delivered once");
    assert!(api.terminate().await.success());
}

/// The environment of a scheduler whose only enabled job is the sample job, every second.
fn every_second(env: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut env = with(env, "SCHEDULER_SAMPLE_JOB_CRON", "* * * * * *".to_owned());
    for job in [
        "SCHEDULER_SESSION_CLEANUP_ENABLED",
        "SCHEDULER_EMAIL_QUEUE_MONITORING_ENABLED",
        "SCHEDULER_ACCOUNT_DELETION_TOKEN_CLEANUP_ENABLED",
        "SCHEDULER_JOB_HISTORY_RETENTION_ENABLED",
    ] {
        env = with(&env, job, "false".to_owned());
    }
    env
}

#[tokio::test]
async fn two_schedulers_run_each_tick_once() {
    testkit::needs!("the built binaries, redis-server and Chromium");
    let (mail, redis) = (SmtpSink::start().await, RedisServer::start().await);
    let env = every_second(&deployment(&mail, redis.url()));
    // On one host: without MongoDB, every process shares the embedded database.
    let data = tempfile::tempdir().unwrap();
    let mut a = RunningBinary::start("console-scheduler", data.path(), &env);
    let mut b = RunningBinary::start("console-scheduler", data.path(), &env);
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert!(a.terminate().await.success());
    assert!(b.terminate().await.success());
    let runs = support::each_tick_ran_once(redis.port(), "sample-job");
    assert!(runs.iter().all(|r| r["outcome"] == "succeeded"));
}

#[tokio::test]
async fn a_cron_job_runs_once_from_the_command_line_the_backup_included() {
    testkit::needs!("the built binaries, redis-server and Chromium");
    let data = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(testkit::workspace_binary("console-scheduler"))
        .args(["run", "database-maintenance"])
        .current_dir(data.path())
        .env("LOG_LEVEL", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("database-maintenance: succeeded"),
        "{stdout}"
    );
    let backups: Vec<_> = std::fs::read_dir(data.path().join("data/backups"))
        .unwrap()
        .filter_map(Result::ok)
        .collect();
    assert_eq!(backups.len(), 1);
    let unknown = std::process::Command::new(testkit::workspace_binary("console-scheduler"))
        .args(["run", "nope"])
        .current_dir(data.path())
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("no job named \"nope\"") && stderr.contains("session-cleanup"),
        "the jobs are listed: {stderr}"
    );
}

/// Runs a scenario of `tests/browser/dashboard.mjs` in headless Chromium, signed in as `email`
/// (password of `register`); `scenario` is its environment (`SCENARIO` and what it needs).
fn in_the_dashboard(base: &str, email: &str, scenario: &[(&str, &str)]) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/browser");
    assert!(
        std::path::Path::new(dir)
            .join("node_modules/playwright-core")
            .exists(),
        "run scripts/test.sh, which installs Chromium and playwright-core"
    );
    let output = std::process::Command::new("node")
        .arg("dashboard.mjs")
        .current_dir(dir)
        .env("BASE_URL", base)
        .env("ADMIN_EMAIL", email)
        .env("ADMIN_PASSWORD", "Analytical1")
        .envs(scenario.iter().copied())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn an_admin_manages_the_queue_from_the_dashboard_behind_bull_boards_credentials() {
    testkit::needs!("the built binaries and Chromium");
    let mail = SmtpSink::start().await;
    let mut env = support::api_env(&mail);
    env.extend([
        ("ADMIN_EMAILS", "boss@example.com".to_owned()),
        ("EMAIL_QUEUE_ATTEMPTS", "2".to_owned()),
        ("EMAIL_QUEUE_BACKOFF_MS", "600000".to_owned()),
        ("JWT_ACCESS_TOKEN_EXPIRATION", "3s".to_owned()),
        // Renewing a token every 3 s is more than the default auth limit allows a client.
        ("THROTTLE_AUTH_LIMIT", "100".to_owned()),
        ("BULL_BOARD_USERNAME", "ops".to_owned()),
        ("BULL_BOARD_PASSWORD", "board-secret".to_owned()),
    ]);
    let data = tempfile::tempdir().unwrap();
    let mut api = RunningBinary::start("console-api", data.path(), &env);
    api.wait_healthy().await;
    let client = Client::for_binary(&api);
    support::register_verified(&client, &mail, "boss@example.com").await;
    mail.set_down(true);
    support::register(&client, "ada@example.com").await;
    let admin = support::sign_in(&client, "boss@example.com").await;
    for _ in 0..100 {
        let (_, stats) = client
            .call(
                reqwest::Method::GET,
                "/admin/queues/stats",
                None,
                Some(&admin),
            )
            .await;
        if stats["data"][0]["delayed"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let base = format!("http://127.0.0.1:{}", api.port);
    tokio::task::spawn_blocking(move || {
        let scenario = [
            ("SCENARIO", "manage"),
            ("BASIC_USER", "ops"),
            ("BASIC_PASSWORD", "board-secret"),
        ];
        in_the_dashboard(&base, "boss@example.com", &scenario);
    })
    .await
    .unwrap();
    assert!(api.terminate().await.success());
}

#[tokio::test]
async fn smtp_down_retries_then_fails_and_an_admin_retry_in_the_dashboard_delivers() {
    testkit::needs!("the built binaries, redis-server and Chromium");
    let (mail, redis) = (SmtpSink::start().await, RedisServer::start().await);
    let mut env = deployment(&mail, redis.url());
    env.extend([
        ("ADMIN_EMAILS", "boss@example.com".to_owned()),
        ("EMAIL_QUEUE_ATTEMPTS", "2".to_owned()),
        ("EMAIL_QUEUE_BACKOFF_MS", "100".to_owned()),
    ]);
    let data = tempfile::tempdir().unwrap();
    let mut api = RunningBinary::start("console-api", data.path(), &env);
    api.wait_healthy().await;
    let _worker = RunningBinary::start("console-worker", data.path(), &env);
    let client = Client::for_binary(&api);
    support::register_verified(&client, &mail, "boss@example.com").await;
    let admin = support::sign_in(&client, "boss@example.com").await;

    mail.set_down(true);
    support::register(&client, "ada@example.com").await;
    let mut failed = None;
    for _ in 0..100 {
        let (status, body) = client
            .call(
                reqwest::Method::GET,
                "/admin/queues/email/jobs/failed",
                None,
                Some(&admin),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        failed = body["data"]
            .as_array()
            .and_then(|jobs| jobs.iter().find(|j| j["kind"] == "verifyEmail").cloned());
        if failed.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let failed = failed.expect("the verification email failed after its retries");
    assert_eq!(
        failed["attempts"], 2,
        "retried once, then kept as failed: {failed}"
    );
    assert!(
        failed["lastError"].as_str().unwrap().contains("451"),
        "{failed}"
    );

    mail.set_down(false);
    let base = format!("http://127.0.0.1:{}", api.port);
    let job = failed["id"].as_str().unwrap().to_owned();
    tokio::task::spawn_blocking(move || {
        let scenario = [("SCENARIO", "retry"), ("JOB_ID", job.as_str())];
        in_the_dashboard(&base, "boss@example.com", &scenario);
    })
    .await
    .unwrap();
    let delivered = mail.wait_for("ada@example.com", "Verify").await;
    assert!(delivered.token().is_some());
    assert!(api.terminate().await.success());
}

#[tokio::test]
async fn on_a_redis_cluster_emails_are_delivered_and_cron_ticks_run_once() {
    testkit::needs!("the built binaries, redis-server and Chromium");
    let (mail, cluster) = (SmtpSink::start().await, RedisCluster::start().await);
    let env = every_second(&deployment(&mail, cluster.url()));
    let data = tempfile::tempdir().unwrap();
    let mut api = RunningBinary::start("console-api", data.path(), &env);
    let mut worker = RunningBinary::start("console-worker", data.path(), &env);
    let mut scheduler = RunningBinary::start("console-scheduler", data.path(), &env);
    api.wait_healthy().await;
    let client = Client::for_binary(&api);
    let (status, ready) = client
        .call(reqwest::Method::GET, "/health/ready", None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    support::register(&client, "ada@example.com").await;
    let verify = mail.wait_for("ada@example.com", "Verify").await;
    assert!(verify.token().is_some());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(scheduler.terminate().await.success());
    // Read on the master that owns the deployment's slot.
    let runs = std::process::Command::new("redis-cli")
        .args(["-c", "-p", &cluster.owner_of("{console}").to_string()])
        .args(["LRANGE", "{console}:cron:runs:sample-job", "0", "-1"])
        .output()
        .unwrap();
    let runs = String::from_utf8_lossy(&runs.stdout).lines().count();
    assert!(runs >= 1, "the scheduler recorded its runs on the cluster");
    assert!(worker.terminate().await.success());
    assert!(api.terminate().await.success());
}

#[tokio::test]
async fn a_sentinel_failover_while_people_register_loses_no_acknowledged_email() {
    testkit::needs!("the built binaries, redis-server and Chromium");
    let (mail, group) = (SmtpSink::start().await, RedisSentinel::start().await);
    let env = with(
        &deployment(&mail, group.url()),
        "REDIS_WAIT_REPLICAS",
        "1".to_owned(),
    );
    let env = with(&env, "THROTTLE_AUTH_LIMIT", "1000".to_owned());
    let data = tempfile::tempdir().unwrap();
    let mut api = RunningBinary::start("console-api", data.path(), &env);
    let mut worker = RunningBinary::start("console-worker", data.path(), &env);
    api.wait_healthy().await;
    let client = Client::for_binary(&api);
    let registering = register_many(client, 60, Duration::from_millis(50));
    tokio::time::sleep(Duration::from_millis(700)).await;
    group.failover().await;
    let (_, answers) = registering.await.unwrap();
    let accepted: Vec<&String> = answers
        .iter()
        .filter(|(_, status)| *status == StatusCode::CREATED)
        .map(|(email, _)| email)
        .collect();
    let refused: Vec<_> = answers
        .iter()
        .filter(|(_, status)| *status != StatusCode::CREATED)
        .collect();
    assert!(
        refused
            .iter()
            .all(|(_, status)| *status == StatusCode::SERVICE_UNAVAILABLE),
        "a failover is answered 503 or not at all: {refused:?}"
    );
    assert!(
        refused.len() <= 10,
        "{} refused: {refused:?}",
        refused.len()
    );
    for email in &accepted {
        mail.wait_for(email, "Verify").await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let to_accepted = mail
        .received()
        .iter()
        .filter(|sent| sent.to.iter().any(|to| accepted.contains(&to)))
        .map(|sent| format!("{:?} {}", sent.to, sent.subject()))
        .collect::<Vec<_>>();
    // A job whose completion the failover lost (written to the old master after the replica
    // took over, or not yet replicated) is sent again after its lease: at most the jobs the
    // worker held around the switch (EMAIL_WORKER_CONCURRENCY, 16).
    let distinct: std::collections::HashSet<_> = to_accepted.iter().collect();
    let duplicates = to_accepted.len() - distinct.len();
    eprintln!(
        "{duplicates} duplicate emails, {} accepted and {} refused registrations",
        accepted.len(),
        refused.len()
    );
    assert!(
        duplicates <= 16,
        "{duplicates} emails sent twice for {} accepted registrations: {to_accepted:?}",
        accepted.len()
    );
    assert!(worker.terminate().await.success());
    assert!(api.terminate().await.success());
}
