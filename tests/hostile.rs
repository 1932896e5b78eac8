//! Attacks on the real `console-api` (its debug build, on the embedded default), each measured
//! by what it cost the server — its resident memory, read from `/proc/<pid>/status` — or by
//! what got through. Loopback only; every loop is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::time::Duration;

use futures_util::StreamExt as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::{RunningBinary, SmtpSink};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const MIB: u64 = 1024;
/// What an endless upload offers: more than a server that kept reading would take in the
/// tests' time.
const OFFERED: usize = 4 << 30;

/// A `VmRSS`/`VmHWM`-style line of the process's status, in KiB.
fn status_kib(api: &RunningBinary, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", api.child.id())).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in {status}"))
}

fn rss_kib(api: &RunningBinary) -> u64 {
    status_kib(api, "VmRSS:")
}

struct Api {
    process: RunningBinary,
    base: String,
    http: reqwest::Client,
    _mail: SmtpSink,
    _data: tempfile::TempDir,
}

async fn start(extra: &[(&str, &str)]) -> Api {
    let mail = SmtpSink::start().await;
    let data = tempfile::tempdir().unwrap();
    let mut env = support::api_env(&mail);
    env.extend([
        ("THROTTLE_LIMIT", "100000000".to_owned()),
        ("THROTTLE_AUTH_LIMIT", "100000000".to_owned()),
        ("THROTTLE_UPLOAD_LIMIT", "100000000".to_owned()),
    ]);
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let mut process = RunningBinary::start("console-api", data.path(), &env);
    process.wait_healthy().await;
    Api {
        base: format!("http://127.0.0.1:{}", process.port),
        process,
        // Idle connections are dropped before the server's 5 s keep-alive would close them
        // under a request (a test may spend seconds making its payload).
        http: reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .unwrap(),
        _mail: mail,
        _data: data,
    }
}

