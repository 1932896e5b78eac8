//! The sockets of this instance and the rooms each is in. The hub delivers every broadcast
//! from the bus to the local sockets in its rooms; a socket's registration takes it out of the
//! hub when dropped, however its task ends.
//!
//! `Hub::run` delivers each broadcast once per socket, skipping the sender where asked. A socket
//! whose bounded queue is full is cut off rather than slowing its room.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use futures_channel::mpsc;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use kernel::UserId;

use crate::model::{ConnectionId, Event, RoomName};
use crate::ports::Broadcast;

/// Caps on the sockets of this instance.
#[derive(Clone, Copy, Debug)]
pub struct HubLimits {
    pub per_user: usize,
    pub per_address: usize,
    /// Events waiting for one socket; a socket this far behind is closed.
    pub queue: usize,
}

/// Why a socket was not let in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    TooManyForUser,
    TooManyForAddress,
}

pub struct Hub {
    instance: u64,
    next: AtomicU64,
    limits: HubLimits,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    sockets: HashMap<ConnectionId, Socket>,
    per_user: HashMap<UserId, usize>,
    per_address: HashMap<String, usize>,
}

struct Socket {
    user: UserId,
    address: String,
    rooms: BTreeSet<RoomName>,
    outbox: mpsc::Sender<Arc<Delivery>>,
}

/// An event on its way to the sockets of a room: one shared value for all of them, which
/// keeps each rendering a transport makes of it, so a room of 200 renders it once per
/// transport, not 200 times.
#[derive(Debug)]
pub struct Delivery {
    event: Event,
    renderings: [OnceLock<Arc<str>>; Self::SLOTS],
}

impl Delivery {
    /// Renderings kept per delivery: one per kind of socket.
    pub const SLOTS: usize = 2;

    #[must_use]
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// `render`'s text for this event, computed by the first socket of kind `slot` to ask.
    ///
    /// # Panics
    /// When `slot` is not below [`Delivery::SLOTS`] (a programming error).
    pub fn rendered(&self, slot: usize, render: impl FnOnce(&Event) -> String) -> Arc<str> {
        Arc::clone(self.renderings[slot].get_or_init(|| render(&self.event).into()))
    }
}

/// A socket's place in the hub: the events for it, and its removal when dropped.
pub struct Registration {
    pub id: ConnectionId,
    pub events: mpsc::Receiver<Arc<Delivery>>,
    hub: Arc<Hub>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.remove(self.id);
    }
}

impl Hub {
    /// Sockets one user, and one client address, may have open.
    #[must_use]
    pub fn caps(&self) -> (usize, usize) {
        (self.limits.per_user, self.limits.per_address)
    }

