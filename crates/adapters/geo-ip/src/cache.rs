//! A bounded cache of answers in front of any geolocation source: an address is looked up at
//! most once per time-to-live (24 h by default), and addresses that name no place (private,
//! loopback, link-local…) are answered without asking the source at all.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use auth_core::model::GeoLocation;
use auth_core::ports::{GeoError, IpGeolocation};
use moka::sync::Cache;

use crate::address::is_public;

/// Addresses remembered at most; a few megabytes.
const CAPACITY: u64 = 10_000;

pub struct CachedGeolocation {
    source: Arc<dyn IpGeolocation>,
    answers: Cache<IpAddr, Option<GeoLocation>>,
}

impl CachedGeolocation {
    #[must_use]
    pub fn new(source: Arc<dyn IpGeolocation>, ttl: Duration) -> Self {
        Self {
            source,
            answers: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(ttl)
                .build(),
        }
    }
}

#[async_trait]
impl IpGeolocation for CachedGeolocation {
    async fn locate(&self, ip: IpAddr) -> Result<Option<GeoLocation>, GeoError> {
        if !is_public(ip) {
            return Ok(None);
        }
        if let Some(answer) = self.answers.get(&ip) {
            return Ok(answer);
        }
        // "Unknown" is remembered like a place; a failure is not, so the next sign-in retries.
        let answer = self.source.locate(ip).await?;
        self.answers.insert(ip, answer.clone());
        Ok(answer)
    }
}
