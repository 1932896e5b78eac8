//! Shared kernel: the few value types every core speaks (ids, time, pages, store errors) and
//! the schema-described records and per-user settings documents that several cores build on.

mod clock;
mod id;
pub mod invalidation;
mod page;
pub mod rate;
pub mod record;
pub mod settings;
mod store;

pub use clock::{Clock, SystemClock};
pub use id::{ObjectIdGenerator, ParseIdError};
pub use page::{Page, PageRequest};
pub use store::StoreError;

typed_id!(
    /// Identifies a user (the `users` collection); everything a user owns is keyed by it.
    UserId
);

/// Defines a typed id over a 24-hex-digit ObjectId-shaped string, so that ids are
/// interchangeable with MongoDB `_id`s and one kind of id cannot be passed for another.
#[macro_export]
macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Parses an id; anything but 24 hex digits is refused.
            ///
            /// # Errors
            /// [`$crate::ParseIdError`] when `raw` is not 24 hex digits.
            pub fn parse(raw: &str) -> Result<Self, $crate::ParseIdError> {
                $crate::ObjectIdGenerator::check(raw).map(|()| Self(raw.to_ascii_lowercase()))
            }

            /// A fresh id.
            #[must_use]
            pub fn generate() -> Self {
                Self($crate::ObjectIdGenerator::next_hex())
            }

            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// The message a panic carried (`panic!("…")` gives a `&str` or a `String`), for recording a
/// job that panicked as a failure.
#[must_use]
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}
