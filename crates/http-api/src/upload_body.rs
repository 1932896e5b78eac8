//! An upload's multipart body with every byte counted, whether or not a `Content-Length` was
//! declared: the whole body against the route's limit, and each part's header section against
//! [`PART_HEADER_LIMIT`] (the multipart parser buffers a header until it ends, so a header that
//! never ends would otherwise be held whole).

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_multipart::Multipart;
use actix_web::error::PayloadError;
use actix_web::http::header::HeaderMap;
use actix_web::web::{self, Bytes};
use futures_util::{Stream, StreamExt as _};

/// Most bytes read while the parser looks for a part's header (its preamble or the boundary
/// before it included). Browsers send a few hundred.
pub const PART_HEADER_LIMIT: u64 = 16 * 1024;
/// The parser is fed slices of at most this, so that it reads at most this far past a limit.
const SLICE: usize = 4096;

/// Which limit a body went over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exceeded {
    Body,
    PartHeader,
}

/// What the body may still spend.
#[derive(Debug)]
pub struct Budget {
    body_left: Cell<u64>,
    /// `Some` while a part's header is being looked for.
    header_left: Cell<Option<u64>>,
    exceeded: Cell<Option<Exceeded>>,
}

impl Budget {
    fn spend(&self, bytes: usize) -> Result<(), Exceeded> {
        let bytes = bytes as u64;
        let body_left = self.body_left.get().checked_sub(bytes);
        let header_left = self.header_left.get().map(|left| left.checked_sub(bytes));
        let outcome = match (body_left, header_left) {
            (None, _) => Err(Exceeded::Body),
            (_, Some(None)) => Err(Exceeded::PartHeader),
            (Some(body_left), header_left) => {
                self.body_left.set(body_left);
                self.header_left.set(header_left.flatten());
                Ok(())
            }
        };
        if let Err(exceeded) = outcome {
            self.exceeded.set(Some(exceeded));
        }
        outcome
    }

    /// The parser is about to look for the next part's header.
    pub fn expect_header(&self) {
        self.header_left.set(Some(PART_HEADER_LIMIT));
    }

    /// A part's header was read; its content counts against the body's limit only.
    pub fn header_read(&self) {
        self.header_left.set(None);
    }

    /// The limit the body went over, once it did.
    pub fn exceeded(&self) -> Option<Exceeded> {
        self.exceeded.get()
    }
}

/// `payload` parsed as multipart (by `headers`' boundary) with at most `limit` bytes read, and
/// the budget that says when and why it stopped.
pub fn bounded_multipart(
    headers: &HeaderMap,
    payload: web::Payload,
    limit: u64,
) -> (Multipart, Rc<Budget>) {
    let budget = Rc::new(Budget {
        body_left: Cell::new(limit),
        header_left: Cell::new(None),
        exceeded: Cell::new(None),
    });
    let stream = Counted {
        payload,
        rest: Bytes::new(),
        budget: Rc::clone(&budget),
        yielded: true,
    };
    (Multipart::new(headers, stream), budget)
}

/// The payload in slices of at most [`SLICE`] bytes, each counted. After each slice the stream
/// yields once: the parser takes everything a stream has ready, and this makes it look at each
/// slice (for the end of a header) before it takes the next.
struct Counted {
    payload: web::Payload,
    rest: Bytes,
    budget: Rc<Budget>,
    yielded: bool,
}

impl Stream for Counted {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.budget.exceeded().is_some() {
            return Poll::Ready(None);
        }
        if !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        while self.rest.is_empty() {
            match self.payload.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(chunk))) => self.rest = chunk,
                other => return other,
            }
        }
        let take = self.rest.len().min(SLICE);
        let slice = self.rest.split_to(take);
        self.yielded = false;
        Poll::Ready(Some(match self.budget.spend(slice.len()) {
            Ok(()) => Ok(slice),
            Err(_) => Err(PayloadError::Overflow),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(limit: u64) -> Budget {
        Budget {
            body_left: Cell::new(limit),
            header_left: Cell::new(None),
            exceeded: Cell::new(None),
        }
    }

    #[test]
    fn the_body_limit_counts_every_byte() {
        let budget = budget(10);
        assert_eq!(budget.spend(6), Ok(()));
        assert_eq!(budget.spend(4), Ok(()));
        assert_eq!(budget.spend(1), Err(Exceeded::Body));
        assert_eq!(budget.exceeded(), Some(Exceeded::Body));
    }

    #[test]
    fn a_part_header_has_its_own_limit_while_it_is_looked_for() {
        let budget = budget(u64::MAX);
        budget.expect_header();
        assert_eq!(budget.spend(PART_HEADER_LIMIT as usize), Ok(()));
        budget.header_read();
        assert_eq!(budget.spend(1_000_000), Ok(()), "a part's content");
        budget.expect_header();
        assert_eq!(
            budget.spend(PART_HEADER_LIMIT as usize + 1),
            Err(Exceeded::PartHeader)
        );
    }
}
