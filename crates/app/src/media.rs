//! Picks the media adapters: files in an S3-compatible bucket (`S3_BUCKET`) or on the local
//! disk (under `UPLOAD_DIR`, by default `DATA_DIR/uploads`), and pictures through the `image`
//! crate, with the limits of the configuration.
//!
//! The default public base URL names the bound port, so `Api::build` binds the listener before it
//! builds this service.

use std::net::IpAddr;

use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use files_local::LocalFileStore;
use files_s3::S3FileStore;
use http_api::ReadinessProbe;
use image_rs::ImageRsProcessor;
use media_core::FileStore;
use media_core::{MediaPolicy, MediaService};

use crate::config::Settings;

/// The thumbnail's longest side, in pixels.
const THUMBNAIL_SIDE: u32 = 320;

/// `http://HOST:PORT/uploads`, with a name a browser can reach when the server listens on
/// every address.
fn default_base_url(host: &str, port: u16) -> String {
    let host = match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() => "localhost".to_owned(),
        Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
        _ => host.to_owned(),
    };
    format!("http://{host}:{port}/uploads")
}

/// The media service, and what tells readiness whether its files can be reached.
pub struct Media {
    pub service: MediaService,
    /// The bucket's probe; `None` for the local disk.
    pub probe: Option<Arc<dyn ReadinessProbe>>,
}

struct BucketProbe(Arc<S3FileStore>);

#[async_trait]
impl ReadinessProbe for BucketProbe {
    fn name(&self) -> &'static str {
        "files"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.reachable().await.map_err(|e| e.to_string())
    }
}

/// The media service of the API listening on `port`.
///
/// # Errors
/// A message when the upload or staging folder cannot be created, or the bucket settings are
/// unusable.
pub async fn service(settings: &Settings, port: u16) -> anyhow::Result<Media> {
    let (store, probe): (Arc<dyn FileStore>, Option<Arc<dyn ReadinessProbe>>) = match &settings.s3 {
        Some(s3) => {
            let bucket = Arc::new(
                S3FileStore::open(s3, &settings.data_dir)
                    .await
                    .with_context(|| format!("cannot use the bucket {}", s3.bucket))?,
            );
            (bucket.clone(), Some(Arc::new(BucketProbe(bucket))))
        }
        None => (Arc::new(local_store(settings).await?), None),
    };
    let service = MediaService::new(
        store,
        Arc::new(ImageRsProcessor::new(settings.upload_image_concurrency)),
        policy(settings, port),
    );
    Ok(Media { service, probe })
}

async fn local_store(settings: &Settings) -> anyhow::Result<LocalFileStore> {
    let dir = settings
        .upload_dir
        .as_ref()
        .map_or_else(|| settings.data_dir.join("uploads"), Into::into);
    LocalFileStore::open(&dir)
        .await
        .with_context(|| format!("cannot open the upload folder {}", dir.display()))
}

fn policy(settings: &Settings, port: u16) -> MediaPolicy {
    MediaPolicy {
        max_image_bytes: settings.upload_max_image_size,
        max_document_bytes: settings.upload_max_document_size,
        max_image_pixels: settings.upload_max_image_pixels,
        allowed: settings.upload_allowed_types.clone(),
        thumbnail_side: THUMBNAIL_SIDE,
        max_files: settings.upload_max_files as usize,
        quota_bytes: settings.upload_quota_bytes,
        base_url: settings
            .upload_base_url
            .clone()
            .unwrap_or_else(|| default_base_url(&settings.host, port)),
    }
}

#[cfg(test)]
mod tests {
    use super::default_base_url;

    #[test]
    fn the_default_base_url_is_one_a_browser_on_this_machine_reaches() {
        assert_eq!(
            default_base_url("127.0.0.1", 3000),
            "http://127.0.0.1:3000/uploads"
        );
        assert_eq!(
            default_base_url("0.0.0.0", 80),
            "http://localhost:80/uploads"
        );
        assert_eq!(default_base_url("::1", 8080), "http://[::1]:8080/uploads");
        assert_eq!(
            default_base_url("api.internal", 3000),
            "http://api.internal:3000/uploads"
        );
    }
}
