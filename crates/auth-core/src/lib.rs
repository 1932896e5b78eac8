//! Identity domain: users, accounts (credentials and one-time tokens), device sessions and the
//! services that register, log in, rotate tokens, reset passwords and manage sessions.
//!
//! This crate does no I/O: storage, hashing, token signing, randomness, user-agent parsing,
//! IP geolocation, background work and email are ports (see [`ports`]) implemented by adapter
//! crates.

mod epoch_cache;
pub mod error;
pub mod model;
pub mod ports;
pub mod preferences;
mod service;
mod session_cache;
mod values;

pub use error::AuthError;
pub use service::{
    AuthOutcome, IdentityPolicy, IdentityPorts, IdentityService, Registration, TokenPair,
};
pub use values::{DisplayName, Email, Password, PersonName, Username, ValueError, WebsiteUrl};
