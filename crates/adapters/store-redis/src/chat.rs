//! Chat across instances on Redis: broadcasts over pub/sub on one channel (each instance's hub
//! subscribes once), each room's history in a list trimmed to its length, and each user's open
//! sockets counted per instance (`lua/presence.lua`), so that the counts of an instance that
//! died go with it.

use std::time::Duration;

use async_trait::async_trait;
use chat_core::model::{
    ChatError, ChatErrorCode, ChatMessage, ConnectionId, Event, MessageId, Participant, RoomName,
    Status,
};
use chat_core::ports::{Broadcast, ChatBus, ChatHistory, PresenceRegistry};
use chrono::{DateTime, Utc};
use fred::prelude::{KeysInterface as _, ListInterface as _, Pool, PubsubInterface as _};
use fred::types::scripts::Script;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use kernel::{StoreError, UserId};
use serde::{Deserialize, Serialize};

use crate::RedisConnection;

/// How long an instance's presence counts outlive its last heartbeat (sent every third of it):
/// the sockets of an instance that died without closing them stop counting after this.
pub const PRESENCE_TTL: Duration = Duration::from_secs(30);

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::message(error.to_string())
}

/// The chat's state on Redis, under one key prefix (a deployment): the channel
/// `{prefix}:chat:broadcasts`, the lists `{prefix}:chat:history:<room>` and the presence keys
/// `{prefix}:chat:presence:…`.
pub struct RedisChat {
    pool: Pool,
    connection: RedisConnection,
    /// `{prefix}:chat`: the hash tag keeps the deployment's keys in one cluster slot.
    base: String,
    presence: Presence,
    heartbeat: tokio::task::JoinHandle<()>,
}

/// This instance's side of the presence counts.
#[derive(Clone)]
struct Presence {
    pool: Pool,
    script: std::sync::Arc<Script>,
    /// `{prefix}:chat:presence`.
    base: String,
    instance: String,
    ttl: Duration,
}

impl Presence {
    /// Runs `op` for `user`; answers the user's open sockets on the live instances.
    async fn run(&self, op: &str, user: &str) -> Result<i64, StoreError> {
        let ttl = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        self.script
            .evalsha_with_reload::<i64, _, _>(
                self.pool.next(),
                vec![
                    format!("{}:instances", self.base),
                    format!("{}:{}", self.base, self.instance),
                ],
                vec![
                    op.to_owned(),
                    self.instance.clone(),
                    ttl.to_string(),
                    user.to_owned(),
                    self.base.clone(),
                ],
            )
            .await
            .map_err(backend)
    }
}

impl RedisChat {
    /// The chat on `connection` under `prefix`; presence counts live [`PRESENCE_TTL`] past
    /// this instance's last heartbeat. Must be called within a Tokio runtime (the heartbeat is
    /// a task).
    #[must_use]
    pub fn new(connection: &RedisConnection, prefix: &str) -> Self {
        Self::with_presence_ttl(connection, prefix, PRESENCE_TTL)
    }

    /// As [`RedisChat::new`], with another time to live for the presence counts.
    #[must_use]
    pub fn with_presence_ttl(connection: &RedisConnection, prefix: &str, ttl: Duration) -> Self {
        let base = format!("{{{prefix}}}:chat");
        let presence = Presence {
            pool: connection.pool.clone(),
            script: std::sync::Arc::new(Script::from_lua(include_str!("lua/presence.lua"))),
            base: format!("{base}:presence"),
            instance: format!(
                "{}-{}",
                std::process::id(),
                kernel::ObjectIdGenerator::next_hex()
            ),
            ttl,
        };
        let beating = presence.clone();
        let heartbeat = tokio::spawn(async move {
            let mut every = tokio::time::interval(beating.ttl / 3);
            loop {
                every.tick().await;
                if let Err(error) = beating.run("beat", "").await {
                    tracing::warn!(%error, "chat presence heartbeat failed");
                }
            }
        });
        Self {
            pool: connection.pool.clone(),
            connection: connection.clone(),
            base,
            presence,
            heartbeat,
        }
    }

