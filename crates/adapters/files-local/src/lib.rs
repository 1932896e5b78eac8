//! `LocalFileStore`: the [`FileStore`] port on the local disk. A key is a relative path under
//! the root (`<owner>/<purpose>/<hash>.<ext>`); keys are parsed before they get here, so no
//! path from a request ever reaches the file system unchecked. Incoming files are written to
//! `.staging/` under the root and renamed into place (same file system, so the rename is
//! atomic: a reader sees the whole file or none). Files are 0600 and folders 0700: only this
//! process reads them, and serves them itself.
//!
//! The staging folder is emptied at start, and a staged file is unlinked when dropped, so an
//! abandoned upload leaves nothing; a committed file is synced to disk before its rename.

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
}

impl LocalFileStore {
    /// Opens (creating) the store at `root` and removes what interrupted uploads left in its
    /// staging folder.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the folders cannot be created.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        let staging = root.join(STAGING);
        create_private_dir(&staging).await?;
        let mut entries = tokio::fs::read_dir(&staging).await.map_err(backend)?;
        while let Some(entry) = entries.next_entry().await.map_err(backend)? {
            let _ = tokio::fs::remove_file(entry.path()).await;
        }
        Ok(Self { root })
    }

    fn path_of(&self, key: &FileKey) -> PathBuf {
        path_of(&self.root, key)
    }

    fn owner_dir(&self, owner: &UserId) -> PathBuf {
        self.root.join(owner.as_str())
    }

    fn staging_path(&self) -> PathBuf {
        let name = hex::encode(rand::random::<[u8; 16]>());
        self.root.join(STAGING).join(format!("{name}.part"))
    }
}

fn path_of(root: &Path, key: &FileKey) -> PathBuf {
    root.join(key.to_string())
}

/// Moves a finished file into place under `key`.
async fn install(root: &Path, from: &Path, key: &FileKey) -> Result<(), StoreError> {
    let target = path_of(root, key);
    if let Some(parent) = target.parent() {
        create_private_dir(parent).await?;
    }
    tokio::fs::rename(from, &target).await.map_err(backend)
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

/// A file being received, removed when dropped before it is committed.
struct LocalStaged {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    root: PathBuf,
}

impl Drop for LocalStaged {
    fn drop(&mut self) {
        if self.file.is_some() {
            // An unlink: quick enough to do in place, and it must happen even when the task
            // that owned the upload was cancelled.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl LocalStaged {
    fn file(&mut self) -> Result<&mut tokio::fs::File, StoreError> {
        self.file
            .as_mut()
            .ok_or_else(|| StoreError::message("staged file already committed"))
    }
}

#[async_trait]
impl StagedFile for LocalStaged {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        self.file()?.write_all(chunk).await.map_err(backend)
    }

    async fn read_all(&mut self) -> Result<Vec<u8>, StoreError> {
        let file = self.file()?;
        file.flush().await.map_err(backend)?;
        file.rewind().await.map_err(backend)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).await.map_err(backend)?;
        Ok(bytes)
    }

    async fn commit(mut self: Box<Self>, key: &FileKey) -> Result<(), StoreError> {
        let file = self.file()?;
        file.flush().await.map_err(backend)?;
        file.sync_all().await.map_err(backend)?;
        install(&self.root, &self.path, key).await?;
        // Committed: nothing left to remove.
        self.file = None;
        Ok(())
    }
}

#[async_trait]
impl FileStore for LocalFileStore {
    async fn stage(&self) -> Result<Box<dyn StagedFile>, StoreError> {
        let path = self.staging_path();
        let file = create_private_file(&path).await?;
        Ok(Box::new(LocalStaged {
            path,
            file: Some(file),
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

    async fn read(store: &LocalFileStore, key: &FileKey) -> Option<Vec<u8>> {
        let body = store.open(key).await.unwrap_or_else(|e| panic!("{e}"))?;
        let mut bytes = Vec::new();
        let mut chunks = body.chunks;
        while let Some(chunk) = chunks.next().await {
            bytes.extend_from_slice(&chunk.unwrap_or_else(|e| panic!("{e}")));
        }
        assert_eq!(bytes.len() as u64, body.size);
        Some(bytes)
    }

    #[tokio::test]
    async fn files_are_stored_read_listed_and_removed_by_key() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = LocalFileStore::open(dir.path())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let image = key('a', Purpose::Image, FileKind::Png);
        let resume = key('b', Purpose::Resume, FileKind::Pdf);
        store
            .put(&image, Bytes::from_static(b"png bytes"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut staged = store.stage().await.unwrap_or_else(|e| panic!("{e}"));
        staged
            .write(b"%PDF-")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        staged.write(b"1.7").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            staged.read_all().await.unwrap_or_else(|e| panic!("{e}")),
            b"%PDF-1.7"
        );
        staged
            .commit(&resume)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            read(&store, &image).await.as_deref(),
            Some(&b"png bytes"[..])
        );
        assert_eq!(
            read(&store, &resume).await.as_deref(),
            Some(&b"%PDF-1.7"[..])
        );
        let mut listed: Vec<String> = store
            .list(&owner())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|file| file.key.to_string())
            .collect();
        listed.sort();
        assert_eq!(listed, [image.to_string(), resume.to_string()]);
        store.delete(&image).await.unwrap_or_else(|e| panic!("{e}"));
        store.delete(&image).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(read(&store, &image).await.is_none());
        store
            .delete_all_of(&owner())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        store
            .delete_all_of(&owner())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            store
                .list(&owner())
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .is_empty()
        );
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
        drop(staged);
        let left = std::fs::read_dir(dir.path().join(STAGING))
            .map(Iterator::count)
            .unwrap_or(usize::MAX);
        assert_eq!(left, 0);
        // What a crash left is cleared at the next start.
        std::fs::write(dir.path().join(STAGING).join("old.part"), b"x")
            .unwrap_or_else(|e| panic!("{e}"));
        LocalFileStore::open(dir.path())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            std::fs::read_dir(dir.path().join(STAGING))
                .map(Iterator::count)
                .ok(),
            Some(0)
        );
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
