//! The upload rules against an in-memory store and a stand-in image processor.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream;
use kernel::{StoreError, UserId};
use media_core::ports::{
    EncodedImage, FileBody, ImageError, ImageJob, ProcessedImage, StagedFile, StoredFile,
};
use media_core::{
    FileKey, FileKind, FileStore, ImageProcessor, MediaError, MediaPolicy, MediaService, Purpose,
    SourceError,
};

#[derive(Default)]
struct MemoryFiles {
    files: Mutex<BTreeMap<String, Bytes>>,
    staged_alive: Arc<AtomicUsize>,
}

impl MemoryFiles {
    fn names(&self) -> Vec<String> {
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }
}

struct MemoryStaged {
    bytes: Vec<u8>,
    alive: Arc<AtomicUsize>,
    target: Arc<MemoryFiles>,
}

impl Drop for MemoryStaged {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl StagedFile for MemoryStaged {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }
    async fn read_all(&mut self) -> Result<Vec<u8>, StoreError> {
        Ok(self.bytes.clone())
    }
    async fn commit(self: Box<Self>, key: &FileKey) -> Result<(), StoreError> {
        self.target.put(key, Bytes::from(self.bytes.clone())).await
    }
}

/// The store as the service sees it, shared so tests can look inside.
struct Shared(Arc<MemoryFiles>);

#[async_trait]
impl FileStore for Shared {
    async fn stage(&self) -> Result<Box<dyn StagedFile>, StoreError> {
        self.0.staged_alive.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(MemoryStaged {
            bytes: Vec::new(),
            alive: Arc::clone(&self.0.staged_alive),
            target: Arc::clone(&self.0),
        }))
    }
    async fn put(&self, key: &FileKey, bytes: Bytes) -> Result<(), StoreError> {
        self.0.put(key, bytes).await
    }
    async fn open(&self, key: &FileKey) -> Result<Option<FileBody>, StoreError> {
        self.0.open(key).await
    }
    async fn delete(&self, key: &FileKey) -> Result<(), StoreError> {
        self.0.delete(key).await
    }
    async fn list(&self, owner: &UserId) -> Result<Vec<StoredFile>, StoreError> {
        self.0.list(owner).await
    }
    async fn delete_all_of(&self, owner: &UserId) -> Result<(), StoreError> {
        self.0.delete_all_of(owner).await
    }
}

#[async_trait]
impl FileStore for MemoryFiles {
    async fn stage(&self) -> Result<Box<dyn StagedFile>, StoreError> {
        Err(StoreError::message("stage through Shared"))
    }
    async fn put(&self, key: &FileKey, bytes: Bytes) -> Result<(), StoreError> {
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_string(), bytes);
        Ok(())
    }
    async fn open(&self, key: &FileKey) -> Result<Option<FileBody>, StoreError> {
        let found = self
            .files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key.to_string())
            .cloned();
        Ok(found.map(|bytes| FileBody {
            size: bytes.len() as u64,
            chunks: Box::pin(stream::iter([Ok(bytes)])),
        }))
    }
    async fn delete(&self, key: &FileKey) -> Result<(), StoreError> {
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key.to_string());
        Ok(())
    }
    async fn list(&self, owner: &UserId) -> Result<Vec<StoredFile>, StoreError> {
        let prefix = FileKey::owner_prefix(owner);
        Ok(self
            .files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(name, _)| name.starts_with(&prefix))
            .filter_map(|(name, bytes)| {
                Some(StoredFile {
                    key: FileKey::parse(name)?,
                    size: bytes.len() as u64,
                    modified: chrono::DateTime::UNIX_EPOCH,
                })
            })
            .collect())
    }
    async fn delete_all_of(&self, owner: &UserId) -> Result<(), StoreError> {
        let prefix = FileKey::owner_prefix(owner);
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|name, _| !name.starts_with(&prefix));
        Ok(())
    }
}

/// "Re-encodes" by prefixing the source with a marker, so stored bytes show they went through.
struct MarkingProcessor;

#[async_trait]
impl ImageProcessor for MarkingProcessor {
    async fn process(&self, job: ImageJob) -> Result<ProcessedImage, ImageError> {
        if job.source.len() > 1000 {
            return Err(ImageError::TooManyPixels {
                max: job.max_pixels,
            });
        }
        let mut bytes = b"processed:".to_vec();
        bytes.extend_from_slice(&job.source);
        Ok(ProcessedImage {
            image: EncodedImage {
                bytes,
                width: 4,
                height: 3,
            },
            thumbnail: EncodedImage {
                bytes: b"thumb".to_vec(),
                width: 2,
                height: 1,
            },
        })
    }
}

