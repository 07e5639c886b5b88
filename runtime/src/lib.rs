//! berth-runtime: a small OCI runtime library.