impl Api {
    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.process.port)
    }

    async fn register(&self, name: &str) -> String {
        let reply: Value = self
            .http
            .post(format!("{}/api/v1/auth/register", self.base))
            .json(&json!({
                "name": "Hostile Tester",
                "email": format!("{name}@example.com"),
                "password": "Hostile-tester1",
                "username": name,
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        reply["data"]["accessToken"].as_str().unwrap().to_owned()
    }

    async fn healthy(&self) -> bool {
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            self.http.get(format!("{}/api/v1/health", self.base)).send(),
        )
        .await;
        matches!(answer, Ok(Ok(response)) if response.status() == StatusCode::OK)
    }

    /// A new Engine.IO polling session; `None` when refused.
    async fn socket_io_session(&self) -> Option<String> {
        let reply = self
            .http
            .get(format!("{}/socket.io/?EIO=4&transport=polling", self.base))
            .send()
            .await
            .unwrap();
        if !reply.status().is_success() {
            return None;
        }
        let body = reply.text().await.unwrap();
        let open: Value = serde_json::from_str(body.trim_start_matches('0')).unwrap();
        Some(open["sid"].as_str().unwrap().to_owned())
    }

    async fn socket_io_post(&self, sid: &str, body: Vec<u8>) -> StatusCode {
        self.http
            .post(format!(
                "{}/socket.io/?EIO=4&transport=polling&sid={sid}",
                self.base
            ))
            .body(body)
            .send()
            .await
            .map_or(StatusCode::IM_A_TEAPOT, |response| response.status())
    }
}

#[tokio::test]
async fn socket_io_without_a_token_costs_the_server_a_bounded_amount_of_memory() {
    testkit::needs!("the built binaries");
    let api = start(&[]).await;
    let before = rss_kib(&api.process);
    // 2 000 handshakes that never connect, 32 at a time: only the per-address cap of them is
    // kept (a slot frees when a session's 10 s connect timeout ends, so a slow run may see a
    // second round).
    let opened: Vec<Option<String>> = futures_util::stream::iter(0..2_000)
        .map(|_| api.socket_io_session())
        .buffer_unordered(32)
        .collect()
        .await;
    let sessions: Vec<String> = opened.into_iter().flatten().collect();
    assert!(
        (16..=32).contains(&sessions.len()),
        "{} sessions kept without a CONNECT",
        sessions.len()
    );
    // Pings by the thousand, 64 to a payload (the most it may carry): none is answered,
    // nothing piles up.
    let mut pinged = 0;
    for sid in &sessions {
        for _ in 0..50 {
            let pings = vec!["2"; 64].join("\u{1e}").into_bytes();
            pinged += usize::from(api.socket_io_post(sid, pings).await.is_success());
        }
    }
    assert!(pinged > 0, "the sessions took their pings");
    // 300 POSTs of 1 MB: each refused for its size (the handshake announced 64 KiB).
    let mut accepted = 0;
    for n in 0..300 {
        let status = api
            .socket_io_post(&sessions[n % sessions.len()], vec![b'2'; 1 << 20])
            .await;
        accepted += usize::from(status.is_success());
    }
    assert_eq!(accepted, 0, "1 MB POSTs accepted");
    let grown = rss_kib(&api.process).saturating_sub(before);
    assert!(grown < 32 * MIB, "RSS grew by {grown} KiB");
    assert!(api.healthy().await);
}

#[tokio::test]
async fn connected_socket_io_sessions_that_never_poll_hold_a_bounded_queue_each() {
    testkit::needs!("the built binaries");
    let api = start(&[
        ("WS_RATE_LIMIT_PER_MINUTE", "100000"),
        ("WS_RATE_LIMIT_PER_HOUR", "100000"),
    ])
    .await;
    // 40 sessions of 4 users (the per-user cap is 10), connected, never polled again.
    let mut idle = Vec::new();
    for user in 0..4 {
        let token = api.register(&format!("idle{user}")).await;
        for _ in 0..10 {
            let sid = api.socket_io_session().await.unwrap();
            let connect = format!("40{}", json!({ "token": token }));
            assert!(
                api.socket_io_post(&sid, connect.into_bytes())
                    .await
                    .is_success()
            );
            idle.push(sid);
        }
    }
    let before = rss_kib(&api.process);
    let talker = api.register("talker").await;
    let url = format!(
        "{}/ws/chat?token={talker}",
        api.base.replacen("http", "ws", 1)
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let content = "x".repeat(2000);
    let frame = json!({ "event": "message", "data": { "room": "general", "content": content } });
    // 1 000 messages of 2 KB to the room of the 40 sessions: 80 MB if they all were kept.
    for _ in 0..10 {
        for _ in 0..100 {
            use futures_util::SinkExt as _;
            socket
                .send(tokio_tungstenite::tungstenite::Message::text(
                    frame.to_string(),
                ))
                .await
                .unwrap();
        }
        let mut heard = 0;
        while heard < 100 {
            let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
                .await
                .expect("the talker hears the room")
                .unwrap()
                .unwrap();
            heard += usize::from(message.to_text().unwrap_or_default().contains(&content));
        }
    }
    let grown = rss_kib(&api.process).saturating_sub(before);
    assert!(grown < 32 * MIB, "RSS grew by {grown} KiB");
    let mut open = 0;
    for sid in &idle {
        let reply = api
            .http
            .get(format!(
                "{}/socket.io/?EIO=4&transport=polling&sid={sid}",
                api.base
            ))
            .send()
            .await
            .unwrap();
        open += usize::from(reply.status().is_success() && reply.text().await.unwrap() != "1");
    }
    assert_eq!(open, 0, "sessions still open after falling behind");
}

/// Writes `head` then up to `body_bytes` of `filler` in 64 KiB chunks until the server stops
/// taking them; the bytes it took, and what it answered.
async fn send_until_refused(
    address: &str,
    head: &str,
    first: &[u8],
    filler: u8,
    body_bytes: usize,
) -> (usize, String) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first).await.unwrap();
    let block = vec![filler; 64 * 1024];
    let mut sent = first.len();
    let mut answer = vec![0; 4096];
    while sent < body_bytes {
        let chunk = format!("{:x}\r\n", block.len());
        let written = tokio::time::timeout(Duration::from_secs(5), async {
            stream.write_all(chunk.as_bytes()).await?;
            stream.write_all(&block).await?;
            stream.write_all(b"\r\n").await
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            break;
        }
        sent += block.len();
    }
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .map_or(0, |read| read.unwrap_or(0));
    (sent, String::from_utf8_lossy(&answer[..read]).into_owned())
}

#[tokio::test]
async fn an_upload_without_a_length_is_cut_off_by_its_bytes() {
    testkit::needs!("the built binaries");
    let api = start(&[]).await;
    let token = api.register("uploader").await;
    let before = rss_kib(&api.process);
    let head = format!(
        "POST /api/v1/upload/image HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n",
        api.address()
    );
    // A part header that never ends, 4 GiB of it offered: the server answers, then closes the
    // connection (after a second of lingering) instead of reading the rest.
    let start = "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\nX: ";
    let first = format!("{:x}\r\n{start}\r\n", start.len());
    let (sent, answer) =
        send_until_refused(&api.address(), &head, first.as_bytes(), b'a', OFFERED).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(sent < OFFERED, "the server read all {sent} bytes");
    // A file part (a PNG, by its first bytes) whose content goes on past the limit.
    let mut start =
        b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n".to_vec();
    start.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let mut first = format!("{:x}\r\n", start.len()).into_bytes();
    first.extend_from_slice(&start);
    first.extend_from_slice(b"\r\n");
    let (sent, answer) = send_until_refused(&api.address(), &head, &first, b'a', OFFERED).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(sent < OFFERED, "the server read all {sent} bytes");
    let grown = rss_kib(&api.process).saturating_sub(before);
    assert!(grown < 32 * MIB, "RSS grew by {grown} KiB");
}

/// A GIF with a 1 × 1 canvas and `frames` frames of `side` × `side`.
fn gif_bomb(side: u16, frames: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut bytes, 1, 1, &[0, 0, 0, 255, 255, 255]).unwrap();
        let pixels = vec![0_u8; usize::from(side) * usize::from(side)];
        for _ in 0..frames {
            let frame = gif::Frame::from_indexed_pixels(side, side, pixels.clone(), None);
            encoder.write_frame(&frame).unwrap();
        }
    }
    bytes
}

