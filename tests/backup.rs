//! The restore drill: back up a running service, write more, stop it, restore, start it: the
//! backed-up state is what it serves, files included, and the state replaced is kept.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::path::Path;
use std::process::Output;

use reqwest::StatusCode;
use serde_json::json;
use support::{Client, api_env, register, upload_pdf};
use testkit::{RunningBinary, SmtpSink, workspace_binary};

fn run(dir: &Path, binary: &str, args: &[&str]) -> Output {
    std::process::Command::new(workspace_binary(binary))
        .args(args)
        .current_dir(dir)
        .env("LOG_LEVEL", "warn")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn signs_in(client: &Client, email: &str) -> StatusCode {
    client
        .post(
            "/auth/login",
            json!({"email": email, "password": "Analytical1"}),
            None,
        )
        .await
        .0
}

async fn file_status(base: &str, path: &str) -> StatusCode {
    reqwest::get(format!("{base}{path}"))
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_restored_backup_is_what_the_service_serves_files_included() {
    testkit::needs!("the built binaries");
    let mail = SmtpSink::start().await;
    let service = tempfile::tempdir().unwrap();
    let env = api_env(&mail);
    let mut api = RunningBinary::start("console-api", service.path(), &env);
    api.wait_healthy().await;
    let base = format!("http://127.0.0.1:{}", api.port);
    let (client, http) = (Client::for_binary(&api), reqwest::Client::new());
    let ada = register(&client, "ada@example.com").await;
    let kept_file = upload_pdf(&http, &base, &ada).await;

    let backup = run(
        service.path(),
        "console-scheduler",
        &["run", "database-maintenance"],
    );
    assert!(backup.status.success(), "{}", text(&backup));
    let backups = service.path().join("data/backups");
    let taken: Vec<_> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(taken.len(), 1, "{taken:?}");
    let taken = &taken[0];

    let grace = register(&client, "grace@example.com").await;
    let later_file = upload_pdf(&http, &base, &grace).await;
    // A disk mishap after the backup: ada's document is lost.
    std::fs::remove_file(service.path().join("data").join(&kept_file[1..])).unwrap();
    assert_eq!(file_status(&base, &kept_file).await, StatusCode::NOT_FOUND);

    let refused = run(
        service.path(),
        "console-api",
        &["restore", taken.to_str().unwrap()],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("stop them first"),
        "{}",
        text(&refused)
    );
    assert_eq!(
        signs_in(&client, "grace@example.com").await,
        StatusCode::OK,
        "a refused restore changes nothing"
    );

    assert!(api.terminate().await.success());
    let restored = run(
        service.path(),
        "console-api",
        &["restore", taken.to_str().unwrap()],
    );
    assert!(restored.status.success(), "{}", text(&restored));
    assert!(
        text(&restored).contains("1 brought back, 1 newer ones removed"),
        "{}",
        text(&restored)
    );

    let mut api = RunningBinary::start("console-api", service.path(), &env);
    api.wait_healthy().await;
    let base = format!("http://127.0.0.1:{}", api.port);
    let client = Client::for_binary(&api);
    assert_eq!(signs_in(&client, "ada@example.com").await, StatusCode::OK);
    assert_eq!(
        signs_in(&client, "grace@example.com").await,
        StatusCode::UNAUTHORIZED,
        "who registered after the backup is gone"
    );
    assert_eq!(file_status(&base, &kept_file).await, StatusCode::OK);
    assert_eq!(file_status(&base, &later_file).await, StatusCode::NOT_FOUND);
    let all: Vec<_> = std::fs::read_dir(&backups).unwrap().collect();
    assert_eq!(
        all.len(),
        2,
        "the state replaced is kept as a backup of its own"
    );
    assert!(api.terminate().await.success());
}

#[tokio::test]
async fn a_restore_of_something_else_is_refused_and_changes_nothing() {
    testkit::needs!("the built binaries");
    let (ours, theirs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for service in [&ours, &theirs] {
        let backup = run(
            service.path(),
            "console-scheduler",
            &["run", "database-maintenance"],
        );
        assert!(backup.status.success(), "{}", text(&backup));
    }
    let their_backup = std::fs::read_dir(theirs.path().join("data/backups"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let not_a_backup = ours.path().join("notes.db");
    std::fs::write(&not_a_backup, b"SQLite format 3\0 but not really").unwrap();
    for (backup, why) in [
        (their_backup.as_path(), "another deployment's database"),
        (not_a_backup.as_path(), "cannot be restored"),
        (&ours.path().join("missing"), "no such backup"),
    ] {
        let refused = run(
            ours.path(),
            "console-api",
            &["restore", backup.to_str().unwrap()],
        );
        assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
        assert!(text(&refused).contains(why), "{why}: {}", text(&refused));
    }
    assert!(
        !ours.path().join("data/console.db.restoring").exists(),
        "nothing left half-done"
    );
    let backups = std::fs::read_dir(ours.path().join("data/backups"))
        .unwrap()
        .count();
    assert_eq!(backups, 1, "a refused restore keeps no copy either");
}
