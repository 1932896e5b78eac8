//! Every chat rule: who may do what in which room, how much, and what everyone else sees.
//! Sockets (WebSocket, Socket.IO) only translate frames to [`Command`]s and [`Event`]s to
//! frames.
//!
//! The rules: validation, room membership, a per-user rate per minute and per hour over all the
//! user's sockets (on every instance: counted through the `RateLimiter` port), a per-user cap
//! on sockets over every instance (presence counts them), history limits, and who hears about
//! joins, leaves, typing and presence.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use kernel::rate::{RateDecision, RateLimiter};
use kernel::{Clock, UserId};

use crate::hub::{Hub, Refusal, Registration};
use crate::model::{
    ChatError, ChatErrorCode, ChatMessage, Command, ConnectionId, Event, MessageId, Participant,
    RoomName, Status,
};
use crate::ports::{Broadcast, ChatBus, ChatHistory, PresenceRegistry};

/// Limits of the chat rules.
#[derive(Clone, Copy, Debug)]
pub struct ChatLimits {
    /// Commands (frames) per user per minute and per hour, over all the user's sockets.
    pub per_minute: u32,
    pub per_hour: u32,
    /// Messages each room keeps.
    pub history: usize,
    /// A room nobody writes to for this long loses its history.
    pub history_idle: Duration,
    /// Distinct rooms besides `general` one user may enter per hour: each may start a history.
    pub rooms_per_hour: u32,
    /// Rooms one socket may be in, `general` included.
    pub rooms_per_socket: usize,
    /// Characters in a message.
    pub message_length: usize,
}

impl Default for ChatLimits {
    fn default() -> Self {
        Self {
            per_minute: 60,
            per_hour: 1000,
            history: 100,
            history_idle: Duration::from_secs(7 * 24 * 3600),
            rooms_per_hour: 20,
            rooms_per_socket: 20,
            message_length: 2000,
        }
    }
}

pub struct ChatPorts {
    pub bus: Arc<dyn ChatBus>,
    pub history: Arc<dyn ChatHistory>,
    pub presence: Arc<dyn PresenceRegistry>,
    pub clock: Arc<dyn Clock>,
    /// Counts each user's commands per minute and per hour, over every instance sharing it.
    pub limiter: Arc<dyn RateLimiter>,
}

pub struct ChatService {
    hub: Arc<Hub>,
    ports: ChatPorts,
    limits: ChatLimits,
    rates: Mutex<Rates>,
}

/// The rooms each user entered this hour, kept for as long as the hour lasts whatever the
/// user's sockets do (a reconnect starts no new window); users whose hour is over are dropped
/// now and then. Counted per instance.
#[derive(Default)]
struct Rates {
    by_user: HashMap<UserId, Rate>,
    /// The count of users at which the next sweep happens.
    sweep_at: usize,
}

/// Users counted before the first sweep of finished windows.
const FIRST_SWEEP: usize = 1024;

/// One open socket of a participant.
pub struct ChatConnection {
    pub who: Participant,
    pub registration: Registration,
    /// The client address it was counted under.
    address: String,
}

impl ChatConnection {
    #[must_use]
    pub fn id(&self) -> ConnectionId {
        self.registration.id
    }
}

/// The rooms a user entered this hour.
#[derive(Clone, Debug)]
struct Rate {
    rooms: (DateTime<Utc>, BTreeSet<RoomName>),
}

impl Rate {
    fn new(now: DateTime<Utc>) -> Self {
        Self {
            rooms: (now, BTreeSet::new()),
        }
    }

    /// Whether this user's hour has ended by `now`.
    fn is_over(&self, now: DateTime<Utc>) -> bool {
        now - self.rooms.0 >= TimeDelta::hours(1)
    }

    /// Counts `room` among the rooms entered this hour; `false` when it would be one too many.
    fn enter(&mut self, now: DateTime<Utc>, room: &RoomName, limit: u32) -> bool {
        let (start, rooms) = &mut self.rooms;
        if now - *start >= TimeDelta::hours(1) {
            (*start, *rooms) = (now, BTreeSet::new());
        }
        if rooms.contains(room) {
            return true;
        }
        if rooms.len() >= limit as usize {
            return false;
        }
        rooms.insert(room.clone());
        true
    }
}

impl ChatService {
    #[must_use]
    pub fn new(hub: Arc<Hub>, ports: ChatPorts, limits: ChatLimits) -> Self {
        Self {
            hub,
            ports,
            limits,
            rates: Mutex::default(),
        }
    }

