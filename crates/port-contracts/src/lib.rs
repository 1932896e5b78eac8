//! One contract test suite per port. Every adapter of a port runs the same suite from its own
//! tests, so the in-memory, embedded and MongoDB stores cannot drift apart in behaviour.
//!
//! A suite is a list of behaviours: async functions that each get a fresh, empty store and
//! panic on a broken promise. An adapter runs a suite with the suite's macro in its test
//! module, which expands to one `#[tokio::test]` per behaviour, named after it, so every
//! adapter reports the same tests:
//!
//! ```ignore
//! port_contracts::session_contract!(|| async { ((), MemoryIdentityStore::new()) });
//! ```
//!
//! The argument is an async closure returning `(guard, store)`: a new, empty store and
//! whatever must live as long as it (a temporary directory; `()` when nothing must). A suite
//! whose stores live on an outside server names it first, and its tests skip unless slow tests
//! run (`testkit::skip_without`): `job_queue_contract!(needs "redis-server", fresh)`.
//!
//! The Redis adapters run theirs against a `redis-server` each test starts
//! (`testkit::RedisServer`); the MongoDB tests share one stand-in per test process
//! (`testkit::MongoStandIn::shared`), with a database per test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test suites assert by panicking"
)]

/// Declares a suite's macro (`$suite!`, exported) from the list of its behaviours, for
/// stores of type `$port`.
///
/// The behaviours stay private to their module; the macro calls them through the public
/// `$runners` functions generated here from the same list, so a behaviour left out of the
/// list is dead code, which the lints refuse. `$d` is a `$`: a macro can only write the `$`s
/// of the macro it declares when it is handed one.
macro_rules! suite {
    (
        $d:tt $(#[$doc:meta])*
        $suite:ident, $module:ident::$runners:ident, $port:ty,
        [$($behaviour:ident),+ $(,)?]
    ) => {
        #[doc(hidden)]
        pub mod $runners {
            // `$port` is written as in the suite's module.
            use super::*;

            $(
                pub async fn $behaviour(store: &$port) {
                    super::$behaviour(store).await;
                }
            )+
        }

        $(#[$doc])*
        #[macro_export]
        macro_rules! $suite {
            ($d fresh:expr) => {
                $d crate::$suite!(@tests {}, $d fresh);
            };
            (needs $d what:literal, $d fresh:expr) => {
                $d crate::$suite!(@tests { ::testkit::needs!($d what) }, $d fresh);
            };
            (@tests $d skip:block, $d fresh:expr) => {
                $(
                    #[::tokio::test]
                    async fn $behaviour() {
                        $d skip
                        let (_guard, store) = ($d fresh)().await;
                        $d crate::$module::$runners::$behaviour(&store).await;
                    }
                )+
            };
        }
    };
}

pub mod chat;
pub mod cron;
pub mod files;
pub mod identity;
pub mod jobs;
pub mod portfolio;
pub mod rate;

use chrono::{DateTime, SubsecRound, Utc};

/// A timestamp every store can keep exactly (millisecond precision).
#[must_use]
pub fn now_ms() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}
