//! One reconcile pass of a service, as a pure function: the service document and its tasks
//! as the store has them in, the tasks to start and stop and the updated document out.
//! Nothing is remembered between passes; everything the decision needs is in its inputs.

use super::model::{Deployment, Service};

/// Stop codes of stops that are not the task's own fault.
const SCHEDULER_STOP: &str = "ServiceSchedulerInitiated";
const USER_STOP: &str = "UserInitiated";

/// The stoppedReason of a task replaced for failing its health checks.
pub const UNHEALTHY_REASON: &str = "Task failed container health checks";

/// How long a task without health checks must have been RUNNING to count as healthy, so
/// that a container that exits at once does not replace a good one in passing.
const SETTLE_SECS: f64 = 2.0;
/// A task that stops sooner than this after it started counts towards the throttle.
const QUICK_FAILURE_SECS: f64 = 10.0;
/// Consecutive quick failures before launches slow down.
const THROTTLE_AFTER: usize = 3;
/// The first delay, doubled at each further failure up to the cap (ECS's is 27 minutes).
const THROTTLE_BASE_SECS: f64 = 10.0;
const THROTTLE_CAP_SECS: f64 = 27.0 * 60.0;

/// What the reconciler sees of one of the service's tasks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservedTask {
    pub id: String,
    /// The deployment id (`ecs-svc/...`) that started it.
    pub started_by: Option<String>,
    pub last_status: String,
    pub desired_status: String,
    /// UNKNOWN, HEALTHY or UNHEALTHY.
    pub health_status: String,
    /// Whether an essential container has a health check (then RUNNING is not enough).
    pub has_health_check: bool,
    pub created_at: f64,
    pub started_at: Option<f64>,
    pub stopped_at: Option<f64>,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
}

impl ObservedTask {
    fn stopped(&self) -> bool {
        self.last_status == "STOPPED"
    }

    /// Counted as one of the service's copies: not stopped and not asked to stop.
    fn live(&self) -> bool {
        !self.stopped() && self.desired_status == "RUNNING"
    }

    fn running(&self) -> bool {
        self.last_status == "RUNNING"
    }

    fn pending(&self) -> bool {
        matches!(
            self.last_status.as_str(),
            "PROVISIONING" | "PENDING" | "ACTIVATING"
        )
    }

    fn unhealthy(&self) -> bool {
        self.running() && self.health_status == "UNHEALTHY"
    }

    /// RUNNING, and HEALTHY when it has health checks, or else RUNNING for a moment.
    fn healthy(&self, now: f64) -> bool {
        self.running()
            && match (self.has_health_check, self.health_status.as_str()) {
                (_, "UNHEALTHY") => false,
                (true, status) => status == "HEALTHY",
                (false, _) => self.settling(now).is_none(),
            }
    }

    /// Seconds until a RUNNING task without health checks counts as healthy.
    fn settling(&self, now: f64) -> Option<f64> {
        if !self.running() || self.has_health_check {
            return None;
        }
        let left = self.started_at.unwrap_or(now) + SETTLE_SECS - now;
        (left > 0.0).then_some(left)
    }

    /// Stopped by its own doing: an exit, a failed start, or failed health checks.
    fn failed(&self) -> bool {
        self.stopped()
            && (self.stopped_reason.as_deref() == Some(UNHEALTHY_REASON)
                || !matches!(
                    self.stop_code.as_deref(),
                    Some(SCHEDULER_STOP) | Some(USER_STOP)
                ))
    }

    /// Failed before it started, or soon after.
    fn failed_quickly(&self) -> bool {
        self.failed()
            && match (self.started_at, self.stopped_at) {
                (Some(start), Some(stop)) => stop - start < QUICK_FAILURE_SECS,
                _ => true,
            }
    }

    fn of(&self, deployment: &Deployment) -> bool {
        self.started_by.as_deref() == Some(deployment.id.as_str())
    }
}

/// Tasks of one deployment to start.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    pub deployment: String,
    pub task_definition: String,
    pub count: u32,
}

/// A task to stop, with the stoppedReason it gets.
#[derive(Debug, Clone, PartialEq)]
pub struct Stop {
    pub task: String,
    pub reason: String,
}

/// The outcome of one pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    /// The document with its counts, deployments and status brought up to date.
    pub service: Service,
    pub launch: Option<Launch>,
    pub stop: Vec<Stop>,
    /// Event messages to add, oldest first.
    pub events: Vec<String>,
    /// Seconds after which to look again even if nothing changes (a throttled launch).
    pub requeue_after: Option<f64>,
}

