//! `/socket.io/`: the chat for socket.io-client front ends. Engine.IO 4 (HTTP long-polling, and
//! WebSocket either from the start or as an upgrade of a polling session) carries Socket.IO 5
//! packets on the default namespace; events and payloads are those of `/ws/chat`.
//!
//! Each Engine.IO session is one task ([`run_session`]) that speaks the protocol; the
//! transports only move text packets between the client and the session's two queues.
//!
//! Everything a session holds is bounded, because a session is opened before anyone is
//! authenticated: packets waiting for the client (by count and bytes: a client that does not
//! collect them is cut off, as the hub cuts off a slow socket), packets from the client (one
//! POST at a time, at most `maxPayload` bytes), and sessions that have not connected to the
//! namespace yet (per address and in all, dropped after [`CONNECT_TIMEOUT`]). Only the
//! client's pong keeps a session alive.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
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

use super::outlet::{self, Outlet};
use super::{ChatSocketConfig, NotAdmitted, client_address, enter, protocol, token};
use crate::problem::ApiError;

/// Engine.IO's record separator between packets of one polling payload.
const SEPARATOR: char = '\u{1e}';
/// A session that has not connected to the namespace by then is dropped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// CONNECTs refused on one session before it ends.
const CONNECT_ATTEMPTS: u32 = 3;
/// Sessions not yet connected to the namespace, from one address and in all.
const PENDING_PER_ADDRESS: usize = 16;
const PENDING_TOTAL: usize = 1024;
/// Packets waiting for the client, and their bytes; beyond either the session ends. A packet
/// is always taken into an empty queue, so one large answer (a room's history) fits.
const OUTBOUND_PACKETS: usize = 256;
const OUTBOUND_BYTES: usize = 1 << 20;
/// How long a reply waits for room in a full outbound queue before its session is ended.
const REPLY_WAIT: Duration = Duration::from_secs(5);
/// Packets from the client not yet handled by the session (a POST waits for room), and the
/// most one payload may carry.
const INBOUND_PACKETS: usize = 64;

/// The live Engine.IO sessions of this instance, by id, and those not yet connected to the
/// namespace, by address.
#[derive(Default)]
pub struct SocketIoSessions {
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    sessions: HashMap<String, Arc<Transport>>,
    pending: HashMap<String, usize>,
    pending_total: usize,
}

impl SocketIoSessions {
    fn get(&self, sid: &str) -> Option<Arc<Transport>> {
        self.lock().sessions.get(sid).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a new session from `address` in, unless a cap of unconnected sessions is reached.
    fn reserve(self: &Arc<Self>, address: &str) -> Option<PendingSlot> {
        let mut registry = self.lock();
        let from_address = registry.pending.get(address).copied().unwrap_or(0);
        if from_address >= PENDING_PER_ADDRESS || registry.pending_total >= PENDING_TOTAL {
            return None;
        }
        registry
            .pending
            .insert(address.to_owned(), from_address + 1);
        registry.pending_total += 1;
        Some(PendingSlot {
            sessions: Arc::clone(self),
            address: address.to_owned(),
        })
    }

    /// Sessions open on this instance.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A session's entry in the registry, removed when dropped.
struct Registered {
    sessions: Arc<SocketIoSessions>,
    key: String,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.sessions.lock().sessions.remove(&self.key);
    }
}

/// The first character of `packet` (a packet type), and the rest; `None` for an empty packet or
/// one that does not start with an ASCII character (no type).
fn packet_type(packet: &str) -> Option<(u8, &str)> {
    let first = *packet.as_bytes().first()?;
    first.is_ascii().then(|| (first, &packet[1..]))
}

/// A session's place among those not yet connected to the namespace, freed when dropped.
struct PendingSlot {
    sessions: Arc<SocketIoSessions>,
    address: String,
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut registry = self.sessions.lock();
        registry.pending_total -= 1;
        if let Some(count) = registry.pending.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                registry.pending.remove(&self.address);
            }
        }
    }
}

/// A session's two queues, as the transports see them.
struct Transport {
    to_client: tokio::sync::Mutex<mpsc::Receiver<String>>,
    /// Bytes of the packets in `to_client`.
    queued_bytes: Arc<AtomicUsize>,
    drained: Arc<Notify>,
    from_client: mpsc::Sender<String>,
    /// Set while a POST is being read: Engine.IO allows one at a time.
    posting: AtomicBool,
    /// Set once a WebSocket asked to take the session over: one may.
    upgrading: AtomicBool,
    /// Set once the client moved to WebSocket: a waiting poll is answered with a noop.
    upgraded: AtomicBool,
    upgrade: Notify,
}

