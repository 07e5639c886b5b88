//! berth-runtime: a small OCI runtime library.

pub mod cgroups;
