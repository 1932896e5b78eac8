//! Job payloads carry secrets (a reset or verification link's token) and personal data (a name,
//! a sign-in's place): they are sealed with authenticated encryption before they reach a queue,
//! so the queue's store, its backups and the admin console never hold them in clear.

/// Seals and opens job payloads. `context` (the queue name) is bound to the ciphertext, so a
/// payload moved to another queue does not open.
pub trait PayloadSealer: Send + Sync {
    /// # Errors
    /// [`SealError`] when sealing is impossible (a broken random source).
    fn seal(&self, plain: &str, context: &str) -> Result<String, SealError>;

    /// # Errors
    /// [`SealError`] when `sealed` is not a payload sealed with this key for `context`, or was
    /// altered.
    fn open(&self, sealed: &str, context: &str) -> Result<String, SealError>;
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SealError(pub String);
