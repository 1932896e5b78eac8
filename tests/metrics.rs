//! Every process's `GET /metrics` is what Prometheus reads without a complaint (`promtool check
//! metrics`), and carries what an operator graphs: traffic, jobs, cron runs, the process.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::io::Write as _;
use std::time::Duration;

use reqwest::StatusCode;
use support::{Client, deployment_env};
use testkit::{MongoStandIn, RedisServer, RunningBinary, SmtpSink, free_port};

/// `promtool` run with `args` and `input` on its standard input: its complaints (empty when
/// there are none).
fn promtool_complaints(args: &[&str], input: &str) -> String {
    let mut check = std::process::Command::new("promtool")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package) is installed");
    check
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = check.wait_with_output().unwrap();
    if output.status.success() {
        String::new()
    } else {
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }
}

/// The metrics at `url`, polled until they contain `series` (a process counts what it did a
/// moment after doing it).
async fn scrape_until(url: &str, series: &str) -> String {
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(answer) = http.get(url).send().await {
            assert_eq!(
                answer.headers()["content-type"],
                "text/plain; version=0.0.4; charset=utf-8"
            );
            let text = answer.text().await.unwrap();
            if text.contains(series) {
                return text;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never showed {series}");
}

#[tokio::test]
async fn each_process_serves_metrics_prometheus_accepts() {
    testkit::needs!("the built binaries, redis-server, the MongoDB stand-in and promtool");
    let (mail, redis) = (SmtpSink::start().await, RedisServer::start().await);
    let mongo = MongoStandIn::start().await;
    let mut env = deployment_env(&mail, &mongo, "metrics", &redis);
    env.extend([
        ("ADMIN_EMAILS", "ada@example.com".to_owned()),
        ("SCHEDULER_SAMPLE_JOB_ENABLED", "true".to_owned()),
        ("SCHEDULER_SAMPLE_JOB_CRON", "* * * * * *".to_owned()),
    ]);
    let with_metrics = |port: u16| {
        let mut env = env.clone();
        env.push(("METRICS_ADDR", format!("127.0.0.1:{port}")));
        env
    };
    let data = tempfile::tempdir().unwrap();
    let mut api = RunningBinary::start("console-api", data.path(), &env);
    api.wait_healthy().await;
    let (worker_port, scheduler_port) = (free_port(), free_port());
    let mut worker =
        RunningBinary::start("console-worker", data.path(), &with_metrics(worker_port));
    let mut scheduler = RunningBinary::start(
        "console-scheduler",
        data.path(),
        &with_metrics(scheduler_port),
    );
    let client = Client::for_binary(&api);
    support::register_verified(&client, &mail, "ada@example.com").await;
    let admin = &support::sign_in(&client, "ada@example.com").await;
    let (status, system) = client
        .call(reqwest::Method::GET, "/admin/metrics", None, Some(admin))
        .await;
    assert_eq!(status, StatusCode::OK, "{system}");
    let system = &system["data"];
    assert_eq!(system["database"]["status"], "up", "{system}");
    assert!(
        system["database"]["facts"]["connections.current"].is_string(),
        "{system}"
    );
    assert_eq!(system["redis"]["status"], "up", "{system}");
    assert!(
        system["redis"]["facts"]["used_memory"].is_string(),
        "{system}"
    );
    assert!(
        system["process"]["residentMemoryBytes"].as_u64().unwrap() > 0,
        "{system}"
    );

    let api_metrics = scrape_until(
        &format!("http://127.0.0.1:{}/metrics", api.port),
        r#"queue_events_total{queue="email",state="completed"}"#,
    )
    .await;
    let worker_metrics = scrape_until(
        &format!("http://127.0.0.1:{worker_port}/metrics"),
        r#"jobs_processed_total{outcome="sent",queue="email"}"#,
    )
    .await;
    let scheduler_metrics = scrape_until(
        &format!("http://127.0.0.1:{scheduler_port}/metrics"),
        r#"cron_runs_total{cron_job="sample-job",outcome="succeeded"}"#,
    )
    .await;
    for (process, text, own) in [
        (
            "api",
            &api_metrics,
            r#"http_requests_total{method="POST",route="/api/v1/auth/register",status="2xx"} 1"#,
        ),
        (
            "worker",
            &worker_metrics,
            "job_batch_duration_seconds_bucket",
        ),
        (
            "scheduler",
            &scheduler_metrics,
            "cron_run_duration_seconds_bucket",
        ),
    ] {
        assert_eq!(
            promtool_complaints(&["check", "metrics"], text),
            "",
            "{process}:\n{text}"
        );
        for series in [
            own,
            &format!("console_build_info{{process=\"{process}\",version=\""),
            "process_resident_memory_bytes ",
            "process_cpu_seconds_total ",
            "process_open_fds ",
        ] {
            assert!(text.contains(series), "{process} shows {series}:\n{text}");
        }
    }
    assert!(
        !worker_metrics.contains("queue_jobs") && !scheduler_metrics.contains("http_requests"),
        "a worker or scheduler shows only its own series"
    );

    let elsewhere = reqwest::get(format!("http://127.0.0.1:{worker_port}/api/v1/health"))
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);
    for process in [&mut scheduler, &mut worker, &mut api] {
        assert!(process.terminate().await.success());
    }
}

#[tokio::test]
async fn a_worker_metrics_listener_takes_the_metrics_token() {
    testkit::needs!("the built binaries, redis-server and promtool");
    let redis = RedisServer::start().await;
    let port = free_port();
    let data = tempfile::tempdir().unwrap();
    let env = [
        ("REDIS_URL", redis.url()),
        (
            "JOB_PAYLOAD_KEY",
            "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0".to_owned(),
        ),
        ("METRICS_ADDR", format!("127.0.0.1:{port}")),
        ("METRICS_TOKEN", "scrape-secret".to_owned()),
    ];
    let mut worker = RunningBinary::start("console-worker", data.path(), &env);
    let url = format!("http://127.0.0.1:{port}/metrics");
    let http = reqwest::Client::new();
    let mut answer = None;
    for _ in 0..100 {
        if let Ok(reply) = http.get(&url).send().await {
            answer = Some(reply);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer.unwrap().status(), StatusCode::UNAUTHORIZED);
    let scraped = http
        .get(&url)
        .bearer_auth("scrape-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), StatusCode::OK);
    assert!(scraped.text().await.unwrap().contains("console_build_info"));
    assert!(worker.terminate().await.success());
}

#[test]
fn the_reference_prometheus_configuration_and_alerts_are_valid() {
    testkit::needs!("promtool");
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/prometheus");
    let (config, rules, tests) = (
        format!("{dir}/prometheus.yml"),
        format!("{dir}/alerts.yml"),
        format!("{dir}/alerts_test.yml"),
    );
    // Syntax only: the scrape token's file (/etc/prometheus/console-metrics-token) is not here.
    for args in [
        vec!["check", "config", "--syntax-only", config.as_str()],
        vec!["check", "rules", rules.as_str()],
        vec!["test", "rules", tests.as_str()],
    ] {
        assert_eq!(
            promtool_complaints(&args, ""),
            "",
            "promtool {}",
            args.join(" ")
        );
    }
}
