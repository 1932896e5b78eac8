//! `/socket.io/`: the chat for socket.io-client front ends. Engine.IO 4 (HTTP long-polling, and
//! WebSocket either from the start or as an upgrade of a polling session) carries Socket.IO 5
//! packets on the default namespace; events and payloads are those of `/ws/chat`.
//!
//! Each Engine.IO session is one task ([`run_session`]) that speaks the protocol; the
//! transports only move text packets between the client and the session's two queues.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::Message;
use auth_core::IdentityService;
use auth_core::model::Principal;
use chat_core::model::{ChatError, ChatErrorCode, Event};
use chat_core::{ChatConnection, ChatService};
use futures_util::StreamExt as _;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

use super::{ChatSocketConfig, NotAdmitted, client_address, enter, protocol, token};
use crate::problem::ApiError;

/// Engine.IO's record separator between packets of one polling payload.
const SEPARATOR: char = '\u{1e}';
/// A session that has not connected to the namespace by then is dropped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// The live Engine.IO sessions of this instance, by id.
#[derive(Default)]
pub struct SocketIoSessions {
    sessions: Mutex<HashMap<String, Arc<Transport>>>,
}

impl SocketIoSessions {
    fn get(&self, sid: &str) -> Option<Arc<Transport>> {
        self.lock().get(sid).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Transport>>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A session's two queues, as the transports see them.
struct Transport {
    to_client: tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>,
    from_client: mpsc::UnboundedSender<String>,
    /// Set once the client moved to WebSocket: a waiting poll is answered with a noop.
    upgraded: AtomicBool,
    upgrade: Notify,
}

#[derive(Deserialize)]
pub(crate) struct EngineQuery {
    #[serde(rename = "EIO")]
    eio: Option<String>,
    transport: Option<String>,
    sid: Option<String>,
}

fn bad_request(message: &str) -> HttpResponse {
    HttpResponse::BadRequest()
        .content_type(ContentType::json())
        .body(json!({ "code": 3, "message": message }).to_string())
}

fn text(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body(body)
}

/// `GET /socket.io/`: a new session's handshake, a long poll, or a WebSocket.
pub(crate) async fn get(
    request: HttpRequest,
    body: web::Payload,
    query: web::Query<EngineQuery>,
    state: SocketIoState,
) -> Result<HttpResponse, actix_web::Error> {
    let query = query.into_inner();
    if query.eio.as_deref() != Some("4") {
        return Ok(bad_request("Unsupported protocol version"));
    }
    match (query.transport.as_deref(), query.sid) {
        (Some("polling"), None) => {
            let (sid, _) = state.open(false);
            Ok(text(open_packet(&sid, &state.config, true)))
        }
        (Some("polling"), Some(sid)) => {
            let Some(transport) = state.sessions.get(&sid) else {
                return Ok(bad_request("Session ID unknown"));
            };
            Ok(text(poll(&transport, state.config.ping_interval).await))
        }
        (Some("websocket"), sid) => {
            let (response, session, messages) = actix_ws::handle(&request, body)?;
            let messages = messages.max_frame_size(state.config.max_frame);
            match sid {
                None => {
                    let (sid, transport) = state.open(true);
                    let open = open_packet(&sid, &state.config, false);
                    actix_web::rt::spawn(pump(transport, session, messages, Some(open)));
                }
                Some(sid) => {
                    let Some(transport) = state.sessions.get(&sid) else {
                        return Ok(bad_request("Session ID unknown"));
                    };
                    actix_web::rt::spawn(upgrade(transport, session, messages));
                }
            }
            Ok(response)
        }
        _ => Ok(bad_request("Transport unknown")),
    }
}

/// `POST /socket.io/?sid=…`: packets from a polling client.
pub(crate) async fn post(
    query: web::Query<EngineQuery>,
    body: String,
    state: SocketIoState,
) -> HttpResponse {
    let Some(transport) = query.sid.as_deref().and_then(|sid| state.sessions.get(sid)) else {
        return bad_request("Session ID unknown");
    };
    for packet in body.split(SEPARATOR) {
        if transport.from_client.send(packet.to_owned()).is_err() {
            return bad_request("Session closed");
        }
    }
    text("ok".to_owned())
}

/// What the handlers need, from the app's data.
pub(crate) struct SocketIoState {
    sessions: web::Data<SocketIoSessions>,
    identity: web::Data<IdentityService>,
    chat: web::Data<ChatService>,
    config: ChatSocketConfig,
    /// The handshake's token (query or header), used when the CONNECT packet has none.
    address: String,
    handshake_token: Option<String>,
}

impl actix_web::FromRequest for SocketIoState {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = (|| {
            Some(Self {
                sessions: request.app_data::<web::Data<SocketIoSessions>>()?.clone(),
                identity: request.app_data::<web::Data<IdentityService>>()?.clone(),
                chat: request.app_data::<web::Data<ChatService>>()?.clone(),
                config: ***request.app_data::<web::Data<ChatSocketConfig>>()?,
                address: client_address(request),
                handshake_token: token(request).map(|(token, _)| token),
            })
        })();
        std::future::ready(state.ok_or_else(|| ApiError::internal().into()))
    }
}

impl SocketIoState {
    /// Starts a session: its task, and its entry in the registry until the task ends.
    fn open(&self, upgraded: bool) -> (String, Arc<Transport>) {
        let sid = hex::encode(rand::random::<[u8; 15]>());
        let (to_client_tx, to_client_rx) = mpsc::unbounded_channel();
        let (from_client_tx, from_client_rx) = mpsc::unbounded_channel();
        let transport = Arc::new(Transport {
            to_client: tokio::sync::Mutex::new(to_client_rx),
            from_client: from_client_tx,
            upgraded: AtomicBool::new(upgraded),
            upgrade: Notify::new(),
        });
        self.sessions
            .lock()
            .insert(sid.clone(), Arc::clone(&transport));
        let session = Session {
            to_client: to_client_tx,
            from_client: from_client_rx,
            identity: self.identity.clone().into_inner(),
            chat: self.chat.clone().into_inner(),
            config: self.config,
            address: self.address.clone(),
            handshake_token: self.handshake_token.clone(),
        };
        let (sessions, key) = (self.sessions.clone(), sid.clone());
        actix_web::rt::spawn(async move {
            run_session(session).await;
            sessions.lock().remove(&key);
        });
        (sid, transport)
    }
}

fn open_packet(sid: &str, config: &ChatSocketConfig, may_upgrade: bool) -> String {
    let upgrades: &[&str] = if may_upgrade { &["websocket"] } else { &[] };
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    format!(
        "0{}",
        json!({
            "sid": sid,
            "upgrades": upgrades,
            "pingInterval": millis(config.ping_interval),
            "pingTimeout": millis(config.idle_timeout.saturating_sub(config.ping_interval)),
            "maxPayload": config.max_frame,
        })
    )
}

/// One long poll: the packets waiting (after waiting up to `wait` for the first), a noop when
/// the session moved to WebSocket, a close when it ended.
async fn poll(transport: &Transport, wait: Duration) -> String {
    if transport.upgraded.load(Ordering::Acquire) {
        return "6".to_owned();
    }
    let mut queue = transport.to_client.lock().await;
    let first = tokio::select! {
        packet = tokio::time::timeout(wait, queue.recv()) => match packet {
            Ok(Some(packet)) => packet,
            Ok(None) => return "1".to_owned(),
            Err(_) => return "6".to_owned(),
        },
        () = transport.upgrade.notified() => return "6".to_owned(),
    };
    let mut payload = first;
    while let Ok(packet) = queue.try_recv() {
        payload.push(SEPARATOR);
        payload.push_str(&packet);
    }
    payload
}

/// A polling session moving to WebSocket: the probe, then the upgrade, then the pump.
async fn upgrade(
    transport: Arc<Transport>,
    mut ws: actix_ws::Session,
    mut messages: actix_ws::MessageStream,
) {
    while let Some(Ok(message)) = messages.next().await {
        let Message::Text(packet) = message else {
            continue;
        };
        match &*packet {
            "2probe" => {
                if ws.text("3probe").await.is_err() {
                    return;
                }
            }
            "5" => {
                transport.upgraded.store(true, Ordering::Release);
                transport.upgrade.notify_waiters();
                pump(transport, ws, messages, None).await;
                return;
            }
            _ => return,
        }
    }
}

/// Moves packets between a WebSocket and the session until either side ends.
async fn pump(
    transport: Arc<Transport>,
    mut ws: actix_ws::Session,
    mut messages: actix_ws::MessageStream,
    first: Option<String>,
) {
    if let Some(first) = first
        && ws.text(first).await.is_err()
    {
        return;
    }
    let mut queue = transport.to_client.lock().await;
    loop {
        tokio::select! {
            received = messages.next() => match received {
                Some(Ok(Message::Text(packet))) => {
                    if transport.from_client.send(packet.to_string()).is_err() { break }
                }
                Some(Ok(Message::Ping(bytes))) => {
                    if ws.pong(&bytes).await.is_err() { break }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    let _ = transport.from_client.send("1".to_owned());
                    break;
                }
                Some(Ok(_)) => {}
            },
            packet = queue.recv() => {
                let Some(packet) = packet else { break };
                if ws.text(packet).await.is_err() { break }
            }
        }
    }
    let _ = ws.close(None).await;
}

/// One Engine.IO session: its queues and what the chat needs to let it in.
struct Session {
    to_client: mpsc::UnboundedSender<String>,
    from_client: mpsc::UnboundedReceiver<String>,
    identity: Arc<IdentityService>,
    chat: Arc<ChatService>,
    config: ChatSocketConfig,
    address: String,
    handshake_token: Option<String>,
}

/// The chat connection of a session connected to the namespace.
struct Connected {
    principal: Principal,
    connection: ChatConnection,
}

impl Session {
    fn send(&self, packet: String) -> bool {
        self.to_client.send(packet).is_ok()
    }

