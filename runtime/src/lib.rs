//! berth-runtime: a small OCI runtime library.
//!
//! The library is the runtime; the `berth-runtime` binary only parses arguments and calls
//! into [`container`]. A container's init is cloned straight from the calling process into
//! its namespaces and cgroup, prepares the rootfs, and waits on an exec fifo until `start`.

pub mod cgroups;
pub mod cli;
pub mod container;
pub mod error;
pub mod image;
pub mod process;
pub mod rootfs;
pub mod security;

pub use container::{Container, CreateOptions, Status};
pub use error::Error;
