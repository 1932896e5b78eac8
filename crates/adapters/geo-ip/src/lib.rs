//! Where an IP address is, for the identity core's `IpGeolocation` port: a local MaxMind-format
//! City database (offline, microseconds), an ip-api.com-style JSON service over HTTP (with a
//! timeout), and a cache in front of either that remembers answers for a while and never looks
//! up addresses that name no place.

mod address;
mod cache;
mod ip_api;
mod maxmind;

pub use address::is_public;
pub use cache::CachedGeolocation;
pub use ip_api::IpApiGeolocation;
pub use maxmind::MaxMindGeolocation;

use auth_core::model::GeoLocation;

/// An answer with nothing in it is no answer.
fn known(location: GeoLocation) -> Option<GeoLocation> {
    (location != GeoLocation::default()).then_some(location)
}

/// Sources answer "" for parts they do not know.
fn non_empty(value: Option<&str>) -> Option<String> {
    value.filter(|v| !v.is_empty()).map(str::to_owned)
}
