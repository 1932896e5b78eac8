//! Media uploads: what a file is (decided from its content), where it is kept (the
//! [`FileStore`] port) and what is made of pictures (the [`ImageProcessor`] port: decoded,
//! oriented, re-encoded without metadata, thumbnailed). [`MediaService`] holds every rule; it
//! does no I/O of its own.

pub mod key;
pub mod kind;
pub mod ports;
mod service;

pub use key::{FileKey, Purpose, Variant};
pub use kind::{Family, FileKind};
pub use ports::{FileStore, ImageProcessor};
pub use service::{MediaError, MediaFile, MediaPolicy, MediaService, SourceError, Upload};
