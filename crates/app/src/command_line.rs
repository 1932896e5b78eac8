//! Each binary's command line: `--help`, `--version`, `--env-file PATH`, and the one-off
//! commands (the scheduler's `list` and `run <job>`, the API's `restore <backup>`). Everything
//! else is configured by environment variables.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Arg, ArgMatches, Command, value_parser};

use crate::process::{Process, VERSION};

/// What a binary was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Task {
    /// No command: run until stopped.
    Serve,
    /// `console-scheduler list`: print the jobs, their schedules and switches.
    ListJobs,
    /// `console-scheduler run <job>`: run one job once, now, and exit.
    RunJob(String),
    /// `console-api restore <backup>`: bring the embedded database and the files back from a
    /// backup, and exit.
    Restore(PathBuf),
}

/// A parsed command line.
#[derive(Debug, PartialEq, Eq)]
pub struct Invocation {
    /// Where the environment file is read from instead of `./.env`.
    pub env_file: Option<PathBuf>,
    pub task: Task,
}

fn command(binary: Process) -> Command {
    let about = match binary {
        Process::Api => {
            "The HTTP API and chat; alone (no REDIS_URL), also the email worker and the cron jobs"
        }
        Process::Worker => "Sends the queued emails (with REDIS_URL; several may run)",
        Process::Scheduler => "Runs the cron jobs, each tick once however many run",
    };
    let command = Command::new(format!("console-{}", binary.role()))
        .version(VERSION)
        .about(about)
        .arg(
            Arg::new("env-file")
                .long("env-file")
                .value_name("PATH")
                .value_parser(value_parser!(PathBuf))
                .global(true)
                .help("Read variables from PATH instead of ./.env (the environment's own win)"),
        )
        .after_help(
            "Configured by environment variables: see .env.example and the README's configuration table.",
        );
    match binary {
        // The scheduler's commands too, unlisted: `PROCESS_TYPE=scheduler console-api list`, as
        // the NestJS version ran every role from one binary.
        Process::Api => command
            .subcommand(restore())
            .subcommands(scheduler_commands(true)),
        Process::Scheduler => command.subcommands(scheduler_commands(false)),
        Process::Worker => command,
    }
}

fn restore() -> Command {
    Command::new("restore")
        .about("Replace the embedded database and the uploaded files with a backup's (stop every process on the database first); the state replaced is kept in DATA_DIR/backups")
        .arg(
            Arg::new("backup")
                .required(true)
                .value_name("BACKUP")
                .value_parser(value_parser!(PathBuf))
                .help("A backup database-maintenance wrote (DATA_DIR/backups/console-<time>)"),
        )
}

fn scheduler_commands(hidden: bool) -> [Command; 2] {
    [
        Command::new("list")
            .about("Print the jobs, their schedules and switches")
            .hide(hidden),
        Command::new("run")
            .about("Run one job once, now, whatever its schedule and switch, and exit")
            .arg(Arg::new("job").required(true).value_name("JOB"))
            .hide(hidden),
    ]
}

fn task(matches: &ArgMatches) -> Task {
    match matches.subcommand() {
        Some(("list", _)) => Task::ListJobs,
        Some(("run", run)) => {
            Task::RunJob(run.get_one::<String>("job").cloned().unwrap_or_default())
        }
        Some(("restore", restore)) => Task::Restore(
            restore
                .get_one::<PathBuf>("backup")
                .cloned()
                .unwrap_or_default(),
        ),
        _ => Task::Serve,
    }
}

/// The command line `args` (the binary's name first) of `binary`.
///
/// # Errors
/// clap's error, which also carries `--help` and `--version`: its `exit()` prints it and exits
/// (0 for those two, 2 for a mistake).
pub fn parse(
    binary: Process,
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> Result<Invocation, clap::Error> {
    let matches = command(binary).try_get_matches_from(args)?;
    Ok(Invocation {
        env_file: matches.get_one::<PathBuf>("env-file").cloned(),
        task: task(&matches),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(binary: Process, args: &[&str]) -> Result<Invocation, clap::error::ErrorKind> {
        parse(
            binary,
            std::iter::once("console").chain(args.iter().copied()),
        )
        .map_err(|e| e.kind())
    }

    #[test]
    fn the_scheduler_serves_lists_or_runs_one_job() {
        let task = |args: &[&str]| parsed(Process::Scheduler, args).map(|i| i.task);
        assert_eq!(task(&[]), Ok(Task::Serve));
        assert_eq!(task(&["list"]), Ok(Task::ListJobs));
        assert_eq!(
            task(&["run", "session-cleanup"]),
            Ok(Task::RunJob("session-cleanup".to_owned()))
        );
        assert_eq!(
            task(&["run"]),
            Err(clap::error::ErrorKind::MissingRequiredArgument)
        );
        assert_eq!(
            task(&["purge"]),
            Err(clap::error::ErrorKind::InvalidSubcommand)
        );
    }

    #[test]
    fn an_env_file_is_taken_before_or_after_the_command() {
        for args in [
            &["--env-file", "/etc/c.env", "run", "job"][..],
            &["run", "job", "--env-file=/etc/c.env"][..],
        ] {
            assert_eq!(
                parsed(Process::Scheduler, args),
                Ok(Invocation {
                    env_file: Some(PathBuf::from("/etc/c.env")),
                    task: Task::RunJob("job".to_owned())
                })
            );
        }
        assert_eq!(
            parsed(Process::Worker, &["--env-file"]),
            Err(clap::error::ErrorKind::InvalidValue)
        );
    }

    #[test]
    fn help_and_version_are_answers_not_a_start() {
        for binary in [Process::Api, Process::Worker, Process::Scheduler] {
            assert_eq!(
                parsed(binary, &["--help"]).map(|_| ()),
                Err(clap::error::ErrorKind::DisplayHelp)
            );
            assert_eq!(
                parsed(binary, &["--version"]).map(|_| ()),
                Err(clap::error::ErrorKind::DisplayVersion)
            );
        }
        assert_eq!(
            parsed(Process::Worker, &["list"]).map(|_| ()),
            Err(clap::error::ErrorKind::UnknownArgument)
        );
    }

    #[test]
    fn only_the_api_restores() {
        assert_eq!(
            parsed(
                Process::Api,
                &["restore", "/var/lib/console/backups/console-1"]
            )
            .map(|i| i.task),
            Ok(Task::Restore(PathBuf::from(
                "/var/lib/console/backups/console-1"
            )))
        );
        assert!(parsed(Process::Scheduler, &["restore", "x"]).is_err());
    }

    #[test]
    fn the_api_takes_the_schedulers_commands_for_process_type_scheduler() {
        assert_eq!(
            parsed(Process::Api, &["list"]).map(|i| i.task),
            Ok(Task::ListJobs)
        );
    }
}
