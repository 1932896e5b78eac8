//! ObjectId-shaped ids (4 bytes of seconds, 5 random bytes, 3 bytes of counter), generated
//! without a MongoDB driver so that every store uses the same id format.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid id (expected 24 hexadecimal digits)")]
pub struct ParseIdError;

#[derive(Debug)]
pub struct ObjectIdGenerator;

static COUNTER: AtomicU32 = AtomicU32::new(0);
static PROCESS_UNIQUE: OnceLock<[u8; 5]> = OnceLock::new();

impl ObjectIdGenerator {
    /// The next id as 24 lowercase hex digits.
    #[must_use]
    pub fn next_hex() -> String {
        let seconds = u32::try_from(chrono::Utc::now().timestamp()).unwrap_or(u32::MAX);
        let unique = PROCESS_UNIQUE.get_or_init(rand::random::<[u8; 5]>);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed) & 0x00ff_ffff;
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&seconds.to_be_bytes());
        bytes[4..9].copy_from_slice(unique);
        bytes[9..].copy_from_slice(&count.to_be_bytes()[1..]);
        hex::encode(bytes)
    }

    /// # Errors
    /// [`ParseIdError`] unless `raw` is exactly 24 ASCII hex digits.
    pub fn check(raw: &str) -> Result<(), ParseIdError> {
        if raw.len() == 24 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(())
        } else {
            Err(ParseIdError)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_unique_and_well_formed() {
        let a = ObjectIdGenerator::next_hex();
        let b = ObjectIdGenerator::next_hex();
        assert_ne!(a, b);
        assert!(ObjectIdGenerator::check(&a).is_ok());
    }

    #[test]
    fn ids_that_are_not_24_hex_digits_are_refused() {
        for bad in [
            "",
            "123",
            "zzzzzzzzzzzzzzzzzzzzzzzz",
            "0123456789abcdef012345678",
            "{\"$ne\":1}",
        ] {
            assert_eq!(ObjectIdGenerator::check(bad), Err(ParseIdError), "{bad}");
        }
    }
}
