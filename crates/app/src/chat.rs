//! The chat service and its hub: the bus, history and presence on Redis when it is configured
//! (every `console-api` shares rooms), else in this process; and the task that hands the bus's
//! broadcasts to this instance's sockets.

use std::sync::Arc;

use anyhow::Context as _;
use chat_core::ports::{ChatBus, ChatHistory, PresenceRegistry};
use chat_core::{ChatLimits, ChatPorts, ChatService, Hub, HubLimits};
use http_api::ChatSocketConfig;
use kernel::Clock;
use store_memory::{MemoryChatBus, MemoryChatHistory, MemoryPresence};
use store_redis::{RedisChat, RedisConnection};

use crate::config::Settings;

/// Events one socket may have waiting before it is cut off as too slow.
const SOCKET_QUEUE: usize = 256;

/// Starts the chat: its hub is subscribed to the bus before this returns, so no broadcast
/// published afterwards is missed.
///
/// # Errors
/// When the bus cannot be subscribed to.
pub async fn start(
    settings: &Settings,
    redis: Option<&RedisConnection>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<ChatService>> {
    let (bus, history, presence): (
        Arc<dyn ChatBus>,
        Arc<dyn ChatHistory>,
        Arc<dyn PresenceRegistry>,
    ) = match (redis, settings.redis.as_ref()) {
        (Some(connection), Some(config)) => {
            let chat = Arc::new(RedisChat::new(connection, &config.key_prefix));
            (chat.clone(), chat.clone(), chat)
        }
        _ => (
            Arc::new(MemoryChatBus::default()),
            Arc::new(MemoryChatHistory::default()),
            Arc::new(MemoryPresence::default()),
        ),
    };
    let hub = Hub::new(
        rand::random(),
        HubLimits {
            per_user: settings.ws_per_user as usize,
            per_address: settings.ws_per_ip as usize,
            queue: SOCKET_QUEUE,
        },
    );
    let subscription = bus.subscribe().await.context("chat bus")?;
    tokio::spawn(Arc::clone(&hub).run(subscription));
    Ok(Arc::new(ChatService::new(
        hub,
        ChatPorts {
            bus,
            history,
            presence,
            clock,
        },
        ChatLimits {
            per_minute: settings.ws_per_minute,
            per_hour: settings.ws_per_hour,
            history_idle: settings.chat_history_ttl,
            rooms_per_hour: settings.chat_rooms_per_hour,
            ..ChatLimits::default()
        },
    )))
}

#[must_use]
pub fn socket_config(settings: &Settings) -> ChatSocketConfig {
    ChatSocketConfig {
        ping_interval: settings.ws_ping_interval,
        idle_timeout: settings.ws_idle_timeout,
        session_check: settings.ws_session_check,
        max_frame: settings.ws_max_frame,
    }
}
