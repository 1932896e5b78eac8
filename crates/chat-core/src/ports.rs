//! What chat needs from the outside: a bus that carries events to every instance, room
//! history, and a count of each user's sockets across instances.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use kernel::{StoreError, UserId};

use crate::model::{ChatMessage, ConnectionId, Event, RoomName};

/// An event for the sockets in any of `rooms`, on every instance; `skip` is the sender's own
/// socket when it must not get its own event (typing).
#[derive(Clone, Debug, PartialEq)]
pub struct Broadcast {
    pub rooms: Vec<RoomName>,
    pub event: Event,
    pub skip: Option<ConnectionId>,
}

/// Carries broadcasts to every subscriber on every instance, this one included.
#[async_trait]
pub trait ChatBus: Send + Sync {
    /// # Errors
    /// [`StoreError::Backend`] when the bus cannot be reached.
    async fn publish(&self, broadcast: Broadcast) -> Result<(), StoreError>;

    /// Every broadcast published from now on, in the order each publisher sent them.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the bus cannot be reached.
    async fn subscribe(&self) -> Result<BoxStream<'static, Broadcast>, StoreError>;
}

/// The last messages of each room, shared by every instance.
#[async_trait]
pub trait ChatHistory: Send + Sync {
    /// Appends `message` to its room, keeping that room's latest `keep` messages; a room no
    /// message is appended to for `idle` is forgotten (its history is empty).
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn append(
        &self,
        message: &ChatMessage,
        keep: usize,
        idle: Duration,
    ) -> Result<(), StoreError>;

    /// The room's latest `limit` messages, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn recent(&self, room: &RoomName, limit: usize) -> Result<Vec<ChatMessage>, StoreError>;
}

/// How many sockets each user has open, across instances.
#[async_trait]
pub trait PresenceRegistry: Send + Sync {
    /// Counts a socket of `user` in; answers the user's open sockets, this one included, on
    /// every live instance (1: the user's first).
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn arrive(&self, user: &UserId) -> Result<u64, StoreError>;

    /// Counts a socket of `user` out; `true` when it was the user's last.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn depart(&self, user: &UserId) -> Result<bool, StoreError>;

    /// Counts a socket from the client `address` in; answers the address's open sockets, this
    /// one included, on every live instance.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn address_arrives(&self, address: &str) -> Result<u64, StoreError>;

    /// Counts a socket from `address` out.
    ///
    /// # Errors
    /// [`StoreError::Backend`] only.
    async fn address_departs(&self, address: &str) -> Result<(), StoreError>;
}
