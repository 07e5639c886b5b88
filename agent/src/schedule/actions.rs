//! The agent's schedule actions (EventBridge Scheduler's CreateSchedule, GetSchedule,
//! ListSchedules, UpdateSchedule, DeleteSchedule) and the firing loop that runs each due
//! schedule's task through RunTask.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{
    DISABLED, Decision, ENABLED, EcsParameters, GROUP, LastRun, Schedule, Target, due, epoch,
    next_fire, parse, parse_timezone, schedule_arn, started_by, utc,
};
use crate::Agent;
use crate::api::ApiError;
use crate::ecs;
use crate::store::StoredSchedule;

/// How often the firing loop looks at the schedules at most; schedules fire on minutes.
const TICK: Duration = Duration::from_secs(1);

fn validation(message: impl Into<String>) -> ApiError {
    ApiError {
        kind: "ValidationException".into(),
        message: message.into(),
    }
}

fn not_found(name: &str) -> ApiError {
    ApiError {
        kind: "ResourceNotFoundException".into(),
        message: format!("Name: schedule {name:?} does not exist"),
    }
}

fn server(e: impl std::fmt::Display) -> ApiError {
    ApiError::server(e.to_string())
}

/// A schedule name as EventBridge allows them: 1 to 64 of `0-9 a-z A-Z - _ .`.
fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(validation(format!(
            "Name: {name:?} must be 1 to 64 letters, digits, '-', '_' or '.'"
        )))
    }
}

fn name_field(body: &Value) -> Result<String, ApiError> {
    let name = body["Name"]
        .as_str()
        .ok_or_else(|| validation("Name: required"))?;
    check_name(name)?;
    if let Some(g) = body["GroupName"].as_str() {
        if g != GROUP {
            return Err(validation(format!(
                "GroupName: {g:?}: this host has the one group {GROUP:?}"
            )));
        }
    }
    Ok(name.to_string())
}

/// The optional string field `key`, refusing anything but a string.
fn opt_str<'a>(body: &'a Value, key: &str) -> Result<Option<&'a str>, ApiError> {
    match &body[key] {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        other => Err(validation(format!("{key}: must be a string, not {other}"))),
    }
}

impl Agent {
    pub fn create_schedule(&self, body: Value) -> Result<Value, ApiError> {
        let name = name_field(&body)?;
        let expression = opt_str(&body, "ScheduleExpression")?
            .ok_or_else(|| validation("ScheduleExpression: required"))?;
        let ecs_params = &body["Target"]["EcsParameters"];
        let definition = opt_str(ecs_params, "TaskDefinitionArn")
            .map_err(|e| validation(format!("Target.EcsParameters.{}", e.message)))?
            .ok_or_else(|| validation("Target.EcsParameters.TaskDefinitionArn: required"))?;
        let now = ecs::now();
        let schedule = Schedule {
            name: name.clone(),
            group_name: GROUP.into(),
            schedule_expression: expression.to_string(),
            schedule_expression_timezone: opt_str(&body, "ScheduleExpressionTimezone")?
                .unwrap_or("UTC")
                .to_string(),
            state: opt_str(&body, "State")?.unwrap_or(ENABLED).to_string(),
            target: Target {
                arn: ecs::cluster_arn(),
                ecs_parameters: EcsParameters {
                    task_definition_arn: definition.to_string(),
                    task_count: task_count(ecs_params, 1)?,
                },
            },
            creation_date: now,
            last_modification_date: now,
            start_date: now,
            last_run: None,
        };
        self.check_schedule(&schedule)?;
        let row = StoredSchedule {
            name: name.clone(),
            enabled: schedule.state == ENABLED,
            created_at: now,
            last_fired_at: None,
            body: serde_json::to_value(&schedule).map_err(server)?,
        };
        if !self.store().insert_schedule(&row).map_err(server)? {
            return Err(ApiError {
                kind: "ConflictException".into(),
                message: format!("Name: schedule {name:?} already exists"),
            });
        }
        self.schedule_response(&row)
    }

    pub fn get_schedule(&self, body: Value) -> Result<Value, ApiError> {
        let name = name_field(&body)?;
        let row = self
            .store()
            .schedule(&name)
            .map_err(server)?
            .ok_or_else(|| not_found(&name))?;
        self.schedule_response(&row)
    }

    pub fn list_schedules(&self, body: Value) -> Result<Value, ApiError> {
        let prefix = opt_str(&body, "NamePrefix")?.unwrap_or("");
        let state = opt_str(&body, "State")?;
        if let Some(s) = state {
            check_state(s)?;
        }
        let rows = self.store().schedules().map_err(server)?;
        let mut list = Vec::new();
        for row in rows.iter().filter(|r| r.name.starts_with(prefix)) {
            let doc = self.schedule_response(row)?;
            if state.is_none_or(|s| doc["State"] == s) {
                list.push(doc);
            }
        }
        Ok(json!({"Schedules": list}))
    }

