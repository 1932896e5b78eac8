//! The way in and out of a chat WebSocket, bounded for clients that send too much or stop
//! reading.
//!
//! In: actix-ws buffers a frame whole before checking its size, so [`FrameGuard`] reads each
//! frame's declared length as it arrives and cuts the connection at a frame longer than the
//! socket's limit, before its bytes are held.
//!
//! Out: actix-ws queues what a socket sends (32 frames, of any size) until the connection
//! takes it to write, and the connection takes no more while its write buffer is full. A
//! client that stops reading therefore leaves its frames queued, and its connection open, for
//! as long as it likes: closing the session does not help, since the close frame queues behind
//! the rest. So an [`Outlet`] counts the bytes it handed over (as framed on the wire) against
//! the bytes the connection took ([`Metered`]). More than [`OUTBOUND_BYTES`] behind, a write
//! waits for the client to read; a client that leaves it waiting past [`BEHIND_DEADLINE`] (or
//! a write past the socket's deadline) has its TCP connection cut: shut down and reset, which drops everything queued for it at once. The
//! kernel's share is bounded too: an upgraded socket's send buffer is [`SEND_BUFFER`], and data
//! it cannot deliver for [`UNACKNOWLEDGED`] ends the connection (`TCP_USER_TIMEOUT`).

use std::any::Any;
use std::cell::Cell;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Extensions, Payload};
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use actix_web::{FromRequest as _, HttpRequest, HttpResponse};
use actix_ws::{CloseReason, Closed, MessageStream, Session};
use futures_util::Stream;
use tokio::sync::Notify;
use tokio::time::error::Elapsed;

use crate::problem::{ApiError, ErrorCode};

/// Bytes a socket may have handed to actix-ws that its connection has not yet taken; beyond
/// them a write waits for the client to read. The same bound as a Socket.IO session's
/// outbound queue.
pub(super) const OUTBOUND_BYTES: u64 = 1 << 20;

/// How long a client more than [`OUTBOUND_BYTES`] behind has to read back under them.
const BEHIND_DEADLINE: Duration = Duration::from_secs(5);

/// The kernel's send buffer of an upgraded socket (Linux doubles it for its bookkeeping): what
/// the kernel holds for a client beyond [`OUTBOUND_BYTES`], also after the socket is closed.
const SEND_BUFFER: usize = 128 << 10;

/// How long the kernel keeps trying to deliver data a client does not take, also after the
/// socket is closed.
const UNACKNOWLEDGED: Duration = Duration::from_secs(30);

/// The TCP socket under a connection (a second descriptor of it), kept with the connection's
/// data so that a WebSocket whose client stopped reading can be cut.
struct ConnectionSocket(Rc<socket2::Socket>);

/// Remembers the socket of each TCP connection the server accepts (`HttpServer::on_connect`).
/// Without a second descriptor (the process is out of them) the connection is served, and an
/// upgrade on it refused.
pub(crate) fn remember_socket(connection: &dyn Any, data: &mut Extensions) {
    if let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
        match socket2::SockRef::from(stream).try_clone() {
            Ok(socket) => {
                data.insert(ConnectionSocket(Rc::new(socket)));
            }
            Err(error) => tracing::warn!(%error, "no second descriptor for a connection"),
        }
    }
}

/// What the connection has taken of a socket's frames, and whether it has let go of them.
#[derive(Default)]
struct Meter {
    taken: Cell<u64>,
    gone: Cell<bool>,
    /// Woken when the connection takes bytes and when it lets go.
    moved: Notify,
}

/// Most bytes the connection takes of a socket's frames at once. actix's HTTP/1 writer takes
/// whatever a poll yields into its buffer before checking the buffer's size: in small pieces,
/// what it has taken and not yet written stays small, and what the socket has not handed over
/// is what [`OUTBOUND_BYTES`] counts.
const TAKEN_AT_ONCE: usize = 16 << 10;

/// A WebSocket response body that counts what the connection takes of it, and hands it over
/// in pieces of at most [`TAKEN_AT_ONCE`].
struct Metered {
    body: BoxBody,
    /// What the body yielded and the connection has not taken yet.
    rest: Bytes,
    meter: Rc<Meter>,
}

