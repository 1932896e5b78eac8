//! `LocalFileStore`: the [`FileStore`] port on the local disk. A key is a relative path under
//! the root (`<owner>/<purpose>/<hash>.<ext>`); keys are parsed before they get here, so no
//! path from a request ever reaches the file system unchecked. Incoming files are written to
//! `.staging/` under the root and renamed into place (same file system, so the rename is
//! atomic: a reader sees the whole file or none). Files are 0600 and folders 0700: only this
//! process reads them, and serves them itself.
//!
//! Each process stages in a folder of its own under `.staging/` ([`Staging`], which the S3
//! store uses too), so that instances sharing the root never remove each other's uploads in
//! flight. A staged file is unlinked when dropped, so an abandoned upload leaves nothing; what a
//! crashed process left is removed by the next process to open the root, once older than an
//! hour (no upload lasts that long: `REQUEST_TIMEOUT` ends it). A committed file is synced to
//! disk before its rename.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use kernel::{StoreError, UserId};
use media_core::FileKey;
use media_core::ports::{FileBody, FileStore, StagedFile, StoredFile};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};

const STAGING: &str = ".staging";

pub struct LocalFileStore {
    root: PathBuf,
    staging: Staging,
}

impl LocalFileStore {
    /// Opens (creating) the store at `root`, with this process's staging folder in it.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the folders cannot be created.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        let staging = Staging::open(&root).await?;
        Ok(Self { root, staging })
    }

    fn path_of(&self, key: &FileKey) -> PathBuf {
        path_of(&self.root, key)
    }

    fn owner_dir(&self, owner: &UserId) -> PathBuf {
        self.root.join(owner.as_str())
    }
}

/// What a crashed process left in `.staging/` is removed once this old.
const STALE: std::time::Duration = std::time::Duration::from_secs(3600);

/// This process's folder for files being received: `<root>/.staging/<random>/`.
pub struct Staging {
    dir: PathBuf,
}

impl Staging {
    /// Creates this process's folder under `<root>/.staging/`, and removes what other
    /// processes left there more than an hour ago.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the folders cannot be created.
    pub async fn open(root: &Path) -> Result<Self, StoreError> {
        let staging = root.join(STAGING);
        create_private_dir(&staging).await?;
        let mut entries = tokio::fs::read_dir(&staging).await.map_err(backend)?;
        while let Some(entry) = entries.next_entry().await.map_err(backend)? {
            let stale = entry
                .metadata()
                .await
                .and_then(|m| m.modified())
                .is_ok_and(|at| at.elapsed().is_ok_and(|age| age > STALE));
            if stale {
                let path = entry.path();
                let _ = tokio::fs::remove_dir_all(&path).await;
                let _ = tokio::fs::remove_file(&path).await;
            }
        }
        let dir = staging.join(hex::encode(rand::random::<[u8; 8]>()));
        create_private_dir(&dir).await?;
        Ok(Self { dir })
    }

    /// A new, empty file, unlinked when dropped unless moved into place first.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when it cannot be created.
    pub async fn file(&self) -> Result<Staged, StoreError> {
        // Another process removes this folder once it has been idle an hour (creating a file
        // in it counts as use): made again when it is gone.
        create_private_dir(&self.dir).await?;
        let path = self
            .dir
            .join(format!("{}.part", hex::encode(rand::random::<[u8; 16]>())));
        let file = create_private_file(&path).await?;
        Ok(Staged {
            path,
            file: Some(file),
        })
    }
}

fn path_of(root: &Path, key: &FileKey) -> PathBuf {
    root.join(key.to_string())
}

fn backend(error: std::io::Error) -> StoreError {
    StoreError::backend(error)
}

async fn create_private_dir(path: &Path) -> Result<(), StoreError> {
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(path).await.map_err(backend)
}

async fn create_private_file(path: &Path) -> Result<tokio::fs::File, StoreError> {
    let mut options = tokio::fs::OpenOptions::new();
    options.read(true).write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path).await.map_err(backend)
}

/// A file being received, removed when dropped before it is moved into place.
pub struct Staged {
    path: PathBuf,
    file: Option<tokio::fs::File>,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.file.is_some() {
            // An unlink: quick enough to do in place, and it must happen even when the task
            // that owned the upload was cancelled.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Staged {
    fn file(&mut self) -> Result<&mut tokio::fs::File, StoreError> {
        self.file
            .as_mut()
            .ok_or_else(|| StoreError::message("staged file already committed"))
    }

    /// Appends a chunk.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the disk refuses it.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        self.file()?.write_all(chunk).await.map_err(backend)
    }

    /// Every byte written so far.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the disk refuses it.
    pub async fn read_all(&mut self) -> Result<Vec<u8>, StoreError> {
        let file = self.file()?;
        file.flush().await.map_err(backend)?;
        file.rewind().await.map_err(backend)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).await.map_err(backend)?;
        Ok(bytes)
    }

    /// Syncs the file and renames it to `target` (same file system: atomic).
    async fn move_to(mut self, target: &Path) -> Result<(), StoreError> {
        let file = self.file()?;
        file.flush().await.map_err(backend)?;
        file.sync_all().await.map_err(backend)?;
        if let Some(parent) = target.parent() {
            create_private_dir(parent).await?;
        }
        tokio::fs::rename(&self.path, target)
            .await
            .map_err(backend)?;
        // Moved: nothing left to remove.
        self.file = None;
        Ok(())
    }
}

/// A file being received into the local store.
struct LocalStaged {
    staged: Staged,
    root: PathBuf,
}

