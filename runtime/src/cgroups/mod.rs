//! A container's cgroup on v1, v2 and hybrid hosts: where it lives, its limits, its
//! processes, freezing, stats and OOM kills. Files are written directly; no library.

mod error;
mod host;

pub use error::CgroupError;
pub use host::{Host, Mode};
