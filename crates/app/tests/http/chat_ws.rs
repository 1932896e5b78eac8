//! `GET /ws/chat` against the whole app in-process, with a real WebSocket client.

use std::time::Duration;

use crate::support::{TestApp, spawn_app_with, token};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn ws_url(app: &TestApp, query: &str) -> String {
    format!("{}/ws/chat{query}", app.base.replacen("http", "ws", 1))
}

async fn connect(app: &TestApp, access: &str) -> Socket {
    let (socket, _) = connect_async(ws_url(app, &format!("?token={access}")))
        .await
        .expect("the socket opens");
    socket
}

/// The next JSON event, skipping pings; fails after a few seconds.
async fn next_event(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("an event arrives")
            .expect("the socket is open")
            .expect("a frame");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// The next event named `name`, skipping others.
async fn next_named(socket: &mut Socket, name: &str) -> Value {
    loop {
        let event = next_event(socket).await;
        if event["event"] == name {
            return event["data"].clone();
        }
    }
}

async fn send(socket: &mut Socket, event: &str, data: Value) {
    socket
        .send(Message::text(
            json!({ "event": event, "data": data }).to_string(),
        ))
        .await
        .unwrap();
}

/// The close frame the server ends with, within `within`.
async fn closed_with(socket: &mut Socket, within: Duration) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => panic!("the socket was not closed in {within:?}"),
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(None | Some(Err(_))) => return None,
            Ok(Some(Ok(_))) => {}
        }
    }
}

async fn user(app: &TestApp, email: &str) -> String {
    token(&app.register(email).await, "accessToken")
}

#[tokio::test]
async fn without_a_valid_token_the_upgrade_is_refused_with_401() {
    let app = spawn_app_with(&[]).await;
    for query in ["", "?token=not-a-token"] {
        let refused = connect_async(ws_url(&app, query)).await.err();
        let Some(WsError::Http(response)) = refused else {
            panic!("{query}: {refused:?}");
        };
        assert_eq!(response.status(), 401, "{query}");
    }
}

#[tokio::test]
async fn the_token_may_come_in_the_query_a_header_or_the_subprotocol() {
    let app = spawn_app_with(&[]).await;
    let access = user(&app, "ada@example.com").await;
    let mut by_query = connect(&app, &access).await;
    assert_eq!(next_event(&mut by_query).await["event"], "connected");

    let mut request = ws_url(&app, "").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {access}").parse().unwrap());
    let (mut by_header, _) = connect_async(request).await.unwrap();
    assert_eq!(next_event(&mut by_header).await["event"], "connected");

    let mut request = ws_url(&app, "").into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        format!("bearer, {access}").parse().unwrap(),
    );
    let (mut by_protocol, response) = connect_async(request).await.unwrap();
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        "bearer"
    );
    let connected = next_named(&mut by_protocol, "connected").await;
    assert_eq!(connected["rooms"], json!(["general"]));
}

#[tokio::test]
async fn a_message_reaches_the_room_and_a_bad_frame_leaves_the_socket_open() {
    let app = spawn_app_with(&[]).await;
    let (ada, bob, eve) = (
        user(&app, "ada@example.com").await,
        user(&app, "bob@example.com").await,
        user(&app, "eve@example.com").await,
    );
    let mut adas = connect(&app, &ada).await;
    let mut bobs = connect(&app, &bob).await;
    let mut eves = connect(&app, &eve).await;
    for socket in [&mut adas, &mut bobs, &mut eves] {
        next_named(socket, "connected").await;
    }
    // Each join heard before the next step: Ada's own, so that she hears Bob's; Bob's, so that
    // he is in the room when her message comes (the two sockets' frames are handled apart).
    send(&mut adas, "joinRoom", json!({ "room": "team" })).await;
    next_named(&mut adas, "userJoined").await;
    send(&mut bobs, "joinRoom", json!({ "room": "team" })).await;
    next_named(&mut adas, "userJoined").await;

    adas.send(Message::text("not json")).await.unwrap();
    let error = next_named(&mut adas, "error").await;
    assert_eq!(error["code"], "INVALID_FRAME");
    send(
        &mut adas,
        "message",
        json!({ "room": "elsewhere", "content": "hi" }),
    )
    .await;
    assert_eq!(next_named(&mut adas, "error").await["code"], "NOT_IN_ROOM");

    send(
        &mut adas,
        "message",
        json!({ "room": "team", "content": "hello, team" }),
    )
    .await;
    let received = next_named(&mut bobs, "message").await;
    assert_eq!(received["content"], "hello, team");
    assert_eq!(received["room"], "team");
    assert_eq!(received["displayName"], "Ada Lovelace");
    assert!(received["id"].as_str().is_some_and(|id| id.len() == 24));
    assert_eq!(
        next_named(&mut adas, "message").await,
        received,
        "the sender sees it too"
    );

    send(&mut bobs, "history", json!({ "room": "team", "limit": 10 })).await;
    let history = next_named(&mut bobs, "history").await;
    assert_eq!(history["messages"], json!([received]));

    send(
        &mut eves,
        "message",
        json!({ "room": "general", "content": "anyone?" }),
    )
    .await;
    let in_general = next_named(&mut eves, "message").await;
    assert_eq!(in_general["content"], "anyone?");
    let bobs_next = next_named(&mut bobs, "message").await;
    assert_eq!(
        bobs_next["room"], "general",
        "eve never saw the team's message"
    );
}

