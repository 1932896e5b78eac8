//! `/socket.io/` with the real socket.io-client (npm, `tests/socketio/`), next to a plain
//! WebSocket client in the same room: both endpoints share one chat.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use support::{TestApp, spawn_app_with, token};
use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
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
    let app = spawn_app_with(&[]).await;
    let mut client = peer(&app, "not-a-token", "polling,websocket");
    let refused = client.step("connect_error").await;
    assert_eq!(refused["message"], "unauthorized");
}