    fn channel(&self) -> String {
        format!("{}:broadcasts", self.base)
    }

    fn history_key(&self, room: &RoomName) -> String {
        format!("{}:history:{room}", self.base)
    }
}

impl Drop for RedisChat {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

#[async_trait]
impl ChatBus for RedisChat {
    async fn publish(&self, broadcast: Broadcast) -> Result<(), StoreError> {
        let wire = serde_json::to_string(&WireBroadcast::from(&broadcast)).map_err(backend)?;
        self.pool
            .next()
            .publish::<(), _, _>(self.channel(), wire)
            .await
            .map_err(backend)
    }

    async fn subscribe(&self) -> Result<BoxStream<'static, Broadcast>, StoreError> {
        let messages = self
            .connection
            .messages(self.channel(), "chat")
            .await
            .map_err(backend)?;
        Ok(messages
            .filter_map(|text| std::future::ready(decode(&text)))
            .boxed())
    }
}

fn decode(text: &str) -> Option<Broadcast> {
    match serde_json::from_str::<WireBroadcast>(text) {
        Ok(wire) => wire.into_domain(),
        Err(error) => {
            tracing::warn!(%error, "an undecodable chat broadcast was skipped");
            None
        }
    }
}

#[async_trait]
impl ChatHistory for RedisChat {
    async fn append(
        &self,
        message: &ChatMessage,
        keep: usize,
        idle: Duration,
    ) -> Result<(), StoreError> {
        let key = self.history_key(&message.room);
        let wire = serde_json::to_string(&WireMessage::from(message)).map_err(backend)?;
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let idle = i64::try_from(idle.as_millis()).unwrap_or(i64::MAX).max(1);
        let pipeline = self.pool.next().pipeline();
        let _: () = pipeline.rpush(&key, wire).await.map_err(backend)?;
        let _: () = pipeline.ltrim(&key, -keep, -1).await.map_err(backend)?;
        let _: () = pipeline.pexpire(&key, idle, None).await.map_err(backend)?;
        pipeline.all::<()>().await.map_err(backend)
    }

    async fn recent(&self, room: &RoomName, limit: usize) -> Result<Vec<ChatMessage>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let stored: Vec<String> = self
            .pool
            .next()
            .lrange(self.history_key(room), -limit, -1)
            .await
            .map_err(backend)?;
        Ok(stored
            .iter()
            .filter_map(|text| serde_json::from_str::<WireMessage>(text).ok())
            .filter_map(WireMessage::into_domain)
            .collect())
    }
}

#[async_trait]
impl PresenceRegistry for RedisChat {
    async fn arrive(&self, user: &UserId) -> Result<u64, StoreError> {
        Ok(u64::try_from(self.presence.run("arrive", user.as_str()).await?).unwrap_or(0))
    }

    async fn depart(&self, user: &UserId) -> Result<bool, StoreError> {
        Ok(self.presence.run("depart", user.as_str()).await? <= 0)
    }

