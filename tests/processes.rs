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

#[tokio::test]
async fn a_copy_of_the_example_environment_file_starts_each_binary() {
    testkit::needs!("the built binaries");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../.env.example");
    let service = tempfile::tempdir().unwrap();
    let env_file = service.path().join(".env");
    std::fs::copy(example, &env_file).unwrap();
    // As its header says: copied to .env beside the process.
    let mut api = RunningBinary::start("console-api", service.path(), &[]);
    api.wait_healthy().await;
    assert!(api.terminate().await.success());
    // A one-off command with a service's environment, from anywhere.
    let elsewhere = tempfile::tempdir().unwrap();
    let listed = std::process::Command::new(workspace_binary("console-scheduler"))
        .args(["--env-file", &env_file.display().to_string(), "list"])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success() && stdout.contains("session-cleanup"),
        "{stdout}{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let mut worker = std::process::Command::new(workspace_binary("console-worker"))
        .args(["--env-file", &env_file.display().to_string()])
        .current_dir(elsewhere.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        worker.try_wait().unwrap().is_none(),
        "the worker keeps running"
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status();
    assert!(worker.wait().unwrap().success());
    // A line that cannot be read is named with its file, line and variable.
    std::fs::write(&env_file, "PORT=3000\nSMTP_FROM=Console <a@b.c>\n").unwrap();
    let refused = std::process::Command::new(workspace_binary("console-worker"))
        .args(["--env-file", &env_file.display().to_string()])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!("{}:2: SMTP_FROM:", env_file.display())),
        "{stderr}"
    );
}

#[tokio::test]
async fn logs_to_a_pipe_are_plain_text_and_the_start_line_says_where_jobs_run() {
    testkit::needs!("the built binaries");
    let data = tempfile::tempdir().unwrap();
    let api = std::process::Command::new(workspace_binary("console-api"))
        .current_dir(data.path())
        .env("PORT", testkit::free_port().to_string())
        .env("LOG_LEVEL", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &api.id().to_string()])
        .status();
    let output = api.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&output.stdout);
    assert!(
        logs.contains("console-api listening") && logs.contains("jobs: in this process"),
        "{logs}"
    );
    assert!(!logs.contains('\u{1b}'), "no colour codes: {logs:?}");
}

#[tokio::test]
async fn process_type_makes_console_api_the_worker_as_the_nestjs_version_did() {
    testkit::needs!("the built binaries");
    let data = tempfile::tempdir().unwrap();
    let port = testkit::free_port();
    let worker = std::process::Command::new(workspace_binary("console-api"))
        .current_dir(data.path())
        .env("PROCESS_TYPE", "worker")
        .env("PORT", port.to_string())
        .env("LOG_LEVEL", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "a worker serves no HTTP"
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status();
    let output = worker.wait_with_output().unwrap();
    assert!(output.status.success());
    let logs = String::from_utf8_lossy(&output.stdout);
    assert!(logs.contains("console-worker started"), "{logs}");
}

#[tokio::test]
async fn help_and_version_answer_without_starting_anything() {
    testkit::needs!("the built binaries");
    let data = tempfile::tempdir().unwrap();
    let run = |name: &str, args: &[&str]| {
        std::process::Command::new(workspace_binary(name))
            .args(args)
            .current_dir(data.path())
            .output()
            .unwrap()
    };
    for name in ["console-api", "console-worker", "console-scheduler"] {
        let help = run(name, &["--help"]);
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(help.status.success(), "{name} --help: {text}");
        assert!(
            text.contains("Usage:") && text.contains("--env-file"),
            "{text}"
        );
        let version = run(name, &["--version"]);
        assert_eq!(
            String::from_utf8_lossy(&version.stdout).trim(),
            format!("{name} {}", env!("CARGO_PKG_VERSION"))
        );
        let wrong = run(name, &["--no-such-flag"]);
        assert_eq!(wrong.status.code(), Some(2), "{name}");
        assert!(String::from_utf8_lossy(&wrong.stderr).contains("Usage:"));
    }
    let scheduler_help = run("console-scheduler", &["--help"]);
    let text = String::from_utf8_lossy(&scheduler_help.stdout);
    assert!(text.contains("list") && text.contains("run"), "{text}");
    assert!(
        !data.path().join("data").exists(),
        "nothing was opened or created"
    );
}