impl MessageBody for Metered {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        if self.rest.is_empty() {
            match Pin::new(&mut self.body).poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => self.rest = bytes,
                other => return other,
            }
        }
        let piece = self.rest.len().min(TAKEN_AT_ONCE);
        let piece = self.rest.split_to(piece);
        let taken = &self.meter.taken;
        taken.set(taken.get() + piece.len() as u64);
        self.meter.moved.notify_one();
        Poll::Ready(Some(Ok(piece)))
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        self.meter.gone.set(true);
        self.meter.moved.notify_one();
    }
}

/// A WebSocket's bytes in, ended at the first frame whose declared length exceeds `limit`.
/// Frames pass through as they come; only their headers are read.
struct FrameGuard {
    payload: Payload,
    /// The connection, cut at a frame too long: actix would otherwise read and discard the
    /// rest of the client's bytes for as long as it sends them.
    socket: Weak<socket2::Socket>,
    limit: u64,
    /// The header being read (at most 14 bytes).
    header: Vec<u8>,
    /// Payload bytes of the current frame still to pass.
    remaining: u64,
}

impl FrameGuard {
    /// Reads the headers in `chunk`; `false` at a frame longer than the limit.
    fn inspect(&mut self, mut chunk: &[u8]) -> bool {
        while !chunk.is_empty() {
            if self.remaining > 0 {
                let skipped = chunk
                    .len()
                    .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                self.remaining -= skipped as u64;
                chunk = &chunk[skipped..];
                continue;
            }
            self.header.push(chunk[0]);
            chunk = &chunk[1..];
            let Some(length) = declared_length(&self.header) else {
                continue;
            };
            if length > self.limit {
                return false;
            }
            self.header.clear();
            self.remaining = length;
        }
        true
    }
}

/// A frame header's payload length, once `header` holds the whole header.
fn declared_length(header: &[u8]) -> Option<u64> {
    let (&second, rest) = header.get(1).map(|second| (second, &header[2..]))?;
    let mask = if second & 0x80 == 0 { 0 } else { 4 };
    let (extended, length) = match second & 0x7F {
        126 => (
            2,
            u64::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)),
        ),
        127 => (8, u64::from_be_bytes(rest.get(..8)?.try_into().ok()?)),
        short => (0, u64::from(short)),
    };
    (rest.len() == extended + mask).then_some(length)
}

impl Stream for FrameGuard {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.payload).poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &polled
            && !self.inspect(chunk)
        {
            cut(&self.socket);
            return Poll::Ready(Some(Err(PayloadError::Overflow)));
        }
        polled
    }
}

/// Accepts a WebSocket upgrade: the answer to send, the socket's outlet and its frames in
/// (frames longer than `max_frame` end them).
///
/// # Errors
/// actix-ws's answer when the request is not a WebSocket upgrade; 503 when the connection's
/// socket could not be kept (a socket that could not be cut is not opened).
pub(super) fn accept(
    request: &HttpRequest,
    body: actix_web::web::Payload,
    max_frame: usize,
    deadline: Duration,
) -> Result<(HttpResponse, Outlet, MessageStream), actix_web::Error> {
    let Some(socket) = request.conn_data::<ConnectionSocket>() else {
        return Err(ApiError::new(ErrorCode::NotReady, "the server is out of descriptors").into());
    };
    let guard: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(FrameGuard {
        payload: body.into_inner(),
        socket: Rc::downgrade(&socket.0),
        limit: max_frame as u64,
        header: Vec::with_capacity(14),
        remaining: 0,
    });
    let mut guarded = Payload::Stream { payload: guard };
    let body = actix_web::web::Payload::from_request(request, &mut guarded).into_inner()?;
    let (response, session, messages) = actix_ws::handle(request, body)?;
    // Best effort: the bounds above hold without them, these keep the kernel's share small.
    let _ = socket.0.set_send_buffer_size(SEND_BUFFER);
    let _ = socket.0.set_tcp_user_timeout(Some(UNACKNOWLEDGED));
    let meter = Rc::new(Meter::default());
    let response = response.map_body(|_, body| {
        BoxBody::new(Metered {
            body,
            rest: Bytes::new(),
            meter: Rc::clone(&meter),
        })
    });
    let outlet = Outlet {
        session,
        deadline,
        handed: 0,
        meter,
        socket: Rc::downgrade(&socket.0),
        stalled: false,
    };
    Ok((response, outlet, messages.max_frame_size(max_frame)))
}

