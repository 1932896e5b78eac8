//! Chat load generator speaking Socket.IO 4 (Engine.IO over WebSocket) to any server with the
//! contract's chat events, so this service and a Node Socket.IO server see the same client.
//! `receivers` sockets sit in `general`; one sender keeps `in_flight` messages outstanding
//! (a message is done when every receiver has it) and every delivery's send-to-receive latency
//! is recorded. Prints `deliveries/s p50 p99` (latencies in ms).
//!
//! Usage: chat_load <ws url of /socket.io/ without query> <token> <receivers> <in_flight>
//! <seconds> [<second ws url: receivers alternate between the two>]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark tool")]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Writer = Arc<Mutex<SplitSink<Socket, Message>>>;

/// Opens a Socket.IO connection on the default namespace, authenticated with `token`.
async fn connect(url: &str, token: &str) -> (Writer, SplitStream<Socket>) {
    let (socket, _) = connect_async(format!("{url}?EIO=4&transport=websocket"))
        .await
        .expect("connects");
    let (mut writer, mut reader) = socket.split();
    loop {
        let Some(Ok(Message::Text(text))) = reader.next().await else {
            panic!("closed during the handshake");
        };
        if text.starts_with('0') {
            writer
                .send(Message::text(format!("40{}", json!({ "token": token }))))
                .await
                .unwrap();
        } else if text.starts_with("40") {
            break;
        } else if text.starts_with("44") {
            panic!("refused: {text}");
        }
    }
    (Arc::new(Mutex::new(writer)), reader)
}

/// Answers pings; hands each `message` event's content to `on_message`.
async fn read(mut reader: SplitStream<Socket>, writer: Writer, on_message: impl Fn(&str)) {
    while let Some(Ok(frame)) = reader.next().await {
        let Message::Text(text) = frame else { continue };
        if &*text == "2" {
            let _ = writer.lock().await.send(Message::text("3")).await;
        } else if let Some(event) = text.strip_prefix("42")
            && event.starts_with("[\"message\"")
        {
            let parsed: Value = serde_json::from_str(event).unwrap();
            on_message(parsed[1]["content"].as_str().unwrap_or_default());
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    #[allow(clippy::cast_precision_loss)]
    let millis = sorted[index] as f64 / 1000.0;
    millis
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (url, token) = (&args[1], &args[2]);
    let receivers: usize = args[3].parse().unwrap();
    let in_flight: usize = args[4].parse().unwrap();
    let seconds: u64 = args[5].parse().unwrap();
    let urls: Vec<&String> = std::iter::once(url).chain(args.get(6)).collect();

    let started = Instant::now();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<u64>();
    let counts = Arc::new(std::sync::Mutex::new(HashMap::<u64, usize>::new()));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::<u64>::with_capacity(1 << 22)));
    let deliveries = Arc::new(AtomicU64::new(0));
    for n in 0..receivers {
        let (writer, reader) = connect(urls[n % urls.len()], token).await;
        let (counts, latencies, deliveries, done) = (
            Arc::clone(&counts),
            Arc::clone(&latencies),
            Arc::clone(&deliveries),
            done_tx.clone(),
        );
        tokio::spawn(read(reader, writer, move |content| {
            let Some((seq, sent)) = content.split_once(':') else {
                return;
            };
            let (Ok(seq), Ok(sent)) = (seq.parse::<u64>(), sent.parse::<u64>()) else {
                return;
            };
            let now = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            latencies.lock().unwrap().push(now.saturating_sub(sent));
            deliveries.fetch_add(1, Ordering::Relaxed);
            let mut counts = counts.lock().unwrap();
            let count = counts.entry(seq).or_default();
            *count += 1;
            if *count == receivers {
                counts.remove(&seq);
                let _ = done.send(seq);
            }
        }));
    }
    let (sender, sender_reader) = connect(url, token).await;
    tokio::spawn(read(sender_reader, Arc::clone(&sender), |_| {}));
    // Let the joins and presence announcements settle before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    latencies.lock().unwrap().clear();
    deliveries.store(0, Ordering::Relaxed);

    let send = |seq: u64| {
        let sender = Arc::clone(&sender);
        async move {
            let sent = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            let frame =
                json!(["message", { "room": "general", "content": format!("{seq}:{sent}") }]);
            sender
                .lock()
                .await
                .send(Message::text(format!("42{frame}")))
                .await
                .unwrap();
        }
    };
    let measure_from = Instant::now();
    let deadline = measure_from + Duration::from_secs(seconds);
    let mut next = 0_u64;
    for _ in 0..in_flight {
        send(next).await;
        next += 1;
    }
    while Instant::now() < deadline {
        match tokio::time::timeout_at(deadline.into(), done_rx.recv()).await {
            Ok(Some(_)) => {
                send(next).await;
                next += 1;
            }
            _ => break,
        }
    }
    let elapsed = measure_from.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rate = deliveries.load(Ordering::Relaxed) as f64 / elapsed;
    let mut sorted = std::mem::take(&mut *latencies.lock().unwrap());
    sorted.sort_unstable();
    println!(
        "{rate:.0} {:.2} {:.2}",
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.99)
    );
    std::process::exit(0);
}
