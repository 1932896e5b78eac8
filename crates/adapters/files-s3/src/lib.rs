//! `S3FileStore`: the [`FileStore`] port on an S3-compatible bucket (AWS S3, MinIO, R2, …)
//! through `object_store`, so that every instance reads and writes the same files. A key is
//! the object's name under an optional prefix (`<prefix>/<owner>/<purpose>/<hash>.<ext>`);
//! listing and erasing an owner's files go by the owner's prefix.
//!
//! Incoming files are staged on this process's disk (`files_local::Staging`, under
//! `DATA_DIR`), then written with one `PutObject`: S3 makes an object visible whole or not at
//! all, so a reader never sees a partial file. TLS is rustls on ring, as everywhere else.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use files_local::{Staged, Staging};
use futures_util::{StreamExt as _, TryStreamExt as _};
use kernel::{StoreError, UserId};
use media_core::FileKey;
use media_core::ports::{FileBody, FileStore, StagedFile, StoredFile};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientConfigKey, ObjectStore as _, ObjectStoreExt as _, PutPayload, RetryConfig,
};
use secrecy::{ExposeSecret as _, SecretString};

/// Where the bucket is and how to sign for it.
#[derive(Clone, Debug)]
pub struct S3Settings {
    pub bucket: String,
    pub region: String,
    /// An S3-compatible service's URL; `None`: AWS.
    pub endpoint: Option<String>,
    /// `None`: the usual AWS sources (environment, web identity, instance metadata).
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<SecretString>,
    /// Names objects under this prefix (no leading or trailing `/`); empty: at the root.
    pub prefix: String,
    /// `https://endpoint/bucket/key` rather than `https://bucket.endpoint/key`.
    pub path_style: bool,
}

/// After this long no retry starts (one that started may take its own read timeout).
const RETRY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

pub struct S3FileStore {
    bucket: Arc<AmazonS3>,
    prefix: String,
    staging: Staging,
}

fn backend(error: object_store::Error) -> StoreError {
    StoreError::backend(error)
}

impl S3FileStore {
    /// A store on `settings`' bucket, staging under `staging_root`. Nothing is asked of the
    /// bucket yet: a wrong name or key shows at the first request (and in readiness).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the settings are unusable or the staging folder cannot be
    /// made.
    pub async fn open(settings: &S3Settings, staging_root: &Path) -> Result<Self, StoreError> {
        // object_store's HTTP client takes the process's rustls provider: ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::from_env()
            // A bucket that hangs must not hold requests (and their sockets) for minutes: the
            // client's defaults wait 30 s an attempt and retry for 3 minutes. The wait is on
            // each read (a slow client's download must not be cut off by a total), and only
            // these three of the client's settings are set: AWS_* ones (a proxy) stay.
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                "3s",
            )
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ReadTimeout),
                "10s",
            )
            .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), "1h")
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 2,
                retry_timeout: RETRY_TIMEOUT,
            })
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_virtual_hosted_style_request(!settings.path_style);
        if let Some(endpoint) = &settings.endpoint {
            builder = builder
                .with_allow_http(endpoint.starts_with("http://"))
                .with_endpoint(endpoint);
        }
        if let (Some(id), Some(secret)) = (&settings.access_key_id, &settings.secret_access_key) {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret.expose_secret());
        }
        Ok(Self {
            bucket: Arc::new(builder.build().map_err(backend)?),
            prefix: settings.prefix.trim_matches('/').to_owned(),
            staging: Staging::open(staging_root).await?,
        })
    }

    /// Whether the bucket answers, and this process may read it: a `HEAD` of a name no key
    /// takes, which must say "not found".
    ///
    /// # Errors
    /// [`StoreError::Backend`] with the service's answer otherwise.
    pub async fn reachable(&self) -> Result<(), StoreError> {
        match self.bucket.head(&self.name(".readiness")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(backend(error)),
        }
    }

    fn name(&self, relative: &str) -> ObjectPath {
        object_name(&self.prefix, relative)
    }

    fn path_of(&self, key: &FileKey) -> ObjectPath {
        self.name(&key.to_string())
    }

    /// The key an object's name stands for; `None` for names that are not keys.
    fn key_of(&self, name: &ObjectPath) -> Option<FileKey> {
        let name = name.as_ref();
        let relative = if self.prefix.is_empty() {
            name
        } else {
            name.strip_prefix(&self.prefix)?.strip_prefix('/')?
        };
        FileKey::parse(relative)
    }

    async fn list_of(&self, owner: &UserId) -> Result<Vec<object_store::ObjectMeta>, StoreError> {
        self.bucket
            .list(Some(&self.name(owner.as_str())))
            .try_collect()
            .await
            .map_err(backend)
    }
}

