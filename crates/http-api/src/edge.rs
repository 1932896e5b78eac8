//! The outermost request handling of our own: assigns the request id, renders every error as a
//! problem document (ours, the router's and actix's alike), and logs one line per request.
//!
//! It also bounds the whole request, body included, by `REQUEST_TIMEOUT`, and closes the
//! connection after a refusal whose body was left unread.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use futures_util::{Stream, StreamExt as _};
use tracing::Instrument as _;

use crate::security::DOCS_CSP;

use crate::problem::{ApiError, ErrorCode, Problem};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// How long a request may take from its head to its answer, body included: a client that
/// sends its body slowly (or never ends it) holds its connection no longer than this.
#[derive(Clone, Copy, Debug)]
pub struct RequestDeadline(pub Duration);

fn incoming_id(request: &ServiceRequest) -> Option<String> {
    let raw = request.headers().get(&REQUEST_ID)?.to_str().ok()?;
    let acceptable = (8..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    acceptable.then(|| raw.to_owned())
}

fn new_id() -> String {
    hex::encode(rand::random::<[u8; 12]>())
}

/// A request's body, shared between the handler (which reads it) and this middleware (which
/// holds it until the answer is sent).
#[derive(Clone)]
struct HeldBody(Rc<RefCell<Payload>>);

impl HeldBody {
    /// `body`, keeping the request's body until it is sent.
    fn holding(&self, body: BoxBody) -> BoxBody {
        Holding {
            body,
            request_body: self.clone(),
            leftover: 0,
        }
        .boxed()
    }
}

impl std::fmt::Debug for HeldBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeldBody")
    }
}

impl Stream for HeldBody {
    type Item = Result<web::Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.borrow_mut().poll_next_unpin(cx)
    }
}

/// A refusal's body that keeps the request's body from being dropped until it is sent: actix
/// then closes the connection after the answer instead of reading and discarding the rest of
/// a chunked body, however long it goes on. What is left of the request's body is read as the
/// answer goes out, up to [`LEFTOVER_LIMIT`]: a client that sent its request whole (a refused
/// upload's closing boundary) keeps its connection, and none sees it reset under the answer.
struct Holding {
    body: BoxBody,
    request_body: HeldBody,
    leftover: usize,
}

/// Bytes of a refused request's body read after the refusal.
const LEFTOVER_LIMIT: usize = 64 * 1024;

impl MessageBody for Holding {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<web::Bytes, Self::Error>>> {
        while self.leftover < LEFTOVER_LIMIT {
            match self.request_body.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(bytes))) => self.leftover += bytes.len(),
                Poll::Ready(_) | Poll::Pending => break,
            }
        }
        Pin::new(&mut self.body).poll_next(cx)
    }
}

pub async fn edge<B: MessageBody + 'static>(
    mut request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = incoming_id(&request).unwrap_or_else(new_id);
    let (method, path) = (request.method().clone(), request.path().to_owned());
    // Every event while the request runs (handlers, cores, adapters) carries these fields.
    let span = tracing::info_span!("request", request_id = %request_id, %method, %path);

    let held = sends_body(&request).then(|| {
        let (_, payload) = request.parts_mut();
        let held = HeldBody(Rc::new(RefCell::new(payload.take())));
        *payload = Payload::Stream {
            payload: Box::pin(held.clone()),
        };
        held
    });
    let deadline = request
        .app_data::<web::Data<RequestDeadline>>()
        .map_or(Duration::MAX, |deadline| deadline.0);
    let handled = tokio::time::timeout(deadline, next.call(request).instrument(span.clone()));
    let Ok(handled) = handled.await else {
        // The request (its body, most likely) did not arrive in time: its connection is freed.
        return Err(RenderedProblem {
            error: ApiError::new(
                ErrorCode::RequestTimeout,
                "The request was not received and answered within REQUEST_TIMEOUT",
            ),
            request_id,
            path,
            held,
        }
        .into());
    };
    let response = match handled {
        Ok(response) => response.map_into_boxed_body(),
        // Middlewares inside answer with responses; an error escaping one has no request left
        // to build a response on, so it is rendered as a self-contained error instead.
        Err(error) => {
            let api_error = error.as_error::<ApiError>().cloned().unwrap_or_else(|| {
                tracing::error!(%request_id, cause = %error, "middleware error");
                ApiError::for_status(error.as_response_error().status_code())
            });
            return Err(RenderedProblem {
                error: api_error,
                request_id,
                path,
                held,
            }
            .into());
        }
    };
    let mut response = render_problem(response, &request_id, &path);
    if let Some(held) = held {
        // An answer may come before the body was read (too large, not allowed, not needed).
        response = response.map_body(|_, body| held.holding(body));
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    if path.starts_with("/api/v1/docs") {
        // The docs page runs its own (bundled) scripts; the API's CSP forbids all scripts.
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCS_CSP),
        );
    }
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let _entered = span.enter();
    if status >= 500 {
        tracing::error!(status, elapsed_ms, "request failed");
    } else {
        tracing::info!(status, elapsed_ms, "request");
    }
    Ok(response)
}