#[tokio::test]
async fn an_animation_with_frames_larger_than_its_canvas_is_refused_before_decoding() {
    testkit::needs!("the built binaries");
    let api = start(&[]).await;
    let token = api.register("animator").await;
    let mut form =
        b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.gif\"\r\n\r\n"
            .to_vec();
    // One frame of 36 MP (144 MiB decoded) in a few hundred kilobytes.
    let bomb = gif_bomb(6000, 1);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    form.extend_from_slice(&bomb);
    form.extend_from_slice(b"\r\n--b--\r\n");
    let peak_before = status_kib(&api.process, "VmHWM:");
    let reply = api
        .http
        .post(format!("{}/api/v1/upload/image", api.base))
        .bearer_auth(&token)
        .header("Content-Type", "multipart/form-data; boundary=b")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["code"], "IMAGE_TOO_LARGE");
    let peak = status_kib(&api.process, "VmHWM:").saturating_sub(peak_before);
    assert!(peak < 64 * MIB, "peak RSS grew by {peak} KiB");
}

#[tokio::test]
async fn slow_clients_are_cut_off_and_health_keeps_answering() {
    testkit::needs!("the built binaries");
    let api = start(&[("REQUEST_TIMEOUT", "3s"), ("WS_PING_INTERVAL", "1s")]).await;
    let address = api.address();
    let mut slow = Vec::new();
    // 1 000 clients sending their head a byte at a time, 1 000 whose body never ends.
    for n in 0..2_000 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        let start = if n % 2 == 0 {
            "GET /api/v1/health HTTP/1.1\r\nHo".to_owned()
        } else {
            format!(
                "POST /api/v1/auth/login HTTP/1.1\r\nHost: {address}\r\n\
                 Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"email\""
            )
        };
        stream.write_all(start.as_bytes()).await.unwrap();
        slow.push(stream);
    }
    assert!(
        api.healthy().await,
        "health answers while 2 000 clients dawdle"
    );
    for stream in slow.iter_mut().step_by(2) {
        let _ = stream.write_all(b"s").await;
    }
    // Every one of them is closed by the server within the timeouts (5 s for a head, 3 s for
    // the whole request), whatever it sends meanwhile.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let mut still_open = 0;
    for stream in &mut slow {
        let mut byte = [0; 512];
        loop {
            match tokio::time::timeout(Duration::from_millis(50), stream.read(&mut byte)).await {
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(_)) => {}
                Err(_) => {
                    still_open += 1;
                    break;
                }
            }
        }
    }
    assert_eq!(still_open, 0, "slow clients still connected");
    assert!(api.healthy().await);
}

