//! berth-agent: runs ECS task definitions on this host.

pub mod store;
pub mod supervisor;
