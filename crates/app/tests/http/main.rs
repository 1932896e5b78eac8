//! The HTTP tests: the whole app in-process on port 0 (`support::spawn_app_with`), one module
//! per area. One test binary, as each links the whole app.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

mod account_http;
mod admin_http;
mod chat_socketio;
mod chat_ws;
mod edge_http;
mod identity_http;
mod portfolio_http;
mod uploads_http;