#[tokio::test]
async fn exceeding_the_rate_limit_sends_an_error_then_closes() {
    let app = spawn_app_with(&[("WS_RATE_LIMIT_PER_MINUTE", "3")]).await;
    let ada = user(&app, "ada@example.com").await;
    let mut socket = connect(&app, &ada).await;
    next_named(&mut socket, "connected").await;
    for n in 0..4 {
        send(
            &mut socket,
            "message",
            json!({ "room": "general", "content": format!("m{n}") }),
        )
        .await;
    }
    assert_eq!(
        next_named(&mut socket, "error").await["code"],
        "TOO_MANY_REQUESTS"
    );
    assert_eq!(
        closed_with(&mut socket, Duration::from_secs(5)).await,
        Some(4429)
    );
}

#[tokio::test]
async fn a_logout_closes_the_sessions_socket_within_seconds() {
    let app = spawn_app_with(&[("WS_SESSION_CHECK_INTERVAL", "1s")]).await;
    let ada = user(&app, "ada@example.com").await;
    let mut socket = connect(&app, &ada).await;
    next_named(&mut socket, "connected").await;
    let reply = app.post("/auth/logout", json!({}), Some(&ada)).await;
    assert!(reply.status.is_success());
    let code = closed_with(&mut socket, Duration::from_secs(4)).await;
    assert_eq!(code, Some(u16::from(CloseCode::Library(4401))));
}

#[tokio::test]
async fn a_user_may_hold_only_so_many_sockets() {
    let app = spawn_app_with(&[("WS_MAX_CONNECTIONS_PER_USER", "2")]).await;
    let ada = user(&app, "ada@example.com").await;
    let first = connect(&app, &ada).await;
    let _second = connect(&app, &ada).await;
    let refused = connect_async(ws_url(&app, &format!("?token={ada}")))
        .await
        .err();
    let Some(WsError::Http(response)) = refused else {
        panic!("{refused:?}");
    };
    assert_eq!(response.status(), 429);
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut third = connect(&app, &ada).await;
    assert_eq!(next_event(&mut third).await["event"], "connected");
}

/// A WebSocket that never writes a byte after its handshake (so it answers no ping, which
/// every client library does on its own when it reads).
async fn silent_socket(app: &TestApp, access: &str) -> TcpStream {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).await.unwrap();
    let request = format!(
        "GET /ws/chat?token={access} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.unwrap());
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

/// The status code of the close frame the server sends on `stream`, reading (never answering)
/// the frames before it.
async fn close_code(stream: &mut TcpStream, within: Duration) -> u16 {
    use tokio::io::AsyncReadExt as _;
    let frames = async {
        loop {
            let opcode = stream.read_u8().await.unwrap() & 0x0f;
            let length = match stream.read_u8().await.unwrap() & 0x7f {
                126 => u64::from(stream.read_u16().await.unwrap()),
                127 => stream.read_u64().await.unwrap(),
                short => u64::from(short),
            };
            let mut payload = vec![0; usize::try_from(length).unwrap()];
            stream.read_exact(&mut payload).await.unwrap();
            if opcode == 0x8 {
                return u16::from_be_bytes([payload[0], payload[1]]);
            }
        }
    };
    tokio::time::timeout(within, frames)
        .await
        .expect("a close frame in time")
}

#[tokio::test]
async fn a_socket_that_answers_nothing_is_closed_as_idle_and_one_that_answers_pings_stays() {
    let app = spawn_app_with(&[("WS_PING_INTERVAL", "300ms"), ("WS_IDLE_TIMEOUT", "1s")]).await;
    let ada = user(&app, "ada@example.com").await;
    let mut silent = silent_socket(&app, &ada).await;
    let mut lively = connect(&app, &ada).await;
    next_named(&mut lively, "connected").await;
    // Reading is what makes the client answer the server's pings: the lively socket reads
    // for twice the idle timeout and is not closed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(frame) = tokio::time::timeout_at(deadline, lively.next()).await {
        match frame {
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Text(_))) => {}
            other => panic!("the answering socket ended: {other:?}"),
        }
    }
    assert_eq!(close_code(&mut silent, Duration::from_secs(1)).await, 4408);
}

