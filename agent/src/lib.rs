//! The berth task agent as a library: task definitions, plans, and the agent around them.

pub mod plan;
pub mod taskdef;