    /// Changes what the request names and keeps the rest (EventBridge replaces the whole
    /// schedule; on this host's CLI a flag changes one thing).
    pub fn update_schedule(&self, body: Value) -> Result<Value, ApiError> {
        let name = name_field(&body)?;
        let row = self
            .store()
            .schedule(&name)
            .map_err(server)?
            .ok_or_else(|| not_found(&name))?;
        let old: Schedule = serde_json::from_value(row.body.clone()).map_err(server)?;
        let mut s = old.clone();
        if let Some(e) = opt_str(&body, "ScheduleExpression")? {
            s.schedule_expression = e.to_string();
        }
        if let Some(tz) = opt_str(&body, "ScheduleExpressionTimezone")? {
            s.schedule_expression_timezone = tz.to_string();
        }
        if let Some(state) = opt_str(&body, "State")? {
            s.state = state.to_string();
        }
        let ecs_params = &body["Target"]["EcsParameters"];
        if let Some(d) = opt_str(ecs_params, "TaskDefinitionArn")
            .map_err(|e| validation(format!("Target.EcsParameters.{}", e.message)))?
        {
            s.target.ecs_parameters.task_definition_arn = d.to_string();
        }
        s.target.ecs_parameters.task_count =
            task_count(ecs_params, s.target.ecs_parameters.task_count)?;
        let now = ecs::now();
        let when_changed = s.schedule_expression != old.schedule_expression
            || s.schedule_expression_timezone != old.schedule_expression_timezone
            || (s.state == ENABLED && old.state != ENABLED);
        if when_changed {
            // A new timing starts now: nothing it would have fired before counts as missed.
            s.start_date = now;
        }
        s.last_modification_date = now;
        self.check_schedule(&s)?;
        let body = serde_json::to_value(&s).map_err(server)?;
        let enabled = s.state == ENABLED;
        if !self
            .store()
            .update_schedule(&name, enabled, &body)
            .map_err(server)?
        {
            return Err(not_found(&name));
        }
        self.schedule_response(&StoredSchedule {
            enabled,
            body,
            ..row
        })
    }

    pub fn delete_schedule(&self, body: Value) -> Result<Value, ApiError> {
        let name = name_field(&body)?;
        if !self.store().delete_schedule(&name).map_err(server)? {
            return Err(not_found(&name));
        }
        Ok(json!({}))
    }

    /// Everything a schedule needs before it is stored: a known state, an expression and
    /// time zone that parse, a task definition that exists, and, when enabled, a time
    /// at which it will fire.
    fn check_schedule(&self, s: &Schedule) -> Result<(), ApiError> {
        check_state(&s.state)?;
        let expr = parse(&s.schedule_expression).map_err(|e| validation(e.to_string()))?;
        let tz = parse_timezone(&s.schedule_expression_timezone)
            .map_err(|e| validation(e.to_string()))?;
        let definition = self
            .resolve_definition(&s.target.ecs_parameters.task_definition_arn)
            .map_err(|e| {
                validation(format!(
                    "Target.EcsParameters.TaskDefinitionArn: {}",
                    e.message
                        .strip_prefix("taskDefinition: ")
                        .unwrap_or(&e.message)
                ))
            })?;
        if definition.status != "ACTIVE" {
            return Err(validation(format!(
                "Target.EcsParameters.TaskDefinitionArn: {}:{} is INACTIVE and cannot run new tasks",
                definition.family, definition.revision
            )));
        }
        if s.state == ENABLED && next_fire(&expr, utc(s.start_date), tz).is_none() {
            return Err(validation(format!(
                "ScheduleExpression {:?}: never fires after now in {}",
                s.schedule_expression, s.schedule_expression_timezone
            )));
        }
        Ok(())
    }

    /// The stored schedule with its ARN, its next firing and its last one.
    fn schedule_response(&self, row: &StoredSchedule) -> Result<Value, ApiError> {
        let s: Schedule = serde_json::from_value(row.body.clone()).map_err(server)?;
        let next = due(&s, row.last_fired_at, utc(ecs::now()))
            .ok()
            .and_then(|d| d.fire.or(d.next));
        let mut doc = row.body.clone();
        if let Some(o) = doc.as_object_mut() {
            o.insert("Arn".into(), json!(schedule_arn(&s.name)));
            o.insert("ScheduleArn".into(), json!(schedule_arn(&s.name)));
            o.insert("NextInvocationDate".into(), json!(next.map(epoch)));
            o.insert("LastInvocationDate".into(), json!(row.last_fired_at));
        }
        Ok(doc)
    }

