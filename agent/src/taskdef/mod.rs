//! ECS task definitions: the JSON users already have, read into typed values, checked
//! with ECS's rules (every problem reported with its JSON path), and changed by
//! run-task overrides.

mod envfile;
mod error;
mod model;
pub mod names;
mod overrides;
pub mod units;
mod user;
mod validate;

use serde::Deserialize;

pub use envfile::{
    EnvFileError, environment_file_path, parse_environment_file, read_environment_files,
};
pub use error::{FieldError, ParseError, ValidationErrors, Warning};
pub use model::{
    Condition, ContainerDefinition, ContainerDependency, Device, DockerVolumeConfiguration,
    EnvironmentFile, HealthCheck, HostEntry, HostVolume, IpcMode, KernelCapabilities, KeyValuePair,
    LinuxParameters, LogConfiguration, MountPoint, NetworkMode, PidMode, PortMapping, Protocol,
    SecurityOption, TaskDefinition, Tmpfs, Ulimit, Volume, VolumeFrom,
};
pub use overrides::{ContainerOverride, TaskOverride, apply_overrides};
pub use user::{IdOrName, UserSpec, parse_user};
pub use validate::{MAX_STOP_TIMEOUT, MIN_CONTAINER_MEMORY_MIB, RESERVED_HOST_PORTS, validate};

/// `describe-task-definition` output: the definition sits under `taskDefinition`, next
/// to `tags`.
#[derive(Deserialize)]
struct Described {
    #[serde(rename = "taskDefinition")]
    task_definition: TaskDefinition,
}

impl TaskDefinition {
    /// Reads a task definition from `register-task-definition --cli-input-json` input
    /// or from `describe-task-definition` output. Fields berth does not know are
    /// ignored; a malformed value is an error with its line, column and field path.
    pub fn from_json(text: &str) -> Result<TaskDefinition, ParseError> {
        if is_described(text) {
            let mut de = serde_json::Deserializer::from_str(text);
            let described: Described =
                serde_path_to_error::deserialize(&mut de).map_err(ParseError::from_serde)?;
            Ok(described.task_definition)
        } else {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(&mut de).map_err(ParseError::from_serde)
        }
    }

    /// `validate(self)`: the warnings, or every problem.
    pub fn validate(&self) -> Result<Vec<Warning>, ValidationErrors> {
        validate(self)
    }
}

impl TaskOverride {
    /// Reads run-task's `overrides` object.
    pub fn from_json(text: &str) -> Result<TaskOverride, ParseError> {
        let mut de = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut de).map_err(ParseError::from_serde)
    }
}

/// Whether the document is `{"taskDefinition": {...}}` rather than a definition. The
/// real parse reads the text again so that errors keep their line and column.
fn is_described(text: &str) -> bool {
    let Ok(serde_json::Value::Object(top)) = serde_json::from_str::<serde_json::Value>(text) else {
        return false;
    };
    top.get("taskDefinition").is_some_and(|v| v.is_object())
        && !top.contains_key("containerDefinitions")
}

#[cfg(test)]
mod tests;
