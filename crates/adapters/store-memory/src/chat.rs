//! Chat within one process: the bus, history and presence of the embedded mode (one
//! `console-api`, no Redis).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chat_core::model::{ChatMessage, RoomName};
use chat_core::ports::{Broadcast, ChatBus, ChatHistory, PresenceRegistry};
use futures_channel::mpsc;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use kernel::{StoreError, UserId};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Hands each broadcast to every subscriber of this process.
#[derive(Default)]
pub struct MemoryChatBus {
    subscribers: Mutex<Vec<mpsc::UnboundedSender<Broadcast>>>,
}

#[async_trait]
impl ChatBus for MemoryChatBus {
    async fn publish(&self, broadcast: Broadcast) -> Result<(), StoreError> {
        // A subscriber whose stream was dropped is forgotten.
        lock(&self.subscribers)
            .retain(|subscriber| subscriber.unbounded_send(broadcast.clone()).is_ok());
        Ok(())
    }

    async fn subscribe(&self) -> Result<BoxStream<'static, Broadcast>, StoreError> {
        let (sender, receiver) = mpsc::unbounded();
        lock(&self.subscribers).push(sender);
        Ok(receiver.boxed())
    }
}

/// Each room's latest messages, until the room is idle for as long as its last append said.
#[derive(Default)]
pub struct MemoryChatHistory {
    rooms: Mutex<Rooms>,
}

/// The rooms, with idle ones dropped whenever their number has doubled since the last sweep
/// (not on every append: that would cost a pass over all rooms per message).
#[derive(Default)]
struct Rooms {
    by_name: HashMap<RoomName, Room>,
    sweep_at: usize,
}

/// Rooms held before the first sweep of idle ones.
const FIRST_SWEEP: usize = 64;

struct Room {
    messages: VecDeque<ChatMessage>,
    forgotten_at: Instant,
}

#[async_trait]
impl ChatHistory for MemoryChatHistory {
    async fn append(
        &self,
        message: &ChatMessage,
        keep: usize,
        idle: Duration,
    ) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut rooms = lock(&self.rooms);
        if rooms.by_name.len() >= rooms.sweep_at {
            rooms.by_name.retain(|_, room| room.forgotten_at > now);
            rooms.sweep_at = (rooms.by_name.len() * 2).max(FIRST_SWEEP);
        }
        let room = rooms
            .by_name
            .entry(message.room.clone())
            .or_insert_with(|| Room {
                messages: VecDeque::new(),
                forgotten_at: now,
            });
        // An idle room not swept yet starts afresh.
        if room.forgotten_at <= now {
            room.messages.clear();
        }
        room.forgotten_at = now + idle;
        room.messages.push_back(message.clone());
        while room.messages.len() > keep {
            room.messages.pop_front();
        }
        Ok(())
    }

    async fn recent(&self, room: &RoomName, limit: usize) -> Result<Vec<ChatMessage>, StoreError> {
        let now = Instant::now();
        Ok(lock(&self.rooms)
            .by_name
            .get(room)
            .filter(|room| room.forgotten_at > now)
            .map_or_else(Vec::new, |room| {
                let messages = &room.messages;
                messages
                    .iter()
                    .skip(messages.len().saturating_sub(limit))
                    .cloned()
                    .collect()
            }))
    }
}

/// Sockets per user and per client address in this process.
#[derive(Default)]
pub struct MemoryPresence {
    users: Mutex<HashMap<UserId, u64>>,
    addresses: Mutex<HashMap<String, u64>>,
}

/// Counts one more socket of `key`; answers its sockets now.
fn count_in<K: std::hash::Hash + Eq>(counts: &Mutex<HashMap<K, u64>>, key: K) -> u64 {
    let mut counts = lock(counts);
    let count = counts.entry(key).or_default();
    *count += 1;
    *count
}

/// Counts one socket of `key` out; `true` when it was the last.
fn count_out<K: std::hash::Hash + Eq>(counts: &Mutex<HashMap<K, u64>>, key: &K) -> bool {
    let mut counts = lock(counts);
    let Some(count) = counts.get_mut(key) else {
        return false;
    };
    *count -= 1;
    if *count == 0 {
        counts.remove(key);
        return true;
    }
    false
}

#[async_trait]
impl PresenceRegistry for MemoryPresence {
    async fn arrive(&self, user: &UserId) -> Result<u64, StoreError> {
        Ok(count_in(&self.users, user.clone()))
    }

    async fn depart(&self, user: &UserId) -> Result<bool, StoreError> {
        Ok(count_out(&self.users, user))
    }

    async fn address_arrives(&self, address: &str) -> Result<u64, StoreError> {
        Ok(count_in(&self.addresses, address.to_owned()))
    }

    async fn address_departs(&self, address: &str) -> Result<(), StoreError> {
        count_out(&self.addresses, &address.to_owned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn bus() -> ((), MemoryChatBus) {
        ((), MemoryChatBus::default())
    }

    async fn history() -> ((), MemoryChatHistory) {
        ((), MemoryChatHistory::default())
    }

    async fn presence() -> ((), MemoryPresence) {
        ((), MemoryPresence::default())
    }

    port_contracts::chat_bus_contract!(bus);
    port_contracts::chat_history_contract!(history);
    port_contracts::presence_contract!(presence);
}
