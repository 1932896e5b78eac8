//! The way out of a chat WebSocket, bounded for clients that stop reading.
//!
//! actix-ws queues what a socket sends (32 frames, of any size) until the connection takes it
//! to write, and the connection takes no more while its write buffer is full. A client that
//! stops reading therefore leaves its frames queued, and its connection open, for as long as it
//! likes: closing the session does not help, since the close frame queues behind the rest, and
//! an error from the body is never seen, since the body is not polled. So an [`Outlet`] counts
//! the bytes it handed over against the bytes the connection took ([`Metered`]), and a client
//! more than [`OUTBOUND_BYTES`] behind, or one that leaves a write waiting past the deadline, has
//! its TCP connection cut: shut down and reset, which drops everything queued for it at once.

use std::any::Any;
use std::cell::Cell;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::Extensions;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use actix_ws::{CloseReason, Closed, MessageStream, Session};
use tokio::sync::Notify;
use tokio::time::error::Elapsed;

/// Bytes a socket may have handed to actix-ws that its connection has not yet taken; beyond
/// them the client is cut off. The same bound as a Socket.IO session's outbound queue.
pub(super) const OUTBOUND_BYTES: u64 = 1 << 20;

/// The TCP socket under a connection (a second descriptor of it), kept with the connection's
/// data so that a WebSocket whose client stopped reading can be cut.
struct ConnectionSocket(Rc<socket2::Socket>);

/// Remembers the socket of each TCP connection the server accepts (`HttpServer::on_connect`).
pub(crate) fn remember_socket(connection: &dyn Any, data: &mut Extensions) {
    if let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>()
        && let Ok(socket) = socket2::SockRef::from(stream).try_clone()
    {
        data.insert(ConnectionSocket(Rc::new(socket)));
    }
}

/// What the connection has taken of a socket's frames, and whether it has let go of them.
#[derive(Default)]
struct Meter {
    taken: Cell<u64>,
    released: Notify,
}

/// A WebSocket response body that counts what the connection takes of it.
struct Metered {
    body: BoxBody,
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
        let polled = Pin::new(&mut self.body).poll_next(cx);
        if let Poll::Ready(Some(Ok(bytes))) = &polled {
            let taken = &self.meter.taken;
            taken.set(taken.get() + bytes.len() as u64);
        }
        polled
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        self.meter.released.notify_one();
    }
}

/// Accepts a WebSocket upgrade: the answer to send, the socket's outlet and its frames in.
///
/// # Errors
/// actix-ws's answer when the request is not a WebSocket upgrade.
pub(super) fn accept(
    request: &HttpRequest,
    body: actix_web::web::Payload,
    max_frame: usize,
    deadline: Duration,
) -> Result<(HttpResponse, Outlet, MessageStream), actix_web::Error> {
    let (response, session, messages) = actix_ws::handle(request, body)?;
    let meter = Rc::new(Meter::default());
    let response = response.map_body(|_, body| {
        BoxBody::new(Metered {
            body,
            meter: Rc::clone(&meter),
        })
    });
    let socket = request
        .conn_data::<ConnectionSocket>()
        .map_or_else(Weak::new, |socket| Rc::downgrade(&socket.0));
    let outlet = Outlet {
        session,
        deadline,
        handed: 0,
        meter,
        socket,
        stalled: false,
    };
    Ok((response, outlet, messages.max_frame_size(max_frame)))
}

/// Where a chat socket's frames go. Every write is `false` once the socket is closed or its
/// client has fallen behind; the caller then ends the socket with [`Outlet::close`].
pub(super) struct Outlet {
    session: Session,
    /// How long a write may wait for the client to read.
    deadline: Duration,
    /// Bytes handed to actix-ws.
    handed: u64,
    meter: Rc<Meter>,
    socket: Weak<socket2::Socket>,
    /// The client stopped reading: nothing more can reach it, not even a close frame.
    stalled: bool,
}

impl Outlet {
    pub(super) async fn text(&mut self, frame: &str) -> bool {
        let sent = tokio::time::timeout(self.deadline, self.session.text(frame)).await;
        self.settle(frame.len(), sent)
    }

    pub(super) async fn pong(&mut self, bytes: &[u8]) -> bool {
        let sent = tokio::time::timeout(self.deadline, self.session.pong(bytes)).await;
        self.settle(bytes.len(), sent)
    }

    pub(super) async fn ping(&mut self) -> bool {
        let sent = tokio::time::timeout(self.deadline, self.session.ping(b"")).await;
        self.settle(0, sent)
    }

    fn settle(&mut self, bytes: usize, sent: Result<Result<(), Closed>, Elapsed>) -> bool {
        match sent {
            Ok(Ok(())) => {
                self.handed += bytes as u64;
                self.stalled = self.handed.saturating_sub(self.meter.taken.get()) > OUTBOUND_BYTES;
                !self.stalled
            }
            Ok(Err(Closed)) => false,
            Err(_) => {
                self.stalled = true;
                false
            }
        }
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
                    meter.released.notified().await;
                }
            });
            if closing.await.is_ok() {
                return;
            }
        }
        if let Some(socket) = socket.upgrade() {
            // A reset rather than a FIN: the kernel drops what it still holds for the client.
            let _ = socket.set_linger(Some(Duration::ZERO));
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }
}
