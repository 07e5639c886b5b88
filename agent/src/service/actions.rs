//! The ECS service actions: CreateService, UpdateService, DeleteService, DescribeServices,
//! ListServices, with the ECS API's request and response shapes and error names.

use serde_json::{Value, json};

use super::model::{self, Deployment, DeploymentConfiguration, Service, service_arn};
use crate::Agent;
use crate::api::ApiError;
use crate::ecs;

fn not_found() -> ApiError {
    ApiError {
        kind: "ServiceNotFoundException".into(),
        message: "Service not found.".into(),
    }
}

fn not_active() -> ApiError {
    ApiError {
        kind: "ServiceNotActiveException".into(),
        message: "Service was not ACTIVE.".into(),
    }
}

/// `serviceName`: up to 255 letters, digits, hyphens and underscores, as ECS allows.
fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "serviceName: {name:?}: up to 255 letters, numbers, hyphens and underscores"
        )))
    }
}

fn count_field(body: &Value, field: &str) -> Result<Option<u32>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::invalid(format!("{field}: must be a whole number, 0 or more"))
            }),
    }
}

/// A deployment id as ECS makes them: `ecs-svc/` and 19 digits.
fn new_deployment_id() -> String {
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_err()
    {
        b = ecs::now().to_bits().to_le_bytes();
    }
    let n = u64::from_le_bytes(b) % 9_000_000_000_000_000_000 + 1_000_000_000_000_000_000;
    format!("ecs-svc/{n}")
}