    /// Starts the firing loop on its own thread: each pass fires what is due at the
    /// wall clock's now.
    pub fn fire_schedules(&self) {
        let agent = self.clone();
        std::thread::spawn(move || {
            loop {
                agent.fire_due_schedules(Utc::now());
                std::thread::sleep(TICK);
            }
        });
    }

    /// One pass of the scheduler at `now`: every schedule that is due fires once, its
    /// firing recorded before its task starts. Returns the names that fired.
    pub fn fire_due_schedules(&self, now: DateTime<Utc>) -> Vec<String> {
        let names: Vec<String> = match self.store().schedules() {
            Ok(rows) => rows
                .into_iter()
                .filter(|r| r.enabled)
                .map(|r| r.name)
                .collect(),
            Err(e) => {
                tracing::warn!("read the schedules: {e}");
                return Vec::new();
            }
        };
        names
            .into_iter()
            .filter(|name| self.fire_if_due(name, now))
            .collect()
    }

    fn fire_if_due(&self, name: &str, now: DateTime<Utc>) -> bool {
        // Decide and record under one lock, so that an update or a second pass in
        // between cannot make it fire twice.
        let (schedule, slot) = {
            let mut store = self.store();
            let Ok(Some(row)) = store.schedule(name) else {
                return false;
            };
            let Ok(mut schedule) = serde_json::from_value::<Schedule>(row.body.clone()) else {
                tracing::warn!(schedule = name, "stored schedule is unreadable");
                return false;
            };
            let decision = match due(&schedule, row.last_fired_at, now) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(schedule = name, "{e}");
                    return false;
                }
            };
            let Decision {
                fire: Some(slot),
                next,
            } = decision
            else {
                return false;
            };
            if next.is_none() {
                // A one-time (or finished) schedule is done once it has fired.
                schedule.state = DISABLED.into();
            }
            schedule.last_run = Some(LastRun {
                date: epoch(slot),
                task_arns: Vec::new(),
                failure: None,
            });
            let Ok(body) = serde_json::to_value(&schedule) else {
                return false;
            };
            match store.record_schedule_fired(name, epoch(slot), schedule.state == ENABLED, &body) {
                Ok(true) => {}
                Ok(false) => return false,
                Err(e) => {
                    tracing::warn!(schedule = name, "record the firing: {e}");
                    return false;
                }
            }
            (schedule, slot)
        };
        let params = &schedule.target.ecs_parameters;
        let run = self.run_task(json!({
            "taskDefinition": params.task_definition_arn,
            "count": params.task_count,
            "startedBy": started_by(name),
        }));
        let last_run = match run {
            Ok(resp) => LastRun {
                date: epoch(slot),
                task_arns: resp["tasks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t["taskArn"].as_str().map(str::to_string))
                    .collect(),
                failure: resp["failures"]
                    .as_array()
                    .filter(|f| !f.is_empty())
                    .map(|f| {
                        f.iter()
                            .filter_map(|x| x["reason"].as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }),
            },
            Err(e) => LastRun {
                date: epoch(slot),
                task_arns: Vec::new(),
                failure: Some(e.message),
            },
        };
        match &last_run.failure {
            Some(f) => tracing::warn!(schedule = name, "the firing ran no task: {f}"),
            None => tracing::info!(schedule = name, tasks = ?last_run.task_arns, "fired"),
        }
        self.record_last_run(name, last_run);
        true
    }

    /// Keeps what the firing started in the schedule, unless it changed meanwhile.
    fn record_last_run(&self, name: &str, last_run: LastRun) {
        let mut store = self.store();
        let Ok(Some(row)) = store.schedule(name) else {
            return;
        };
        let Ok(mut schedule) = serde_json::from_value::<Schedule>(row.body.clone()) else {
            return;
        };
        if schedule.last_run.as_ref().map(|l| l.date) != Some(last_run.date) {
            return;
        }
        schedule.last_run = Some(last_run);
        if let Ok(body) = serde_json::to_value(&schedule) {
            let _ = store.update_schedule(name, row.enabled, &body);
        }
    }
}

fn check_state(state: &str) -> Result<(), ApiError> {
    if state == ENABLED || state == DISABLED {
        Ok(())
    } else {
        Err(validation(format!(
            "State: {state:?} must be ENABLED or DISABLED"
        )))
    }
}

