//! Picks the media adapters: files on the local disk (under `UPLOAD_DIR`, by default
//! `DATA_DIR/uploads`) and pictures through the `image` crate, with the limits of the
//! configuration. An object-store `FileStore` would be chosen here.
//!
//! The default public base URL names the bound port, so `Api::build` binds the listener before it
//! builds this service.

use std::net::IpAddr;

use std::sync::Arc;

use anyhow::Context as _;
use files_local::LocalFileStore;
use image_rs::ImageRsProcessor;
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

/// The media service of the API listening on `port`.
///
/// # Errors
/// A message when the upload folder cannot be created.
pub async fn service(settings: &Settings, port: u16) -> anyhow::Result<MediaService> {
    let dir = settings
        .upload_dir
        .as_ref()
        .map_or_else(|| settings.data_dir.join("uploads"), Into::into);
    let store = LocalFileStore::open(&dir)
        .await
        .with_context(|| format!("cannot open the upload folder {}", dir.display()))?;
    let policy = MediaPolicy {
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
    };
    Ok(MediaService::new(
        Arc::new(store),
        Arc::new(ImageRsProcessor::new(settings.upload_image_concurrency)),
        policy,
    ))
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
