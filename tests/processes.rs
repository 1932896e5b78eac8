//! Every binary starts with nothing configured and stops cleanly on SIGTERM; bad configuration
//! stops it at start with one line per problem.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::time::Duration;

use testkit::{RunningBinary, workspace_binary};

#[tokio::test]
async fn worker_and_scheduler_start_and_stop_on_sigterm() {
    testkit::needs!("the built binaries");
    for name in ["console-worker", "console-scheduler"] {
        let data = tempfile::tempdir().unwrap();
        let mut process = RunningBinary::start(name, data.path(), &[]);
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(
            process.child.try_wait().unwrap().is_none(),
            "{name} keeps running"
        );
        assert!(
            process.terminate().await.success(),
            "{name} exits 0 on SIGTERM"
        );
    }
}

#[tokio::test]
async fn invalid_configuration_is_refused_with_one_line_per_problem() {
    testkit::needs!("the built binaries");
    let data = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(workspace_binary("console-api"))
        .current_dir(data.path())
        .env("APP_ENV", "production")
        .env("PORT", "not-a-port")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for variable in [
        "PORT:",
        "JWT_ACCESS_SECRET:",
        "JWT_REFRESH_SECRET:",
        "CORS_ORIGIN:",
        "SMTP_HOST:",
    ] {
        assert_eq!(
            stderr.lines().filter(|l| l.contains(variable)).count(),
            1,
            "{variable} in {stderr}"
        );
    }
}
