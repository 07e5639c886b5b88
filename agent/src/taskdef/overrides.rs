//! run-task's `overrides`: per-container command, environment and sizes, and task-level
//! CPU and memory, applied to a copy of the definition.

use serde::{Deserialize, Serialize};

use super::error::{FieldError, ValidationErrors};
use super::model::{EnvironmentFile, KeyValuePair, TaskDefinition, string_or_number};
use super::validate::validate;

/// `overrides` of RunTask.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOverride {
    /// One entry per container to change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_overrides: Vec<ContainerOverride>,
    /// Replaces the task's cpu ("512", "1 vCPU").
    #[serde(
        default,
        deserialize_with = "string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub cpu: Option<String>,
    /// Replaces the task's memory ("2048", "2GB").
    #[serde(
        default,
        deserialize_with = "string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub memory: Option<String>,
    /// Replaces the task role; kept, unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    /// Replaces the execution role; kept, unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
}

/// `overrides.containerOverrides[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerOverride {
    /// The container to change; required.
    #[serde(default)]
    pub name: String,
    /// Replaces `command`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Added to `environment`, replacing variables of the same name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<KeyValuePair>,
    /// Read after the definition's environment files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment_files: Vec<EnvironmentFile>,
    /// Replaces `cpu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i64>,
    /// Replaces `memory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    /// Replaces `memoryReservation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<i64>,
}

/// The definition with the overrides applied, validated again. An override naming a
/// container the definition does not have is an error naming the override.
pub fn apply_overrides(
    def: &TaskDefinition,
    overrides: &TaskOverride,
) -> Result<TaskDefinition, ValidationErrors> {
    let mut out = def.clone();
    let mut errors = Vec::new();
    if let Some(cpu) = &overrides.cpu {
        out.cpu = Some(cpu.clone());
    }
    if let Some(memory) = &overrides.memory {
        out.memory = Some(memory.clone());
    }
    if let Some(role) = &overrides.task_role_arn {
        out.task_role_arn = Some(role.clone());
    }
    if let Some(role) = &overrides.execution_role_arn {
        out.execution_role_arn = Some(role.clone());
    }
    for (j, o) in overrides.container_overrides.iter().enumerate() {
        let path = format!("overrides.containerOverrides[{j}].name");
        if o.name.is_empty() {
            errors.push(FieldError::new(path, "is required"));
            continue;
        }
        let Some(c) = out
            .container_definitions
            .iter_mut()
            .find(|c| c.name == o.name)
        else {
            errors.push(FieldError::new(
                path,
                format!("{:?} is not a container of the task definition", o.name),
            ));
            continue;
        };
        if let Some(command) = &o.command {
            c.command = command.clone();
        }
        for kv in &o.environment {
            match c.environment.iter_mut().find(|e| e.name == kv.name) {
                Some(existing) => existing.value = kv.value.clone(),
                None => c.environment.push(kv.clone()),
            }
        }
        c.environment_files
            .extend(o.environment_files.iter().cloned());
        if o.cpu.is_some() {
            c.cpu = o.cpu;
        }
        if o.memory.is_some() {
            c.memory = o.memory;
        }
        if o.memory_reservation.is_some() {
            c.memory_reservation = o.memory_reservation;
        }
    }
    if let Err(ValidationErrors(invalid)) = validate(&out) {
        errors.extend(invalid);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ValidationErrors(errors))
    }
}