/// The fewest tasks that must stay healthy in a deployment: minimumHealthyPercent of the
/// desired count, rounded up.
pub fn minimum_healthy(desired: u32, percent: u32) -> u64 {
    (u64::from(desired) * u64::from(percent)).div_ceil(100)
}

/// The most tasks a deployment may have at once: maximumPercent of the desired count,
/// rounded down.
pub fn maximum_tasks(desired: u32, percent: u32) -> u64 {
    u64::from(desired) * u64::from(percent) / 100
}

/// Failed tasks that fail a deployment with the circuit breaker: half the desired count,
/// rounded up, at least 3 and at most 200.
pub fn failure_threshold(desired: u32) -> u32 {
    desired.div_ceil(2).clamp(3, 200)
}

/// How long to wait before the next launch after `consecutive` quick failures.
pub fn throttle_delay(consecutive: usize) -> f64 {
    if consecutive < THROTTLE_AFTER {
        return 0.0;
    }
    let doublings = (consecutive - THROTTLE_AFTER).min(16) as i32;
    (THROTTLE_BASE_SECS * 2f64.powi(doublings)).min(THROTTLE_CAP_SECS)
}

pub fn steady_state_message(name: &str) -> String {
    format!("(service {name}) has reached a steady state.")
}

pub fn throttle_message(name: &str) -> String {
    format!("(service {name}) is unable to consistently start tasks successfully.")
}

pub fn started_message(name: &str, ids: &[String]) -> String {
    format!(
        "(service {name}) has started {} tasks: {}.",
        ids.len(),
        list(ids)
    )
}

