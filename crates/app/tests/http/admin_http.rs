//! The admin API over the embedded default: queues, failed jobs and their retry, clean, cron
//! jobs, metrics; role `admin` only; never a payload.

use std::time::Duration;

use crate::support::{TestApp, spawn_app_with, token};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// An admin's access token: `boss@example.com` registered, verified and refreshed.
async fn admin(app: &TestApp) -> String {
    let boss = app.register("boss@example.com").await;
    let verify = app.mail.wait_for("boss@example.com", "Verify").await;
    let verified = app
        .post(
            "/auth/verify-email",
            json!({"token": verify.token().unwrap()}),
            None,
        )
        .await;
    assert_eq!(verified.status, StatusCode::OK);
    let refreshed = app.refresh(&boss).await;
    assert_eq!(refreshed.data()["user"]["role"], "admin");
    token(refreshed.data(), "accessToken")
}

/// Waits until the email queue has `count` failed jobs; returns them.
async fn failed_jobs(app: &TestApp, admin: &str, count: usize) -> Vec<Value> {
    for _ in 0..100 {
        let reply = app
            .get("/admin/queues/email/jobs/failed?limit=100", Some(admin))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        let jobs = reply.data().as_array().cloned().unwrap_or_default();
        if jobs.len() >= count {
            return jobs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {count} failed jobs");
}

#[tokio::test]
async fn a_failed_email_is_shown_with_its_error_and_an_admin_retry_delivers_it() {
    let app = spawn_app_with(&[
        ("ADMIN_EMAILS", "boss@example.com"),
        ("EMAIL_QUEUE_ATTEMPTS", "2"),
        ("EMAIL_QUEUE_BACKOFF_MS", "50"),
    ])
    .await;
    let admin = admin(&app).await;
    app.mail.set_down(true);
    let ada = app.register("ada@example.com").await;
    let failed = failed_jobs(&app, &admin, 2).await;
    let verify = failed
        .iter()
        .find(|job| job["kind"] == "verifyEmail")
        .expect("the verification email failed");
    assert_eq!(verify["recipient"], "ada@example.com");
    assert_eq!(
        (verify["attempts"].as_u64(), verify["maxAttempts"].as_u64()),
        (Some(2), Some(2))
    );
    assert!(
        verify["lastError"].as_str().unwrap().contains("451"),
        "{verify}"
    );
    assert!(verify.get("payload").is_none(), "a payload is never shown");

    let ada_token = token(&ada, "accessToken");
    let forbidden = app.get("/admin/queues/stats", Some(&ada_token)).await;
    assert_eq!(
        (forbidden.status, forbidden.code()),
        (StatusCode::FORBIDDEN, "FORBIDDEN")
    );
    assert_eq!(
        app.get("/admin/queues/stats", None).await.status,
        StatusCode::UNAUTHORIZED
    );

    app.mail.set_down(false);
    let id = verify["id"].as_str().unwrap();
    let retried = app
        .post(
            &format!("/admin/queues/email/jobs/{id}/retry"),
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(retried.status, StatusCode::OK, "{:?}", retried.body);
    assert_eq!(
        (
            retried.data()["state"].as_str(),
            retried.data()["attempts"].as_u64()
        ),
        (Some("waiting"), Some(0))
    );
    let delivered = app.mail.wait_for("ada@example.com", "Verify").await;
    assert!(
        delivered.token().is_some(),
        "the sealed token survived the failure"
    );
    let again = app
        .post(
            &format!("/admin/queues/email/jobs/{id}/retry"),
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "JOB_NOT_FAILED")
    );
    let too_deep = app
        .get(
            "/admin/queues/email/jobs/history?status=waiting&page=1000000&limit=100",
            Some(&admin),
        )
        .await;
    assert_eq!(
        (too_deep.status, too_deep.code()),
        (StatusCode::BAD_REQUEST, "VALIDATION_ERROR"),
        "a list is read 10 000 jobs deep at most"
    );
    let unknown_job = app
        .post(
            "/admin/queues/email/jobs/0123456789abcdef01234567/retry",
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(
        (unknown_job.status, unknown_job.code()),
        (StatusCode::NOT_FOUND, "JOB_NOT_FOUND")
    );
    let unknown_queue = app.get("/admin/queues/sms/jobs/failed", Some(&admin)).await;
    assert_eq!(
        (unknown_queue.status, unknown_queue.code()),
        (StatusCode::NOT_FOUND, "QUEUE_NOT_FOUND")
    );

    let completed = app
        .get(
            "/admin/queues/email/jobs/history?status=completed",
            Some(&admin),
        )
        .await;
    assert!(completed.body["meta"]["total"].as_u64().unwrap() >= 3);
    assert!(
        completed.data()[0]["recipient"].is_null(),
        "a completed job keeps no address"
    );
    let bad = app
        .send(
            reqwest::Client::new()
                .delete(app.url("/admin/queues/email/jobs/clean?status=active"))
                .bearer_auth(&admin),
        )
        .await;
    assert_eq!(
        (bad.status, bad.fields()),
        (StatusCode::BAD_REQUEST, vec!["status".to_owned()])
    );
    let cleaned = app
        .delete("/admin/queues/email/jobs/clean?status=completed", &admin)
        .await;
    assert!(cleaned.data()["removed"].as_u64().unwrap() >= 3);
    let stats = app.get("/admin/queues/stats", Some(&admin)).await;
    assert_eq!(stats.data()[0]["name"], "email");
    assert_eq!(stats.data()[0]["completed"], 0);
    let totals = &stats.data()[0]["totals"];
    assert!(
        totals["completed"].as_u64().unwrap() >= 3,
        "totals outlive cleaning: {totals}"
    );
    assert!(totals["failed"].as_u64().unwrap() >= 2 && totals["retried"].as_u64().unwrap() >= 2);
}

#[tokio::test]
async fn cron_jobs_metrics_and_health_are_reported() {
    let app = spawn_app_with(&[
        ("ADMIN_EMAILS", "boss@example.com"),
        ("SCHEDULER_SAMPLE_JOB_CRON", "* * * * * *"),
    ])
    .await;
    let admin = admin(&app).await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let cron = app.get("/admin/cron", Some(&admin)).await;
    assert_eq!(cron.status, StatusCode::OK);
    let jobs = cron.data().as_array().unwrap();
    let names: Vec<&str> = jobs.iter().map(|j| j["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "sample-job",
            "session-cleanup",
            "email-queue-monitoring",
            "account-deletion-token-cleanup",
            "job-history-retention",
            "database-maintenance"
        ]
    );
    let sample = &jobs[0];
    assert_eq!(sample["lastRun"]["outcome"], "succeeded", "{sample}");
    assert_eq!(jobs[5]["enabled"], false);

    let metrics = app.get("/admin/metrics", Some(&admin)).await;
    assert!(metrics.data()["http"]["requests"].as_u64().unwrap() > 0);
    let (p50, p99) = (
        metrics.data()["http"]["p50LatencyMs"].as_f64().unwrap(),
        metrics.data()["http"]["p99LatencyMs"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99, "{}", metrics.data());
    let process = &metrics.data()["process"];
    assert!(
        process["residentMemoryBytes"].as_u64().unwrap() > 1_000_000,
        "{process}"
    );
    assert!(process["openFds"].as_u64().unwrap() > 0, "{process}");
    let database = &metrics.data()["database"];
    assert_eq!(database["status"], "up", "{database}");
    assert!(
        database["facts"]["size_bytes"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    assert!(metrics.data()["redis"].is_null(), "no Redis configured");
    assert_eq!(metrics.data()["queues"][0]["name"], "email");
    let text = reqwest::get(app.url("/health").replace("/api/v1/health", "/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        "http_requests_total{",
        "http_request_duration_seconds_bucket{",
        "queue_jobs{",
        "queue_events_total{",
        "queue_processing_seconds_total{",
        "jobs_processed_total{",
        "job_batch_duration_seconds_bucket{",
        "cron_runs_total{cron_job=\"sample-job\",outcome=\"succeeded\"}",
        "process_resident_memory_bytes ",
    ] {
        assert!(text.contains(series), "{series} in {text}");
    }
    assert!(text.contains("status=\"2xx\""));
    let redis = app.get("/health/redis", None).await;
    assert_eq!(redis.data()["status"], "not_configured");
    let ready = app.get("/health/ready", None).await;
    assert_eq!(ready.status, StatusCode::OK);
}

#[tokio::test]
async fn made_up_methods_add_no_series_and_a_token_guards_the_scrape() {
    let app = spawn_app_with(&[("METRICS_TOKEN", "scrape-secret")]).await;
    let scrape = app.url("/health").replace("/api/v1/health", "/metrics");
    for n in 0..200 {
        let method = reqwest::Method::from_bytes(format!("MADEUP{n}").as_bytes()).unwrap();
        app.http
            .request(method, app.url("/health"))
            .send()
            .await
            .unwrap();
    }
    let refused = app.http.get(&scrape).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let wrong = app
        .http
        .get(&scrape)
        .bearer_auth("scrape-secrex")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let text = app
        .http
        .get(&scrape)
        .bearer_auth("scrape-secret")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("MADEUP"), "{text}");
    let others: Vec<&str> = text
        .lines()
        .filter(|line| {
            line.starts_with("http_requests_total{") && line.contains("method=\"OTHER\"")
        })
        .collect();
    assert_eq!(others.len(), 1, "{others:?}");
    assert!(others[0].ends_with(" 200"), "{others:?}");
}

/// The email queue's stats as the admin API gives them.
async fn email_stats(app: &TestApp, admin: &str) -> Value {
    let stats = app.get("/admin/queues/stats", Some(admin)).await;
    assert_eq!(stats.status, StatusCode::OK, "{:?}", stats.body);
    stats.data()[0].clone()
}

/// Waits until the email queue's stats satisfy `done`.
async fn until_stats(app: &TestApp, admin: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        let stats = email_stats(app, admin).await;
        if done(&stats) {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the queue never got there: {}",
        email_stats(app, admin).await
    );
}

#[tokio::test]
async fn an_admin_promotes_removes_pauses_resumes_and_retries_every_failed_job() {
    let app = spawn_app_with(&[
        ("ADMIN_EMAILS", "boss@example.com"),
        ("EMAIL_QUEUE_ATTEMPTS", "2"),
        ("EMAIL_QUEUE_BACKOFF_MS", "600000"),
    ])
    .await;
    let admin = admin(&app).await;
    app.mail.set_down(true);
    app.register("ada@example.com").await;
    until_stats(&app, &admin, |s| s["delayed"] == 2).await;
    let delayed = app
        .get(
            "/admin/queues/email/jobs/history?status=delayed",
            Some(&admin),
        )
        .await;
    let jobs = delayed.data().as_array().unwrap().clone();
    let (first, second) = (
        jobs[0]["id"].as_str().unwrap(),
        jobs[1]["id"].as_str().unwrap(),
    );

    let detail = app
        .get(&format!("/admin/queues/email/jobs/{first}"), Some(&admin))
        .await;
    assert_eq!(detail.status, StatusCode::OK, "{:?}", detail.body);
    assert_eq!(detail.data()["state"], "delayed");
    assert_eq!(detail.data()["attempts"], 1);
    assert!(detail.data()["lastError"].as_str().unwrap().contains("451"));
    assert!(detail.data().get("payload").is_none(), "never the payload");

    let promoted = app
        .post(
            &format!("/admin/queues/email/jobs/{first}/promote"),
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(promoted.status, StatusCode::OK, "{:?}", promoted.body);
    // Its second attempt fails at once (the mail server is down): failed for good.
    until_stats(&app, &admin, |s| s["failed"] == 1).await;

    let paused = app
        .post("/admin/queues/email/pause", json!({}), Some(&admin))
        .await;
    assert_eq!(paused.status, StatusCode::OK);
    assert_eq!(email_stats(&app, &admin).await["paused"], true);
    app.mail.set_down(false);
    let retried = app
        .post("/admin/queues/email/retry-failed", json!({}), Some(&admin))
        .await;
    assert_eq!(retried.data()["retried"], 1, "{:?}", retried.body);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let waiting = email_stats(&app, &admin).await;
    assert_eq!(
        waiting["waiting"], 1,
        "paused: nothing handed out: {waiting}"
    );
    let to_ada = || {
        app.mail
            .received()
            .iter()
            .filter(|m| m.to.iter().any(|to| to == "ada@example.com"))
            .count()
    };
    assert_eq!(to_ada(), 0, "paused: nothing sent");

    let refused = app
        .post(
            &format!("/admin/queues/email/jobs/{first}/promote"),
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::CONFLICT, "JOB_STATE_CONFLICT")
    );
    let removed = app
        .delete(&format!("/admin/queues/email/jobs/{second}"), &admin)
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{:?}", removed.body);
    for gone in [
        app.get(&format!("/admin/queues/email/jobs/{second}"), Some(&admin))
            .await,
        app.delete(&format!("/admin/queues/email/jobs/{second}"), &admin)
            .await,
    ] {
        assert_eq!(
            (gone.status, gone.code()),
            (StatusCode::NOT_FOUND, "JOB_NOT_FOUND")
        );
    }

    let resumed = app
        .post("/admin/queues/email/resume", json!({}), Some(&admin))
        .await;
    assert_eq!(resumed.status, StatusCode::OK);
    let stats = until_stats(&app, &admin, |s| s["completed"].as_u64() >= Some(3)).await;
    assert_eq!(stats["paused"], false);
    assert_eq!(
        to_ada(),
        1,
        "the retried email, once; the removed one never"
    );
}

#[tokio::test]
async fn the_dashboard_page_refuses_a_non_admin_token_and_asks_for_bull_boards_credentials() {
    let app = spawn_app_with(&[("ADMIN_EMAILS", "boss@example.com")]).await;
    let admin = admin(&app).await;
    let ada = token(&app.register("ada@example.com").await, "accessToken");
    let page = |token: Option<&str>| {
        let mut request = app.http.get(app.url("/admin/queues/ui"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(
        page(None).await.unwrap().status(),
        StatusCode::OK,
        "the page signs in itself"
    );
    assert_eq!(page(Some(&admin)).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        page(Some(&ada)).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        page(Some("nonsense")).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    let guarded = spawn_app_with(&[
        ("BULL_BOARD_USERNAME", "ops"),
        ("BULL_BOARD_PASSWORD", "board-secret"),
    ])
    .await;
    let url = guarded.url("/admin/queues/ui");
    let asked = guarded.http.get(&url).send().await.unwrap();
    assert_eq!(asked.status(), StatusCode::UNAUTHORIZED);
    assert!(
        asked.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic realm=")
    );
    for (user, password, status) in [
        ("ops", "board-secret", StatusCode::OK),
        ("ops", "board-secrex", StatusCode::UNAUTHORIZED),
        ("opz", "board-secret", StatusCode::UNAUTHORIZED),
    ] {
        let answer = guarded
            .http
            .get(&url)
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), status, "{user}:{password}");
    }
}

#[tokio::test]
async fn retry_all_takes_each_failed_job_once_even_when_it_fails_again_at_once() {
    let app = spawn_app_with(&[
        ("ADMIN_EMAILS", "boss@example.com"),
        ("EMAIL_QUEUE_ATTEMPTS", "1"),
    ])
    .await;
    let admin = admin(&app).await;
    app.mail.set_down(true);
    for who in ["ada@example.com", "grace@example.com"] {
        app.register(who).await;
    }
    let failed = until_stats(&app, &admin, |s| s["failed"].as_u64() >= Some(4)).await;
    let count = failed["failed"].as_u64().unwrap();
    // The mail server is still down: every retried job fails again at once, on top of the list.
    let retried = app
        .post("/admin/queues/email/retry-failed", json!({}), Some(&admin))
        .await;
    assert_eq!(retried.status, StatusCode::OK, "{:?}", retried.body);
    assert_eq!(retried.data()["retried"].as_u64(), Some(count));
}