/// Whether the request comes with a body (chunked, or of a declared length above zero).
fn sends_body(request: &ServiceRequest) -> bool {
    let headers = request.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|length| length.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|length| length > 0)
}

fn is_problem(response: &ServiceResponse<BoxBody>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"))
}

fn render_problem(
    response: ServiceResponse<BoxBody>,
    request_id: &str,
    path: &str,
) -> ServiceResponse<BoxBody> {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_problem(&response) {
        return response;
    }
    let ours = response
        .response()
        .error()
        .and_then(|e| e.as_error::<ApiError>())
        .cloned();
    let error = ours.unwrap_or_else(|| {
        if status.is_server_error() {
            let cause = response
                .response()
                .error()
                .map(ToString::to_string)
                .unwrap_or_default();
            tracing::error!(%request_id, %cause, "unhandled error");
        }
        ApiError::for_status(status)
    });
    let mut rendered = problem_response(&error, request_id, path);
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && !rendered.headers().contains_key(name)
        {
            rendered.headers_mut().append(name.clone(), value.clone());
        }
    }
    response.into_response(rendered)
}

fn problem_response(error: &ApiError, request_id: &str, path: &str) -> HttpResponse {
    let body = serde_json::to_vec(&Problem::new(error, request_id, path)).unwrap_or_default();
    let mut response = HttpResponse::build(error.status);
    if let Some(seconds) = error.retry_after {
        response.insert_header((header::RETRY_AFTER, seconds.to_string()));
    }
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.insert_header((REQUEST_ID, value));
    }
    response.content_type("application/problem+json").body(body)
}

/// A problem travelling as an error, rendered when actix turns it into a response.
#[derive(Debug)]
struct RenderedProblem {
    error: ApiError,
    request_id: String,
    path: String,
    /// The request's body, when it came with one (see [`Holding`]).
    held: Option<HeldBody>,
}

impl std::fmt::Display for RenderedProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl actix_web::ResponseError for RenderedProblem {
    fn status_code(&self) -> actix_web::http::StatusCode {
        self.error.status
    }

    fn error_response(&self) -> HttpResponse {
        let response = problem_response(&self.error, &self.request_id, &self.path);
        match &self.held {
            Some(held) => response.map_body(|_, body| held.holding(body)),
            None => response,
        }
    }
}

/// Fallback for unknown routes.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(ErrorCode::NotFound, "Route not found"))
}

/// The answer to a known route called with another method; `allow` lists the route's methods
/// (RFC 9110 requires the header on a 405). The problem body is added like any error's.
pub fn method_not_allowed(allow: &str) -> HttpResponse {
    let mut response = HttpResponse::from_error(ApiError::new(
        ErrorCode::MethodNotAllowed,
        "Method not allowed",
    ));
    if let Ok(value) = HeaderValue::from_str(allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex, PoisonError};

    use actix_web::middleware::from_fn;
    use actix_web::test as actix_test;
    use actix_web::{App, web};

    #[test]
    fn new_ids_are_long_enough_to_be_unique() {
        assert_eq!(super::new_id().len(), 24);
    }

    /// Log output kept in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[actix_web::test]
    async fn every_log_line_of_a_request_carries_its_request_id_as_json() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_writer(move || writer.clone())
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let app = actix_test::init_service(
            App::new()
                .route(
                    "/work",
                    web::get().to(|| async {
                        tracing::info!("inside the handler");
                        "done"
                    }),
                )
                .wrap(from_fn(super::edge)),
        )
        .await;
        let request = actix_test::TestRequest::get()
            .uri("/work")
            .insert_header(("x-request-id", "trace-me-0123456789"))
            .to_request();
        assert!(
            actix_test::call_service(&app, request)
                .await
                .status()
                .is_success()
        );
        let output = captured
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect();
        assert!(lines.len() >= 2, "{lines:?}");
        for line in &lines {
            assert_eq!(line["span"]["request_id"], "trace-me-0123456789", "{line}");
        }
    }
}
