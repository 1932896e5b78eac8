//! `MediaService`: every rule of an upload. The size limit counts bytes as they arrive; the
//! kind is decided from the first bytes (a refused kind is refused before the rest is read);
//! pictures are handed to the [`ImageProcessor`] and only its output is stored; documents are
//! stored as they came. Names start with a content hash and are never reused, so a URL never
//! changes content.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt as _};
use kernel::{StoreError, UserId};
use sha2::{Digest as _, Sha256};

use crate::key::{FileKey, Purpose, Variant};
use crate::kind::{Family, FileKind, SNIFF_LEN, Sniff};
use crate::ports::{FileBody, FileStore, ImageError, ImageJob, ImageProcessor, StoredFile};

/// What uploads may be, from configuration.
#[derive(Clone, Debug)]
pub struct MediaPolicy {
    /// Largest accepted picture, in bytes as uploaded.
    pub max_image_bytes: u64,
    /// Largest accepted document, in bytes.
    pub max_document_bytes: u64,
    /// Most pixels (width × height, over all frames) a picture may declare.
    pub max_image_pixels: u64,
    /// The kinds accepted at all; each route takes those of its family.
    pub allowed: Vec<FileKind>,
    /// The thumbnail's longest side, in pixels.
    pub thumbnail_side: u32,
    /// Most files one request may upload (`POST /upload/images`).
    pub max_files: usize,
    /// Most bytes one owner's stored files (thumbnails included) may take.
    pub quota_bytes: u64,
    /// The public base URL of stored files, without a trailing slash: a file's URL is
    /// `{base_url}/{key}`.
    pub base_url: String,
}

/// A stored upload, as the client is told about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    pub key: FileKey,
    pub url: String,
    pub thumbnail_url: Option<String>,
    pub kind: FileKind,
    /// Bytes of the stored file.
    pub size: u64,
    /// Pixels, for pictures.
    pub dimensions: Option<(u32, u32)>,
}

/// One of an owner's stored files, for their data export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaFile {
    pub url: String,
    pub key: FileKey,
    pub size: u64,
    pub modified: DateTime<Utc>,
}

/// Reading the upload itself failed (the client went away, the multipart body is malformed).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// More bytes than the route's limit; nothing past the limit was read.
    #[error("the file is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// The content is none of the kinds the route accepts.
    #[error("the file is not of an accepted type")]
    Unsupported { accepted: Vec<FileKind> },
    /// The file has no bytes.
    #[error("the file is empty")]
    Empty,
    /// A picture declaring more pixels than allowed (a decompression bomb, or just too big).
    #[error("the image has more than the {max} pixels allowed")]
    TooManyPixels { max: u64 },
    /// Its first bytes say picture, the rest is not one.
    #[error("the image cannot be decoded: {0}")]
    InvalidImage(String),
    /// The owner's stored files would take more than their quota.
    #[error("the owner's files would take more than the {quota} bytes allowed")]
    QuotaExceeded { quota: u64 },
    #[error("the upload could not be read: {0}")]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("image processing failed: {0}")]
    Processing(String),
}

impl From<ImageError> for MediaError {
    fn from(error: ImageError) -> Self {
        match error {
            ImageError::TooManyPixels { max } => Self::TooManyPixels { max },
            ImageError::Undecodable(reason) => Self::InvalidImage(reason),
            ImageError::Failed(reason) => Self::Processing(reason),
        }
    }
}

/// Uploads, the files behind them, and their removal.
#[derive(Clone)]
pub struct MediaService {
    store: Arc<dyn FileStore>,
    images: Arc<dyn ImageProcessor>,
    policy: MediaPolicy,
}

impl MediaService {
    pub fn new(
        store: Arc<dyn FileStore>,
        images: Arc<dyn ImageProcessor>,
        policy: MediaPolicy,
    ) -> Self {
        Self {
            store,
            images,
            policy,
        }
    }

    #[must_use]
    pub fn policy(&self) -> &MediaPolicy {
        &self.policy
    }

