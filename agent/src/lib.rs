//! berth-agent: runs ECS task definitions on this host.

pub mod api;
pub mod ecs;
pub mod store;
pub mod supervisor;
