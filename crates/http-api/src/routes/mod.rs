//! Handlers, one module per area. Each handler only translates: extractor → DTO → core
//! service → envelope.

pub mod account;
pub mod admin;
pub mod auth;
pub mod health;
pub mod portfolio;
pub mod public;
pub mod sessions;
pub mod settings;
pub mod uploads;
pub mod users;