impl Transport {
    /// Asks the session to end, as the client's close packet does (with its inbound queue full,
    /// the session ends by its timeouts instead).
    fn end(&self) {
        let _ = self.from_client.try_send("1".to_owned());
    }

    /// A packet taken off the outbound queue, no longer counted.
    fn taken(&self, packet: String) -> String {
        self.queued_bytes.fetch_sub(packet.len(), Ordering::AcqRel);
        self.drained.notify_one();
        packet
    }
}

/// Whether a packet of `bytes` fits beside `queued` bytes: always into an empty queue (one
/// large answer, a room's history, still goes out), else within [`OUTBOUND_BYTES`].
fn fits(queued: usize, bytes: usize) -> bool {
    queued == 0 || queued + bytes <= OUTBOUND_BYTES
}

/// The session's side of the outbound queue.
struct Outbound {
    sender: mpsc::Sender<String>,
    queued_bytes: Arc<AtomicUsize>,
    /// Woken as the transports take packets off the queue.
    drained: Arc<Notify>,
}

impl Outbound {
    /// Queues a reply to the client's own request, waiting (up to [`REPLY_WAIT`]) for room:
    /// a client that reads keeps up however much it asks for at once; one that does not read
    /// is ended. `false` then, or when the session is gone.
    async fn send_when_room(&self, packet: String) -> bool {
        let room = tokio::time::timeout(REPLY_WAIT, async {
            loop {
                let queued = self.queued_bytes.load(Ordering::Acquire);
                if fits(queued, packet.len()) && self.sender.capacity() > 0 {
                    return;
                }
                self.drained.notified().await;
            }
        });
        room.await.is_ok() && self.send(packet)
    }

    /// Queues `packet`; `false` when the client is too far behind (or gone).
    fn send(&self, packet: String) -> bool {
        let bytes = packet.len();
        let before = self.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
        if !fits(before, bytes) {
            self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            return false;
        }
        if self.sender.try_send(packet).is_err() {
            self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            return false;
        }
        true
    }
}

#[derive(Deserialize)]
pub(crate) struct EngineQuery {
    #[serde(rename = "EIO")]
    eio: Option<String>,
    transport: Option<String>,
    sid: Option<String>,
}

/// Engine.IO's error answer: `code` 3 is "bad request", 4 "forbidden".
fn refusal(status: StatusCode, code: u8, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(ContentType::json())
        .body(json!({ "code": code, "message": message }).to_string())
}

fn bad_request(message: &str) -> HttpResponse {
    refusal(StatusCode::BAD_REQUEST, 3, message)
}

/// A handshake refused by a cap of sessions not yet connected.
fn too_many_pending() -> HttpResponse {
    refusal(
        StatusCode::TOO_MANY_REQUESTS,
        4,
        "Too many sessions not connected",
    )
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
        (Some("polling"), None) => Ok(match state.open(false) {
            Some((sid, _)) => text(open_packet(&sid, &state.config, true)),
            None => too_many_pending(),
        }),
        (Some("polling"), Some(sid)) => {
            let Some(transport) = state.sessions.get(&sid) else {
                return Ok(bad_request("Session ID unknown"));
            };
            Ok(text(poll(&transport, state.config.ping_interval).await))
        }
        (Some("websocket"), sid) => {
            let (response, outlet, messages) = outlet::accept(
                &request,
                body,
                state.config.max_frame,
                state.config.idle_timeout,
            )?;
            match sid {
                None => {
                    let Some((sid, transport)) = state.open(true) else {
                        return Ok(too_many_pending());
                    };
                    let open = open_packet(&sid, &state.config, false);
                    actix_web::rt::spawn(pump(transport, outlet, messages, Some(open)));
                }
                Some(sid) => {
                    let Some(transport) = state.sessions.get(&sid) else {
                        return Ok(bad_request("Session ID unknown"));
                    };
                    if transport.upgrading.swap(true, Ordering::AcqRel) {
                        return Ok(bad_request("Already upgrading"));
                    }
                    actix_web::rt::spawn(upgrade(
                        transport,
                        outlet,
                        messages,
                        state.config.idle_timeout,
                    ));
                }
            }
            Ok(response)
        }
        _ => Ok(bad_request("Transport unknown")),
    }
}

