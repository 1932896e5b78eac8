//! `AeadSealer`: job payloads sealed with XChaCha20-Poly1305 (a random 192-bit nonce per
//! payload, so nonces never need coordinating between processes), the queue name as associated
//! data, and the key's id in front so that a key rotation can still open older payloads.
//!
//! Wire form: `v1.<key id: 8 hex>.<base64url(nonce ‖ ciphertext ‖ tag)>`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use notify_core::{PayloadSealer, SealError};
use sha2::{Digest as _, Sha256};

const VERSION: &str = "v1";
const NONCE_LEN: usize = 24;

/// A 256-bit key and its short public id.
struct SealKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl SealKey {
    fn new(key: &[u8; 32]) -> Self {
        Self {
            id: hex::encode(&Sha256::digest(key)[..4]),
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }
}

/// Seals with the current key; opens with it or any previous one.
pub struct AeadSealer {
    current: SealKey,
    previous: Vec<SealKey>,
}

impl AeadSealer {
    #[must_use]
    pub fn new(current: &[u8; 32], previous: &[[u8; 32]]) -> Self {
        Self {
            current: SealKey::new(current),
            previous: previous.iter().map(SealKey::new).collect(),
        }
    }

    /// The id that sealed payloads carry for the current key (not secret).
    #[must_use]
    pub fn key_id(&self) -> &str {
        &self.current.id
    }

    /// Whether payloads sealed under the key of id `id` open here.
    #[must_use]
    pub fn opens(&self, id: &str) -> bool {
        self.current.id == id || self.previous.iter().any(|key| key.id == id)
    }
}

impl PayloadSealer for AeadSealer {
    fn seal(&self, plain: &str, context: &str) -> Result<String, SealError> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = XNonce::from(nonce_bytes);
        let sealed = self
            .current
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError("encryption failed".to_owned()))?;
        let mut body = Vec::with_capacity(NONCE_LEN + sealed.len());
        body.extend_from_slice(&nonce_bytes);
        body.extend_from_slice(&sealed);
        Ok(format!(
            "{VERSION}.{}.{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(body)
        ))
    }

    fn open(&self, sealed: &str, context: &str) -> Result<String, SealError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(VERSION), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(SealError("not a sealed payload".to_owned()));
        };
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|key| key.id == key_id)
            .ok_or_else(|| {
                SealError(format!(
                    "sealed with key {key_id}, which this process does not have"
                ))
            })?;
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError("sealed payload is not base64url".to_owned()))?;
        if body.len() < NONCE_LEN {
            return Err(SealError("sealed payload is truncated".to_owned()));
        }
        let (nonce, ciphertext) = body.split_at(NONCE_LEN);
        let plain = key
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError("sealed payload was altered or belongs elsewhere".to_owned()))?;
        String::from_utf8(plain).map_err(|_| SealError("opened payload is not text".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> AeadSealer {
        AeadSealer::new(&[7; 32], &[])
    }

    #[test]
    fn a_sealed_payload_opens_to_what_was_sealed_and_hides_it() {
        let sealed = sealer().seal("token=abc123", "email").unwrap_or_default();
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("abc123"));
        assert_eq!(
            sealer().open(&sealed, "email"),
            Ok("token=abc123".to_owned())
        );
        assert_ne!(
            sealer().seal("token=abc123", "email"),
            Ok(sealed),
            "a fresh nonce each time"
        );
    }

    #[test]
    fn an_altered_moved_or_foreign_payload_does_not_open() {
        let sealed = sealer().seal("secret", "email").unwrap_or_default();
        assert!(sealer().open(&sealed, "other").is_err(), "another queue");
        let mut altered = sealed.clone().into_bytes();
        if let Some(last) = altered.last_mut() {
            *last = if *last == b'A' { b'B' } else { b'A' };
        }
        let altered = String::from_utf8(altered).unwrap_or_default();
        assert!(sealer().open(&altered, "email").is_err());
        let other = AeadSealer::new(&[8; 32], &[]);
        let error = other
            .open(&sealed, "email")
            .err()
            .unwrap_or(SealError(String::new()));
        assert!(error.0.contains("does not have"), "{error}");
        assert!(sealer().open("{\"version\":1}", "email").is_err());
    }

    #[test]
    fn a_rotated_key_still_opens_what_the_previous_one_sealed() {
        let sealed = sealer().seal("secret", "email").unwrap_or_default();
        let rotated = AeadSealer::new(&[8; 32], &[[7; 32]]);
        assert_eq!(rotated.open(&sealed, "email"), Ok("secret".to_owned()));
        let resealed = rotated.seal("secret", "email").unwrap_or_default();
        assert!(resealed.contains(rotated.key_id()));
    }
}