    /// The most bytes one file of `purpose` may have.
    #[must_use]
    pub fn max_bytes(&self, purpose: Purpose) -> u64 {
        match purpose.family() {
            Family::Image => self.policy.max_image_bytes,
            Family::Document => self.policy.max_document_bytes,
        }
    }

    /// The kinds `purpose` accepts.
    #[must_use]
    pub fn accepted(&self, purpose: Purpose) -> Vec<FileKind> {
        self.policy
            .allowed
            .iter()
            .copied()
            .filter(|kind| kind.family() == purpose.family())
            .collect()
    }

    /// The public URL of a stored file.
    #[must_use]
    pub fn url_of(&self, key: &FileKey) -> String {
        format!("{}/{key}", self.policy.base_url)
    }

    /// The key a URL of ours names.
    fn key_of_url(&self, url: &str) -> Option<FileKey> {
        let rest = url.strip_prefix(&self.policy.base_url)?.strip_prefix('/')?;
        FileKey::parse(rest)
    }

    /// Reads one file from `chunks` and stores it as `owner`'s file for `purpose`.
    ///
    /// # Errors
    /// [`MediaError::TooLarge`] as soon as the bytes pass the limit; [`MediaError::Unsupported`]
    /// as soon as the first bytes are of a kind the route does not accept;
    /// [`MediaError::Empty`]; [`MediaError::QuotaExceeded`] as soon as the owner's files would
    /// pass their quota (for pictures: as stored, with the thumbnail); for pictures
    /// [`MediaError::TooManyPixels`] and [`MediaError::InvalidImage`]; [`MediaError::Source`]
    /// when reading the upload failed. Nothing is stored then.
    #[tracing::instrument(skip_all, fields(purpose = purpose.folder()))]
    pub async fn upload<S>(
        &self,
        owner: &UserId,
        purpose: Purpose,
        chunks: S,
    ) -> Result<Upload, MediaError>
    where
        S: Stream<Item = Result<Bytes, SourceError>>,
    {
        let limit = self.max_bytes(purpose);
        let quota = self.policy.quota_bytes;
        let room = quota.saturating_sub(self.usage(owner).await?);
        let over_quota = |bytes: u64| bytes > room;
        let accepted = self.accepted(purpose);
        let mut staged = self.store.stage().await?;
        let mut head = Vec::with_capacity(SNIFF_LEN);
        let mut kind = None;
        let mut size = 0_u64;
        let mut hasher = Sha256::new();
        let mut chunks = std::pin::pin!(chunks);
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            size = size.saturating_add(chunk.len() as u64);
            if size > limit {
                return Err(MediaError::TooLarge { limit });
            }
            if over_quota(size) {
                return Err(MediaError::QuotaExceeded { quota });
            }
            if kind.is_none() {
                let wanted = (SNIFF_LEN - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..wanted]);
                kind = decide(&head, &accepted, false)?;
            }
            hasher.update(&chunk);
            staged.write(&chunk).await?;
        }
        let kind = match kind {
            Some(kind) => kind,
            None => decide(&head, &accepted, true)?.ok_or(MediaError::Empty)?,
        };
        if kind.family() == Family::Document {
            let key = FileKey::original(owner, purpose, &hex::encode(hasher.finalize()), kind);
            staged.commit(&key).await?;
            return Ok(Upload {
                url: self.url_of(&key),
                thumbnail_url: None,
                kind,
                size,
                dimensions: None,
                key,
            });
        }
        let source = staged.read_all().await?;
        drop(staged);
        let processed = self
            .images
            .process(ImageJob {
                source,
                kind,
                max_pixels: self.policy.max_image_pixels,
                max_side: purpose.max_side(),
                thumbnail_side: self.policy.thumbnail_side,
            })
            .await?;
        let image = processed.image;
        if over_quota((image.bytes.len() + processed.thumbnail.bytes.len()) as u64) {
            return Err(MediaError::QuotaExceeded { quota });
        }
        let key = FileKey::original(
            owner,
            purpose,
            &hex::encode(Sha256::digest(&image.bytes)),
            kind,
        );
        let thumbnail = key.thumbnail();
        // The thumbnail first: once an original is there, so is its thumbnail.
        self.store
            .put(&thumbnail, Bytes::from(processed.thumbnail.bytes))
            .await?;
        let size = image.bytes.len() as u64;
        self.store.put(&key, Bytes::from(image.bytes)).await?;
        Ok(Upload {
            url: self.url_of(&key),
            thumbnail_url: Some(self.url_of(&thumbnail)),
            kind,
            size,
            dimensions: Some((image.width, image.height)),
            key,
        })
    }

    /// Removes files stored moments ago by a request that then failed as a whole.
    pub async fn discard(&self, uploads: &[Upload]) {
        for upload in uploads {
            self.remove(&upload.key).await;
        }
    }

    /// After a field that pointed to `previous` was set to `current`'s URL: removes the file
    /// `previous` named, when it is `owner`'s file of the same purpose and not `current` itself.
    /// URLs of anything else are left alone.
    pub async fn discard_replaced(&self, owner: &UserId, previous: Option<&str>, current: &Upload) {
        let Some(old) = previous.and_then(|url| self.key_of_url(url)) else {
            return;
        };
        let replaced = old.owner == *owner
            && old.purpose == current.key.purpose
            && old.variant == Variant::Original
            && old != current.key;
        if replaced {
            self.remove(&old).await;
        }
    }

    /// Deletes an original and its thumbnail. A failure leaves an unreferenced file (erased
    /// with the account), so it is logged rather than failing a request that has succeeded.
    async fn remove(&self, key: &FileKey) {
        let mut keys = vec![key.clone()];
        if key.kind.family() == Family::Image {
            keys.push(key.thumbnail());
        }
        for key in keys {
            if let Err(error) = self.store.delete(&key).await {
                tracing::warn!(%error, %key, "could not delete a replaced file");
            }
        }
    }

    /// The bytes `owner`'s stored files take, thumbnails included.
    ///
    /// # Errors
    /// [`MediaError::Store`] when storage fails.
    pub async fn usage(&self, owner: &UserId) -> Result<u64, MediaError> {
        Ok(self
            .store
            .list(owner)
            .await?
            .iter()
            .map(|file| file.size)
            .sum())
    }

    /// Every file of `owner`, with its URL.
    ///
    /// # Errors
    /// [`MediaError::Store`] when storage fails.
    pub async fn files_of(&self, owner: &UserId) -> Result<Vec<MediaFile>, MediaError> {
        let mut files: Vec<MediaFile> = self
            .store
            .list(owner)
            .await?
            .into_iter()
            .map(
                |StoredFile {
                     key,
                     size,
                     modified,
                 }| MediaFile {
                    url: self.url_of(&key),
                    key,
                    size,
                    modified,
                },
            )
            .collect();
        files.sort_by(|a, b| a.url.cmp(&b.url));
        Ok(files)
    }

    /// Removes every file of `owner` (their account is being deleted). Idempotent.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when storage fails.
    pub async fn erase_files_of(&self, owner: &UserId) -> Result<(), StoreError> {
        self.store.delete_all_of(owner).await
    }

    /// The file a path under `/uploads/` names; `None` for a path that is not a name of ours
    /// (including any attempt to leave the store) or a file that is not there.
    ///
    /// # Errors
    /// [`MediaError::Store`] when storage fails.
    pub async fn open(&self, path: &str) -> Result<Option<(FileKey, FileBody)>, MediaError> {
        let Some(key) = FileKey::parse(path) else {
            return Ok(None);
        };
        Ok(self.store.open(&key).await?.map(|body| (key, body)))
    }
}

/// The kind `head` shows, if it is decided yet; `last`: no more bytes will come.
fn decide(head: &[u8], accepted: &[FileKind], last: bool) -> Result<Option<FileKind>, MediaError> {
    match FileKind::sniff(head) {
        Sniff::Known(kind) if accepted.contains(&kind) => Ok(Some(kind)),
        Sniff::NeedMore if !last && head.len() < SNIFF_LEN => Ok(None),
        _ if head.is_empty() => Err(MediaError::Empty),
        _ => Err(MediaError::Unsupported {
            accepted: accepted.to_vec(),
        }),
    }
}
