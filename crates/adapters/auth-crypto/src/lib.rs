//! CPU-bound identity adapters: Argon2id password hashing on the blocking pool, HS256 JWTs,
//! one-time secrets from the OS generator with SHA-256 digests, user-agent parsing, and job
//! payloads sealed with XChaCha20-Poly1305.

mod jwt;
mod password;
mod sealing;
mod secrets;
mod user_agent;

pub use jwt::JwtCodec;
pub use password::{Argon2Hasher, Argon2Settings};
pub use sealing::AeadSealer;
pub use secrets::OsSecrets;
pub use user_agent::WootheeUserAgents;
