//! One contract test suite per port. Every adapter of a port runs the same suite from its own
//! tests, so the in-memory, embedded and MongoDB stores cannot drift apart in behaviour.
//!
//! Each suite takes a fresh, empty store and panics on the first broken promise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test suites assert by panicking"
)]

pub mod identity;
pub mod jobs;
pub mod portfolio;

use chrono::{DateTime, SubsecRound, Utc};

/// A timestamp every store can keep exactly (millisecond precision).
#[must_use]
pub fn now_ms() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}
