//! The ECS service document, as DescribeServices returns it and as the store keeps it.

use serde::{Deserialize, Serialize};

use crate::ecs::{ACCOUNT, CLUSTER, REGION};

/// How many events a service keeps, newest first, as ECS shows them.
pub const MAX_EVENTS: usize = 100;

pub fn service_arn(name: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{CLUSTER}/{name}")
}

/// A service named by its full ARN or its name.
pub fn service_name_of(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub service_arn: String,
    pub service_name: String,
    pub cluster_arn: String,
    /// ACTIVE, DRAINING (deleted, tasks stopping) or INACTIVE (deleted).
    pub status: String,
    pub task_definition: String,
    pub desired_count: u32,
    pub running_count: u32,
    pub pending_count: u32,
    pub launch_type: String,
    pub scheduling_strategy: String,
    pub deployment_configuration: DeploymentConfiguration,
    /// The PRIMARY deployment first, then the ACTIVE ones, newest first.
    pub deployments: Vec<Deployment>,
    /// Newest first, at most [`MAX_EVENTS`].
    pub events: Vec<ServiceEvent>,
    pub created_at: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfiguration {
    #[serde(default = "default_max")]
    pub maximum_percent: u32,
    #[serde(default = "default_min")]
    pub minimum_healthy_percent: u32,
    #[serde(default)]
    pub deployment_circuit_breaker: CircuitBreaker,
}

fn default_max() -> u32 {
    200
}

fn default_min() -> u32 {
    100
}

impl Default for DeploymentConfiguration {
    fn default() -> Self {
        DeploymentConfiguration {
            maximum_percent: default_max(),
            minimum_healthy_percent: default_min(),
            deployment_circuit_breaker: CircuitBreaker::default(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CircuitBreaker {
    #[serde(default)]
    pub enable: bool,
    #[serde(default)]
    pub rollback: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// `ecs-svc/` and 19 digits; the startedBy of the deployment's tasks.
    pub id: String,
    /// PRIMARY, ACTIVE or INACTIVE.
    pub status: String,
    pub task_definition: String,
    pub desired_count: u32,
    pub pending_count: u32,
    pub running_count: u32,
    pub failed_tasks: u32,
    pub created_at: f64,
    pub updated_at: f64,
    pub launch_type: String,
    /// IN_PROGRESS, COMPLETED or FAILED.
    pub rollout_state: String,
    pub rollout_state_reason: String,
    /// Not part of ECS's shape: failures before this time (epoch seconds) do not count
    /// against this deployment, so a rollback starts with a clean slate.
    #[serde(rename = "berthCountsFailuresSince", default)]
    pub failures_since: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEvent {
    pub id: String,
    pub created_at: f64,
    pub message: String,
}

impl Service {
    pub fn primary(&self) -> Option<&Deployment> {
        self.deployments.first()
    }

    /// Adds events (oldest of them first) at `now`, keeping the newest [`MAX_EVENTS`]. A
    /// message that repeats the newest event is left out, so that a condition that lasts
    /// (no room for a task, say) is told once.
    pub fn add_events(
        &mut self,
        messages: &[String],
        now: f64,
        mut new_id: impl FnMut() -> String,
    ) {
        for m in messages {
            if self.events.first().is_some_and(|e| e.message == *m) {
                continue;
            }
            self.events.insert(
                0,
                ServiceEvent {
                    id: new_id(),
                    created_at: now,
                    message: m.clone(),
                },
            );
        }
        self.events.truncate(MAX_EVENTS);
    }
}

/// Reads `deploymentConfiguration` of a request: fields left out keep ECS's defaults
/// (or `base`'s values, for UpdateService); ranges are checked.
pub fn parse_deployment_configuration(
    value: &serde_json::Value,
    base: &DeploymentConfiguration,
) -> Result<DeploymentConfiguration, String> {
    let field = "deploymentConfiguration";
    let Some(obj) = value.as_object() else {
        return Err(format!("{field}: must be an object"));
    };
    let mut out = base.clone();
    let percent = |key: &str| -> Result<Option<u32>, String> {
        match obj.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| format!("{field}.{key}: must be a whole number of percent")),
        }
    };
    if let Some(n) = percent("minimumHealthyPercent")? {
        out.minimum_healthy_percent = n;
    }
    if let Some(n) = percent("maximumPercent")? {
        out.maximum_percent = n;
    }
    if let Some(cb) = obj.get("deploymentCircuitBreaker") {
        let flag = |key: &str| -> Result<bool, String> {
            match cb.get(key) {
                Some(serde_json::Value::Bool(b)) => Ok(*b),
                _ => Err(format!(
                    "{field}.deploymentCircuitBreaker.{key}: required, true or false"
                )),
            }
        };
        out.deployment_circuit_breaker = CircuitBreaker {
            enable: flag("enable")?,
            rollback: flag("rollback")?,
        };
    }
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "minimumHealthyPercent" | "maximumPercent" | "deploymentCircuitBreaker" | "alarms"
        ) {
            return Err(format!("{field}.{key}: unknown field"));
        }
    }
    if out.minimum_healthy_percent > 100 {
        return Err(format!(
            "{field}.minimumHealthyPercent: must be between 0 and 100, not {}",
            out.minimum_healthy_percent
        ));
    }
    if out.maximum_percent < 100 {
        return Err(format!(
            "{field}.maximumPercent: must be at least 100, not {}",
            out.maximum_percent
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_configuration_defaults_and_ranges() {
        let base = DeploymentConfiguration::default();
        let c = parse_deployment_configuration(&json!({}), &base).unwrap();
        assert_eq!((c.minimum_healthy_percent, c.maximum_percent), (100, 200));
        assert!(!c.deployment_circuit_breaker.enable);
        let c = parse_deployment_configuration(
            &json!({"minimumHealthyPercent": 50, "deploymentCircuitBreaker": {"enable": true, "rollback": true}}),
            &base,
        )
        .unwrap();
        assert_eq!((c.minimum_healthy_percent, c.maximum_percent), (50, 200));
        assert!(c.deployment_circuit_breaker.rollback);
        for (bad, says) in [
            (
                json!({"minimumHealthyPercent": 101}),
                "minimumHealthyPercent",
            ),
            (json!({"maximumPercent": 99}), "maximumPercent"),
            (json!({"maximumPercent": "x"}), "maximumPercent"),
            (
                json!({"deploymentCircuitBreaker": {"enable": true}}),
                "rollback",
            ),
            (json!({"minimumHealthy": 1}), "minimumHealthy"),
            (json!([]), "object"),
        ] {
            let e = parse_deployment_configuration(&bad, &base).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn service_names_and_arns() {
        assert_eq!(
            service_arn("web"),
            "arn:aws:ecs:local:000000000000:service/default/web"
        );
        assert_eq!(service_name_of(&service_arn("web")), "web");
        assert_eq!(service_name_of("web"), "web");
    }

    #[test]
    fn events_keep_the_newest_hundred() {
        let mut s = Service::default();
        let mut n = 0;
        let mut msgs: Vec<String> = (0..150).map(|i| format!("m{i}")).collect();
        msgs.insert(1, "m0".into());
        s.add_events(&msgs, 5.0, || {
            n += 1;
            n.to_string()
        });
        assert_eq!(s.events.len(), MAX_EVENTS);
        assert_eq!(s.events[0].message, "m149");
        assert_eq!(s.events[99].message, "m50");
        s.add_events(&["m149".to_string()], 6.0, || "x".into());
        assert_eq!(s.events[0].created_at, 5.0);
    }
}
