//! Chat sockets: `GET /ws/chat` (plain WebSocket) and `/socket.io/` (Socket.IO 4). Both
//! translate between frames and the chat core's commands and events; every rule is in
//! `chat-core`.

mod outlet;
mod protocol;
mod socketio;
mod ws;

use std::time::Duration;

use actix_web::{HttpRequest, web};
use auth_core::IdentityService;
use auth_core::error::AuthError;
use auth_core::model::Principal;
use chat_core::model::{Event, Participant};
use chat_core::{ChatConnection, ChatService, Refusal};
use serde::Deserialize;

use crate::client::ClientIpPolicy;
use crate::problem::{ApiError, ErrorCode};
use crate::rate_limit::ClientKey;

pub(crate) use outlet::remember_socket;
pub use socketio::SocketIoSessions;
pub(crate) use socketio::{get as socketio_get, post as socketio_post};
pub(crate) use ws::ws_chat;

/// How chat sockets are kept.
#[derive(Clone, Copy, Debug)]
pub struct ChatSocketConfig {
    /// A ping is sent this often.
    pub ping_interval: Duration,
    /// A socket that sends nothing (not even a pong) for this long is closed.
    pub idle_timeout: Duration,
    /// How often an open socket checks that its session is still live.
    pub session_check: Duration,
    /// Largest frame accepted, in bytes.
    pub max_frame: usize,
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Where a socket's access token came from.
enum TokenSource {
    QueryOrHeader,
    /// The `bearer, <token>` subprotocol, which the answer must name.
    Subprotocol,
}

fn token(request: &HttpRequest) -> Option<(String, TokenSource)> {
    if let Ok(query) = web::Query::<TokenQuery>::from_query(request.query_string())
        && let Some(token) = query.into_inner().token.filter(|t| !t.is_empty())
    {
        return Some((token, TokenSource::QueryOrHeader));
    }
    if let Some(token) = crate::auth::bearer(request) {
        return Some((token, TokenSource::QueryOrHeader));
    }
    let offered = request
        .headers()
        .get(actix_web::http::header::SEC_WEBSOCKET_PROTOCOL)?
        .to_str()
        .ok()?;
    let mut protocols = offered.split(',').map(str::trim);
    match (protocols.next(), protocols.next()) {
        (Some(scheme), Some(token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() =>
        {
            Some((token.to_owned(), TokenSource::Subprotocol))
        }
        _ => None,
    }
}

/// The client as the rate limits count it (behind trusted proxies: the forwarded address; for
/// IPv6 its /64 network, which one subscriber usually holds whole).
fn client_address(request: &HttpRequest) -> String {
    let ip = request
        .app_data::<web::Data<ClientIpPolicy>>()
        .and_then(|policy| policy.client_ip(request));
    ClientKey::from(ip).to_string()
}

/// A caller let into the chat: who, their session, and their place in the hub.
struct Admitted {
    principal: Principal,
    connection: ChatConnection,
    connected: chat_core::model::Event,
    source: TokenSource,
}

/// Why a socket was not let into the chat.
enum NotAdmitted {
    /// No valid access token, or its session ended.
    Unauthenticated,
    /// The token's user could not be read (deleted meanwhile, storage down).
    Identity(AuthError),
    /// A connection cap of the hub.
    Capped(Refusal),
}

/// Authenticates `token` and opens a chat connection for its user from `address`: the one way
/// both endpoints let a socket in.
async fn enter(
    identity: &IdentityService,
    chat: &ChatService,
    token: &str,
    address: &str,
) -> Result<(Principal, ChatConnection, Event), NotAdmitted> {
    let principal = identity
        .authenticate(token)
        .await
        .map_err(|_| NotAdmitted::Unauthenticated)?;
    let view = identity
        .me(&principal)
        .await
        .map_err(NotAdmitted::Identity)?;
    let who = Participant {
        user_id: principal.user_id.clone(),
        display_name: view.user.greeting(),
    };
    let (connection, connected) = chat.open(who, address).await.map_err(NotAdmitted::Capped)?;
    Ok((principal, connection, connected))
}

/// Authenticates the socket's request and opens its chat connection.
async fn admit(
    request: &HttpRequest,
    identity: &IdentityService,
    chat: &ChatService,
) -> Result<Admitted, ApiError> {
    let (token, source) = token(request).ok_or_else(ApiError::unauthenticated)?;
    let (principal, connection, connected) =
        enter(identity, chat, &token, &client_address(request))
            .await
            .map_err(|refused| match refused {
                NotAdmitted::Unauthenticated => ApiError::unauthenticated(),
                NotAdmitted::Identity(error) => ApiError::from(error),
                NotAdmitted::Capped(refusal) => ApiError::new(
                    ErrorCode::TooManyRequests,
                    match refusal {
                        Refusal::TooManyForUser => "too many chat connections for this user",
                        Refusal::TooManyForAddress => "too many chat connections from this address",
                    },
                ),
            })?;
    Ok(Admitted {
        principal,
        connection,
        connected,
        source,
    })
}
