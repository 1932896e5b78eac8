//! What one instance tells the others to forget after a write, so that caches holding reads
//! (session liveness, the `me` view, an owner's lists, public pages) agree across instances
//! at once; each cache's time-to-live stays the backstop for a message lost on the way.

use crate::UserId;

/// One thing to forget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Forget {
    /// Sessions revoked: their access tokens are refused, their sockets closed.
    Sessions(Vec<String>),
    /// A user or their account changed: the `me` view.
    User(UserId),
    /// An owner's content changed: their lists and public portfolio pages.
    Content(UserId),
}

/// Tells the deployment's other instances what to forget.
pub trait Invalidations: Send + Sync {
    /// Announces `forget` and returns at once: the sending happens in the background, and a
    /// lost announcement is bounded by the caches' time-to-live.
    fn announce(&self, forget: Forget);
}

/// A deployment of one instance: nobody else to tell.
pub struct AloneInvalidations;

impl Invalidations for AloneInvalidations {
    fn announce(&self, _: Forget) {}
}