    fn emit(&self, event: &Event) -> bool {
        self.send(protocol::packet(event))
    }

    fn acknowledge(&self, id: u64, result: &Result<Vec<Event>, ChatError>) -> bool {
        let answer = match result {
            Ok(replies) => json!({
                "ok": true,
                "data": replies.first().map(|reply| protocol::event(reply).1),
            }),
            Err(error) => {
                json!({ "ok": false, "code": error.code.as_str(), "message": error.message })
            }
        };
        self.send(format!("43{id}{}", json!([answer])))
    }

    /// The namespace CONNECT: authenticate, open the chat connection, confirm.
    async fn connect(&self, packet: &str) -> Option<Connected> {
        if packet.starts_with('/') && !packet.starts_with("/,") && packet != "/" {
            let namespace = packet.split(',').next().unwrap_or(packet);
            self.send(format!(
                "44{namespace},{}",
                json!({ "message": "Invalid namespace" })
            ));
            return None;
        }
        let auth: Value =
            serde_json::from_str(packet.trim_start_matches("/,")).unwrap_or(Value::Null);
        let token = auth["token"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| self.handshake_token.clone());
        let refuse = |message: &str| {
            self.send(format!("44{}", json!({ "message": message })));
            None
        };
        let Some(token) = token else {
            return refuse("unauthorized");
        };
        match enter(&self.identity, &self.chat, &token, &self.address).await {
            Ok((principal, connection, connected)) => {
                let sid = hex::encode(rand::random::<[u8; 15]>());
                self.send(format!("40{}", json!({ "sid": sid })));
                self.emit(&connected);
                Some(Connected {
                    principal,
                    connection,
                })
            }
            Err(NotAdmitted::Unauthenticated | NotAdmitted::Identity(_)) => refuse("unauthorized"),
            Err(NotAdmitted::Capped(_)) => refuse("too many chat connections"),
        }
    }

