//! Resource use of task containers: samples of their cgroups' counters (what `GET /stats`
//! serves and `berth stats` turns into rates) and the Prometheus text of `GET /metrics`.

pub mod prometheus;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Agent;
use crate::ecs::Task;
use crate::store::TaskFilter;
use crate::supervisor::task::{TASK_FILE, TaskSpec, read_status};

/// One container's counters at one moment. Counters of a container that is not running
/// are zero.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSample {
    pub task_arn: String,
    pub task_id: String,
    pub family: String,
    pub container: String,
    pub running: bool,
    /// CPU time used since the container started, in nanoseconds.
    pub cpu_usage_ns: u64,
    /// Memory in use, without the inactive page cache (as docker counts it).
    pub memory_usage_bytes: u64,
    /// The lowest of the container's and the task's limits, else the host's memory.
    pub memory_limit_bytes: u64,
    pub pids: u64,
    pub oom_kills: u64,
    /// CLOCK_MONOTONIC when the counters were read, in nanoseconds.
    pub read_at_ns: u64,
}

/// What `GET /stats` answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Samples {
    pub containers: Vec<ContainerSample>,
}

/// CPU use between two samples of a container, in percent of one CPU (a container
/// keeping two cores busy shows 200), as `docker stats` counts it.
pub fn cpu_percent(before: &ContainerSample, after: &ContainerSample) -> f64 {
    let elapsed = after.read_at_ns.saturating_sub(before.read_at_ns);
    if elapsed == 0 || !after.running {
        return 0.0;
    }
    let used = after.cpu_usage_ns.saturating_sub(before.cpu_usage_ns);
    used as f64 / elapsed as f64 * 100.0
}

/// Memory in use as a percentage of the limit.
pub fn memory_percent(sample: &ContainerSample) -> f64 {
    if sample.memory_limit_bytes == 0 {
        return 0.0;
    }
    sample.memory_usage_bytes as f64 / sample.memory_limit_bytes as f64 * 100.0
}

/// The lowest of the limits that are set, else the host's memory.
pub fn effective_limit(container: Option<u64>, task: Option<u64>, host: u64) -> u64 {
    [container, task]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(host)
}

/// Samples every container of `tasks` whose cgroup the runtime knows: the task's runtime
/// root comes from its task.json, each container's runtime id from its status.json.
pub fn sample(tasks: &[Task]) -> Samples {
    let host = host_memory_bytes();
    let mut containers = Vec::new();
    for task in tasks {
        let dir = Path::new(&task.local.task_dir);
        let spec: Option<TaskSpec> = std::fs::read(dir.join(TASK_FILE))
            .ok()
            .and_then(|text| serde_json::from_slice(&text).ok());
        let status = read_status(dir);
        let task_limit = spec
            .as_ref()
            .and_then(|s| s.task_resources.as_ref())
            .and_then(|r| r.memory().as_ref())
            .and_then(|m| m.limit())
            .and_then(|l| u64::try_from(l).ok());
        for c in &task.containers {
            let mut s = ContainerSample {
                task_arn: task.task_arn.clone(),
                task_id: task.id().to_string(),
                family: task.local.family.clone(),
                container: c.name.clone(),
                memory_limit_bytes: task_limit.unwrap_or(host),
                read_at_ns: monotonic_ns(),
                ..Default::default()
            };
            let runtime_id = status
                .as_ref()
                .and_then(|st| st.containers.get(&c.name))
                .map(|cs| cs.runtime_id.clone());
            if let (Some(spec), Some(id)) = (&spec, runtime_id) {
                read_container(&spec.runtime_root, &id, task_limit, host, &mut s);
            }
            containers.push(s);
        }
    }
    Samples { containers }
}

/// Fills in the counters of a running container; leaves them zero when it is not.
fn read_container(
    runtime_root: &Path,
    runtime_id: &str,
    task_limit: Option<u64>,
    host: u64,
    s: &mut ContainerSample,
) {
    let Ok(c) = berth_runtime::Container::load(runtime_root, runtime_id) else {
        return;
    };
    if c.status() != berth_runtime::Status::Running {
        return;
    }
    let Some(Ok(stats)) = c.saved.cgroup.as_ref().map(|cg| cg.stats()) else {
        return;
    };
    s.read_at_ns = monotonic_ns();
    s.running = true;
    s.cpu_usage_ns = stats.cpu.usage_ns;
    s.memory_usage_bytes = stats.memory.working_set_bytes();
    s.memory_limit_bytes = effective_limit(stats.memory.limit_bytes, task_limit, host);
    s.pids = stats.pids.current;
    s.oom_kills = stats.memory.oom_kills;
}

/// What `GET /stats` answers: the containers of the tasks not yet stopped, or of every
/// task the agent still lists with `all`.
pub fn of_agent(agent: &Agent, all: bool) -> Samples {
    let filter = TaskFilter {
        active_only: !all,
        ..Default::default()
    };
    sample(&agent.tasks(&filter))
}

/// What `GET /metrics` answers.
pub fn metrics_of_agent(agent: &Agent) -> String {
    let tasks = agent.tasks(&TaskFilter::default());
    let active: Vec<Task> = tasks
        .iter()
        .filter(|t| t.last_status != "STOPPED")
        .cloned()
        .collect();
    prometheus::render(&sample(&active).containers, &count_by_status(&tasks))
}

/// Tasks by lastStatus, for the task gauge of `/metrics`.
pub fn count_by_status(tasks: &[Task]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for t in tasks {
        *counts.entry(t.last_status.clone()).or_insert(0) += 1;
    }
    counts
}

fn monotonic_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes a timespec through a valid pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) } != 0 {
        return 0;
    }
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

fn host_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kib| kib * 1024)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ns: u64, cpu_ns: u64) -> ContainerSample {
        ContainerSample {
            running: true,
            cpu_usage_ns: cpu_ns,
            read_at_ns: ns,
            ..Default::default()
        }
    }

    #[test]
    fn one_busy_core_is_a_hundred_percent() {
        let second = 1_000_000_000;
        assert_eq!(cpu_percent(&at(0, 0), &at(second, second)), 100.0);
        assert_eq!(cpu_percent(&at(0, 0), &at(second, 2 * second)), 200.0);
        assert_eq!(
            cpu_percent(&at(0, 5), &at(2 * second, 5 + second / 2)),
            25.0
        );
    }

    #[test]
    fn cpu_percent_without_elapsed_time_or_after_a_restart_is_zero() {
        assert_eq!(cpu_percent(&at(10, 0), &at(10, 50)), 0.0);
        // A new container's counter starts again from zero.
        assert_eq!(cpu_percent(&at(0, 900), &at(100, 10)), 0.0);
        let mut stopped = at(100, 200);
        stopped.running = false;
        assert_eq!(cpu_percent(&at(0, 0), &stopped), 0.0);
    }

    #[test]
    fn memory_percent_of_the_limit() {
        let s = ContainerSample {
            memory_usage_bytes: 16 << 20,
            memory_limit_bytes: 64 << 20,
            ..Default::default()
        };
        assert_eq!(memory_percent(&s), 25.0);
        assert_eq!(memory_percent(&ContainerSample::default()), 0.0);
    }

    #[test]
    fn the_lowest_limit_applies() {
        assert_eq!(effective_limit(Some(64), Some(128), 1000), 64);
        assert_eq!(effective_limit(None, Some(128), 1000), 128);
        assert_eq!(effective_limit(Some(256), Some(128), 1000), 128);
        assert_eq!(effective_limit(None, None, 1000), 1000);
    }
}
