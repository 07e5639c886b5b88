//! The services' reconciler: a thread of the agent daemon that, whenever a task or a
//! service changes and at least every [`TICK`], reads each service and its tasks from the
//! store, asks [`reconcile`] what to do, and does it (start tasks through RunTask, stop
//! them through the stop path with ServiceSchedulerInitiated). It keeps nothing between
//! passes, so a restarted agent resumes where the last one left off.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::actions::new_event_id;
use super::model::Service;
use super::reconcile::{self, Decision, ObservedTask};
use crate::Agent;
use crate::ecs::{self, Task};
use crate::store::TaskFilter;
use crate::supervisor::task::STATUS_FILE;

/// How often services are looked at when nothing wakes the reconciler.
pub const TICK: Duration = Duration::from_secs(2);

/// Tasks started in one RunTask call, RunTask's own limit.
const LAUNCH_BATCH: u32 = 10;

impl Agent {
    /// Starts the services' reconciler on its own thread. Only the daemon runs it: one
    /// reconciler per state dir.
    pub fn run_services(&self) {
        self.fail_unlaunched_service_tasks();
        let agent = self.clone();
        std::thread::spawn(move || {
            loop {
                let mut next = TICK;
                for name in agent.service_names() {
                    if let Some(wait) = agent.reconcile_service(&name) {
                        next = next.min(Duration::from_secs_f64(wait.max(0.05)));
                    }
                }
                agent.services().wait(next);
            }
        });
    }

    fn service_names(&self) -> Vec<String> {
        let services: Vec<Service> = self
            .store()
            .services(&["ACTIVE", "DRAINING"])
            .unwrap_or_default();
        services.into_iter().map(|s| s.service_name).collect()
    }

    /// Service tasks a killed agent left before their supervisor started: no supervisor
    /// will ever report them, so they are stopped, and the service starts others.
    fn fail_unlaunched_service_tasks(&self) {
        let active: Vec<Task> = self
            .store()
            .tasks(&TaskFilter {
                active_only: true,
                ..Default::default()
            })
            .unwrap_or_default();
        for mut t in active {
            if t.local.service.is_none() {
                continue;
            }
            let dir = Path::new(&t.local.task_dir);
            if dir.join(STATUS_FILE).exists() || supervisor_running(dir) {
                continue;
            }
            let now = ecs::now();
            t.last_status = "STOPPED".into();
            t.desired_status = "STOPPED".into();
            t.stop_code = Some("TaskFailedToStart".into());
            t.stopped_reason = Some("The agent stopped before the task started".into());
            t.stopping_at.get_or_insert(now);
            t.stopped_at = Some(now);
            t.execution_stopped_at = Some(now);
            for c in &mut t.containers {
                c.last_status = "STOPPED".into();
            }
            let _ = self.store().put_task(&t);
        }
    }

    /// One pass over one service; the seconds after which it wants another look.
    fn reconcile_service(&self, name: &str) -> Option<f64> {
        let _edit = self.services().lock();
        let service: Service = self.store().service(name).ok().flatten()?;
        let tasks: Vec<Task> = self
            .store()
            .tasks(&TaskFilter {
                service: Some(name.to_string()),
                ..Default::default()
            })
            .unwrap_or_default();
        let observed = self.observe(&tasks);
        let now = ecs::now();
        let decision = reconcile::reconcile(&service, &observed, now);
        self.apply(&service, decision)
    }

    fn observe(&self, tasks: &[Task]) -> Vec<ObservedTask> {
        let mut checks: HashMap<(String, u32), bool> = HashMap::new();
        tasks
            .iter()
            .map(|t| {
                let key = (t.local.family.clone(), t.local.revision);
                let has_health_check = *checks
                    .entry(key)
                    .or_insert_with(|| self.has_health_check(&t.local.family, t.local.revision));
                ObservedTask {
                    id: t.id().to_string(),
                    started_by: t.started_by.clone(),
                    last_status: t.last_status.clone(),
                    desired_status: t.desired_status.clone(),
                    health_status: t.health_status.clone(),
                    has_health_check,
                    created_at: t.created_at,
                    started_at: t.started_at,
                    stopped_at: t.stopped_at,
                    stop_code: t.stop_code.clone(),
                    stopped_reason: t.stopped_reason.clone(),
                }
            })
            .collect()
    }

    /// Whether an essential container of the revision has a health check.
    fn has_health_check(&self, family: &str, revision: u32) -> bool {
        let Ok(Some(def)) = self.store().task_definition(family, Some(revision)) else {
            return false;
        };
        def.body["containerDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["essential"].as_bool() != Some(false) && c["healthCheck"].is_object())
    }

    fn apply(&self, before: &Service, decision: Decision) -> Option<f64> {
        let Decision {
            mut service,
            launch,
            stop,
            mut events,
            requeue_after,
        } = decision;
        let name = service.service_name.clone();
        for s in &stop {
            if let Err(e) = self.stop(&s.task, "ServiceSchedulerInitiated", &s.reason) {
                tracing::warn!(service = %name, task = %s.task, "stop: {}", e.message);
            }
        }
        if let Some(l) = launch {
            let mut started = Vec::new();
            let mut left = l.count;
            while left > 0 {
                let n = left.min(LAUNCH_BATCH);
                left -= n;
                let body = json!({
                    "taskDefinition": l.task_definition,
                    "count": n,
                    "startedBy": l.deployment,
                    "group": format!("service:{name}"),
                    "berthService": name,
                });
                match self.run_task(body) {
                    Ok(resp) => {
                        for t in resp["tasks"].as_array().into_iter().flatten() {
                            if let Some(arn) = t["taskArn"].as_str() {
                                started.push(ecs::task_id_of(arn).to_string());
                            }
                        }
                        let reasons: Vec<&str> = resp["failures"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|f| f["reason"].as_str())
                            .collect();
                        if let Some(reason) = reasons.first() {
                            events.push(format!(
                                "(service {name}) was unable to place a task because no container instance met all of its requirements. Reason: {reason}."
                            ));
                            break;
                        }
                    }
                    Err(e) => {
                        events.push(format!(
                            "(service {name}) failed to launch a task: {}",
                            e.message
                        ));
                        break;
                    }
                }
            }
            if !started.is_empty() {
                events.push(reconcile::started_message(&name, &started));
                let n = started.len() as u32;
                if let Some(p) = service.deployments.first_mut() {
                    p.pending_count += n;
                }
                service.pending_count += n;
            }
        }
        let now = ecs::now();
        service.add_events(&events, now, new_event_id);
        if service != *before {
            let saved = self.store().put_service(
                &service.service_name,
                &service.status,
                service.created_at,
                &service,
            );
            if let Err(e) = saved {
                tracing::warn!(service = %name, "save: {e}");
            }
        }
        // After actions, look again soon: the tasks started or stopped change the picture.
        if !stop.is_empty() || !events.is_empty() {
            return Some(requeue_after.unwrap_or(TICK.as_secs_f64()).min(0.5));
        }
        requeue_after
    }
}

/// Whether a supervisor of the task directory runs (it may not have written its status
/// yet).
fn supervisor_running(task_dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    let needle = task_dir.as_os_str().as_encoded_bytes();
    entries.flatten().any(|e| {
        std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
            c.split(|b| *b == 0).any(|arg| arg == needle)
                && c.windows(16).any(|w| w == b"berth-supervisor")
        })
    })
}
