//! The berth task agent as a library: ECS task definitions, the plans that turn them into
//! OCI specs, the per-task supervisor, the store, the API, and the agent around them.

mod agent;
pub mod api;
pub mod ecs;
pub mod images;
pub mod net;
pub mod plan;
pub mod schedule;
pub mod service;
pub mod stats;
pub mod store;
pub mod supervisor;
mod sweep;
pub mod taskdef;

pub use agent::{Agent, CGROUP_ROOT, Config, reservation};