/// A frame of `payload` bytes as the server writes it: the payload and a 2, 4 or 10-byte
/// header (a server's frames are not masked).
fn framed(payload: usize) -> u64 {
    let header = match payload {
        0..=125 => 2,
        126..=65_535 => 4,
        _ => 10,
    };
    payload as u64 + header
}

/// Where a chat socket's frames go. Every write is `false` once the socket is closed or its
/// client has fallen behind; the caller then ends the socket with [`Outlet::close`].
pub(super) struct Outlet {
    session: Session,
    /// How long a write may wait for the client to read.
    deadline: Duration,
    /// Bytes handed to actix-ws, as framed on the wire.
    handed: u64,
    meter: Rc<Meter>,
    socket: Weak<socket2::Socket>,
    /// The client stopped reading: nothing more can reach it, not even a close frame.
    stalled: bool,
}

impl Outlet {
    pub(super) async fn text(&mut self, frame: &str) -> bool {
        let sent = tokio::time::timeout(self.deadline, self.session.text(frame)).await;
        self.settle(frame.len(), sent).await
    }

    pub(super) async fn pong(&mut self, bytes: &[u8]) -> bool {
        let sent = tokio::time::timeout(self.deadline, self.session.pong(bytes)).await;
        self.settle(bytes.len(), sent).await
    }

    pub(super) async fn ping(&mut self) -> bool {
        let sent = tokio::time::timeout(self.deadline, self.session.ping(b"")).await;
        self.settle(0, sent).await
    }

    /// Counts a frame handed over; beyond [`OUTBOUND_BYTES`] behind, waits (up to
    /// [`BEHIND_DEADLINE`]) for the client to read back under them.
    async fn settle(&mut self, payload: usize, sent: Result<Result<(), Closed>, Elapsed>) -> bool {
        match sent {
            Ok(Ok(())) => self.handed += framed(payload),
            Ok(Err(Closed)) => return false,
            Err(_) => {
                self.stalled = true;
                return false;
            }
        }
        let (handed, meter) = (self.handed, &self.meter);
        let caught_up = tokio::time::timeout(BEHIND_DEADLINE, async {
            while handed.saturating_sub(meter.taken.get()) > OUTBOUND_BYTES {
                if meter.gone.get() {
                    return false;
                }
                meter.moved.notified().await;
            }
            true
        })
        .await;
        caught_up.unwrap_or_else(|_| {
            self.stalled = true;
            false
        })
    }

    /// Ends the socket with `reason` when its client still reads (the connection lets go of
    /// its frames within the deadline), and cuts it otherwise.
    pub(super) async fn close(self, reason: Option<CloseReason>) {
        let Self {
            session,
            deadline,
            meter,
            socket,
            stalled,
            ..
        } = self;
        if !stalled {
            let closing = tokio::time::timeout(deadline, async {
                // `Closed`: the connection has let go already.
                if session.close(reason).await.is_ok() {
                    while !meter.gone.get() {
                        meter.moved.notified().await;
                    }
                }
            });
            if closing.await.is_ok() {
                return;
            }
        }
        cut(&socket);
    }
}

/// Ends a connection at once, with a reset rather than a FIN: the kernel drops what it still
/// holds for the client, and actix sees the connection end.
fn cut(socket: &Weak<socket2::Socket>) {
    if let Some(socket) = socket.upgrade() {
        let _ = socket.set_linger(Some(Duration::ZERO));
        let _ = socket.shutdown(std::net::Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::declared_length;

    #[test]
    fn a_frame_header_declares_its_length_once_whole() {
        // Masked text frames of 5, 300 and 2^40 bytes, as a client sends them.
        let short = [0x81, 0x85, 1, 2, 3, 4];
        let medium = [0x81, 0xFE, 0x01, 0x2C, 1, 2, 3, 4];
        let huge = [0x81, 0xFF, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2, 3, 4];
        for (header, length) in [(&short[..], 5), (&medium[..], 300), (&huge[..], 1 << 40)] {
            for cut in 0..header.len() {
                assert_eq!(
                    declared_length(&header[..cut]),
                    None,
                    "{header:?} cut at {cut}"
                );
            }
            assert_eq!(declared_length(header), Some(length));
        }
    }
}
