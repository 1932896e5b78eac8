//! `GET /ws/chat`: the chat over a plain WebSocket, one JSON text frame per event.

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header::{HeaderValue, SEC_WEBSOCKET_PROTOCOL};
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Message, MessageStream};
use auth_core::IdentityService;
use chat_core::ChatService;
use chat_core::model::{ChatError, ChatErrorCode, Event};
use futures_util::StreamExt as _;

use super::outlet::{self, Outlet};
use super::{Admitted, ChatSocketConfig, TokenSource, admit, protocol};

/// The session behind the socket ended (logout, revocation, deletion).
const SESSION_ENDED: u16 = 4401;
/// The user's message rate was exceeded.
const RATE_LIMITED: u16 = 4429;
/// Nothing arrived for the idle timeout.
const IDLE: u16 = 4408;
/// The socket read its events too slowly and fell behind (a client that stops reading
/// altogether is cut off without a close frame, see `outlet`).
const TOO_SLOW: u16 = 4413;

pub(crate) async fn ws_chat(
    request: HttpRequest,
    body: web::Payload,
    identity: web::Data<IdentityService>,
    chat: web::Data<ChatService>,
    config: web::Data<ChatSocketConfig>,
) -> Result<HttpResponse, actix_web::Error> {
    // The upgrade is checked first: nothing of the chat happens for a request that is not one.
    let (mut response, outlet, messages) =
        outlet::accept(&request, body, config.max_frame, config.idle_timeout)?;
    let admitted = admit(&request, &identity, &chat).await?;
    if matches!(admitted.source, TokenSource::Subprotocol) {
        response
            .headers_mut()
            .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("bearer"));
    }
    actix_web::rt::spawn(serve(
        admitted,
        outlet,
        messages,
        identity.into_inner(),
        chat.into_inner(),
        **config,
    ));
    Ok(response)
}

/// Why the socket loop ended, and the close frame that says so.
fn close(code: u16, description: &str) -> Option<CloseReason> {
    Some(CloseReason {
        code: CloseCode::Other(code),
        description: Some(description.to_owned()),
    })
}

async fn serve(
    admitted: Admitted,
    mut outlet: Outlet,
    mut messages: MessageStream,
    identity: Arc<IdentityService>,
    chat: Arc<ChatService>,
    config: ChatSocketConfig,
) {
    let Admitted {
        principal,
        mut connection,
        connected,
        ..
    } = admitted;
    let mut ping = tokio::time::interval(config.ping_interval);
    let mut session_check = tokio::time::interval(config.session_check);
    let mut last_heard = Instant::now();
    let mut reason = None;
    if !outlet.text(&protocol::frame(&connected)).await {
        chat.close(connection).await;
        outlet.close(None).await;
        return;
    }
    loop {
        tokio::select! {
            // Deliveries first: a socket busy with its own frames still takes what its
            // rooms send, so its queue in the hub never fills behind them.
            biased;
            delivery = connection.registration.events.next() => {
                let Some(delivery) = delivery else {
                    reason = close(TOO_SLOW, "too far behind");
                    break;
                };
                let frame = delivery.rendered(protocol::WEBSOCKET, protocol::frame);
                if !outlet.text(frame.as_ref()).await {
                    reason = close(TOO_SLOW, "too far behind");
                    break;
                }
            }
            received = messages.next() => {
                let Some(Ok(received)) = received else { break };
                last_heard = Instant::now();
                let frame = match received {
                    Message::Text(text) => protocol::frame_command(&text),
                    Message::Binary(_) => Err(ChatError::new(
                        ChatErrorCode::InvalidFrame,
                        "frames are JSON text",
                    )),
                    Message::Ping(bytes) => {
                        if !outlet.pong(&bytes).await { break }
                        continue;
                    }
                    Message::Close(_) => break,
                    Message::Pong(_) | Message::Continuation(_) | Message::Nop => continue,
                };
                let replies = match chat.handle(&connection, frame).await {
                    Ok(replies) => replies,
                    Err(error) => {
                        let closes = error.closes();
                        if !outlet.text(&protocol::frame(&Event::Error(error))).await {
                            break;
                        }
                        if closes {
                            reason = close(RATE_LIMITED, "rate limit exceeded");
                            break;
                        }
                        continue;
                    }
                };
                let mut written = true;
                for reply in replies {
                    written = outlet.text(&protocol::frame(&reply)).await;
                    if !written { break }
                }
                if !written {
                    reason = close(TOO_SLOW, "too far behind");
                    break;
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > config.idle_timeout {
                    reason = close(IDLE, "idle");
                    break;
                }
                if !outlet.ping().await { break }
            }
            _ = session_check.tick() => {
                if !identity.session_is_live(&principal).await.unwrap_or(true) {
                    reason = close(SESSION_ENDED, "session ended");
                    break;
                }
            }
        }
    }
    chat.close(connection).await;
    outlet.close(reason).await;
}