    /// `instance` tells this instance's connection ids from other instances' (the bus carries
    /// them, to skip a sender).
    #[must_use]
    pub fn new(instance: u32, limits: HubLimits) -> Arc<Self> {
        Arc::new(Self {
            instance: u64::from(instance) << 32,
            next: AtomicU64::new(0),
            limits,
            state: Mutex::default(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets a socket of `user` from `address` in, unless a cap is reached.
    ///
    /// # Errors
    /// The [`Refusal`] naming the cap.
    pub fn register(
        self: &Arc<Self>,
        user: &UserId,
        address: &str,
    ) -> Result<Registration, Refusal> {
        let mut state = self.state();
        if state.per_user.get(user).copied().unwrap_or(0) >= self.limits.per_user {
            return Err(Refusal::TooManyForUser);
        }
        if state.per_address.get(address).copied().unwrap_or(0) >= self.limits.per_address {
            return Err(Refusal::TooManyForAddress);
        }
        let id =
            ConnectionId(self.instance | (self.next.fetch_add(1, Ordering::Relaxed) & 0xFFFF_FFFF));
        let (outbox, events) = mpsc::channel(self.limits.queue);
        *state.per_user.entry(user.clone()).or_default() += 1;
        *state.per_address.entry(address.to_owned()).or_default() += 1;
        state.sockets.insert(
            id,
            Socket {
                user: user.clone(),
                address: address.to_owned(),
                rooms: BTreeSet::new(),
                outbox,
            },
        );
        Ok(Registration {
            id,
            events,
            hub: Arc::clone(self),
        })
    }

    fn remove(&self, id: ConnectionId) {
        let mut state = self.state();
        let Some(socket) = state.sockets.remove(&id) else {
            return;
        };
        decrement(&mut state.per_user, &socket.user);
        decrement(&mut state.per_address, &socket.address);
    }

    /// Puts the socket in `room`; `false` when it already was.
    pub(crate) fn join(
        &self,
        id: ConnectionId,
        room: &RoomName,
        max_rooms: usize,
    ) -> Result<bool, ()> {
        let mut state = self.state();
        let Some(socket) = state.sockets.get_mut(&id) else {
            return Ok(false);
        };
        if socket.rooms.contains(room) {
            return Ok(false);
        }
        if socket.rooms.len() >= max_rooms {
            return Err(());
        }
        socket.rooms.insert(room.clone());
        Ok(true)
    }

    /// Takes the socket out of `room`; `false` when it was not in it.
    pub(crate) fn leave(&self, id: ConnectionId, room: &RoomName) -> bool {
        self.state()
            .sockets
            .get_mut(&id)
            .is_some_and(|socket| socket.rooms.remove(room))
    }

    pub(crate) fn rooms_of(&self, id: ConnectionId) -> Vec<RoomName> {
        self.state()
            .sockets
            .get(&id)
            .map(|socket| socket.rooms.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn is_in(&self, id: ConnectionId, room: &RoomName) -> bool {
        self.state()
            .sockets
            .get(&id)
            .is_some_and(|socket| socket.rooms.contains(room))
    }

    /// Hands `broadcast` to each local socket in one of its rooms, once. A socket whose queue
    /// is full is cut off (its event stream ends), so one slow reader never holds up a room.
    pub fn deliver(&self, broadcast: &Broadcast) {
        let delivery = Arc::new(Delivery {
            event: broadcast.event.clone(),
            renderings: Default::default(),
        });
        let mut state = self.state();
        for (id, socket) in &mut state.sockets {
            if Some(*id) == broadcast.skip
                || !broadcast
                    .rooms
                    .iter()
                    .any(|room| socket.rooms.contains(room))
            {
                continue;
            }
            if socket.outbox.try_send(Arc::clone(&delivery)).is_err() {
                socket.outbox.close_channel();
            }
        }
    }

    /// Delivers every broadcast of `bus` until it ends.
    pub async fn run(self: Arc<Self>, mut bus: BoxStream<'static, Broadcast>) {
        while let Some(broadcast) = bus.next().await {
            self.deliver(&broadcast);
        }
    }

    /// Sockets open on this instance.
    #[must_use]
    pub fn len(&self) -> usize {
        self.state().sockets.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn decrement<K: Eq + std::hash::Hash>(counts: &mut HashMap<K, usize>, key: &K) {
    if let Some(count) = counts.get_mut(key) {
        *count -= 1;
        if *count == 0 {
            counts.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_channel::mpsc::TryRecvError;

    use super::*;
    use crate::model::Participant;

    const LIMITS: HubLimits = HubLimits {
        per_user: 2,
        per_address: 3,
        queue: 2,
    };

    fn joined(user: &UserId, name: &str) -> Event {
        Event::UserJoined {
            room: RoomName::general(),
            user: Participant {
                user_id: user.clone(),
                display_name: name.to_owned(),
            },
        }
    }

    #[test]
    fn caps_count_open_sockets_and_free_up_when_one_is_dropped() {
        let hub = Hub::new(1, LIMITS);
        let ada = UserId::generate();
        let first = hub.register(&ada, "10.0.0.1").unwrap();
        let _second = hub.register(&ada, "10.0.0.2").unwrap();
        assert_eq!(
            hub.register(&ada, "10.0.0.3").err(),
            Some(Refusal::TooManyForUser)
        );
        let _bob = hub.register(&UserId::generate(), "10.0.0.1").unwrap();
        let _carol = hub.register(&UserId::generate(), "10.0.0.1").unwrap();
        let dave = UserId::generate();
        assert_eq!(
            hub.register(&dave, "10.0.0.1").err(),
            Some(Refusal::TooManyForAddress)
        );
        drop(first);
        let _dave = hub.register(&dave, "10.0.0.1").unwrap();
        let _ada_again = hub.register(&ada, "10.0.0.4").unwrap();
        assert_eq!(hub.len(), 5);
    }

    #[test]
    fn a_broadcast_reaches_each_socket_in_its_rooms_once_but_not_the_skipped_one() {
        let hub = Hub::new(1, LIMITS);
        let ada = UserId::generate();
        let mut a = hub.register(&ada, "a").unwrap();
        let mut b = hub.register(&UserId::generate(), "b").unwrap();
        let mut outside = hub.register(&UserId::generate(), "c").unwrap();
        let team = RoomName::parse("team").unwrap();
        for registration in [&a, &b] {
            hub.join(registration.id, &RoomName::general(), 5).unwrap();
            hub.join(registration.id, &team, 5).unwrap();
        }
        let event = joined(&ada, "Ada");
        hub.deliver(&Broadcast {
            rooms: vec![RoomName::general(), team],
            event: event.clone(),
            skip: Some(b.id),
        });
        assert_eq!(a.events.try_recv().map(|d| d.event().clone()), Ok(event));
        assert_eq!(
            a.events.try_recv().map(|d| d.event().clone()),
            Err(TryRecvError::Empty),
            "delivered once"
        );
        assert_eq!(
            b.events.try_recv().map(|d| d.event().clone()),
            Err(TryRecvError::Empty),
            "skipped"
        );
        assert_eq!(
            outside.events.try_recv().map(|d| d.event().clone()),
            Err(TryRecvError::Empty),
            "not in the rooms"
        );
    }

    #[test]
    fn a_socket_that_does_not_read_is_cut_off_and_the_others_still_get_events() {
        let hub = Hub::new(1, LIMITS);
        let mut slow = hub.register(&UserId::generate(), "a").unwrap();
        let mut fast = hub.register(&UserId::generate(), "b").unwrap();
        hub.join(slow.id, &RoomName::general(), 5).unwrap();
        hub.join(fast.id, &RoomName::general(), 5).unwrap();
        let event = joined(&UserId::generate(), "Eve");
        for _ in 0..4 {
            hub.deliver(&Broadcast {
                rooms: vec![RoomName::general()],
                event: event.clone(),
                skip: None,
            });
            assert_eq!(
                fast.events.try_recv().map(|d| d.event().clone()),
                Ok(event.clone())
            );
        }
        let mut received = 0;
        while slow.events.try_recv().is_ok() {
            received += 1;
        }
        assert_eq!(received, 3, "what fitted in its queue");
        assert_eq!(
            slow.events.try_recv().map(|d| d.event().clone()),
            Err(TryRecvError::Closed),
            "then its stream ended"
        );
    }

    #[test]
    fn a_socket_joins_up_to_the_room_cap() {
        let hub = Hub::new(1, LIMITS);
        let socket = hub.register(&UserId::generate(), "a").unwrap();
        assert_eq!(hub.join(socket.id, &RoomName::general(), 2), Ok(true));
        assert_eq!(hub.join(socket.id, &RoomName::general(), 2), Ok(false));
        assert_eq!(
            hub.join(socket.id, &RoomName::parse("b").unwrap(), 2),
            Ok(true)
        );
        assert_eq!(
            hub.join(socket.id, &RoomName::parse("c").unwrap(), 2),
            Err(())
        );
        assert!(hub.leave(socket.id, &RoomName::general()));
        assert!(!hub.leave(socket.id, &RoomName::general()));
    }
}
