//! `/socket.io/` with the real socket.io-client (npm, `tests/socketio/`), next to a plain
//! WebSocket client in the same room: both endpoints share one chat.

use std::process::Stdio;
use std::time::Duration;

use crate::support::{TestApp, spawn_app_with, token};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/socketio");

struct Peer {
    _child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

/// socket.io-client connecting to the app with `access`, over `transports`.
fn peer(app: &TestApp, access: &str, transports: &str) -> Peer {
    assert!(
        std::path::Path::new(PEER).join("node_modules").exists(),
        "run scripts/test.sh, which installs socket.io-client into tests/socketio"
    );
    let mut child = Command::new("node")
        .arg("client.mjs")
        .args([&app.base, access, transports])
        .current_dir(PEER)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    Peer {
        _child: child,
        lines,
    }
}

impl Peer {
    async fn step(&mut self, name: &str) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(10), self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no {name} step"))
            .unwrap()
            .unwrap_or_else(|| panic!("the peer ended before {name}"));
        let step: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(step["step"], name, "{step}");
        step
    }
}

async fn plain_socket_in_team(
    app: &TestApp,
    access: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = format!(
        "{}/ws/chat?token={access}",
        app.base.replacen("http", "ws", 1)
    );
    let (mut socket, _) = connect_async(url).await.unwrap();
    socket
        .send(Message::text(
            json!({ "event": "joinRoom", "data": { "room": "team" } }).to_string(),
        ))
        .await
        .unwrap();
    socket
}

async fn next_message(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame arrives")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            let event: Value = serde_json::from_str(&text).unwrap();
            if event["event"] == "message" {
                return event["data"].clone();
            }
        }
    }
}

async fn talk_across_endpoints(transports: &str, expected_transport: &str) {
    testkit::needs!("Node");
    let app = spawn_app_with(&[]).await;
    let ada = token(&app.register("ada@example.com").await, "accessToken");
    let bob = token(&app.register("bob@example.com").await, "accessToken");
    let mut plain = plain_socket_in_team(&app, &bob).await;
    let mut client = peer(&app, &ada, transports);
    let connected = client.step("connected").await;
    assert_eq!(connected["data"]["rooms"], json!(["general"]));
    let joined = client.step("joined").await;
    assert_eq!(joined["ack"], json!({ "ok": true, "data": null }));

    plain
        .send(Message::text(
            json!({ "event": "message", "data": { "room": "team", "content": "from a WebSocket" } })
                .to_string(),
        ))
        .await
        .unwrap();
    let received = client.step("received").await;
    assert_eq!(received["message"]["content"], "from a WebSocket");
    assert_eq!(received["message"]["displayName"], "Ada Lovelace");
    assert_eq!(received["transport"], expected_transport);
    let sent = client.step("sent").await;
    assert_eq!(sent["ack"]["ok"], true);
    assert_eq!(
        sent["history"]["data"]["messages"][1]["content"],
        "from socket.io"
    );
    assert_eq!(
        sent["refused"],
        json!({ "ok": false, "code": "NOT_IN_ROOM", "message": "join elsewhere first" })
    );
    loop {
        let message = next_message(&mut plain).await;
        if message["content"] == "from socket.io" {
            break;
        }
    }
}

#[tokio::test]
async fn socket_io_clients_polling_then_upgraded_share_rooms_with_websocket_clients() {
    talk_across_endpoints("polling,websocket", "websocket").await;
}

#[tokio::test]
async fn socket_io_clients_on_websocket_only_share_rooms_too() {
    talk_across_endpoints("websocket", "websocket").await;
}

#[tokio::test]
async fn socket_io_clients_on_long_polling_only_share_rooms_too() {
    talk_across_endpoints("polling", "polling").await;
}

#[tokio::test]
async fn a_bad_token_is_a_connect_error() {
    testkit::needs!("Node");
    let app = spawn_app_with(&[]).await;
    let mut client = peer(&app, "not-a-token", "polling,websocket");
    let refused = client.step("connect_error").await;
    assert_eq!(refused["message"], "unauthorized");
}

/// Engine.IO over plain HTTP, as an attacker would speak it.
struct Polling<'a> {
    app: &'a TestApp,
    sid: String,
}

impl<'a> Polling<'a> {
    fn url(app: &TestApp, sid: Option<&str>) -> String {
        let sid = sid.map(|sid| format!("&sid={sid}")).unwrap_or_default();
        format!("{}/socket.io/?EIO=4&transport=polling{sid}", app.base)
    }

