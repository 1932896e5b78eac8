//! Time as a port, so that expiry rules can be tested without sleeping.

use chrono::{DateTime, SubsecRound as _, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock, at millisecond precision: what every store keeps, so a value reads back
/// exactly as it was written.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(3)
    }
}