/// `POST /socket.io/?sid=…`: packets from a polling client, at most `maxPayload` bytes, one
/// POST at a time per session (a second one while the first is read ends the session, as in
/// Engine.IO).
pub(crate) async fn post(
    query: web::Query<EngineQuery>,
    body: web::Payload,
    state: SocketIoState,
) -> HttpResponse {
    let Some(transport) = query.sid.as_deref().and_then(|sid| state.sessions.get(sid)) else {
        return bad_request("Session ID unknown");
    };
    if transport.posting.swap(true, Ordering::AcqRel) {
        transport.end();
        return bad_request("Overlapping POST");
    }
    // Cleared however the POST ends, a client gone mid-body (or REQUEST_TIMEOUT) included.
    let _posting = Posting(&transport.posting);
    deliver(&transport, body, state.config.max_frame).await
}

/// A POST being read on a session; the session takes the next one once this is dropped.
struct Posting<'a>(&'a AtomicBool);

impl Drop for Posting<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

async fn deliver(transport: &Transport, body: web::Payload, max_payload: usize) -> HttpResponse {
    let bytes = match body.to_bytes_limited(max_payload).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return bad_request("Payload could not be read"),
        Err(_) => {
            transport.end();
            return refusal(StatusCode::PAYLOAD_TOO_LARGE, 3, "Payload too large");
        }
    };
    let Ok(payload) = std::str::from_utf8(&bytes) else {
        return bad_request("Payload is not UTF-8 text");
    };
    if payload.split(SEPARATOR).nth(INBOUND_PACKETS).is_some() {
        transport.end();
        return bad_request("Too many packets in one payload");
    }
    for packet in payload.split(SEPARATOR) {
        if transport.from_client.send(packet.to_owned()).await.is_err() {
            return bad_request("Session closed");
        }
    }
    text("ok".to_owned())
}

