//! Lookups in a local MaxMind-format City database (GeoLite2-City or GeoIP2-City `.mmdb`). The
//! file is read into memory once at start, so a lookup is a tree walk of microseconds, with no
//! network and no third party. (Memory-mapping would spare the memory but needs `unsafe`.)

use std::net::IpAddr;
use std::path::Path;

use async_trait::async_trait;
use auth_core::model::{Coordinates, GeoLocation};
use auth_core::ports::{GeoError, IpGeolocation};
use maxminddb::{Reader, geoip2};

use crate::{known, non_empty};

pub struct MaxMindGeolocation {
    reader: Reader<Vec<u8>>,
}

impl MaxMindGeolocation {
    /// # Errors
    /// A message naming the file when it cannot be read or is not a MaxMind database.
    pub fn open(path: &Path) -> Result<Self, String> {
        let reader = Reader::open_readfile(path)
            .map_err(|e| format!("cannot open MaxMind database {}: {e}", path.display()))?;
        Ok(Self { reader })
    }
}

#[async_trait]
impl IpGeolocation for MaxMindGeolocation {
    async fn locate(&self, ip: IpAddr) -> Result<Option<GeoLocation>, GeoError> {
        let unreadable = |e: maxminddb::MaxMindDbError| GeoError(e.to_string());
        let found = self.reader.lookup(ip).map_err(unreadable)?;
        let Some(record) = found.decode::<geoip2::City<'_>>().map_err(unreadable)? else {
            return Ok(None);
        };
        let location = &record.location;
        Ok(known(GeoLocation {
            country: non_empty(record.country.names.english),
            country_code: non_empty(record.country.iso_code),
            region: non_empty(
                record
                    .subdivisions
                    .first()
                    .and_then(|region| region.names.english),
            ),
            city: non_empty(record.city.names.english),
            coordinates: location
                .latitude
                .zip(location.longitude)
                .map(|(latitude, longitude)| Coordinates {
                    latitude,
                    longitude,
                }),
            timezone: non_empty(location.time_zone),
            // City databases carry no ISP; that is a separate MaxMind product.
            isp: None,
        }))
    }
}
