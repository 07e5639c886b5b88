//! What the agent hands a supervisor (`task.json` in the task's directory) and what the
//! supervisor reports back (`status.json`, replaced atomically on every change).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::{LinuxResources, Spec};
use serde::{Deserialize, Serialize};

pub use super::health::Health;
use crate::net::{NetworkStatus, TaskNetwork};

/// A task, ready to run: every container's runtime spec is complete but for the rootfs
/// (mounted by the supervisor from `layers`) and the shared namespace paths (the
/// supervisor's sandbox process holds those).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskSpec {
    pub task_id: String,
    /// cgroupsPath of the task's cgroup; containers' cgroups are its children.
    pub task_cgroup: String,
    pub task_resources: Option<LinuxResources>,
    /// Namespaces the task's containers share ("network", "ipc", "uts"), created by the
    /// sandbox process, with the hostname it sets.
    pub shared_namespaces: Vec<String>,
    pub hostname: Option<String>,
    pub containers: Vec<ContainerSpec>,
    /// Where the runtime keeps container state.
    pub runtime_root: PathBuf,
    /// A unix datagram socket the agent listens on; each status change is announced there.
    pub notify_socket: Option<PathBuf>,
    /// bridge and awsvpc modes: the network to connect the sandbox's namespace to.
    #[serde(default)]
    pub network: Option<TaskNetwork>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub name: String,
    pub essential: bool,
    pub depends_on: Vec<Dependency>,
    pub stop_timeout_secs: u64,
    /// How long this container waits for its dependsOn conditions (startTimeout);
    /// None waits as long as they can still be met.
    #[serde(default)]
    pub start_timeout_secs: Option<u64>,
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    /// Restart in place on exit; None never does.
    #[serde(default)]
    pub restart_policy: Option<RestartPolicy>,
    /// The image (manifest digest) in the image store under `image_store`, whose
    /// snapshots become the rootfs: an overlay with a fresh upper directory.
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub image_store: Option<PathBuf>,
    /// Without an image: directories to overlay, top first.
    #[serde(default)]
    pub layers: Vec<PathBuf>,
    pub log_max_size: Option<u64>,
    pub log_max_files: u32,
    /// stdin is a pipe the supervisor holds open (`interactive`), not /dev/null.
    #[serde(default)]
    pub interactive: bool,
    pub spec: Spec,
}

/// A container's health check, as the supervisor runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// argv run in the container (CMD-SHELL is already `/bin/sh -c ...`).
    pub command: Vec<String>,
    pub interval_secs: u64,
    pub timeout_secs: u64,
    pub retries: u32,
    pub start_period_secs: u64,
}

/// An enabled `restartPolicy`, as the supervisor applies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartPolicy {
    pub ignored_exit_codes: Vec<i32>,
    pub attempt_period_secs: u64,
}

impl RestartPolicy {
    /// Whether an exit with `code`, `ran` after the container's last (re)start, leads to
    /// a restart: not while the task stops, not for an ignored code, and not before the
    /// attempt period has passed, so that a container failing at once is not restarted
    /// in a loop.
    pub fn restarts(&self, code: i32, ran: Duration, task_stopping: bool) -> bool {
        !task_stopping
            && !self.ignored_exit_codes.contains(&code)
            && ran >= Duration::from_secs(self.attempt_period_secs)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Condition {
    Start,
    Complete,
    Success,
    Healthy,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dependency {
    pub container: String,
    pub condition: Condition,
}

impl ContainerSpec {
    /// Whether the process runs on a pty (`pseudoTerminal`).
    pub fn on_terminal(&self) -> bool {
        self.spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false)
    }

    pub fn stop_timeout(&self) -> Duration {
        Duration::from_secs(self.stop_timeout_secs)
    }

    pub fn start_timeout(&self) -> Option<Duration> {
        self.start_timeout_secs.map(Duration::from_secs)
    }
}

/// The task as the supervisor sees it, in ECS's words.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TaskStatus {
    /// PENDING, RUNNING, DEACTIVATING, STOPPING, STOPPED
    pub last_status: String,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    pub started_at: Option<String>,
    pub stopping_at: Option<String>,
    pub stopped_at: Option<String>,
    pub supervisor_pid: u32,
    /// The essential container whose exit stopped the task.
    #[serde(default)]
    pub essential_exited: Option<String>,
    /// From the essential containers' health checks.
    #[serde(default)]
    pub health_status: Health,
    pub containers: BTreeMap<String, ContainerStatus>,
    /// The task's address and published ports, once connected.
    #[serde(default)]
    pub network: Option<NetworkStatus>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ContainerStatus {
    /// PENDING, RUNNING, STOPPED
    pub last_status: String,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub pid: Option<i32>,
    pub started_at: Option<String>,
    pub stopped_at: Option<String>,
    /// UNKNOWN without a health check, or until one decides.
    #[serde(default)]
    pub health_status: Health,
    /// Restarts in place under the container's restartPolicy.
    #[serde(default)]
    pub restart_count: u32,
    /// Host path of the container's cgroup directory holding its memory controller, for
    /// stats.
    pub runtime_id: String,
}

/// A stop the agent asks for: written to `stop.json` before the supervisor gets SIGTERM.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StopRequest {
    pub stop_code: String,
    pub reason: String,
}

pub const TASK_FILE: &str = "task.json";
pub const STATUS_FILE: &str = "status.json";
pub const STOP_FILE: &str = "stop.json";

pub fn read_status(task_dir: &Path) -> Option<TaskStatus> {
    let text = std::fs::read(task_dir.join(STATUS_FILE)).ok()?;
    serde_json::from_slice(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(ignored: &[i32], period: u64) -> RestartPolicy {
        RestartPolicy {
            ignored_exit_codes: ignored.to_vec(),
            attempt_period_secs: period,
        }
    }

    #[test]
    fn a_restart_needs_the_attempt_period_to_have_passed() {
        let p = policy(&[], 60);
        assert!(p.restarts(1, Duration::from_secs(60), false));
        assert!(p.restarts(137, Duration::from_secs(3600), false));
        assert!(!p.restarts(1, Duration::from_millis(59_999), false));
        assert!(!p.restarts(1, Duration::ZERO, false));
    }

    #[test]
    fn ignored_codes_and_a_stopping_task_never_restart() {
        let p = policy(&[0, 143], 60);
        let long = Duration::from_secs(600);
        assert!(!p.restarts(0, long, false));
        assert!(!p.restarts(143, long, false));
        assert!(p.restarts(2, long, false));
        assert!(!p.restarts(2, long, true));
    }
}
