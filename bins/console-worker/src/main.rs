//! `console-worker`: see the README for what it runs and how it is configured.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    app::run(app::Process::Worker).await
}
