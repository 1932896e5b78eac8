//! Backups of the embedded database and the uploaded files, and `console-api restore`.
//!
//! A backup is a folder `DATA_DIR/backups/console-<UTC time>/` holding `console.db`, a
//! consistent copy of the embedded database, and, when uploads are kept on the local disk,
//! `uploads/`, the stored files. Those are hard-linked where the file system allows: a stored
//! file never changes (its name is its content's hash; a new one is renamed into place), so a
//! link is a copy that takes no space. A backup is written as `console-<time>.partial/` and
//! renamed when whole: a folder without the suffix is a whole backup. Releases before this one
//! wrote the database alone, as `console-<time>.db`; those are listed, rotated and restored too.
//!
//! Failed jobs and cron history are in the embedded database when no Redis is configured;
//! with Redis they are Redis's to keep (its RDB or AOF files).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use chrono::{DateTime, Utc};
use store_sqlite::{ExclusiveHold, copy_database, database_identity};

use crate::config::Settings;
use crate::storage::DATABASE_FILE;

const PREFIX: &str = "console-";
const PARTIAL: &str = ".partial";
/// Age past which a `.partial` folder is a dead backup's: no backup takes this long.
const STALE_PARTIAL: std::time::Duration = std::time::Duration::from_secs(3600);
/// The name of the state a restore replaced, kept beside the backups but out of their rotation.
const REPLACED: &str = "replaced-";
const UPLOADS: &str = "uploads";
/// Each process's upload staging folder under the upload root: never part of a backup.
const STAGING: &str = ".staging";

/// Where backups go and what they hold.
pub struct Backups {
    /// `DATA_DIR/backups`.
    dir: PathBuf,
    /// The local upload folder; `None` when files are kept in object storage.
    uploads: Option<PathBuf>,
}

impl Backups {
    pub fn of(settings: &Settings) -> Self {
        let uploads = settings.s3.is_none().then(|| {
            settings
                .upload_dir
                .as_ref()
                .map_or_else(|| settings.data_dir.join(UPLOADS), PathBuf::from)
        });
        Self {
            dir: settings.data_dir.join("backups"),
            uploads,
        }
    }

    /// Writes a backup taken at `now`: `database` writes the database's copy to the path it is
    /// given, then the upload folder is linked in. Answers the backup's folder; a backup that
    /// fails leaves nothing behind.
    ///
    /// # Errors
    /// What `database` answers, or the file system's error.
    pub async fn take<F, Fut>(&self, now: DateTime<Utc>, database: F) -> anyhow::Result<PathBuf>
    where
        F: FnOnce(PathBuf) -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        self.write(PREFIX, now, database).await
    }

    async fn write<F, Fut>(
        &self,
        prefix: &str,
        now: DateTime<Utc>,
        database: F,
    ) -> anyhow::Result<PathBuf>
    where
        F: FnOnce(PathBuf) -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        let name = format!("{prefix}{}", now.format("%Y%m%dT%H%M%S%3fZ"));
        let whole = self.dir.join(&name);
        let partial = self.dir.join(format!("{name}{PARTIAL}"));
        let written = async {
            private_dir(&partial).with_context(|| partial.display().to_string())?;
            database(partial.join(DATABASE_FILE)).await?;
            if let Some(uploads) = self.uploads.clone() {
                let target = partial.join(UPLOADS);
                tokio::task::spawn_blocking(move || link_tree(&uploads, &target))
                    .await?
                    .context("linking the uploaded files into the backup")?;
            }
            std::fs::rename(&partial, &whole).with_context(|| whole.display().to_string())
        };
        if let Err(error) = written.await {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(error);
        }
        Ok(whole)
    }

    /// The whole backups, oldest first (their names carry a sortable UTC time).
    ///
    /// # Errors
    /// When the folder cannot be read.
    pub fn existing(&self) -> anyhow::Result<Vec<PathBuf>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error).context(self.dir.display().to_string()),
        };
        let mut backups: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| {
                        name.starts_with(PREFIX)
                            && !name.ends_with(PARTIAL)
                            && (path.is_dir() || name.ends_with(".db"))
                    })
            })
            .collect();
        backups.sort();
        Ok(backups)
    }

    /// Deletes the oldest backups beyond the newest `keep`, and what a backup that stopped
    /// half-way (a crash, a kill) left over an hour ago; answers how many backups are left.
    ///
    /// # Errors
    /// When one cannot be deleted.
    pub fn keep_newest(&self, keep: usize) -> anyhow::Result<usize> {
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let stale = entry.file_name().to_string_lossy().ends_with(PARTIAL)
                && entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|at| at.elapsed().is_ok_and(|age| age > STALE_PARTIAL));
            if stale {
                std::fs::remove_dir_all(&path).with_context(|| path.display().to_string())?;
            }
        }
        let backups = self.existing()?;
        let excess = backups.len().saturating_sub(keep);
        for old in &backups[..excess] {
            let removed = if old.is_dir() {
                std::fs::remove_dir_all(old)
            } else {
                std::fs::remove_file(old)
            };
            removed.with_context(|| old.display().to_string())?;
        }
        Ok(backups.len() - excess)
    }
}