/// What the handlers need, from the app's data.
pub(crate) struct SocketIoState {
    sessions: Arc<SocketIoSessions>,
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
                sessions: request
                    .app_data::<web::Data<SocketIoSessions>>()?
                    .clone()
                    .into_inner(),
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
    /// Starts a session: its task, and its entry in the registry until the task ends; `None`
    /// when the caps of sessions not yet connected are reached.
    fn open(&self, upgraded: bool) -> Option<(String, Arc<Transport>)> {
        let pending = self.sessions.reserve(&self.address)?;
        let sid = hex::encode(rand::random::<[u8; 15]>());
        let (to_client_tx, to_client_rx) = mpsc::channel(OUTBOUND_PACKETS);
        let (from_client_tx, from_client_rx) = mpsc::channel(INBOUND_PACKETS);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let drained = Arc::new(Notify::new());
        let transport = Arc::new(Transport {
            to_client: tokio::sync::Mutex::new(to_client_rx),
            queued_bytes: Arc::clone(&queued_bytes),
            drained: Arc::clone(&drained),
            from_client: from_client_tx,
            posting: AtomicBool::new(false),
            upgrading: AtomicBool::new(upgraded),
            upgraded: AtomicBool::new(upgraded),
            upgrade: Notify::new(),
        });
        self.sessions
            .lock()
            .sessions
            .insert(sid.clone(), Arc::clone(&transport));
        let session = Session {
            to_client: Outbound {
                sender: to_client_tx,
                queued_bytes,
                drained,
            },
            from_client: from_client_rx,
            identity: self.identity.clone().into_inner(),
            chat: self.chat.clone().into_inner(),
            config: self.config,
            address: self.address.clone(),
            handshake_token: self.handshake_token.clone(),
        };
        let (sessions, key) = (Arc::clone(&self.sessions), sid.clone());
        actix_web::rt::spawn(async move {
            // Out of the registry however the task ends, a panic included.
            let _registered = Registered { sessions, key };
            run_session(session, pending).await;
        });
        Some((sid, transport))
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
    let mut payload = transport.taken(first);
    while let Ok(packet) = queue.try_recv() {
        payload.push(SEPARATOR);
        payload.push_str(&transport.taken(packet));
    }
    payload
}

/// A polling session moving to WebSocket: the probe, then the upgrade, then the pump.
async fn upgrade(
    transport: Arc<Transport>,
    mut outlet: Outlet,
    mut messages: actix_ws::MessageStream,
    deadline: Duration,
) {
    // The probe and the upgrade come within the deadline, or the socket is dropped.
    let upgraded = tokio::time::timeout(deadline, async {
        while let Some(Ok(message)) = messages.next().await {
            let Message::Text(packet) = message else {
                continue;
            };
            match &*packet {
                "2probe" => {
                    if !outlet.text("3probe").await {
                        return false;
                    }
                }
                "5" => return true,
                _ => return false,
            }
        }
        false
    })
    .await;
    if upgraded == Ok(true) {
        transport.upgraded.store(true, Ordering::Release);
        transport.upgrade.notify_waiters();
        pump(transport, outlet, messages, None).await;
    } else {
        outlet.close(None).await;
    }
}

/// Moves packets between a WebSocket and the session until either side ends, or the client
/// falls behind in reading; then ends both.
async fn pump(
    transport: Arc<Transport>,
    mut outlet: Outlet,
    mut messages: actix_ws::MessageStream,
    first: Option<String>,
) {
    if let Some(first) = first
        && !outlet.text(&first).await
    {
        transport.end();
        outlet.close(None).await;
        return;
    }
    let mut queue = transport.to_client.lock().await;
    loop {
        tokio::select! {
            received = messages.next() => match received {
                Some(Ok(Message::Text(packet))) => {
                    if transport.from_client.send(packet.to_string()).await.is_err() { break }
                }
                Some(Ok(Message::Ping(bytes))) => {
                    if !outlet.pong(&bytes).await { break }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            packet = queue.recv() => {
                let Some(packet) = packet else { break };
                if !outlet.text(&transport.taken(packet)).await { break }
            }
        }
    }
    drop(queue);
    // However the socket ended, the session ends with it: it has no other way to its client.
    transport.end();
    outlet.close(None).await;
}

/// One Engine.IO session: its queues and what the chat needs to let it in.
struct Session {
    to_client: Outbound,
    from_client: mpsc::Receiver<String>,
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
        self.to_client.send(packet)
    }

    fn emit(&self, event: &Event) -> bool {
        self.send(protocol::packet(event))
    }

    async fn acknowledge(&self, id: u64, result: &Result<Vec<Event>, ChatError>) -> bool {
        let answer = match result {
            Ok(replies) => json!({
                "ok": true,
                "data": replies.first().map(|reply| protocol::event(reply).1),
            }),
            Err(error) => {
                json!({ "ok": false, "code": error.code.as_str(), "message": error.message })
            }
        };
        self.to_client
            .send_when_room(format!("43{id}{}", json!([answer])))
            .await
    }

    /// A reply to the client's own request (see [`Outbound::send_when_room`]).
    async fn reply(&self, event: &Event) -> bool {
        self.to_client.send_when_room(protocol::packet(event)).await
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
            (Some(id), _) => self.acknowledge(id, &result).await,
            (None, Ok(replies)) => {
                let mut sent = true;
                for reply in replies {
                    sent = sent && self.reply(reply).await;
                }
                sent
            }
            (None, Err(error)) => self.reply(&Event::Error(error.clone())).await,
        };
        if closes {
            self.send("41".to_owned());
        }
        sent && !closes
    }
}

/// Speaks Engine.IO and Socket.IO for one session until the client leaves, stops answering
/// pings, falls too far behind, or its session ends. `pending` holds the session's place among
/// those not yet connected to the namespace.
async fn run_session(mut session: Session, pending: PendingSlot) {
    let mut pending = Some(pending);
    let mut refused = 0;
    let mut connected: Option<Connected> = None;
    let mut ping = tokio::time::interval(session.config.ping_interval);
    ping.tick().await;
    let mut session_check = tokio::time::interval(session.config.session_check);
    let connect_by = tokio::time::sleep(CONNECT_TIMEOUT);
    tokio::pin!(connect_by);
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
                // The hub ended the stream: this session fell too far behind.
                let Some(delivery) = delivery else { break };
                let packet = delivery.rendered(protocol::SOCKET_IO, protocol::packet);
                if !session.send(packet.to_string()) { break }
            }
            packet = session.from_client.recv() => {
                let Some(packet) = packet else { break };
                match packet_type(&packet) {
                    Some((b'1', _)) => break,
                    Some((b'3', _)) => last_heard = Instant::now(),
                    Some((b'4', rest)) => {
                        match (packet_type(rest), connected.as_ref()) {
                            (Some((b'0', rest)), None) => {
                                connected = session.connect(rest).await;
                                if connected.is_some() {
                                    pending = None;
                                } else {
                                    // Each CONNECT costs a token check: a few are answered (the
                                    // client reads the refusal on its next poll), then the
                                    // session ends.
                                    refused += 1;
                                    if refused == CONNECT_ATTEMPTS { break }
                                }
                            }
                            (Some((b'1', _)), _) => break,
                            (Some((b'2', rest)), Some(open)) => {
                                let open_still = session.event(open, rest).await;
                                if !open_still { break }
                            }
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
            () = &mut connect_by, if pending.is_some() => break,
            _ = ping.tick() => {
                if last_heard.elapsed() > session.config.idle_timeout || !session.send("2".to_owned()) {
                    break;
                }
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