    /// An EVENT packet (`2[<ack id>]["name", data]`): the command, its replies or error, and
    /// the acknowledgement when one is asked for. `false` when the connection must end.
    async fn event(&self, connected: &Connected, packet: &str) -> bool {
        let digits = packet
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(packet.len());
        let ack = packet[..digits].parse::<u64>().ok();
        let frame = match serde_json::from_str::<Vec<Value>>(&packet[digits..]) {
            Ok(mut items) if items.first().is_some_and(Value::is_string) => {
                let data = if items.len() > 1 {
                    items.swap_remove(1)
                } else {
                    Value::Null
                };
                let name = items[0].as_str().unwrap_or_default().to_owned();
                protocol::command(&name, data)
            }
            _ => Err(ChatError::new(
                ChatErrorCode::InvalidFrame,
                "an event is [\"name\", data]",
            )),
        };
        let result = self.chat.handle(&connected.connection, frame).await;
        let closes = result.as_ref().err().is_some_and(ChatError::closes);
        let sent = match (ack, &result) {
            (Some(id), _) => self.acknowledge(id, &result),
            (None, Ok(replies)) => replies.iter().all(|reply| self.emit(reply)),
            (None, Err(error)) => self.emit(&Event::Error(error.clone())),
        };
        if closes {
            self.send("41".to_owned());
        }
        sent && !closes
    }
}

/// Speaks Engine.IO and Socket.IO for one session until the client leaves, stops answering
/// pings, or its session ends.
async fn run_session(mut session: Session) {
    let mut connected: Option<Connected> = None;
    let mut ping = tokio::time::interval(session.config.ping_interval);
    ping.tick().await;
    let mut session_check = tokio::time::interval(session.config.session_check);
    let started = Instant::now();
    let mut last_heard = Instant::now();
    loop {
        let is_connected = connected.is_some();
        let chat_event = async {
            match connected.as_mut() {
                Some(connected) => connected.connection.registration.events.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // Deliveries first: a session busy with its own frames still takes what its
            // rooms send, so its queue in the hub never fills behind them.
            biased;
            delivery = chat_event => {
                let Some(delivery) = delivery else { break };
                let packet = delivery.rendered(protocol::SOCKET_IO, protocol::packet);
                if !session.send(packet.to_string()) { break }
            }
            packet = session.from_client.recv() => {
                let Some(packet) = packet else { break };
                last_heard = Instant::now();
                let (kind, rest) = packet.split_at(packet.len().min(1));
                match kind {
                    "1" => break,
                    "2" => { session.send(format!("3{rest}")); }
                    "4" => {
                        let (sio, rest) = rest.split_at(rest.len().min(1));
                        match (sio, connected.as_ref()) {
                            ("0", None) => connected = session.connect(rest).await,
                            ("1", _) => break,
                            ("2", Some(open)) => {
                                let open_still = session.event(open, rest).await;
                                if !open_still { break }
                            }
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > session.config.idle_timeout
                    || (connected.is_none() && started.elapsed() > CONNECT_TIMEOUT)
                {
                    break;
                }
                session.send("2".to_owned());
            }
            _ = session_check.tick(), if is_connected => {
                let live = match connected.as_ref() {
                    Some(open) => session.identity.session_is_live(&open.principal).await.unwrap_or(true),
                    None => true,
                };
                if !live {
                    session.send("41".to_owned());
                    break;
                }
            }
        }
    }
    if let Some(open) = connected {
        session.chat.close(open.connection).await;
    }
    session.send("1".to_owned());
}
