//! CPU-bound identity adapters: Argon2id password hashing on the blocking pool, HS256 JWTs,
//! and one-time secrets from the OS generator with SHA-256 digests.

mod jwt;
mod password;
mod secrets;

pub use jwt::JwtCodec;
pub use password::{Argon2Hasher, Argon2Settings};
pub use secrets::OsSecrets;