/// A random event id in the form ECS uses (a UUID).
pub(crate) fn new_event_id() -> String {
    let mut b = [0u8; 16];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_err()
    {
        b[..8].copy_from_slice(&ecs::now().to_bits().to_le_bytes());
    }
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn new_deployment(task_definition: &str, desired: u32, launch_type: &str, now: f64) -> Deployment {
    let id = new_deployment_id();
    Deployment {
        rollout_state_reason: format!("ECS deployment {id} in progress."),
        id,
        status: "PRIMARY".into(),
        task_definition: task_definition.into(),
        desired_count: desired,
        created_at: now,
        updated_at: now,
        launch_type: launch_type.into(),
        rollout_state: "IN_PROGRESS".into(),
        failures_since: now,
        ..Default::default()
    }
}

impl Agent {
    fn load_service(&self, name: &str) -> Result<Service, ApiError> {
        self.store()
            .service::<Service>(model::service_name_of(name))
            .map_err(|e| ApiError::server(e.to_string()))?
            .ok_or_else(not_found)
    }

    fn save_service(&self, s: &Service) -> Result<(), ApiError> {
        self.store()
            .put_service(&s.service_name, &s.status, s.created_at, s)
            .map_err(|e| ApiError::server(e.to_string()))?;
        self.services().notify();
        Ok(())
    }

    /// The ARN of the revision a request names (a bare family is its latest ACTIVE one).
    fn service_definition(&self, reference: &str) -> Result<String, ApiError> {
        let stored = self.resolve_definition(reference)?;
        if stored.status != "ACTIVE" {
            return Err(ApiError::client(format!(
                "taskDefinition: {}:{} is INACTIVE and cannot run new tasks",
                stored.family, stored.revision
            )));
        }
        Ok(ecs::task_definition_arn(&stored.family, stored.revision))
    }

    pub fn create_service(&self, body: Value) -> Result<Value, ApiError> {
        let name = body["serviceName"]
            .as_str()
            .ok_or_else(|| ApiError::invalid("serviceName: required"))?
            .to_string();
        check_name(&name)?;
        let reference = body["taskDefinition"]
            .as_str()
            .ok_or_else(|| ApiError::invalid("taskDefinition: required"))?;
        let desired = count_field(&body, "desiredCount")?
            .ok_or_else(|| ApiError::invalid("desiredCount: required"))?;
        match body["schedulingStrategy"].as_str() {
            None | Some("REPLICA") => {}
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "schedulingStrategy: {other:?}: only REPLICA is supported"
                )));
            }
        }
        let launch_type = body["launchType"].as_str().unwrap_or("EC2").to_string();
        let config = match body.get("deploymentConfiguration") {
            None | Some(Value::Null) => DeploymentConfiguration::default(),
            Some(v) => {
                model::parse_deployment_configuration(v, &DeploymentConfiguration::default())
                    .map_err(ApiError::invalid)?
            }
        };
        let definition = self.service_definition(reference)?;

        let _edit = self.services().lock();
        let existing: Option<Service> = self
            .store()
            .service(&name)
            .map_err(|e| ApiError::server(e.to_string()))?;
        if existing.is_some_and(|s| s.status != "INACTIVE") {
            return Err(ApiError::invalid("Creation of service was not idempotent."));
        }
        let now = ecs::now();
        let service = Service {
            service_arn: service_arn(&name),
            service_name: name,
            cluster_arn: ecs::cluster_arn(),
            status: "ACTIVE".into(),
            task_definition: definition.clone(),
            desired_count: desired,
            running_count: 0,
            pending_count: 0,
            launch_type: launch_type.clone(),
            scheduling_strategy: "REPLICA".into(),
            deployment_configuration: config,
            deployments: vec![new_deployment(&definition, desired, &launch_type, now)],
            events: Vec::new(),
            created_at: now,
        };
        self.save_service(&service)?;
        Ok(json!({"service": service}))
    }

    pub fn update_service(&self, body: Value) -> Result<Value, ApiError> {
        let name = body["service"]
            .as_str()
            .ok_or_else(|| ApiError::invalid("service: required"))?
            .to_string();
        let desired = count_field(&body, "desiredCount")?;
        let definition = body["taskDefinition"]
            .as_str()
            .map(|r| self.service_definition(r))
            .transpose()?;
        let force = body["forceNewDeployment"].as_bool().unwrap_or(false);

        let _edit = self.services().lock();
        let mut s = self.load_service(&name)?;
        if s.status != "ACTIVE" {
            return Err(not_active());
        }
        if let Some(v) = body.get("deploymentConfiguration").filter(|v| !v.is_null()) {
            s.deployment_configuration =
                model::parse_deployment_configuration(v, &s.deployment_configuration)
                    .map_err(ApiError::invalid)?;
        }
        let now = ecs::now();
        if let Some(n) = desired {
            s.desired_count = n;
            if let Some(p) = s.deployments.first_mut() {
                p.desired_count = n;
                p.updated_at = now;
            }
        }
        let changed = definition.as_ref().is_some_and(|d| *d != s.task_definition);
        if changed || force {
            let definition = definition.unwrap_or_else(|| s.task_definition.clone());
            for d in &mut s.deployments {
                d.status = "ACTIVE".into();
            }
            let d = new_deployment(&definition, s.desired_count, &s.launch_type, now);
            s.deployments.insert(0, d);
            s.task_definition = definition;
        }
        self.save_service(&s)?;
        Ok(json!({"service": s}))
    }

    pub fn delete_service(&self, body: Value) -> Result<Value, ApiError> {
        let name = body["service"]
            .as_str()
            .ok_or_else(|| ApiError::invalid("service: required"))?
            .to_string();
        let force = body["force"].as_bool().unwrap_or(false);
        let _edit = self.services().lock();
        let mut s = self.load_service(&name)?;
        if s.status != "ACTIVE" {
            return Err(not_active());
        }
        if s.desired_count > 0 && !force {
            return Err(ApiError::invalid(
                "The service cannot be stopped while it is scaled above 0.",
            ));
        }
        s.desired_count = 0;
        s.status = "DRAINING".into();
        let now = ecs::now();
        for d in &mut s.deployments {
            d.desired_count = 0;
            d.updated_at = now;
        }
        self.save_service(&s)?;
        Ok(json!({"service": s}))
    }

    pub fn describe_services(&self, body: Value) -> Result<Value, ApiError> {
        let names = crate::api::name_list(&body, "services", "service")?;
        let mut services = Vec::new();
        let mut failures = Vec::new();
        for name in names {
            let found: Option<Service> = self
                .store()
                .service(model::service_name_of(&name))
                .map_err(|e| ApiError::server(e.to_string()))?;
            match found {
                Some(s) => services.push(s),
                None => failures.push(json!({
                    "arn": service_arn(model::service_name_of(&name)),
                    "reason": "MISSING",
                })),
            }
        }
        Ok(json!({"services": services, "failures": failures}))
    }

    pub(crate) fn active_service_count(&self) -> usize {
        self.store()
            .services::<Service>(&["ACTIVE"])
            .map_or(0, |s| s.len())
    }

    pub fn list_services(&self, _body: Value) -> Result<Value, ApiError> {
        let services: Vec<Service> = self
            .store()
            .services(&["ACTIVE", "DRAINING"])
            .map_err(|e| ApiError::server(e.to_string()))?;
        let arns: Vec<String> = services.into_iter().map(|s| s.service_arn).collect();
        Ok(json!({"serviceArns": arns}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_ecs_ids() {
        let d = new_deployment_id();
        let digits = d.strip_prefix("ecs-svc/").unwrap();
        assert_eq!(digits.len(), 19, "{d}");
        assert!(digits.chars().all(|c| c.is_ascii_digit()));
        let e = new_event_id();
        assert_eq!(e.len(), 36);
        assert_eq!(e.matches('-').count(), 4);
    }

    #[test]
    fn service_names_are_checked() {
        assert!(check_name("web_1-a").is_ok());
        for bad in ["", "a b", "a/b", &"x".repeat(256)] {
            assert!(check_name(bad).unwrap_err().message.contains("serviceName"));
        }
    }
}
