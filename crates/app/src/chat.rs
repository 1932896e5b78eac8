//! The chat service and its hub: the bus, history, presence and per-user rate counters on
//! Redis when it is configured (every `console-api` shares rooms and limits), else in this
//! process; and the task that hands the bus's broadcasts to this instance's sockets.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chat_core::{ChatLimits, ChatPorts, ChatService, Hub, HubLimits};
use http_api::ChatSocketConfig;
use kernel::Clock;
use store_memory::{MemoryChatBus, MemoryChatHistory, MemoryPresence, MemoryRateLimiter};
use store_redis::{RedisChat, RedisConnection, RedisRateLimiter};

use crate::config::Settings;

/// Users whose chat rates one instance counts at most without Redis (about 150 bytes each);
/// beyond, the least recently seen user's windows go.
const CHAT_RATE_MAX_USERS: u64 = 100_000;

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
    let ports = match (redis, settings.redis.as_ref()) {
        (Some(connection), Some(config)) => {
            let chat = Arc::new(RedisChat::new(connection, &config.key_prefix));
            ChatPorts {
                bus: chat.clone(),
                history: chat.clone(),
                presence: chat,
                limiter: Arc::new(RedisRateLimiter::new(connection, &config.key_prefix)),
                clock,
            }
        }
        _ => ChatPorts {
            bus: Arc::new(MemoryChatBus::default()),
            history: Arc::new(MemoryChatHistory::default()),
            presence: Arc::new(MemoryPresence::default()),
            limiter: Arc::new(MemoryRateLimiter::with_clock(
                Duration::from_secs(3600),
                CHAT_RATE_MAX_USERS,
                Arc::clone(&clock),
            )),
            clock,
        },
    };
    let hub = Hub::new(
        rand::random(),
        HubLimits {
            per_user: settings.ws_per_user as usize,
            per_address: settings.ws_per_ip as usize,
            queue: SOCKET_QUEUE,
        },
    );
    let subscription = ports.bus.subscribe().await.context("chat bus")?;
    tokio::spawn(Arc::clone(&hub).run(subscription));
    Ok(Arc::new(ChatService::new(
        hub,
        ports,
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