/// The object `relative` names under `prefix`.
fn object_name(prefix: &str, relative: &str) -> ObjectPath {
    if prefix.is_empty() {
        ObjectPath::from(relative)
    } else {
        ObjectPath::from(format!("{prefix}/{relative}"))
    }
}

/// A file being received: on the local disk until it is committed to the bucket.
struct S3Staged {
    staged: Staged,
    bucket: Arc<AmazonS3>,
    prefix: String,
}

#[async_trait]
impl StagedFile for S3Staged {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        self.staged.write(chunk).await
    }

    async fn read_all(&mut self) -> Result<Vec<u8>, StoreError> {
        self.staged.read_all().await
    }

    async fn commit(mut self: Box<Self>, key: &FileKey) -> Result<(), StoreError> {
        let bytes = self.staged.read_all().await?;
        let path = object_name(&self.prefix, &key.to_string());
        self.bucket
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(backend)?;
        // Dropping the staged file unlinks it.
        Ok(())
    }
}

#[async_trait]
impl FileStore for S3FileStore {
    async fn stage(&self) -> Result<Box<dyn StagedFile>, StoreError> {
        Ok(Box::new(S3Staged {
            staged: self.staging.file().await?,
            bucket: Arc::clone(&self.bucket),
            prefix: self.prefix.clone(),
        }))
    }

    #[tracing::instrument(skip_all, fields(%key))]
    async fn put(&self, key: &FileKey, bytes: Bytes) -> Result<(), StoreError> {
        self.bucket
            .put(&self.path_of(key), PutPayload::from(bytes))
            .await
            .map(drop)
            .map_err(backend)
    }

    async fn open(&self, key: &FileKey) -> Result<Option<FileBody>, StoreError> {
        match self.bucket.get(&self.path_of(key)).await {
            Ok(object) => Ok(Some(FileBody {
                size: object.meta.size,
                chunks: Box::pin(object.into_stream().map(|chunk| chunk.map_err(backend))),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(backend(error)),
        }
    }

    async fn delete(&self, key: &FileKey) -> Result<(), StoreError> {
        match self.bucket.delete(&self.path_of(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(backend(error)),
        }
    }

    async fn list(&self, owner: &UserId) -> Result<Vec<StoredFile>, StoreError> {
        Ok(self
            .list_of(owner)
            .await?
            .into_iter()
            .filter_map(|object| {
                Some(StoredFile {
                    key: self.key_of(&object.location)?,
                    size: object.size,
                    modified: object.last_modified,
                })
            })
            .collect())
    }

    async fn delete_all_of(&self, owner: &UserId) -> Result<(), StoreError> {
        let names = self
            .list_of(owner)
            .await?
            .into_iter()
            .map(|o| Ok(o.location));
        self.bucket
            .delete_stream(futures_util::stream::iter(names).boxed())
            .try_collect::<Vec<_>>()
            .await
            .map(drop)
            .map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use testkit::S3StandIn;

    use super::*;

    async fn fresh() -> ((S3StandIn, tempfile::TempDir), S3FileStore) {
        let server = S3StandIn::start().await;
        let bucket = server.create_bucket().await;
        let staging = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = S3FileStore::open(
            &S3Settings {
                bucket,
                region: "us-east-1".to_owned(),
                endpoint: Some(server.endpoint()),
                access_key_id: Some("testing".to_owned()),
                secret_access_key: Some(SecretString::from("testing")),
                prefix: "uploads".to_owned(),
                path_style: true,
            },
            staging.path(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        ((server, staging), store)
    }

    port_contracts::file_store_contract!(needs "the S3 stand-in (moto)", fresh);

    #[tokio::test]
    async fn readiness_says_whether_the_bucket_answers() {
        testkit::needs!("the S3 stand-in (moto)");
        let ((server, _staging), store) = fresh().await;
        assert!(store.reachable().await.is_ok());
        drop(server);
        assert!(store.reachable().await.is_err(), "the server is gone");
    }
}