#[tokio::test]
async fn the_rate_limit_window_outlives_the_sockets() {
    let app = spawn_app_with(&[("WS_RATE_LIMIT_PER_MINUTE", "5")]).await;
    let ada = user(&app, "ada@example.com").await;
    let mut listener = connect(&app, &user(&app, "bob@example.com").await).await;
    next_named(&mut listener, "connected").await;
    // Ada sends 3 frames per socket over 4 sockets, each closed after its frames: 12 in all.
    for round in 0..4 {
        let mut socket = connect(&app, &ada).await;
        next_named(&mut socket, "connected").await;
        for n in 0..3 {
            // Once the limit closes the socket, the rest may not even be sent.
            let frame = json!({ "event": "message", "data": { "room": "general", "content": format!("r{round}m{n}") } });
            let _ = socket.send(Message::text(frame.to_string())).await;
        }
        socket.close(None).await.ok();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    send(
        &mut listener,
        "message",
        json!({ "room": "general", "content": "end" }),
    )
    .await;
    let mut delivered = 0;
    loop {
        let event = next_named(&mut listener, "message").await;
        if event["content"] == "end" {
            break;
        }
        delivered += 1;
    }
    assert_eq!(delivered, 5, "only the minute's budget got through");
}

#[tokio::test]
async fn a_get_without_an_upgrade_does_not_enter_the_chat() {
    let app = spawn_app_with(&[]).await;
    let ada = user(&app, "ada@example.com").await;
    let mut listener = connect(&app, &user(&app, "bob@example.com").await).await;
    next_named(&mut listener, "connected").await;
    for _ in 0..20 {
        let reply = app
            .http
            .get(ws_url(&app, &format!("?token={ada}")).replacen("ws", "http", 1))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 400);
    }
    send(
        &mut listener,
        "message",
        json!({ "room": "general", "content": "end" }),
    )
    .await;
    loop {
        let event = next_event(&mut listener).await;
        assert!(
            !matches!(
                event["event"].as_str(),
                Some("userJoined" | "userLeft" | "presence")
            ),
            "{event}"
        );
        if event["event"] == "message" {
            break;
        }
    }
}

#[tokio::test]
async fn a_socket_that_never_reads_is_given_up_and_frees_its_place() {
    let app = spawn_app_with(&[
        ("WS_MAX_CONNECTIONS_PER_USER", "1"),
        ("WS_PING_INTERVAL", "1s"),
        ("WS_IDLE_TIMEOUT", "2s"),
        ("WS_RATE_LIMIT_PER_MINUTE", "100000"),
        ("WS_RATE_LIMIT_PER_HOUR", "100000"),
    ])
    .await;
    let ada = user(&app, "ada@example.com").await;
    // Ada's only socket: it completes the handshake, then reads nothing.
    let _stuck = silent_socket(&app, &ada).await;
    let mut talker = connect(&app, &user(&app, "bob@example.com").await).await;
    next_named(&mut talker, "connected").await;
    // More than the socket buffers between the server and Ada hold, in batches Bob hears
    // before he goes on (a talker far behind is cut off as a slow reader).
    let content = "x".repeat(2000);
    for _ in 0..40 {
        for _ in 0..100 {
            send(
                &mut talker,
                "message",
                json!({ "room": "general", "content": content }),
            )
            .await;
        }
        let mut heard = 0;
        while heard < 100 {
            if next_named(&mut talker, "message").await["content"] == content.as_str() {
                heard += 1;
            }
        }
    }
    // Given up within the write deadline: Ada's place is free for a socket that reads.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut again = connect(&app, &ada).await;
    assert_eq!(next_event(&mut again).await["event"], "connected");
}