fn list(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!("(task {id})"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One pass over `service` and its `tasks` (every task the service ever started that the
/// store still has) at `now` (epoch seconds).
pub fn reconcile(service: &Service, tasks: &[ObservedTask], now: f64) -> Decision {
    let mut s = service.clone();
    let name = s.service_name.clone();
    let mut d = Decision::default();

    if s.status != "ACTIVE" || s.deployments.is_empty() {
        // Deleted: every task goes; once none is left the service is INACTIVE.
        let reason = "Service deleted".to_string();
        let ids: Vec<String> = tasks
            .iter()
            .filter(|t| t.live())
            .map(|t| t.id.clone())
            .collect();
        if !ids.is_empty() {
            d.events.push(format!(
                "(service {name}) has stopped {} running tasks: {}.",
                ids.len(),
                list(&ids)
            ));
        }
        for id in ids {
            d.stop.push(Stop {
                task: id,
                reason: reason.clone(),
            });
        }
        if s.status == "DRAINING" && tasks.iter().all(|t| t.stopped()) {
            s.status = "INACTIVE".into();
        }
        count(&mut s, tasks, &d.stop, now);
        d.service = s;
        return d;
    }

    // A rollback shows for one pass at least, even when the old tasks are all there.
    let tripped = trip_circuit_breaker(&mut s, tasks, now, &mut d.events);

    let primary = s.deployments[0].clone();
    let desired = s.desired_count;
    let config = s.deployment_configuration.clone();

    // Unhealthy tasks are replaced, whatever that does to the healthy count: they do not
    // serve anyway.
    for t in tasks.iter().filter(|t| t.live() && t.unhealthy()) {
        d.events.push(format!(
            "(service {name}) (task {}) failed container health checks.",
            t.id
        ));
        d.stop.push(Stop {
            task: t.id.clone(),
            reason: UNHEALTHY_REASON.into(),
        });
    }
    let stopping = |d: &Decision, t: &ObservedTask| d.stop.iter().any(|s| s.task == t.id);

    // Scale in: the excess of the primary deployment, tasks not yet running first, then
    // the newest.
    let mut primary_live: Vec<&ObservedTask> = tasks
        .iter()
        .filter(|t| t.live() && t.of(&primary) && !stopping(&d, t))
        .collect();
    let mut scaled_in = Vec::new();
    if primary_live.len() > desired as usize {
        let mut order = primary_live.clone();
        order.sort_by(|a, b| {
            a.running()
                .cmp(&b.running())
                .then(b.created_at.total_cmp(&a.created_at))
        });
        for t in order.iter().take(primary_live.len() - desired as usize) {
            scaled_in.push(t.id.clone());
        }
        primary_live.retain(|t| !scaled_in.contains(&t.id));
    }

    // Old deployments' tasks go as far as minimumHealthyPercent allows; those that are not
    // healthy anyway go at once.
    let old_live: Vec<&ObservedTask> = tasks
        .iter()
        .filter(|t| t.live() && !t.of(&primary) && !stopping(&d, t))
        .collect();
    let healthy = primary_live
        .iter()
        .chain(&old_live)
        .filter(|t| t.healthy(now));
    let mut may_stop = (healthy.count() as u64)
        .saturating_sub(minimum_healthy(desired, config.minimum_healthy_percent));
    let mut old_order = old_live.clone();
    old_order.sort_by(|a, b| {
        a.healthy(now)
            .cmp(&b.healthy(now))
            .then(a.created_at.total_cmp(&b.created_at))
    });
    let mut replaced = Vec::new();
    for t in old_order {
        if !t.healthy(now) {
            replaced.push(t.id.clone());
        } else if may_stop > 0 {
            may_stop -= 1;
            replaced.push(t.id.clone());
        }
    }
    for ids in [&scaled_in, &replaced] {
        if ids.is_empty() {
            continue;
        }
        d.events.push(format!(
            "(service {name}) has stopped {} running tasks: {}.",
            ids.len(),
            list(ids)
        ));
        for id in ids {
            d.stop.push(Stop {
                task: id.clone(),
                reason: format!("Scaling activity initiated by (deployment {})", primary.id),
            });
        }
    }

    // Launch what the primary deployment lacks, within maximumPercent: every task not
    // stopped yet, stopping or not, takes a place.
    let occupied = tasks.iter().filter(|t| !t.stopped()).count() as u64;
    let room = maximum_tasks(desired, config.maximum_percent).saturating_sub(occupied);
    let wanted = u64::from(desired).saturating_sub(primary_live.len() as u64);
    let mut launch = wanted.min(room);
    if launch > 0 {
        if let Some(wait) = throttled(tasks, &primary, now) {
            launch = 0;
            d.requeue_after = Some(wait);
            let message = throttle_message(&name);
            if s.events.first().map(|e| &e.message) != Some(&message) {
                d.events.push(message);
            }
        }
    }
    if launch > 0 {
        d.launch = Some(Launch {
            deployment: primary.id.clone(),
            task_definition: primary.task_definition.clone(),
            count: u32::try_from(launch).unwrap_or(u32::MAX),
        });
    }

    count(&mut s, tasks, &d.stop, now);
    // Tasks that count as healthy soon change the picture without a word from them.
    if let Some(settle) = tasks
        .iter()
        .filter(|t| t.live())
        .filter_map(|t| t.settling(now))
        .reduce(f64::min)
    {
        d.requeue_after = Some(d.requeue_after.map_or(settle, |r| r.min(settle)));
    }

    // Done: the primary deployment has its desired count of healthy tasks and nothing else
    // is left, not even a task on its way out.
    let quiet = d.launch.is_none() && d.stop.is_empty();
    let others_left = tasks.iter().any(|t| !t.stopped() && !t.of(&primary));
    let primary_healthy = primary_live.iter().filter(|t| t.healthy(now)).count();
    let settled = quiet
        && !tripped
        && occupied == primary_live.len() as u64
        && primary_healthy == desired as usize
        && primary_live.len() == desired as usize;
    if settled && s.deployments[0].rollout_state == "IN_PROGRESS" {
        let p = &mut s.deployments[0];
        p.rollout_state = "COMPLETED".into();
        p.rollout_state_reason = format!("ECS deployment {} completed.", p.id);
        p.updated_at = now;
        d.events.push(format!(
            "(service {name}) (deployment {}) deployment completed.",
            p.id
        ));
    }
    if s.deployments[0].rollout_state == "COMPLETED" && !others_left {
        s.deployments.truncate(1);
    }
    let steady = steady_state_message(&name);
    let newest = d.events.last().or(s.events.first().map(|e| &e.message));
    if settled
        && s.deployments.len() == 1
        && s.deployments[0].rollout_state == "COMPLETED"
        && newest != Some(&steady)
    {
        d.events.push(steady);
    }
    d.service = s;
    d
}

/// Fails the primary deployment when enough of its tasks failed, and with rollback makes
/// the last completed deployment primary again.
fn trip_circuit_breaker(
    s: &mut Service,
    tasks: &[ObservedTask],
    now: f64,
    events: &mut Vec<String>,
) -> bool {
    let breaker = s
        .deployment_configuration
        .deployment_circuit_breaker
        .clone();
    let primary = &s.deployments[0];
    if !breaker.enable || primary.rollout_state != "IN_PROGRESS" {
        return false;
    }
    let failed = failures(tasks, primary);
    if failed < failure_threshold(s.desired_count) {
        return false;
    }
    let name = s.service_name.clone();
    let p = &mut s.deployments[0];
    p.rollout_state = "FAILED".into();
    p.rollout_state_reason = "ECS deployment circuit breaker: tasks failed to start.".into();
    p.updated_at = now;
    events.push(format!(
        "(service {name}) (deployment {}) deployment failed: tasks failed to start.",
        p.id
    ));
    if !breaker.rollback {
        return true;
    }
    let Some(i) = s
        .deployments
        .iter()
        .skip(1)
        .position(|d| d.rollout_state == "COMPLETED")
        .map(|i| i + 1)
    else {
        return true;
    };
    let failed_id = s.deployments[0].id.clone();
    s.deployments[0].status = "ACTIVE".into();
    let mut target = s.deployments.remove(i);
    target.status = "PRIMARY".into();
    target.rollout_state = "IN_PROGRESS".into();
    target.rollout_state_reason = format!(
        "ECS deployment circuit breaker: rolling back to deploymentId {}.",
        target.id
    );
    target.desired_count = s.desired_count;
    target.failures_since = now;
    target.updated_at = now;
    events.push(format!(
        "(service {name}) (deployment {failed_id}) deployment rolled back to {}.",
        target.id
    ));
    s.task_definition = target.task_definition.clone();
    s.deployments.insert(0, target);
    true
}

fn failures(tasks: &[ObservedTask], d: &Deployment) -> u32 {
    let n = tasks
        .iter()
        .filter(|t| t.of(d) && t.failed() && t.stopped_at.unwrap_or(0.0) >= d.failures_since)
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Seconds left to wait before launching again, when the deployment's latest tasks kept
/// failing quickly.
fn throttled(tasks: &[ObservedTask], d: &Deployment, now: f64) -> Option<f64> {
    let mut stopped: Vec<&ObservedTask> = tasks
        .iter()
        .filter(|t| t.of(d) && t.stopped() && t.stopped_at.unwrap_or(0.0) >= d.failures_since)
        .collect();
    stopped.sort_by(|a, b| {
        b.stopped_at
            .unwrap_or(0.0)
            .total_cmp(&a.stopped_at.unwrap_or(0.0))
    });
    let consecutive = stopped.iter().take_while(|t| t.failed_quickly()).count();
    let last = stopped.first()?.stopped_at.unwrap_or(0.0);
    let wait = last + throttle_delay(consecutive) - now;
    (wait > 0.0).then_some(wait)
}

/// Brings the running, pending and desired counts of the service and its deployments up
/// to date, counting the tasks about to stop as gone from the desired ones.
fn count(s: &mut Service, tasks: &[ObservedTask], stops: &[Stop], now: f64) {
    let going = |t: &ObservedTask| stops.iter().any(|s| s.task == t.id);
    let active = |t: &&ObservedTask| !t.stopped();
    s.running_count = tasks.iter().filter(active).filter(|t| t.running()).count() as u32;
    s.pending_count = tasks.iter().filter(active).filter(|t| t.pending()).count() as u32;
    let desired = s.desired_count;
    for (i, dep) in s.deployments.iter_mut().enumerate() {
        let mine: Vec<&ObservedTask> = tasks.iter().filter(|t| t.of(dep)).collect();
        let running = mine.iter().filter(|t| active(t) && t.running()).count() as u32;
        let pending = mine.iter().filter(|t| active(t) && t.pending()).count() as u32;
        let failed = failures(tasks, dep);
        let want = if i == 0 {
            desired
        } else {
            mine.iter().filter(|t| t.live() && !going(t)).count() as u32
        };
        let counts = (want, running, pending, failed);
        if counts
            != (
                dep.desired_count,
                dep.running_count,
                dep.pending_count,
                dep.failed_tasks,
            )
        {
            (
                dep.desired_count,
                dep.running_count,
                dep.pending_count,
                dep.failed_tasks,
            ) = counts;
            dep.updated_at = now;
        }
    }
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
