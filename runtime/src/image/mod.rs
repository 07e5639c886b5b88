//! The image store: OCI layouts and archives, Docker archives and rootfs tarballs,
//! registry pulls, a verified blob store, each layer unpacked once into a snapshot, overlay
//! root filesystems for containers, and garbage collection.

pub mod digest;
pub mod error;
pub mod manifest;
pub mod platform;
pub mod reference;
pub mod spec;
pub mod unpack;
pub mod whiteout;

pub use digest::Digest;
pub use error::{ImageError, Result};
pub use platform::Platform;
pub use reference::Reference;
pub use spec::{Overrides, default_spec, spec_from_config};