    // Addresses are counted in the same per-instance hashes as users, under fields of their
    // own (a user id is 24 hex digits, never `address:…`).
    async fn address_arrives(&self, address: &str) -> Result<u64, StoreError> {
        let count = self
            .presence
            .run("arrive", &format!("address:{address}"))
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn address_departs(&self, address: &str) -> Result<(), StoreError> {
        self.presence
            .run("depart", &format!("address:{address}"))
            .await
            .map(drop)
    }
}

// The wire format: versioned, independent of the domain types' shape.

#[derive(Serialize, Deserialize)]
struct WireBroadcast {
    v: u8,
    rooms: Vec<String>,
    skip: Option<u64>,
    event: WireEvent,
}

#[derive(Serialize, Deserialize)]
struct WirePerson {
    user_id: String,
    display_name: String,
}

#[derive(Serialize, Deserialize)]
struct WireMessage {
    id: String,
    room: String,
    user_id: String,
    display_name: String,
    content: String,
    timestamp: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum WireEvent {
    Connected {
        user_id: String,
        rooms: Vec<String>,
    },
    Message(WireMessage),
    Typing {
        room: String,
        user: WirePerson,
        is_typing: bool,
    },
    Presence {
        user: WirePerson,
        status: String,
    },
    UserJoined {
        room: String,
        user: WirePerson,
    },
    UserLeft {
        room: String,
        user: WirePerson,
    },
    History {
        room: String,
        messages: Vec<WireMessage>,
    },
    Error {
        code: String,
        message: String,
    },
}

impl From<&Participant> for WirePerson {
    fn from(p: &Participant) -> Self {
        Self {
            user_id: p.user_id.to_string(),
            display_name: p.display_name.clone(),
        }
    }
}

impl WirePerson {
    fn into_domain(self) -> Option<Participant> {
        Some(Participant {
            user_id: UserId::parse(&self.user_id).ok()?,
            display_name: self.display_name,
        })
    }
}

impl From<&ChatMessage> for WireMessage {
    fn from(m: &ChatMessage) -> Self {
        Self {
            id: m.id.to_string(),
            room: m.room.to_string(),
            user_id: m.user_id.to_string(),
            display_name: m.display_name.clone(),
            content: m.content.clone(),
            timestamp: m.timestamp,
        }
    }
}

impl WireMessage {
    fn into_domain(self) -> Option<ChatMessage> {
        Some(ChatMessage {
            id: MessageId::parse(&self.id).ok()?,
            room: RoomName::parse(&self.room).ok()?,
            user_id: UserId::parse(&self.user_id).ok()?,
            display_name: self.display_name,
            content: self.content,
            timestamp: self.timestamp,
        })
    }
}

fn room(raw: String) -> Option<RoomName> {
    RoomName::parse(&raw).ok()
}

impl From<&Broadcast> for WireBroadcast {
    fn from(b: &Broadcast) -> Self {
        let event = match &b.event {
            Event::Connected { user_id, rooms } => WireEvent::Connected {
                user_id: user_id.to_string(),
                rooms: rooms.iter().map(ToString::to_string).collect(),
            },
            Event::Message(m) => WireEvent::Message(m.into()),
            Event::Typing {
                room,
                user,
                is_typing,
            } => WireEvent::Typing {
                room: room.to_string(),
                user: user.into(),
                is_typing: *is_typing,
            },
            Event::Presence { user, status } => WireEvent::Presence {
                user: user.into(),
                status: status.as_str().to_owned(),
            },
            Event::UserJoined { room, user } => WireEvent::UserJoined {
                room: room.to_string(),
                user: user.into(),
            },
            Event::UserLeft { room, user } => WireEvent::UserLeft {
                room: room.to_string(),
                user: user.into(),
            },
            Event::History { room, messages } => WireEvent::History {
                room: room.to_string(),
                messages: messages.iter().map(Into::into).collect(),
            },
            Event::Error(error) => WireEvent::Error {
                code: error.code.as_str().to_owned(),
                message: error.message.clone(),
            },
        };
        Self {
            v: 1,
            rooms: b.rooms.iter().map(ToString::to_string).collect(),
            skip: b.skip.map(|id| id.0),
            event,
        }
    }
}

impl WireBroadcast {
    fn into_domain(self) -> Option<Broadcast> {
        let event = match self.event {
            WireEvent::Connected { user_id, rooms } => Event::Connected {
                user_id: UserId::parse(&user_id).ok()?,
                rooms: rooms.into_iter().filter_map(room).collect(),
            },
            WireEvent::Message(m) => Event::Message(m.into_domain()?),
            WireEvent::Typing {
                room: name,
                user,
                is_typing,
            } => Event::Typing {
                room: room(name)?,
                user: user.into_domain()?,
                is_typing,
            },
            WireEvent::Presence { user, status } => Event::Presence {
                user: user.into_domain()?,
                status: match status.as_str() {
                    "online" => Status::Online,
                    "away" => Status::Away,
                    _ => Status::Offline,
                },
            },
            WireEvent::UserJoined { room: name, user } => Event::UserJoined {
                room: room(name)?,
                user: user.into_domain()?,
            },
            WireEvent::UserLeft { room: name, user } => Event::UserLeft {
                room: room(name)?,
                user: user.into_domain()?,
            },
            WireEvent::History {
                room: name,
                messages,
            } => Event::History {
                room: room(name)?,
                messages: messages
                    .into_iter()
                    .filter_map(WireMessage::into_domain)
                    .collect(),
            },
            WireEvent::Error { code, message } => Event::Error(ChatError::new(
                ChatErrorCode::parse(&code).unwrap_or(ChatErrorCode::Unavailable),
                message,
            )),
        };
        Some(Broadcast {
            rooms: self.rooms.into_iter().filter_map(room).collect(),
            event,
            skip: self.skip.map(ConnectionId),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chat_core::ports::PresenceRegistry as _;
    use kernel::UserId;
    use testkit::RedisServer;

    use super::RedisChat;
    use crate::tests::connect;

    /// The chat on a Redis server of its own, started for the test.
    async fn fresh() -> (RedisServer, RedisChat) {
        let server = RedisServer::start().await;
        let connection = connect(&server).await;
        (server, RedisChat::new(&connection, "test"))
    }

    port_contracts::chat_bus_contract!(needs "redis-server", fresh);
    port_contracts::chat_history_contract!(needs "redis-server", fresh);
    port_contracts::presence_contract!(needs "redis-server", fresh);

    #[tokio::test]
    async fn deployments_under_other_prefixes_share_nothing() {
        testkit::needs!("redis-server");
        use chat_core::model::{ChatMessage, MessageId, RoomName};
        use chat_core::ports::ChatHistory as _;
        let server = RedisServer::start().await;
        let connection = connect(&server).await;
        let (ours, theirs) = (
            RedisChat::new(&connection, "ours"),
            RedisChat::new(&connection, "theirs"),
        );
        let ada = UserId::generate();
        assert_eq!(ours.arrive(&ada).await.ok(), Some(1));
        assert_eq!(theirs.arrive(&ada).await.ok(), Some(1), "counted apart");
        let room = RoomName::general();
        let message = ChatMessage {
            id: MessageId::generate(),
            room: room.clone(),
            user_id: ada.clone(),
            display_name: "Ada".to_owned(),
            content: "ours only".to_owned(),
            timestamp: chrono::Utc::now(),
        };
        assert!(
            ours.append(&message, 10, Duration::from_secs(60))
                .await
                .is_ok()
        );
        assert_eq!(
            theirs.recent(&room, 10).await.ok().map(|m| m.len()),
            Some(0)
        );
        assert_eq!(ours.recent(&room, 10).await.ok().map(|m| m.len()), Some(1));
    }

    #[tokio::test]
    async fn the_sockets_of_an_instance_that_died_stop_counting_after_their_time_to_live() {
        testkit::needs!("redis-server");
        let server = RedisServer::start().await;
        let connection = connect(&server).await;
        let ttl = Duration::from_millis(600);
        let (dying, living) = (
            RedisChat::with_presence_ttl(&connection, "test", ttl),
            RedisChat::with_presence_ttl(&connection, "test", ttl),
        );
        let ada = UserId::generate();
        assert_eq!(dying.arrive(&ada).await.ok(), Some(1));
        assert_eq!(
            living.arrive(&ada).await.ok(),
            Some(2),
            "online already, on both instances"
        );
        assert_eq!(
            living.depart(&ada).await.ok(),
            Some(false),
            "still open on the other instance"
        );
        // It dies without counting its socket out.
        drop(dying);
        tokio::time::sleep(ttl * 2).await;
        assert_eq!(
            living.arrive(&ada).await.ok(),
            Some(1),
            "the dead instance's socket no longer counts"
        );
        tokio::time::sleep(ttl * 2).await;
        assert_eq!(
            living.arrive(&ada).await.ok(),
            Some(2),
            "a live instance's sockets count for as long as it beats"
        );
    }
}
