//! The chat service and its hub: the in-process bus, history and presence of the embedded
//! mode, and the task that hands the bus's broadcasts to this instance's sockets.

use std::sync::Arc;

use chat_core::ports::ChatBus;
use chat_core::{ChatLimits, ChatPorts, ChatService, Hub, HubLimits};
use http_api::ChatSocketConfig;
use kernel::Clock;
use store_memory::{MemoryChatBus, MemoryChatHistory, MemoryPresence};

use crate::config::Settings;

/// Events one socket may have waiting before it is cut off as too slow.
const SOCKET_QUEUE: usize = 256;

/// Starts the chat: its hub is subscribed to the bus before this returns, so no broadcast
/// published afterwards is missed.
///
/// # Errors
/// When the bus cannot be subscribed to.
pub async fn start(settings: &Settings, clock: Arc<dyn Clock>) -> Result<Arc<ChatService>, String> {
    let bus: Arc<dyn ChatBus> = Arc::new(MemoryChatBus::default());
    let hub = Hub::new(
        rand::random(),
        HubLimits {
            per_user: settings.ws_per_user as usize,
            per_address: settings.ws_per_ip as usize,
            queue: SOCKET_QUEUE,
        },
    );
    let subscription = bus
        .subscribe()
        .await
        .map_err(|e| format!("chat bus: {e}"))?;
    tokio::spawn(Arc::clone(&hub).run(subscription));
    Ok(Arc::new(ChatService::new(
        hub,
        ChatPorts {
            bus,
            history: Arc::new(MemoryChatHistory::default()),
            presence: Arc::new(MemoryPresence::default()),
            clock,
        },
        ChatLimits {
            per_minute: settings.ws_per_minute,
            per_hour: settings.ws_per_hour,
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