/// TaskCount, 1 to 10 as RunTask allows, or `default` when absent.
fn task_count(ecs_params: &Value, default: u64) -> Result<u64, ApiError> {
    match &ecs_params["TaskCount"] {
        Value::Null => Ok(default),
        v => v.as_u64().filter(|n| (1..=10).contains(n)).ok_or_else(|| {
            validation(format!(
                "Target.EcsParameters.TaskCount: {v} must be between 1 and 10"
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Actions;
    use crate::images::{Images, PullBehavior, ResolvedImage};
    use crate::store::TaskFilter;
    use crate::{Config, ecs::Task};

    /// Knows no image: every task the schedules start fails before a supervisor exists,
    /// which is all these tests need of a task.
    struct NoImages;

    impl Images for NoImages {
        fn resolve(&self, reference: &str, _: PullBehavior) -> Result<ResolvedImage, String> {
            Err(format!("{reference}: no such image"))
        }
        fn lease(&self, _: &str, _: &[String]) -> Result<(), String> {
            Ok(())
        }
        fn release(&self, _: &str) {}
    }

    fn agent(dir: &std::path::Path) -> Agent {
        let cfg = Config::new(&dir.join("state"), &dir.join("run"));
        let agent = Agent::open(cfg, Box::new(NoImages)).unwrap();
        agent
            .call(
                "RegisterTaskDefinition",
                json!({"family": "batch", "containerDefinitions": [
                    {"name": "app", "image": "busybox", "memory": 16, "essential": true}
                ]}),
            )
            .unwrap();
        agent
    }

    fn started_by_schedule(agent: &Agent, name: &str) -> usize {
        let tasks: Vec<Task> = agent.tasks(&TaskFilter {
            started_by: Some(started_by(name)),
            ..Default::default()
        });
        tasks.len()
    }

    fn minutes(n: i64) -> chrono::Duration {
        chrono::Duration::minutes(n)
    }

    #[test]
    fn passes_fire_each_due_slot_once_and_a_missed_run_once() {
        let dir = tempfile::tempdir().unwrap();
        let agent = agent(dir.path());
        let created = agent
            .call(
                "CreateSchedule",
                json!({"Name": "every5", "ScheduleExpression": "rate(5 minutes)",
                       "Target": {"EcsParameters": {"TaskDefinitionArn": "batch", "TaskCount": 2}}}),
            )
            .unwrap();
        let start = utc(created["StartDate"].as_f64().unwrap());
        assert!(agent.fire_due_schedules(start + minutes(4)).is_empty());
        assert_eq!(agent.fire_due_schedules(start + minutes(5)), ["every5"]);
        assert!(agent.fire_due_schedules(start + minutes(5)).is_empty());
        assert!(agent.fire_due_schedules(start + minutes(9)).is_empty());
        assert_eq!(started_by_schedule(&agent, "every5"), 2);
        // An hour of downtime: one firing, for the latest slot.
        assert_eq!(agent.fire_due_schedules(start + minutes(67)), ["every5"]);
        assert!(agent.fire_due_schedules(start + minutes(68)).is_empty());
        assert_eq!(started_by_schedule(&agent, "every5"), 4);
        let got = agent
            .call("GetSchedule", json!({"Name": "every5"}))
            .unwrap();
        assert_eq!(got["LastInvocationDate"], json!(epoch(start + minutes(65))));
        assert_eq!(got["LastRun"]["TaskArns"].as_array().map(Vec::len), Some(2));

        // Disabled, it fires no more; a new agent on the same store remembers it all.
        agent
            .call(
                "UpdateSchedule",
                json!({"Name": "every5", "State": "DISABLED"}),
            )
            .unwrap();
        assert!(agent.fire_due_schedules(start + minutes(200)).is_empty());
        drop(agent);
        let again = super::tests::agent(dir.path());
        let got = again
            .call("GetSchedule", json!({"Name": "every5"}))
            .unwrap();
        assert_eq!(got["State"], "DISABLED");
        assert!(again.fire_due_schedules(start + minutes(300)).is_empty());
        assert_eq!(started_by_schedule(&again, "every5"), 4);
    }

    #[test]
    fn an_at_schedule_fires_once_and_is_disabled() {
        let dir = tempfile::tempdir().unwrap();
        let agent = agent(dir.path());
        let at = (Utc::now() + minutes(2))
            .format("at(%Y-%m-%dT%H:%M:%S)")
            .to_string();
        agent
            .call(
                "CreateSchedule",
                json!({"Name": "once", "ScheduleExpression": at,
                       "Target": {"EcsParameters": {"TaskDefinitionArn": "batch:1"}}}),
            )
            .unwrap();
        let later = Utc::now() + minutes(3);
        assert_eq!(agent.fire_due_schedules(later), ["once"]);
        assert!(agent.fire_due_schedules(later + minutes(1)).is_empty());
        let got = agent.call("GetSchedule", json!({"Name": "once"})).unwrap();
        assert_eq!(got["State"], "DISABLED");
        assert_eq!(got["NextInvocationDate"], Value::Null);
        assert_eq!(started_by_schedule(&agent, "once"), 1);
    }
}