/// Opens a WebSocket upgrade of `/ws/chat` with `token` over a raw connection; the socket when
/// the server took it (101), else `None`.
async fn idle_socket(address: &str, token: &str) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let request = format!(
        "GET /ws/chat?token={token} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.ok()?);
    }
    head.starts_with(b"HTTP/1.1 101").then_some(stream)
}

#[tokio::test]
async fn idle_sockets_from_one_address_stop_at_its_cap() {
    testkit::needs!("the built binaries");
    let api = start(&[]).await;
    let address = api.address();
    let mut tokens = Vec::new();
    for user in 0..10 {
        tokens.push(api.register(&format!("crowd{user}")).await);
    }
    let mut held = Vec::new();
    let mut refused = 0;
    for attempt in 0..10_000 {
        match idle_socket(&address, &tokens[attempt % tokens.len()]).await {
            Some(socket) => held.push(socket),
            None => refused += 1,
        }
    }
    assert_eq!(held.len(), 50, "WS_MAX_CONNECTIONS_PER_IP");
    assert_eq!(refused, 10_000 - 50);
    assert!(api.healthy().await);
}

#[tokio::test]
async fn an_idle_socket_costs_the_server_little_memory() {
    testkit::needs!("the built binaries");
    let api = start(&[
        ("WS_MAX_CONNECTIONS_PER_IP", "100000"),
        ("WS_MAX_CONNECTIONS_PER_USER", "100"),
    ])
    .await;
    let address = api.address();
    let mut tokens = Vec::new();
    for user in 0..20 {
        tokens.push(api.register(&format!("idler{user}")).await);
    }
    // Each socket is read (and what it reads dropped), as a client does; it sends nothing.
    let open = |token: String| {
        let address = address.clone();
        async move {
            let mut socket = idle_socket(&address, &token).await.unwrap();
            tokio::spawn(async move {
                let mut sink = vec![0; 16 * 1024];
                while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
            })
            .abort_handle()
        }
    };
    // Warm up: the first sockets bring the allocator's arenas and the hub's tables to size.
    let mut held = Vec::new();
    for token in &tokens {
        held.push(open(token.clone()).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(&api.process);
    let sockets = 980;
    for n in 0..sockets {
        held.push(open(tokens[n % tokens.len()].clone()).await);
    }
    // Until the room has heard every arrival.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let per_socket = (rss_kib(&api.process).saturating_sub(before) * 1024) / sockets as u64;
    println!("memory per idle chat socket: {per_socket} bytes");
    assert!(per_socket < 32 * 1024, "{per_socket} bytes per idle socket");
}

/// A chat WebSocket over a connection with a small receive buffer, from a client that reads
/// nothing until told to.
async fn unread_socket(
    address: &str,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(address.parse().unwrap()).await.unwrap();
    let url = format!("ws://{address}/ws/chat?token={token}");
    tokio_tungstenite::client_async(url, stream)
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn chat_sockets_that_stop_reading_are_cut_off_with_what_was_queued_for_them() {
    testkit::needs!("the built binaries");
    use futures_util::SinkExt as _;
    use tokio_tungstenite::tungstenite::Message;

    let api = start(&[
        ("WS_RATE_LIMIT_PER_MINUTE", "100000"),
        ("WS_RATE_LIMIT_PER_HOUR", "100000"),
    ])
    .await;
    let address = api.address();
    // A full history of the longest messages (2 000 four-byte characters): each `history`
    // answer is about 800 KB.
    let writer = api.register("historian").await;
    let url = format!("ws://{address}/ws/chat?token={writer}");
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let content = "\u{1D11E}".repeat(2000);
    let frame = json!({ "event": "message", "data": { "room": "general", "content": content } });
    for _ in 0..100 {
        socket.send(Message::text(frame.to_string())).await.unwrap();
    }
    let mut heard = 0;
    while heard < 100 {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("the writer hears its messages")
            .unwrap()
            .unwrap();
        heard += usize::from(message.to_text().unwrap_or_default().contains(&content));
    }
    drop(socket);

    // A client that reads as fast as it can is never cut, however much it asks for at once:
    // three histories (2.4 MB) asked for in one write.
    let reader = api.register("reader").await;
    let url = format!("ws://{address}/ws/chat?token={reader}");
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let history = json!({ "event": "history", "data": { "room": "general" } }).to_string();
    for _ in 0..3 {
        socket.feed(Message::text(history.clone())).await.unwrap();
    }
    socket.flush().await.unwrap();
    let mut histories = 0;
    while histories < 3 {
        let message = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("a prompt reader gets its histories")
            .expect("the socket stays open")
            .expect("the socket is not cut");
        histories += usize::from(message.to_text().unwrap_or_default().contains(&content));
    }
    drop(socket);

    let before = rss_kib(&api.process);
    // Ten sockets ask for the history 40 times each and read none of it: 320 MB asked for.
    let hoarder = api.register("hoarder").await;
    let mut hoarding = Vec::new();
    for _ in 0..10 {
        let mut socket = unread_socket(&address, &hoarder).await;
        for _ in 0..40 {
            socket.send(Message::text(history.clone())).await.unwrap();
        }
        hoarding.push(socket);
    }
    // Until every request has been read and answered as far as the server lets it: each
    // socket holds at most 1 MiB it could not deliver and the answer waiting behind it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let grown = rss_kib(&api.process).saturating_sub(before);
    println!("RSS with 10 sockets not reading 40 histories each: +{grown} KiB");
    assert!(grown < 64 * MIB, "RSS grew by {grown} KiB");
    // A socket 1 MiB behind has five seconds to read (a prompt reader's burst is waited for).
    tokio::time::sleep(Duration::from_secs(6)).await;
    // Each was cut: reading now finds what the kernel had already taken, then the end.
    let mut open = 0;
    for socket in &mut hoarding {
        let drained = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(Ok(_)) = socket.next().await {}
        });
        open += usize::from(drained.await.is_err());
    }
    assert_eq!(open, 0, "sockets still open after falling behind");
    assert!(api.healthy().await);
}

/// A WebSocket upgrade of `path`, by hand: the stream once the server answered 101.
async fn raw_websocket(address: &str, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    while !answer.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        stream.read_exact(&mut byte).await.unwrap();
        answer.push(byte[0]);
    }
    assert!(
        answer.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    stream
}

#[tokio::test]
async fn a_websocket_frame_longer_than_the_limit_is_refused_by_its_header() {
    testkit::needs!("the built binaries");
    let api = start(&[]).await;
    let address = api.address();
    let before = rss_kib(&api.process);
    // No token needed: Socket.IO's WebSocket transport opens before its CONNECT. One frame
    // declaring 2^40 bytes, then as much of it as the server takes.
    let mut stream = raw_websocket(&address, "/socket.io/?EIO=4&transport=websocket").await;
    let header = [0x81, 0xFF, 0, 0, 1, 0, 0, 0, 0, 0, 7, 7, 7, 7];
    let chunk = vec![0_u8; 1 << 20];
    let mut sent = 0;
    let refused = tokio::time::timeout(Duration::from_secs(20), async {
        if stream.write_all(&header).await.is_err() {
            return true;
        }
        while sent < 512 {
            if stream.write_all(&chunk).await.is_err() {
                return true;
            }
            sent += 1;
        }
        false
    })
    .await;
    let grown = rss_kib(&api.process).saturating_sub(before);
    println!("a 2^40-byte frame: {sent} MiB sent before the server ended it, RSS +{grown} KiB");
    assert_eq!(refused, Ok(true), "the server took {sent} MiB of one frame");
    assert!(grown < 16 * MIB, "RSS grew by {grown} KiB");
    assert!(api.healthy().await);
}

#[tokio::test]
async fn a_burst_of_requests_from_many_addresses_leaves_the_limiter_within_its_cap() {
    testkit::needs!("the built binaries");
    let api = start(&[
        ("TRUSTED_PROXY_HEADER", "X-Forwarded-For"),
        ("THROTTLE_LIMIT", "5"),
    ])
    .await;
    let before = rss_kib(&api.process);
    let requests: u32 = 100_000;
    let workers = 32;
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let (http, base) = (api.http.clone(), api.base.clone());
            tokio::spawn(async move {
                let mut limited = 0_u32;
                for n in (worker..requests).step_by(workers as usize) {
                    let client = std::net::Ipv4Addr::from(0x0A00_0000 | n);
                    // A route under the general limit: 401 without a token.
                    let reply = http
                        .get(format!("{base}/api/v1/auth/me"))
                        .header("X-Forwarded-For", client.to_string())
                        .send()
                        .await
                        .unwrap();
                    limited += u32::from(reply.status() == StatusCode::TOO_MANY_REQUESTS);
                }
                limited
            })
        })
        .collect();
    let mut limited = 0;
    for task in tasks {
        limited += task.await.unwrap();
    }
    assert_eq!(limited, 0, "each address sent one request");
    let grown = rss_kib(&api.process).saturating_sub(before);
    println!("RSS after 100 000 requests from distinct addresses: +{grown} KiB");
    assert!(grown < 96 * MIB, "RSS grew by {grown} KiB");
    assert!(api.healthy().await);
}