#[async_trait]
impl StagedFile for LocalStaged {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        self.staged.write(chunk).await
    }

    async fn read_all(&mut self) -> Result<Vec<u8>, StoreError> {
        self.staged.read_all().await
    }

    async fn commit(self: Box<Self>, key: &FileKey) -> Result<(), StoreError> {
        self.staged.move_to(&path_of(&self.root, key)).await
    }
}

#[async_trait]
impl FileStore for LocalFileStore {
    async fn stage(&self) -> Result<Box<dyn StagedFile>, StoreError> {
        Ok(Box::new(LocalStaged {
            staged: self.staging.file().await?,
            root: self.root.clone(),
        }))
    }

    #[tracing::instrument(skip_all, fields(%key))]
    async fn put(&self, key: &FileKey, bytes: Bytes) -> Result<(), StoreError> {
        let mut staged = self.stage().await?;
        staged.write(&bytes).await?;
        staged.commit(key).await
    }

    async fn open(&self, key: &FileKey) -> Result<Option<FileBody>, StoreError> {
        let file = match tokio::fs::File::open(self.path_of(key)).await {
            Ok(file) => file,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(backend(error)),
        };
        let size = file.metadata().await.map_err(backend)?.len();
        let chunks = tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024)
            .map(|chunk| chunk.map_err(backend));
        Ok(Some(FileBody {
            size,
            chunks: Box::pin(chunks),
        }))
    }

    async fn delete(&self, key: &FileKey) -> Result<(), StoreError> {
        match tokio::fs::remove_file(self.path_of(key)).await {
            Err(error) if error.kind() != ErrorKind::NotFound => Err(backend(error)),
            _ => Ok(()),
        }
    }

    async fn list(&self, owner: &UserId) -> Result<Vec<StoredFile>, StoreError> {
        let mut files = Vec::new();
        let mut folders = match tokio::fs::read_dir(self.owner_dir(owner)).await {
            Ok(folders) => folders,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(files),
            Err(error) => return Err(backend(error)),
        };
        while let Some(folder) = folders.next_entry().await.map_err(backend)? {
            if !folder.file_type().await.map_err(backend)?.is_dir() {
                continue;
            }
            let mut entries = tokio::fs::read_dir(folder.path()).await.map_err(backend)?;
            while let Some(entry) = entries.next_entry().await.map_err(backend)? {
                let name = format!(
                    "{owner}/{}/{}",
                    folder.file_name().to_string_lossy(),
                    entry.file_name().to_string_lossy()
                );
                let Some(key) = FileKey::parse(&name) else {
                    continue;
                };
                let metadata = entry.metadata().await.map_err(backend)?;
                files.push(StoredFile {
                    key,
                    size: metadata.len(),
                    modified: metadata
                        .modified()
                        .map(DateTime::<Utc>::from)
                        .unwrap_or(DateTime::UNIX_EPOCH),
                });
            }
        }
        Ok(files)
    }

    async fn delete_all_of(&self, owner: &UserId) -> Result<(), StoreError> {
        match tokio::fs::remove_dir_all(self.owner_dir(owner)).await {
            Err(error) if error.kind() != ErrorKind::NotFound => Err(backend(error)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use media_core::{FileKind, Purpose};

    use super::*;

    fn owner() -> UserId {
        UserId::parse("0123456789abcdef01234567").unwrap_or_else(|e| panic!("{e}"))
    }

    fn key(hash_digit: char, purpose: Purpose, kind: FileKind) -> FileKey {
        FileKey::original(&owner(), purpose, &hash_digit.to_string().repeat(32), kind)
    }

    port_contracts::file_store_contract!(|| async {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = LocalFileStore::open(dir.path())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        (dir, store)
    });

    fn staged_files(root: &Path) -> usize {
        walk(&root.join(STAGING))
    }

    fn walk(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            walk(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn an_abandoned_upload_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = LocalFileStore::open(dir.path())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut staged = store.stage().await.unwrap_or_else(|e| panic!("{e}"));
        staged
            .write(b"partial")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(staged_files(dir.path()), 1);
        drop(staged);
        assert_eq!(staged_files(dir.path()), 0);
    }

    #[tokio::test]
    async fn an_instance_sharing_the_folder_keeps_the_others_uploads_and_clears_stale_ones() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let one = LocalFileStore::open(dir.path())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut in_flight = one.stage().await.unwrap_or_else(|e| panic!("{e}"));
        in_flight
            .write(b"uploading")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // What a crashed process left two hours ago.
        let crashed = dir.path().join(STAGING).join("crashed");
        std::fs::create_dir(&crashed).unwrap_or_else(|e| panic!("{e}"));
        let left = crashed.join("old.part");
        std::fs::write(&left, b"x").unwrap_or_else(|e| panic!("{e}"));
        let two_hours_ago = std::time::SystemTime::now() - 2 * STALE;
        for path in [&left, &crashed] {
            std::fs::File::open(path)
                .and_then(|f| f.set_modified(two_hours_ago))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let _two = LocalFileStore::open(dir.path())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!crashed.exists(), "a stale folder is removed");
        assert_eq!(
            in_flight.read_all().await.unwrap_or_else(|e| panic!("{e}")),
            b"uploading",
            "the other instance's upload in flight is kept"
        );
        let key = key('e', Purpose::Document, FileKind::Pdf);
        in_flight
            .commit(&key)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(dir.path().join(key.to_string()).exists());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn stored_files_are_private_to_the_process() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = LocalFileStore::open(dir.path())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let image = key('c', Purpose::Avatar, FileKind::Jpeg);
        store
            .put(&image, Bytes::from_static(b"jpeg"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mode = std::fs::metadata(dir.path().join(image.to_string()))
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_default();
        assert_eq!(mode, 0o600);
    }
}
