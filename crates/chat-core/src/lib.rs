//! Realtime chat as a domain: rooms, messages, typing, presence, history and rate limits.
//! Knows nothing of sockets or Redis: the gateways in `http-api` translate frames, and the
//! bus, history and presence ports carry state between instances.

mod hub;
pub mod model;
pub mod ports;
mod service;

pub use hub::{Delivery, Hub, HubLimits, Refusal, Registration};
pub use service::{ChatConnection, ChatLimits, ChatPorts, ChatService};