/// Whether the server closes `stream` within `within`, reading (and dropping) what it answers.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut sink = [0; 4096];
    tokio::time::timeout(within, async {
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn a_chunked_body_nobody_reads_does_not_hold_its_connection() {
    testkit::needs!("the built binaries");
    let api = start(&[("REQUEST_TIMEOUT", "2s"), ("WS_PING_INTERVAL", "1s")]).await;
    let address = api.address();
    let mut open = Vec::new();
    for n in 0..100 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        // Answered without its body being read (200), or never answered for want of it (408):
        // either way the rest of the body would be read and dropped for as long as it comes.
        let head = if n % 2 == 0 {
            format!(
                "GET /api/v1/health HTTP/1.1\r\nHost: {address}\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n"
            )
        } else {
            format!(
                "POST /api/v1/auth/login HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
                 Transfer-Encoding: chunked\r\n\r\n4\r\n{{\"em\r\n"
            )
        };
        stream.write_all(head.as_bytes()).await.unwrap();
        open.push(stream);
    }
    // REQUEST_TIMEOUT, then a second of lingering, and a margin.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut held = 0;
    for stream in &mut open {
        held += usize::from(!closed_by_server(stream, Duration::from_millis(200)).await);
    }
    assert_eq!(held, 0, "connections still open");
}
