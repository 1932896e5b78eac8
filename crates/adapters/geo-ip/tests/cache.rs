//! The cache in front of a source: one lookup per address per time-to-live, none for addresses
//! that name no place, and failures not remembered.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use auth_core::ports::IpGeolocation;
use geo_ip::{CachedGeolocation, IpApiGeolocation};
use testkit::{HttpStub, StubReply};

const LONDON: &str =
    r#"{"status":"success","country":"United Kingdom","countryCode":"GB","city":"London"}"#;

fn cached(stub: &HttpStub, ttl: Duration) -> CachedGeolocation {
    let source = IpApiGeolocation::new(&format!("{}/json", stub.url()), Duration::from_secs(5));
    CachedGeolocation::new(Arc::new(source.unwrap()), ttl)
}

#[tokio::test]
async fn a_second_lookup_of_an_address_is_answered_from_memory() {
    let stub = HttpStub::start(|_| StubReply::json(LONDON)).await;
    let geo = cached(&stub, Duration::from_secs(24 * 3600));
    let ip = "81.2.69.142".parse().unwrap();
    let first = geo.locate(ip).await.unwrap();
    let second = geo.locate(ip).await.unwrap();
    assert!(first.is_some());
    assert_eq!(first, second);
    assert_eq!(stub.requests().len(), 1, "the service was asked once");
    geo.locate("81.2.69.143".parse().unwrap()).await.unwrap();
    assert_eq!(stub.requests().len(), 2, "another address is asked for");
}

#[tokio::test]
async fn answers_expire_after_the_time_to_live() {
    let stub = HttpStub::start(|_| StubReply::json(LONDON)).await;
    let geo = cached(&stub, Duration::from_millis(100));
    let ip = "81.2.69.142".parse().unwrap();
    geo.locate(ip).await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    geo.locate(ip).await.unwrap();
    assert_eq!(stub.requests().len(), 2);
}

#[tokio::test]
async fn private_and_special_addresses_are_never_looked_up() {
    let stub = HttpStub::start(|_| StubReply::json(LONDON)).await;
    let geo = cached(&stub, Duration::from_secs(60));
    for raw in [
        "127.0.0.1",
        "10.0.0.7",
        "192.168.1.20",
        "172.20.0.1",
        "169.254.0.9",
        "100.64.1.1",
        "::1",
        "fd12:3456::1",
        "fe80::1",
        "::ffff:192.168.1.1",
    ] {
        assert_eq!(
            geo.locate(raw.parse().unwrap()).await.unwrap(),
            None,
            "{raw}"
        );
    }
    assert!(stub.requests().is_empty(), "{:?}", stub.requests());
}

#[tokio::test]
async fn failures_are_not_remembered() {
    let broken = Arc::new(AtomicBool::new(true));
    let state = Arc::clone(&broken);
    let stub = HttpStub::start(move |_| {
        if state.load(Ordering::SeqCst) {
            StubReply {
                status: 503,
                ..StubReply::json("{}")
            }
        } else {
            StubReply::json(LONDON)
        }
    })
    .await;
    let geo = cached(&stub, Duration::from_secs(60));
    let ip = "81.2.69.142".parse().unwrap();
    assert!(geo.locate(ip).await.is_err());
    broken.store(false, Ordering::SeqCst);
    assert!(geo.locate(ip).await.unwrap().is_some());
    assert_eq!(stub.requests().len(), 2);
}
