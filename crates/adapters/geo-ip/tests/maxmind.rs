//! The MaxMind adapter over MaxMind's own GeoIP2 City test database.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::net::IpAddr;
use std::path::Path;

use auth_core::model::{Coordinates, GeoLocation};
use auth_core::ports::IpGeolocation as _;
use geo_ip::MaxMindGeolocation;

fn database() -> MaxMindGeolocation {
    MaxMindGeolocation::open(Path::new(testkit::GEOIP2_CITY_TEST_DB)).unwrap()
}

fn ip(raw: &str) -> IpAddr {
    raw.parse().unwrap()
}

#[tokio::test]
async fn a_documented_test_address_is_placed_in_london() {
    let london = database().locate(ip("81.2.69.142")).await.unwrap();
    assert_eq!(
        london,
        Some(GeoLocation {
            country: Some("United Kingdom".into()),
            country_code: Some("GB".into()),
            region: Some("England".into()),
            city: Some("London".into()),
            coordinates: Some(Coordinates {
                latitude: 51.5142,
                longitude: -0.0931
            }),
            timezone: Some("Europe/London".into()),
            isp: None,
        })
    );
}

#[tokio::test]
async fn ipv6_addresses_and_partial_records_are_read_too() {
    let japan = database().locate(ip("2001:218::1")).await.unwrap().unwrap();
    assert_eq!(
        (japan.country_code.as_deref(), japan.city, japan.region),
        (Some("JP"), None, None),
        "a record with a country only"
    );
    let sweden = database()
        .locate(ip("89.160.20.112"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sweden.city.as_deref(), Some("Linköping"));
}

#[tokio::test]
async fn addresses_outside_the_database_are_unknown() {
    assert_eq!(database().locate(ip("8.8.8.8")).await.unwrap(), None);
}

#[test]
fn a_missing_or_foreign_file_is_refused_when_opening() {
    let missing = MaxMindGeolocation::open(Path::new("/nonexistent/GeoLite2-City.mmdb"));
    assert!(missing.is_err_and(|e| e.contains("/nonexistent/GeoLite2-City.mmdb")));
    let foreign = MaxMindGeolocation::open(Path::new(env!("CARGO_MANIFEST_PATH")));
    assert!(foreign.is_err());
}