    /// A handshake: the session, or the status it was refused with.
    async fn open(app: &'a TestApp) -> Result<Self, reqwest::StatusCode> {
        let reply = app.http.get(Self::url(app, None)).send().await.unwrap();
        if !reply.status().is_success() {
            return Err(reply.status());
        }
        let body = reply.text().await.unwrap();
        let open: Value = serde_json::from_str(body.trim_start_matches('0')).unwrap();
        Ok(Self {
            app,
            sid: open["sid"].as_str().unwrap().to_owned(),
        })
    }

    async fn post(&self, body: impl Into<reqwest::Body>) -> reqwest::StatusCode {
        self.app
            .http
            .post(Self::url(self.app, Some(&self.sid)))
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// One long poll: its status and packets.
    async fn poll(&self) -> (reqwest::StatusCode, Vec<String>) {
        let reply = self
            .app
            .http
            .get(Self::url(self.app, Some(&self.sid)))
            .send()
            .await
            .unwrap();
        let status = reply.status();
        let body = reply.text().await.unwrap();
        (status, body.split('\u{1e}').map(str::to_owned).collect())
    }
}

#[tokio::test]
async fn sessions_without_a_connect_are_capped_and_their_packets_bounded() {
    let app = spawn_app_with(&[("WS_PING_INTERVAL", "1s")]).await;
    let mut sessions = Vec::new();
    loop {
        match Polling::open(&app).await {
            Ok(session) => sessions.push(session),
            Err(status) => {
                assert_eq!(status, 429);
                break;
            }
        }
        assert!(sessions.len() <= 16, "no cap on sessions without a connect");
    }
    assert_eq!(sessions.len(), 16, "the per-address cap");
    // Pings from the client get no answer in Engine.IO 4: nothing piles up for a poll.
    let pings = vec!["2"; 64].join("\u{1e}");
    for _ in 0..300 {
        assert_eq!(sessions[0].post(pings.clone()).await, 200);
    }
    let (status, packets) = sessions[0].poll().await;
    assert_eq!(status, 200);
    assert!(packets.len() <= 2, "{} packets queued", packets.len());
    // A payload of more packets than a session takes at once is refused (and ends it).
    assert_eq!(sessions[3].post(vec!["2"; 65].join("\u{1e}")).await, 400);
    // A POST over the announced maxPayload is refused, whatever its framing.
    let large = vec![b'4'; 65_537];
    assert_eq!(sessions[1].post(large.clone()).await, 413);
    // Chunked, with no length declared: the bytes are counted as they come.
    let address = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request = format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={} HTTP/1.1\r\nHost: {address}\r\n\
         Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n",
        sessions[2].sid
    )
    .into_bytes();
    for chunk in large.chunks(4096) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    stream.write_all(&request).await.unwrap();
    let mut answer = vec![0; 1024];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[tokio::test]
async fn a_connected_session_that_never_polls_is_cut_off_when_its_queue_fills() {
    let app = spawn_app_with(&[
        ("WS_RATE_LIMIT_PER_MINUTE", "100000"),
        ("WS_RATE_LIMIT_PER_HOUR", "100000"),
    ])
    .await;
    let ada = token(&app.register("ada@example.com").await, "accessToken");
    let bob = token(&app.register("bob@example.com").await, "accessToken");
    let idle = Polling::open(&app).await.unwrap();
    assert_eq!(
        idle.post(format!("40{}", json!({ "token": ada }))).await,
        200
    );
    let (_, packets) = idle.poll().await;
    assert!(packets[0].starts_with("40"), "{packets:?}");
    // Bob talks in general; Ada's session collects nothing of it.
    let url = format!("{}/ws/chat?token={bob}", app.base.replacen("http", "ws", 1));
    let (mut talker, _) = connect_async(url).await.unwrap();
    let content = "x".repeat(1000);
    let frame = json!({ "event": "message", "data": { "room": "general", "content": content } });
    // In batches Bob hears before he goes on: a talker far behind is cut off as a slow reader.
    for _ in 0..6 {
        for _ in 0..100 {
            talker.send(Message::text(frame.to_string())).await.unwrap();
        }
        let mut heard = 0;
        while heard < 100 {
            if next_message(&mut talker).await["content"] == content.as_str() {
                heard += 1;
            }
        }
    }
    let (status, packets) = idle.poll().await;
    assert!(
        status == 400 || packets == ["1"],
        "the session still held {} packets",
        packets.len()
    );
}

#[tokio::test]
async fn a_session_that_polls_gets_every_history_it_asked_for_at_once() {
    let app = spawn_app_with(&[
        ("WS_RATE_LIMIT_PER_MINUTE", "100000"),
        ("WS_RATE_LIMIT_PER_HOUR", "100000"),
    ])
    .await;
    let ada = token(&app.register("ada@example.com").await, "accessToken");
    let bob = token(&app.register("bob@example.com").await, "accessToken");
    // A full history of the longest messages: each answer is about 800 KB.
    let url = format!("{}/ws/chat?token={bob}", app.base.replacen("http", "ws", 1));
    let (mut talker, _) = connect_async(url).await.unwrap();
    let content = "\u{1D11E}".repeat(2000);
    let frame = json!({ "event": "message", "data": { "room": "general", "content": content } });
    for _ in 0..100 {
        talker.send(Message::text(frame.to_string())).await.unwrap();
    }
    let mut heard = 0;
    while heard < 100 {
        if next_message(&mut talker).await["content"] == content.as_str() {
            heard += 1;
        }
    }
    let reader = Polling::open(&app).await.unwrap();
    assert_eq!(
        reader.post(format!("40{}", json!({ "token": ada }))).await,
        200
    );
    // Three histories (2.4 MB, more than the session's 1 MiB queue) asked for in one POST.
    let history = format!("42{}", json!(["history", { "room": "general" }]));
    let asked = vec![history; 3].join("\u{1e}");
    assert_eq!(reader.post(asked).await, 200);
    let mut histories = 0;
    for _ in 0..50 {
        let (status, packets) = reader.poll().await;
        assert_eq!(status, 200, "the session is alive");
        assert!(!packets.contains(&"1".to_owned()), "the session was ended");
        histories += packets.iter().filter(|p| p.contains(&content)).count();
        if histories == 3 {
            return;
        }
    }
    panic!("{histories} of 3 histories arrived");
}

#[tokio::test]
async fn a_post_cut_off_mid_body_leaves_the_session_usable() {
    let app = spawn_app_with(&[("REQUEST_TIMEOUT", "2s"), ("WS_PING_INTERVAL", "1s")]).await;
    let session = Polling::open(&app).await.unwrap();
    let address = app.base.trim_start_matches("http://");
    {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let head = format!(
            "POST /socket.io/?EIO=4&transport=polling&sid={} HTTP/1.1\r\nHost: {address}\r\n\
             Content-Type: text/plain\r\nContent-Length: 100\r\n\r\n3",
            session.sid
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // The body never comes: REQUEST_TIMEOUT ends the POST's handling.
        let mut answer = vec![0; 1024];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
            .await
            .unwrap()
            .unwrap();
        assert!(answer[..read].starts_with(b"HTTP/1.1 408"));
    }
    assert_eq!(session.post("3").await, 200, "the next POST is taken");
}

#[tokio::test]
async fn a_packet_of_any_text_leaves_the_session_working() {
    let app = spawn_app_with(&[("WS_PING_INTERVAL", "1s")]).await;
    let session = Polling::open(&app).await.unwrap();
    // No packet type (a multi-byte first character), then one inside a message packet.
    assert_eq!(session.post("é").await, 200);
    assert_eq!(session.post("4é").await, 200);
    let (status, packets) = session.poll().await;
    assert_eq!(
        (status.as_u16(), packets),
        (200, vec!["2".to_owned()]),
        "a ping"
    );
}

#[tokio::test]
async fn a_websocket_that_takes_a_session_over_must_finish_in_time_and_only_one_may() {
    let app = spawn_app_with(&[("WS_PING_INTERVAL", "1s"), ("WS_IDLE_TIMEOUT", "2s")]).await;
    let session = Polling::open(&app).await.unwrap();
    let url = format!(
        "{}/socket.io/?EIO=4&transport=websocket&sid={}",
        app.base.replacen("http", "ws", 1),
        session.sid
    );
    let (mut silent, _) = connect_async(&url).await.unwrap();
    let second = connect_async(&url).await;
    assert!(second.is_err(), "a second upgrade of one session");
    // Silent past the deadline: closed by the server.
    let ended = tokio::time::timeout(Duration::from_secs(6), async {
        while let Some(Ok(_)) = silent.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the silent upgrade is still open");
}
