//! The roles media needs from the outside: somewhere to keep files ([`FileStore`]) and
//! something that decodes and re-encodes pictures ([`ImageProcessor`]).
//!
//! Two adapters implement `FileStore`, and pass one contract suite (`file_store_contract!`):
//! files-local (a folder) and files-s3 (an S3-compatible bucket: `stage` is a local file, `put`
//! and `commit` a `PutObject`, `open` a streamed `GetObject`, `list` and `delete_all_of` go by
//! `FileKey::owner_prefix`). `app/src/media.rs` chooses. Names, URLs, export and deletion go
//! through the port, and `/uploads/…` serves whatever the port opens (or is left to a CDN).

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::Stream;
use kernel::{StoreError, UserId};

use crate::key::FileKey;
use crate::kind::FileKind;

/// A file's bytes as they are read, chunk by chunk.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, StoreError>> + Send>>;

/// A stored file, ready to be sent.
pub struct FileBody {
    pub size: u64,
    pub chunks: ByteStream,
}

/// One entry of an owner's files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFile {
    pub key: FileKey,
    pub size: u64,
    pub modified: DateTime<Utc>,
}

/// Where uploaded files are kept, by [`FileKey`]. A key is written once and never holds other
/// content. An implementation keeps no other index: listing and
/// erasing an owner's files work by the key prefix [`FileKey::owner_prefix`] (a directory on
/// disk, a key prefix in an object store).
#[async_trait]
pub trait FileStore: Send + Sync {
    /// A place for the bytes of one incoming file, written as they arrive, before its name
    /// (which depends on its content) is known.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn stage(&self) -> Result<Box<dyn StagedFile>, StoreError>;

    /// Stores `bytes` under `key`, replacing what was there; readers never see a partial file.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn put(&self, key: &FileKey, bytes: Bytes) -> Result<(), StoreError>;

    /// The file under `key`; `None` when there is none.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn open(&self, key: &FileKey) -> Result<Option<FileBody>, StoreError>;

    /// Removes the file under `key`; a missing file is not an error.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn delete(&self, key: &FileKey) -> Result<(), StoreError>;

    /// Every file of `owner` (entries whose names are not keys are left out).
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn list(&self, owner: &UserId) -> Result<Vec<StoredFile>, StoreError>;

    /// Removes every file of `owner`. Idempotent.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn delete_all_of(&self, owner: &UserId) -> Result<(), StoreError>;
}

/// The bytes of one incoming file. Dropped without [`StagedFile::commit`], it leaves nothing
/// behind (an upload that fails or whose client goes away costs no storage).
#[async_trait]
pub trait StagedFile: Send {
    /// Appends a chunk.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError>;

    /// Every byte written so far.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn read_all(&mut self) -> Result<Vec<u8>, StoreError>;

    /// Stores the bytes under `key` (as [`FileStore::put`] would) and releases the staging place.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn commit(self: Box<Self>, key: &FileKey) -> Result<(), StoreError>;
}

/// What to make of an uploaded picture.
#[derive(Clone, Debug)]
pub struct ImageJob {
    /// The uploaded bytes.
    pub source: Vec<u8>,
    /// The kind its first bytes say it is.
    pub kind: FileKind,
    /// More pixels than this (width × height, over all frames of an animation) and the image
    /// is refused before it is decoded: a few kilobytes can declare gigabytes of pixels.
    pub max_pixels: u64,
    /// The stored image's longest side; larger ones are scaled down.
    pub max_side: u32,
    /// The thumbnail's longest side.
    pub thumbnail_side: u32,
}

/// An encoded picture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedImage {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// The stored image and its thumbnail, both of [`ImageJob::kind`], upright (EXIF orientation
/// applied) and without any metadata (EXIF, GPS, XMP, ICC profiles, text chunks, comments).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessedImage {
    pub image: EncodedImage,
    pub thumbnail: EncodedImage,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The image declares more pixels than allowed.
    #[error("the image has more than the {max} pixels allowed")]
    TooManyPixels { max: u64 },
    /// The bytes start like the kind but are not a decodable image of it.
    #[error("the image cannot be decoded: {0}")]
    Undecodable(String),
    /// Encoding or the worker pool failed.
    #[error("image processing failed: {0}")]
    Failed(String),
}

/// Decodes, orients, strips and re-encodes pictures. Implementations keep the work off the
/// async executor and bound how much of it runs at once.
#[async_trait]
pub trait ImageProcessor: Send + Sync {
    /// # Errors
    /// [`ImageError::TooManyPixels`] before decoding a too-large image,
    /// [`ImageError::Undecodable`] for content that is not a valid image of its kind,
    /// [`ImageError::Failed`] otherwise.
    async fn process(&self, job: ImageJob) -> Result<ProcessedImage, ImageError>;
}
