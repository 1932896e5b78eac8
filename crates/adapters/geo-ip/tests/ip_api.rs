//! The HTTP adapter against a local stand-in of ip-api.com.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::net::IpAddr;
use std::time::Duration;

use auth_core::model::{Coordinates, GeoLocation};
use auth_core::ports::IpGeolocation as _;
use geo_ip::IpApiGeolocation;
use testkit::{HttpStub, StubReply};

const LONDON: &str = r#"{"status":"success","country":"United Kingdom","countryCode":"GB","region":"ENG","regionName":"England","city":"London","lat":51.5142,"lon":-0.0931,"timezone":"Europe/London","isp":"Andrews & Arnold Ltd","query":"81.2.69.142"}"#;

fn client(stub: &HttpStub, timeout: Duration) -> IpApiGeolocation {
    IpApiGeolocation::new(&format!("{}/json/", stub.url()), timeout).unwrap()
}

fn ip(raw: &str) -> IpAddr {
    raw.parse().unwrap()
}

#[tokio::test]
async fn a_successful_answer_becomes_a_location() {
    let stub = HttpStub::start(|_| StubReply::json(LONDON)).await;
    let found = client(&stub, Duration::from_secs(5))
        .locate(ip("81.2.69.142"))
        .await
        .unwrap();
    assert_eq!(
        found,
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
            isp: Some("Andrews & Arnold Ltd".into()),
        })
    );
    let asked = stub.requests();
    assert_eq!(asked.len(), 1);
    assert!(
        asked[0].starts_with("/json/81.2.69.142?fields=status,message,country,countryCode,"),
        "{asked:?}"
    );
}

#[tokio::test]
async fn a_failed_status_is_an_unknown_place_and_empty_parts_are_missing() {
    let stub = HttpStub::start(|path| {
        if path.contains("81.2.69.142") {
            StubReply::json(r#"{"status":"success","country":"Sweden","countryCode":"SE","regionName":"","city":""}"#)
        } else {
            StubReply::json(r#"{"status":"fail","message":"reserved range"}"#)
        }
    })
    .await;
    let geo = client(&stub, Duration::from_secs(5));
    assert_eq!(geo.locate(ip("240.0.0.1")).await.unwrap(), None);
    let sweden = geo.locate(ip("81.2.69.142")).await.unwrap().unwrap();
    assert_eq!(
        (
            sweden.country_code.as_deref(),
            sweden.region,
            sweden.city,
            sweden.coordinates
        ),
        (Some("SE"), None, None, None)
    );
}

#[tokio::test]
async fn server_errors_and_garbage_are_errors() {
    let stub = HttpStub::start(|path| {
        if path.contains("81.2.69.142") {
            StubReply {
                status: 500,
                ..StubReply::json("{}")
            }
        } else {
            StubReply::json("<html>not json</html>")
        }
    })
    .await;
    let geo = client(&stub, Duration::from_secs(5));
    let failed = geo.locate(ip("81.2.69.142")).await.unwrap_err();
    assert!(failed.0.contains("500"), "{failed}");
    assert!(geo.locate(ip("8.8.8.8")).await.is_err());
}

#[tokio::test]
async fn a_slow_service_times_out() {
    let stub = HttpStub::start(|_| StubReply {
        delay: Duration::from_secs(5),
        ..StubReply::json(LONDON)
    })
    .await;
    let started = std::time::Instant::now();
    let failed = client(&stub, Duration::from_millis(200))
        .locate(ip("81.2.69.142"))
        .await
        .unwrap_err();
    assert_eq!(failed.0, "timed out");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn an_unreachable_service_is_an_error_that_does_not_name_the_address() {
    let port = testkit::free_port();
    let geo = IpApiGeolocation::new(
        &format!("http://127.0.0.1:{port}/json"),
        Duration::from_secs(2),
    )
    .unwrap();
    let failed = geo.locate(ip("81.2.69.142")).await.unwrap_err();
    assert!(!failed.0.contains("81.2.69.142"), "{failed}");
}