fn service() -> (MediaService, Arc<MemoryFiles>) {
    let files = Arc::new(MemoryFiles::default());
    let service = MediaService::new(
        Arc::new(Shared(Arc::clone(&files))),
        Arc::new(MarkingProcessor),
        MediaPolicy {
            max_image_bytes: 2000,
            max_document_bytes: 100,
            max_image_pixels: 1_000_000,
            allowed: FileKind::ALL.to_vec(),
            thumbnail_side: 320,
            max_files: 3,
            quota_bytes: 10_000,
            base_url: "https://api.example/uploads".to_owned(),
        },
    );
    (service, files)
}

fn owner() -> UserId {
    UserId::parse("0123456789abcdef01234567").unwrap_or_else(|e| panic!("{e}"))
}

fn chunks(parts: &[&[u8]]) -> impl futures_util::Stream<Item = Result<Bytes, SourceError>> + use<> {
    let parts: Vec<Result<Bytes, SourceError>> = parts
        .iter()
        .map(|part| Ok(Bytes::copy_from_slice(part)))
        .collect();
    stream::iter(parts)
}

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF\n";

#[tokio::test]
async fn a_document_is_stored_as_sent_under_its_content_hash() {
    let (service, files) = service();
    let upload = service
        .upload(&owner(), Purpose::Document, chunks(&[&PDF[..3], &PDF[3..]]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(upload.kind, FileKind::Pdf);
    assert_eq!(upload.size, PDF.len() as u64);
    assert!(upload.thumbnail_url.is_none() && upload.dimensions.is_none());
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(PDF));
    let expected = format!(
        "https://api.example/uploads/0123456789abcdef01234567/documents/{}",
        &hash[..24]
    );
    assert!(
        upload.url.starts_with(&expected) && upload.url.ends_with(".pdf"),
        "{}",
        upload.url
    );
    assert_eq!(files.names(), [upload.key.to_string()]);
}

#[tokio::test]
async fn a_picture_is_stored_only_as_the_processor_made_it_with_its_thumbnail() {
    let (service, files) = service();
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    let upload = service
        .upload(&owner(), Purpose::Image, chunks(&[png]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (upload.kind, upload.dimensions),
        (FileKind::Png, Some((4, 3)))
    );
    let stored = files
        .files
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&upload.key.to_string())
        .cloned()
        .unwrap_or_default();
    assert!(stored.starts_with(b"processed:"), "{stored:?}");
    assert_eq!(
        files.names(),
        [upload.key.thumbnail().to_string(), upload.key.to_string()]
    );
    assert!(
        upload
            .thumbnail_url
            .is_some_and(|url| url.ends_with("-thumb.png"))
    );
}

#[tokio::test]
async fn the_limit_stops_reading_at_the_first_chunk_past_it() {
    let (service, files) = service();
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let endless = stream::repeat_with(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(Bytes::from_static(
            b"%PDF-0123456789012345678901234567890123456789",
        ))
    });
    let outcome = service.upload(&owner(), Purpose::Resume, endless).await;
    assert!(matches!(outcome, Err(MediaError::TooLarge { limit: 100 })));
    assert_eq!(pulled.load(Ordering::SeqCst), 3, "45 + 45 + 45 > 100");
    assert!(files.names().is_empty());
    assert_eq!(files.staged_alive.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_owners_files_stay_within_the_quota_and_others_are_counted_apart() {
    let (service, files) = service();
    let service = MediaService::new(
        Arc::new(Shared(Arc::clone(&files))),
        Arc::new(MarkingProcessor),
        MediaPolicy {
            quota_bytes: 2 * PDF.len() as u64 + 10,
            ..service.policy().clone()
        },
    );
    let other = UserId::parse("fedcba9876543210fedcba98").unwrap_or_else(|e| panic!("{e}"));
    for owner in [owner(), other.clone()] {
        for part in [PDF, b"%PDF-1.4\n2 0 obj<<>>endobj\n%%EOF\n"] {
            service
                .upload(&owner, Purpose::Document, chunks(&[part]))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    assert!(service.usage(&owner()).await.unwrap_or_default() > 2 * PDF.len() as u64 - 2);
    let third = service
        .upload(
            &owner(),
            Purpose::Document,
            chunks(&[b"%PDF-1.4\n3 0 obj<<>>endobj\n%%EOF\n"]),
        )
        .await;
    assert!(
        matches!(third, Err(MediaError::QuotaExceeded { .. })),
        "{third:?}"
    );
    assert_eq!(files.names().len(), 4, "nothing more stored");
    assert_eq!(files.staged_alive.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_refused_kind_is_refused_at_its_first_bytes() {
    let (service, files) = service();
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let html = stream::repeat_with(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(Bytes::from_static(b"<html><body>"))
    });
    let outcome = service.upload(&owner(), Purpose::Image, html).await;
    assert!(matches!(outcome, Err(MediaError::Unsupported { .. })));
    assert_eq!(pulled.load(Ordering::SeqCst), 1);
    // A PDF where a picture is expected, and a picture where a document is.
    let pdf = service
        .upload(&owner(), Purpose::UserAvatar, chunks(&[PDF]))
        .await;
    assert!(matches!(pdf, Err(MediaError::Unsupported { accepted }) if accepted.len() == 4));
    let gif = service
        .upload(
            &owner(),
            Purpose::ProfileResume,
            chunks(&[b"GIF89a\x01\0\x01\0"]),
        )
        .await;
    assert!(
        matches!(gif, Err(MediaError::Unsupported { accepted }) if accepted == [FileKind::Pdf])
    );
    assert!(files.names().is_empty());
}

#[tokio::test]
async fn kinds_left_out_by_configuration_are_refused() {
    let (service, _) = service();
    let service = MediaService::new(
        Arc::new(Shared(Arc::new(MemoryFiles::default()))),
        Arc::new(MarkingProcessor),
        MediaPolicy {
            allowed: vec![FileKind::Jpeg, FileKind::Pdf],
            ..service.policy().clone()
        },
    );
    let png = service
        .upload(
            &owner(),
            Purpose::Image,
            chunks(&[b"\x89PNG\r\n\x1a\n\0\0\0\r"]),
        )
        .await;
    assert!(
        matches!(png, Err(MediaError::Unsupported { accepted }) if accepted == [FileKind::Jpeg])
    );
}

#[tokio::test]
async fn empty_and_too_short_files_are_refused() {
    let (service, _) = service();
    let empty = service.upload(&owner(), Purpose::Image, chunks(&[])).await;
    assert!(matches!(empty, Err(MediaError::Empty)));
    let short = service
        .upload(&owner(), Purpose::Image, chunks(&[&[0xFF, 0xD8]]))
        .await;
    assert!(matches!(short, Err(MediaError::Unsupported { .. })));
}

#[tokio::test]
async fn a_bomb_reported_by_the_processor_stores_nothing() {
    let (service, files) = service();
    let mut big = b"GIF89a".to_vec();
    big.resize(1500, 0);
    let outcome = service
        .upload(&owner(), Purpose::Image, chunks(&[&big]))
        .await;
    assert!(matches!(outcome, Err(MediaError::TooManyPixels { .. })));
    assert!(files.names().is_empty());
    assert_eq!(files.staged_alive.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn replacing_removes_only_the_owners_previous_file_of_that_purpose() {
    let (service, files) = service();
    let first = service
        .upload(&owner(), Purpose::UserAvatar, chunks(&[b"GIF89a-first"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let elsewhere = service
        .upload(&owner(), Purpose::Image, chunks(&[b"GIF89a-first"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let second = service
        .upload(&owner(), Purpose::UserAvatar, chunks(&[b"GIF89a-second"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Foreign URLs and another purpose's file are never touched.
    service
        .discard_replaced(&owner(), Some("https://elsewhere.example/a.png"), &second)
        .await;
    service
        .discard_replaced(&owner(), Some(&elsewhere.url), &second)
        .await;
    let other = UserId::parse("aaaaaaaaaaaaaaaaaaaaaaaa").unwrap_or_else(|e| panic!("{e}"));
    service
        .discard_replaced(&other, Some(&first.url), &second)
        .await;
    assert_eq!(files.names().len(), 6);
    assert_ne!(
        first.key.hash, elsewhere.key.hash,
        "the same bytes twice are two files"
    );
    // The same file again is not a replacement.
    service
        .discard_replaced(&owner(), Some(&second.url), &second)
        .await;
    assert_eq!(files.names().len(), 6);
    service
        .discard_replaced(&owner(), Some(&first.url), &second)
        .await;
    let names = files.names();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.contains(&first.key.hash) && n.contains("user-avatar"))
    );
}

#[tokio::test]
async fn an_owners_files_are_listed_and_erased_together() {
    let (service, _) = service();
    service
        .upload(&owner(), Purpose::Resume, chunks(&[PDF]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    service
        .upload(&owner(), Purpose::Avatar, chunks(&[b"GIF89a-x"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let listed = service
        .files_of(&owner())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listed.len(), 3);
    assert!(
        listed
            .iter()
            .all(|f| f.url.starts_with("https://api.example/uploads/0123"))
    );
    service
        .erase_files_of(&owner())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        service
            .files_of(&owner())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty()
    );
}

#[tokio::test]
async fn opening_a_path_that_is_not_a_name_of_ours_finds_nothing() {
    let (service, _) = service();
    for path in [
        "../data/console.db",
        "0123456789abcdef01234567/../../etc/passwd",
        "",
    ] {
        assert!(
            service
                .open(path)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .is_none()
        );
    }
}
