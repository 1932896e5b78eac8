//! One-time secrets: 32 bytes from the OS generator, stored as their SHA-256 digest.

use auth_core::ports::SecretGenerator;
use sha2::{Digest as _, Sha256};

#[derive(Clone, Copy, Debug, Default)]
pub struct OsSecrets;

impl SecretGenerator for OsSecrets {
    fn new_secret(&self) -> String {
        let bytes: [u8; 32] = rand::random();
        hex::encode(bytes)
    }

    fn digest(&self, secret: &str) -> String {
        hex::encode(Sha256::digest(secret.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_stored_only_as_digests() {
        let secrets = OsSecrets;
        let (a, b) = (secrets.new_secret(), secrets.new_secret());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(secrets.digest(&a), a);
        assert_eq!(secrets.digest(&a), secrets.digest(&a));
    }
}