/// Creates `dir` and its missing parents, readable by the owner only.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// The stored files under `root`, as paths relative to it (staging folders left out). Anything
/// but regular files and folders is refused: a symbolic link would bring what it points at into
/// the served folder.
fn stored_files(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut folders = vec![PathBuf::new()];
    while let Some(folder) = folders.pop() {
        let entries = match std::fs::read_dir(root.join(&folder)) {
            Ok(entries) => entries,
            Err(error) if error.kind() == ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        for entry in entries {
            let entry = entry?;
            if entry.file_name() == STAGING {
                continue;
            }
            let relative = folder.join(entry.file_name());
            let kind = entry.file_type()?;
            if kind.is_dir() {
                folders.push(relative);
            } else if kind.is_file() {
                files.push(relative);
            } else {
                return Err(std::io::Error::other(format!(
                    "{}: not a regular file or folder",
                    root.join(relative).display()
                )));
            }
        }
    }
    Ok(files)
}

/// Puts every stored file of `from` at the same place under `to`: a hard link, or a copy
/// where `to` is on another file system.
fn link_tree(from: &Path, to: &Path) -> std::io::Result<u64> {
    let files = stored_files(from)?;
    private_dir(to)?;
    for file in &files {
        let target = to.join(file);
        if let Some(parent) = target.parent() {
            private_dir(parent)?;
        }
        if std::fs::hard_link(from.join(file), &target).is_err() {
            std::fs::copy(from.join(file), &target)?;
        }
    }
    Ok(files.len() as u64)
}

/// Makes the stored files under `live` those of `backup` (`wanted`, as [`stored_files`] listed
/// them): what is missing or differs in size is copied in (written aside, owner-only, then
/// renamed into place), what the backup does not have is removed. Answers how many files were
/// brought back and how many removed.
fn restore_tree(backup: &Path, wanted: &[PathBuf], live: &Path) -> anyhow::Result<(u64, u64)> {
    let mut brought = 0;
    for file in wanted {
        let (source, target) = (backup.join(file), live.join(file));
        let same = match (std::fs::metadata(&source), std::fs::metadata(&target)) {
            (Ok(a), Ok(b)) => a.len() == b.len(),
            _ => false,
        };
        if same {
            continue;
        }
        let copied = || -> std::io::Result<()> {
            if let Some(parent) = target.parent() {
                private_dir(parent)?;
            }
            let mut aside = target.clone().into_os_string();
            aside.push(".restoring");
            std::fs::copy(&source, &aside)?;
            #[cfg(unix)]
            std::fs::set_permissions(&aside, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            std::fs::File::open(&aside)?.sync_all()?;
            std::fs::rename(&aside, &target)
        };
        copied().with_context(|| format!("{} to {}", source.display(), target.display()))?;
        brought += 1;
    }
    let wanted: std::collections::HashSet<&PathBuf> = wanted.iter().collect();
    let mut removed = 0;
    for file in stored_files(live).with_context(|| live.display().to_string())? {
        if !wanted.contains(&file) {
            let path = live.join(&file);
            std::fs::remove_file(&path).with_context(|| path.display().to_string())?;
            removed += 1;
        }
    }
    Ok((brought, removed))
}

/// A backup's database and upload folder: a backup folder, or a database file alone.
fn parts_of(backup: &Path) -> anyhow::Result<(PathBuf, Option<PathBuf>)> {
    if backup.is_dir() {
        let database = backup.join(DATABASE_FILE);
        if !database.is_file() {
            bail!(
                "{} holds no {DATABASE_FILE}: not a backup",
                backup.display()
            );
        }
        let uploads = backup.join(UPLOADS);
        let is_folder = std::fs::symlink_metadata(&uploads).is_ok_and(|m| m.is_dir());
        if !is_folder && std::fs::symlink_metadata(&uploads).is_ok() {
            bail!("{}: not a folder", uploads.display());
        }
        Ok((database, is_folder.then_some(uploads)))
    } else if backup.is_file() {
        Ok((backup.to_path_buf(), None))
    } else {
        bail!("{}: no such backup", backup.display())
    }
}

/// `console-api restore <backup>`: replaces the embedded database and the local upload folder
/// with the backup's, after keeping the state it replaces (`DATA_DIR/backups/replaced-<time>`,
/// out of the rotation). The backup is checked whole before anything changes. Refused while a
/// process has the database open, for another deployment's database, and with MongoDB
/// (restored with its own tools).
///
/// # Errors
/// Why nothing, or not everything, was restored; the database is replaced whole or not at all.
pub async fn restore(settings: &Settings, backup: &Path) -> anyhow::Result<()> {
    if settings.mongodb_uri.is_some() {
        bail!(
            "MONGODB_URI is set: accounts and portfolios are in MongoDB; restore them with mongorestore (this command restores the embedded database and the uploaded files)"
        );
    }
    let (database, files) = parts_of(backup)?;
    let wanted = match &files {
        Some(files) => stored_files(files)
            .with_context(|| format!("{} cannot be restored", backup.display()))?,
        None => Vec::new(),
    };
    let live = settings.data_dir.join(DATABASE_FILE);
    println!(
        "restoring {} into {}",
        backup.display(),
        settings.data_dir.display()
    );
    let _hold = ExclusiveHold::try_take(&live)?.ok_or_else(|| {
        anyhow!(
            "{} is open in a running process (console-api, console-worker or console-scheduler): stop them first",
            live.display()
        )
    })?;
    let incoming = settings.data_dir.join(format!("{DATABASE_FILE}.restoring"));
    remove_if_present(&incoming)?;
    let restored_identity = copy_database(&database, &incoming)
        .with_context(|| format!("{} cannot be restored", database.display()))?;
    let live_identity = if live.exists() {
        database_identity(&live)?
    } else {
        None
    };
    if let (Some(restored), Some(current)) = (&restored_identity, &live_identity)
        && restored != current
    {
        remove_if_present(&incoming)?;
        bail!(
            "{} is another deployment's database (identity {restored}; this one's is {current}); to restore it here anyway, move {} away first",
            database.display(),
            live.display()
        );
    }
    let backups = Backups::of(settings);
    let kept = if live.exists() {
        let replaced = &live;
        let copy = |path: PathBuf| async move {
            copy_database(replaced, &path)
                .map(drop)
                .context("keeping the database being replaced")
        };
        let kept = backups.write(REPLACED, Utc::now(), copy).await?;
        println!("the state being replaced is kept in {}", kept.display());
        Some(kept)
    } else {
        None
    };
    std::fs::File::open(&incoming)?.sync_all()?;
    for stale in ["-wal", "-shm"] {
        remove_if_present(&settings.data_dir.join(format!("{DATABASE_FILE}{stale}")))?;
    }
    std::fs::rename(&incoming, &live).with_context(|| live.display().to_string())?;
    std::fs::File::open(&settings.data_dir)?.sync_all()?;
    println!("restored the database from {}", database.display());
    match (files, &backups.uploads) {
        (Some(files), Some(uploads)) => {
            let (brought, removed) = restore_tree(&files, &wanted, uploads).with_context(|| {
                format!(
                    "the database is restored, but not every file into {}{}",
                    uploads.display(),
                    kept.as_ref()
                        .map(|kept| format!(" (the state replaced is in {})", kept.display()))
                        .unwrap_or_default()
                )
            })?;
            println!(
                "restored the uploaded files into {}: {brought} brought back, {removed} newer ones removed",
                uploads.display()
            );
        }
        (Some(_), None) => println!(
            "the backup holds uploaded files, but uploads are kept in S3_BUCKET: they were left alone"
        ),
        (None, _) => {
            println!("the backup holds no uploaded files: the upload folder was left alone")
        }
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != ErrorKind::NotFound => {
            Err(error).with_context(|| path.display().to_string())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, file: &str, bytes: &[u8]) {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn restoring_a_tree_brings_back_the_backups_files_and_removes_newer_ones() {
        let (backup, live) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write(backup.path(), "u1/avatars/a.png", b"avatar");
        write(backup.path(), "u1/documents/cv.pdf", b"resume");
        write(live.path(), "u1/avatars/a.png", b"avatar");
        write(live.path(), "u2/avatars/new.png", b"after the backup");
        write(live.path(), ".staging/p1/upload", b"in flight");
        let wanted = stored_files(backup.path()).unwrap();
        let (brought, removed) = restore_tree(backup.path(), &wanted, live.path()).unwrap();
        assert_eq!((brought, removed), (1, 1));
        let mut files = stored_files(live.path()).unwrap();
        files.sort();
        assert_eq!(
            files,
            [
                PathBuf::from("u1/avatars/a.png"),
                PathBuf::from("u1/documents/cv.pdf")
            ]
        );
        assert_eq!(
            std::fs::read(live.path().join("u1/documents/cv.pdf")).unwrap(),
            b"resume"
        );
        assert!(live.path().join(".staging/p1/upload").exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_among_the_files_is_refused_not_followed() {
        let (backup, live) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write(backup.path(), "u1/avatars/a.png", b"avatar");
        std::os::unix::fs::symlink("/etc/passwd", backup.path().join("u1/avatars/b.png")).unwrap();
        let refused = stored_files(backup.path()).unwrap_err();
        assert!(
            refused.to_string().contains("not a regular file"),
            "{refused}"
        );
        assert!(link_tree(backup.path(), &live.path().join("copy")).is_err());
    }

    #[test]
    fn a_linked_tree_leaves_staging_out() {
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write(from.path(), "u1/avatars/a.png", b"avatar");
        write(from.path(), ".staging/p1/upload", b"in flight");
        let target = to.path().join("uploads");
        assert_eq!(link_tree(from.path(), &target).unwrap(), 1);
        assert_eq!(
            std::fs::read(target.join("u1/avatars/a.png")).unwrap(),
            b"avatar"
        );
        assert!(!target.join(".staging").exists());
    }
}
