//! The image store: OCI layouts and archives, Docker archives and rootfs tarballs,
//! registry pulls, a verified blob store, each layer unpacked once into a snapshot, overlay
//! root filesystems for containers, and garbage collection.
//!
//! What the agent calls:
//!
//! ```text
//! Store::open(state_dir)                       the store under <state_dir>/images
//! store.pull(reference, &PullOptions, &progress) -> Image
//! store.import(source, &ImportOptions, &progress) -> Vec<Imported>
//! store.resolve(reference) -> Image            a stored image by name or digest
//! store.lease(task, &[digest]) / release(task) what a task uses stays
//! store.mount_rootfs(&image, upper, work, target) / unmount(target)
//! store.spec(&image, &Overrides) -> Spec       image config -> runtime spec
//! store.list() / remove(reference, force) / prune() / unpack(&image, dir)
//! ```
//!
//! Everything that must survive a crash is written to tmp/ first, synced and renamed into
//! place. Locks (flock) make it safe to run beside a running agent and other commands.

mod arriving;
mod bundle;
pub mod digest;
pub mod error;
mod fetch;
mod gc;
mod lease;
mod lock;
pub mod manifest;
mod mount;
pub mod platform;
pub mod progress;
mod pull;
mod records;
pub mod reference;
pub mod registry;
mod rootfs;
mod snapshot;
mod source;
pub mod spec;
mod store;
pub mod unpack;
pub mod whiteout;

pub use digest::Digest;
pub use error::{ImageError, Result};
pub use gc::PruneReport;
pub use lease::Lease;
pub use mount::unmount;
pub use platform::Platform;
pub use progress::{Progress, Quiet};
pub use pull::PullOptions;
pub use records::{Image, ImageSummary, Removal};
pub use reference::Reference;
pub use source::{ImportOptions, Imported};
pub use spec::{Overrides, default_spec, spec_from_config};
pub use store::Store;
