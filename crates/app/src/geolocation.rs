//! Picks the source of session locations for the configuration, always behind the cache (which
//! also keeps private addresses from ever being looked up).

use std::sync::Arc;

use anyhow::Context as _;
use auth_core::ports::IpGeolocation;
use geo_ip::{CachedGeolocation, IpApiGeolocation, MaxMindGeolocation};

use crate::config::{LocationProvider, Settings};

/// `None` when locations are off.
///
/// # Errors
/// A message when the MaxMind database cannot be opened or the HTTP client built.
pub fn source(settings: &Settings) -> anyhow::Result<Option<Arc<dyn IpGeolocation>>> {
    let source: Arc<dyn IpGeolocation> = match &settings.location_provider {
        LocationProvider::None => return Ok(None),
        LocationProvider::MaxMind(path) => Arc::new(
            MaxMindGeolocation::open(path)
                .map_err(anyhow::Error::msg)
                .context("cannot open the MaxMind database")?,
        ),
        LocationProvider::Http(url) => Arc::new(
            IpApiGeolocation::new(url, settings.location_timeout)
                .map_err(anyhow::Error::msg)
                .context("cannot set up the location lookups")?,
        ),
    };
    Ok(Some(Arc::new(CachedGeolocation::new(
        source,
        settings.location_cache_ttl,
    ))))
}
