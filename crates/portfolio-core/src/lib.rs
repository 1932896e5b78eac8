//! Portfolio domain: nine owned collections (projects, companies, skills, experiences,
//! education, certifications, blog, testimonials, contacts) served by one generic path, the
//! portfolio profile, and the public view of both.
//!
//! This crate does no I/O: storage and the user directory are ports (see [`ports`]).

pub mod model;
pub mod ports;
mod public;
pub mod resources;
mod service;
mod slug;

pub use public::{PublicPortfolio, PublicPortfolioReader};
pub use service::{PortfolioError, PortfolioService};
pub use slug::{is_slug, slugify};