    #[must_use]
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Opens a socket for `who`: it joins `general`, and the room hears of it (and, for the
    /// user's first socket anywhere, that they are online). The first event for the socket is
    /// the returned `connected`.
    ///
    /// # Errors
    /// The [`Refusal`] when a connection cap is reached.
    pub async fn open(
        &self,
        who: Participant,
        address: &str,
    ) -> Result<(ChatConnection, Event), Refusal> {
        let registration = self.hub.register(&who.user_id, address)?;
        let general = RoomName::general();
        // The cap counts `general`, so a fresh socket always has room for it.
        let _ = self
            .hub
            .join(registration.id, &general, self.limits.rooms_per_socket);
        let connection = ChatConnection {
            who,
            registration,
            address: address.to_owned(),
        };
        let open = self
            .ports
            .presence
            .arrive(&connection.who.user_id)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "presence unavailable");
                0
            });
        let from = self
            .ports
            .presence
            .address_arrives(address)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "presence unavailable");
                0
            });
        // The hub counted this instance's sockets; presence counts every instance's.
        let (users, addresses) = self.hub.caps();
        let refusal = if open > users as u64 {
            Some(Refusal::TooManyForUser)
        } else if from > addresses as u64 {
            Some(Refusal::TooManyForAddress)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            let user = connection.who.user_id.clone();
            drop(connection);
            self.count_out(&user, address).await;
            return Err(refusal);
        }
        if open == 1 {
            self.announce(
                &connection,
                vec![general.clone()],
                Event::Presence {
                    user: connection.who.clone(),
                    status: Status::Online,
                },
            )
            .await;
        }
        self.announce(
            &connection,
            vec![general.clone()],
            Event::UserJoined {
                room: general.clone(),
                user: connection.who.clone(),
            },
        )
        .await;
        let connected = Event::Connected {
            user_id: connection.who.user_id.clone(),
            rooms: vec![general],
        };
        Ok((connection, connected))
    }

    /// Applies one frame's command (or the gateway's reason it could not be read): the events
    /// for this socket only are returned; what others see goes out on the bus. Every frame
    /// counts towards the user's rate limit.
    ///
    /// # Errors
    /// The [`ChatError`] to send back; the socket closes after it when [`ChatError::closes`].
    pub async fn handle(
        &self,
        connection: &ChatConnection,
        frame: Result<Command, ChatError>,
    ) -> Result<Vec<Event>, ChatError> {
        self.admit(&connection.who.user_id).await?;
        match frame? {
            Command::JoinRoom { room } => self.join(connection, &RoomName::parse(&room)?).await,
            Command::LeaveRoom { room } => self.leave(connection, &RoomName::parse(&room)?).await,
            Command::Message { room, content } => self.send(connection, &room, content).await,
            Command::Typing { room, is_typing } => {
                let room = self.member_of(connection, &room)?;
                self.publish(Broadcast {
                    rooms: vec![room.clone()],
                    event: Event::Typing {
                        room,
                        user: connection.who.clone(),
                        is_typing,
                    },
                    skip: Some(connection.id()),
                })
                .await?;
                Ok(Vec::new())
            }
            Command::Presence { status } => {
                let status = Status::chosen(&status)?;
                self.publish(Broadcast {
                    rooms: self.hub.rooms_of(connection.id()),
                    event: Event::Presence {
                        user: connection.who.clone(),
                        status,
                    },
                    skip: None,
                })
                .await?;
                Ok(Vec::new())
            }
            Command::History { room, limit } => {
                let room = self.member_of(connection, &room)?;
                let limit = match limit {
                    None => self.limits.history,
                    Some(n) if (1..=self.limits.history).contains(&(n as usize)) => n as usize,
                    Some(_) => {
                        return Err(ChatError::invalid(format!(
                            "limit must be 1-{}",
                            self.limits.history
                        )));
                    }
                };
                let messages = self.ports.history.recent(&room, limit).await?;
                Ok(vec![Event::History { room, messages }])
            }
        }
    }

    /// Closes a socket: its rooms hear that the user left, and, when it was the user's last
    /// socket anywhere, that they are offline.
    pub async fn close(&self, connection: ChatConnection) {
        let rooms = self.hub.rooms_of(connection.id());
        for room in &rooms {
            self.announce(
                &connection,
                vec![room.clone()],
                Event::UserLeft {
                    room: room.clone(),
                    user: connection.who.clone(),
                },
            )
            .await;
        }
        let (who, address) = (connection.who.clone(), connection.address.clone());
        drop(connection);
        let last = self.count_out(&who.user_id, &address).await;
        if last {
            let event = Event::Presence {
                user: who.clone(),
                status: Status::Offline,
            };
            if let Err(error) = self
                .publish(Broadcast {
                    rooms,
                    event,
                    skip: None,
                })
                .await
            {
                tracing::warn!(code = error.code.as_str(), "offline presence not announced");
            }
        }
    }

    /// Counts a closed socket out of presence; `true` when it was the user's last.
    async fn count_out(&self, user: &UserId, address: &str) -> bool {
        if let Err(error) = self.ports.presence.address_departs(address).await {
            tracing::warn!(%error, "presence unavailable");
        }
        self.ports
            .presence
            .depart(user)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "presence unavailable");
                false
            })
    }

    /// The user's windows (a new one for a user not counted yet).
    fn rate_of<'a>(
        rates: &'a mut MutexGuard<'_, Rates>,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> &'a mut Rate {
        if rates.by_user.len() >= rates.sweep_at {
            rates.by_user.retain(|_, rate| !rate.is_over(now));
            rates.sweep_at = (rates.by_user.len() * 2).max(FIRST_SWEEP);
        }
        rates
            .by_user
            .entry(user.clone())
            .or_insert_with(|| Rate::new(now))
    }

    fn rates(&self) -> MutexGuard<'_, Rates> {
        self.rates.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one command in both windows (refused ones too); refuses it when it is over
    /// either. While the counters cannot be reached, commands pass: the chat's bus and history
    /// live beside them, so nothing is delivered meanwhile anyway.
    async fn admit(&self, user: &UserId) -> Result<(), ChatError> {
        let mut within = true;
        for (window, length, limit) in [
            ("minute", Duration::from_secs(60), self.limits.per_minute),
            ("hour", Duration::from_secs(3600), self.limits.per_hour),
        ] {
            let key = format!("chat-{window}:{user}");
            match self.ports.limiter.hit(&key, limit, length).await {
                Ok(RateDecision::Allowed) => {}
                Ok(RateDecision::Limited { .. }) => within = false,
                Err(error) => tracing::warn!(%error, "chat rate limits unavailable"),
            }
        }
        if within {
            Ok(())
        } else {
            Err(ChatError::new(
                ChatErrorCode::TooManyRequests,
                format!(
                    "more than {} messages a minute or {} an hour",
                    self.limits.per_minute, self.limits.per_hour
                ),
            ))
        }
    }

    fn member_of(&self, connection: &ChatConnection, room: &str) -> Result<RoomName, ChatError> {
        let room = RoomName::parse(room)?;
        if self.hub.is_in(connection.id(), &room) {
            Ok(room)
        } else {
            Err(ChatError::new(
                ChatErrorCode::NotInRoom,
                format!("join {room} first"),
            ))
        }
    }

    async fn join(
        &self,
        connection: &ChatConnection,
        room: &RoomName,
    ) -> Result<Vec<Event>, ChatError> {
        if !self.hub.is_in(connection.id(), room) && *room != RoomName::general() {
            let now = self.ports.clock.now();
            let mut rates = self.rates();
            let rate = Self::rate_of(&mut rates, &connection.who.user_id, now);
            if !rate.enter(now, room, self.limits.rooms_per_hour) {
                return Err(ChatError::new(
                    ChatErrorCode::TooManyRooms,
                    format!(
                        "at most {} different rooms an hour",
                        self.limits.rooms_per_hour
                    ),
                ));
            }
        }
        let joined = self
            .hub
            .join(connection.id(), room, self.limits.rooms_per_socket)
            .map_err(|()| {
                ChatError::new(
                    ChatErrorCode::TooManyRooms,
                    format!(
                        "at most {} rooms per connection",
                        self.limits.rooms_per_socket
                    ),
                )
            })?;
        if joined {
            self.publish(Broadcast {
                rooms: vec![room.clone()],
                event: Event::UserJoined {
                    room: room.clone(),
                    user: connection.who.clone(),
                },
                skip: None,
            })
            .await?;
        }
        Ok(Vec::new())
    }

    async fn leave(
        &self,
        connection: &ChatConnection,
        room: &RoomName,
    ) -> Result<Vec<Event>, ChatError> {
        if !self.hub.is_in(connection.id(), room) {
            return Err(ChatError::new(
                ChatErrorCode::NotInRoom,
                format!("not in {room}"),
            ));
        }
        // Announced before leaving, so the leaver's own socket confirms it too.
        self.publish(Broadcast {
            rooms: vec![room.clone()],
            event: Event::UserLeft {
                room: room.clone(),
                user: connection.who.clone(),
            },
            skip: None,
        })
        .await?;
        self.hub.leave(connection.id(), room);
        Ok(Vec::new())
    }

    async fn send(
        &self,
        connection: &ChatConnection,
        room: &str,
        content: String,
    ) -> Result<Vec<Event>, ChatError> {
        let room = self.member_of(connection, room)?;
        let length = content.chars().count();
        if content.trim().is_empty() || length > self.limits.message_length {
            return Err(ChatError::invalid(format!(
                "content must be 1-{} characters",
                self.limits.message_length
            )));
        }
        let message = ChatMessage {
            id: MessageId::generate(),
            room: room.clone(),
            user_id: connection.who.user_id.clone(),
            display_name: connection.who.display_name.clone(),
            content,
            timestamp: self.ports.clock.now(),
        };
        self.ports
            .history
            .append(&message, self.limits.history, self.limits.history_idle)
            .await?;
        self.publish(Broadcast {
            rooms: vec![room],
            event: Event::Message(message),
            skip: None,
        })
        .await?;
        Ok(Vec::new())
    }

    async fn publish(&self, broadcast: Broadcast) -> Result<(), ChatError> {
        Ok(self.ports.bus.publish(broadcast).await?)
    }

    /// A broadcast that is news, not an answer: a failure is logged, not sent to anyone.
    async fn announce(&self, connection: &ChatConnection, rooms: Vec<RoomName>, event: Event) {
        let broadcast = Broadcast {
            rooms,
            event,
            skip: Some(connection.id()),
        };
        if let Err(error) = self.ports.bus.publish(broadcast).await {
            tracing::warn!(%error, "chat announcement not sent");
        }
    }
}
