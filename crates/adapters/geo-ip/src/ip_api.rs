//! Lookups through an ip-api.com-style JSON service: `GET {base}/{ip}?fields=…` answering
//! `{status, message, country, countryCode, regionName, city, lat, lon, timezone, isp}`. Every
//! request has a timeout, so a slow service delays only the background lookup.
//!
//! The client is reqwest with rustls; the looked-up address is kept out of error messages.

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use auth_core::model::{Coordinates, GeoLocation};
use auth_core::ports::{GeoError, IpGeolocation};
use serde::Deserialize;
use tracing::debug;

use crate::{known, non_empty};

const FIELDS: &str = "status,message,country,countryCode,regionName,city,lat,lon,timezone,isp";

pub struct IpApiGeolocation {
    client: reqwest::Client,
    base_url: String,
}

impl IpApiGeolocation {
    /// `base_url` is the service's lookup path without the address (`http://ip-api.com/json`).
    ///
    /// # Errors
    /// A message when the HTTP client cannot be built.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("cannot build the geolocation HTTP client: {e}"))?;
        Ok(Self {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    status: String,
    message: Option<String>,
    country: Option<String>,
    country_code: Option<String>,
    region_name: Option<String>,
    city: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    timezone: Option<String>,
    isp: Option<String>,
}

/// The error with its causes; callers strip the URL first, which carries the address.
fn failure(error: &reqwest::Error) -> GeoError {
    if error.is_timeout() {
        return GeoError("timed out".to_owned());
    }
    let mut message = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        message.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    GeoError(message)
}

#[async_trait]
impl IpGeolocation for IpApiGeolocation {
    async fn locate(&self, ip: IpAddr) -> Result<Option<GeoLocation>, GeoError> {
        let url = format!("{}/{ip}?fields={FIELDS}", self.base_url);
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| failure(&e.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(GeoError(format!("the service answered {status}")));
        }
        let answer: Answer = response
            .json()
            .await
            .map_err(|e| failure(&e.without_url()))?;
        if answer.status != "success" {
            // A private or reserved range, or an address the service does not know.
            debug!(
                message = answer.message.as_deref().unwrap_or_default(),
                "no location"
            );
            return Ok(None);
        }
        Ok(known(GeoLocation {
            country: non_empty(answer.country.as_deref()),
            country_code: non_empty(answer.country_code.as_deref()),
            region: non_empty(answer.region_name.as_deref()),
            city: non_empty(answer.city.as_deref()),
            coordinates: answer
                .lat
                .zip(answer.lon)
                .map(|(latitude, longitude)| Coordinates {
                    latitude,
                    longitude,
                }),
            timezone: non_empty(answer.timezone.as_deref()),
            isp: non_empty(answer.isp.as_deref()),
        }))
    }
}
