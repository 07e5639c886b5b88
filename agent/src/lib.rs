//! berth-agent: runs ECS task definitions on this host.

pub mod supervisor;
