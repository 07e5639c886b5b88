//! ECS names and shapes: ARNs of this host's one cluster, and the task document that
//! DescribeTasks returns (stored as is, so describe is a read).

use serde::{Deserialize, Serialize};

use crate::store::TaskRow;

pub const REGION: &str = "local";
pub const ACCOUNT: &str = "000000000000";
pub const CLUSTER: &str = "default";

pub fn cluster_arn() -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}")
}

pub fn task_arn(id: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task/{CLUSTER}/{id}")
}

pub fn task_definition_arn(family: &str, revision: u32) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:{revision}")
}

pub fn container_arn(task_id: &str, name: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:container/{CLUSTER}/{task_id}/{name}")
}

pub fn container_instance_arn(host_id: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:container-instance/{CLUSTER}/{host_id}")
}

/// A task named by its full ARN or its id.
pub fn task_id_of(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// `family`, `family:3`, or a task definition ARN, as RunTask accepts them.
pub fn parse_task_definition_ref(s: &str) -> Result<(String, Option<u32>), String> {
    let s = s
        .rsplit_once(":task-definition/")
        .map(|(_, r)| r)
        .unwrap_or(s);
    match s.rsplit_once(':') {
        Some((family, rev)) => {
            let rev: u32 = rev
                .parse()
                .map_err(|_| format!("taskDefinition: {s:?}: the revision must be a number"))?;
            Ok((family.to_string(), Some(rev)))
        }
        None if !s.is_empty() => Ok((s.to_string(), None)),
        None => Err("taskDefinition: required".into()),
    }
}

/// A task as DescribeTasks shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub task_arn: String,
    pub cluster_arn: String,
    pub task_definition_arn: String,
    pub container_instance_arn: String,
    pub overrides: serde_json::Value,
    pub last_status: String,
    pub desired_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    pub containers: Vec<Container>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    pub version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
    pub created_at: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_started_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_stopped_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopping_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_stopped_at: Option<f64>,
    pub group: String,
    pub launch_type: String,
    pub health_status: String,
    pub attachments: Vec<serde_json::Value>,
    pub tags: Vec<serde_json::Value>,
    /// Not part of ECS's shape: where berth keeps the task's files.
    #[serde(rename = "berth", default)]
    pub local: Local,
}

/// berth's own bookkeeping, kept next to the ECS fields.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Local {
    pub family: String,
    pub revision: u32,
    pub task_dir: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// CPU units and MiB this task holds against the host's capacity.
    pub reserved_cpu: u64,
    pub reserved_memory: u64,
    /// Image digests the task uses (image rm refuses them).
    #[serde(default)]
    pub images: Vec<String>,
    /// The essential container whose exit stopped the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub essential_exited: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub container_arn: String,
    pub task_arn: String,
    pub name: String,
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_id: Option<String>,
    pub last_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub network_bindings: Vec<serde_json::Value>,
    pub network_interfaces: Vec<serde_json::Value>,
    pub health_status: String,
    /// Restarts under the container's restartPolicy, as the task metadata endpoint
    /// reports them (DescribeTasks has no such field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<String>,
}

impl Task {
    pub fn id(&self) -> &str {
        task_id_of(&self.task_arn)
    }
}

impl TaskRow for Task {
    fn id(&self) -> &str {
        task_id_of(&self.task_arn)
    }
    fn family(&self) -> &str {
        &self.local.family
    }
    fn revision(&self) -> u32 {
        self.local.revision
    }
    fn started_by(&self) -> Option<&str> {
        self.started_by.as_deref()
    }
    fn service(&self) -> Option<&str> {
        self.local.service.as_deref()
    }
    fn desired_status(&self) -> &str {
        &self.desired_status
    }
    fn last_status(&self) -> &str {
        &self.last_status
    }
    fn created_at(&self) -> f64 {
        self.created_at
    }
    fn stopped_at(&self) -> Option<f64> {
        self.stopped_at
    }
}

/// Epoch seconds, the AWS JSON protocol's timestamp.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// An RFC 3339 time (as the supervisor writes them) in epoch seconds.
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    // YYYY-MM-DDTHH:MM:SS[.fraction]Z
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let time = time.strip_suffix('Z')?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>());
    let (hh, mm, ss) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    let frac: f64 = format!("0.{frac}").parse().ok()?;
    let days = days_from_civil(y, m, day);
    Some((days * 86_400 + hh * 3600 + mm * 60 + ss) as f64 + frac)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_definition_references() {
        assert_eq!(
            parse_task_definition_ref("web").unwrap(),
            ("web".into(), None)
        );
        assert_eq!(
            parse_task_definition_ref("web:3").unwrap(),
            ("web".into(), Some(3))
        );
        assert_eq!(
            parse_task_definition_ref("arn:aws:ecs:us-east-1:1:task-definition/web:7").unwrap(),
            ("web".into(), Some(7))
        );
        assert!(
            parse_task_definition_ref("web:x")
                .unwrap_err()
                .contains("revision")
        );
    }

    #[test]
    fn tasks_are_named_by_arn_or_id() {
        assert_eq!(task_id_of(&task_arn("abc")), "abc");
        assert_eq!(task_id_of("abc"), "abc");
    }

    #[test]
    fn rfc3339_to_epoch() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.000000000Z"), Some(0.0));
        assert_eq!(
            parse_rfc3339("2026-11-18T11:06:40.500000000Z"),
            Some(1_795_000_000.5)
        );
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
