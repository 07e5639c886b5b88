//! A task definition turned into what the supervisor runs: one OCI runtime spec per
//! container, the task's cgroup and limits, and the files and directories to prepare.
//! Pure: every host fact comes in as a value, every action on the host goes out as one.
//!
//! What the caller does with a [`TaskPlan`], in order:
//! 1. Create the task cgroup `task_cgroup` with `task_resources`.
//! 2. Create `volume_dirs` (scratch volumes) and, if `shared_shm` is set, mount a tmpfs
//!    of its size at its path.
//! 3. If `sandbox` is set, start the sandbox process with those namespaces (bring up lo
//!    in its network namespace), then call [`TaskPlan::join_sandbox`] with its pid: the
//!    specs name its namespaces as `/proc/{sandbox}/ns/<type>` until then.
//! 4. Per container: write its `files` under the task directory ([`FileContent::HostCopy`]
//!    means the host's file plus the text to append), stat each of its `devices` on the
//!    host and pass the results to [`ContainerPlan::add_device_nodes`], fill `rootfs`
//!    (relative to the bundle) with the image, and run the spec; under a small init if
//!    `init` is set.

mod capabilities;
mod container;
mod devices;
mod mounts;
pub(crate) mod namespaces;
mod process;
mod resources;
mod seccomp;
mod users;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use oci_spec::runtime::{LinuxResources, Spec};

use crate::taskdef::units::{UNITS_PER_VCPU, parse_cpu_units, parse_memory_mib};
use crate::taskdef::{
    Condition, FieldError, PortMapping, TaskDefinition, ValidationErrors, validate,
};

pub use capabilities::{DEFAULT_CAPABILITIES, all_capabilities, capability_set};
pub use devices::{DeviceKind, DeviceNode, DeviceRequest, default_device_rules};
pub use mounts::{DEFAULT_SHM_MIB, FileContent, SharedShm, TaskFile};
pub use namespaces::{SANDBOX_PID, Sandbox, sandbox_namespace_path};
pub use process::{DEFAULT_PATH, ImageConfig};
pub use resources::CFS_PERIOD_US;
pub use seccomp::default_seccomp;
pub use users::{ImageUsers, ResolvedUser, resolve_user};

/// ECS's default stop timeout.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Log rotation when the definition asks for none or for a driver berth does not
/// have: bounded, like Docker's `local` driver, so a chatty service cannot fill the disk.
pub const DEFAULT_LOG: LogOptions = LogOptions {
    max_size_bytes: Some(20 << 20),
    max_files: 5,
};

/// What the plan needs to know about this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Where task cgroups go, such as "/berth/tasks".
    pub cgroup_root: String,
    /// CPUs the tasks may use; 0 skips the capacity check.
    pub cpus: u32,
    /// Memory the tasks may use, in MiB; 0 skips the capacity check.
    pub memory_mib: u64,
}

/// The task being planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskContext {
    /// Letters, digits, '-' and '_', such as a UUID.
    pub task_id: String,
    /// Recorded in the containers' annotations when known.
    pub task_arn: Option<String>,
    /// The definition's revision, recorded when known.
    pub revision: Option<u32>,
    /// The task's directory on the host: scratch volumes, /etc files, shared /dev/shm.
    pub task_dir: PathBuf,
}

/// What the caller fetched for one container before planning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerInput {
    /// The image's config.
    pub image: ImageConfig,
    /// The image's /etc/passwd and /etc/group.
    pub users: ImageUsers,
    /// The container's environment files, read in order
    /// ([`crate::taskdef::read_environment_files`]).
    pub environment_files: Vec<(String, String)>,
}

/// Everything needed to run a task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPlan {
    /// The task id.
    pub task_id: String,
    /// `<cgroup root>/<task id>`; each container's cgroup is a child of it.
    pub task_cgroup: String,
    /// Task cpu as a CFS quota, task memory as a hard limit.
    pub task_resources: LinuxResources,
    /// The process holding the namespaces the containers share, if any are.
    pub sandbox: Option<Sandbox>,
    /// The /dev/shm the containers share when `ipcMode` is task.
    pub shared_shm: Option<SharedShm>,
    /// Scratch volume directories to create, `<task dir>/volumes/<name>`.
    pub volume_dirs: Vec<PathBuf>,
    /// One per container definition, in the definition's order.
    pub containers: Vec<ContainerPlan>,
}

/// Everything needed to run one container of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerPlan {
    /// The container's name.
    pub name: String,
    /// The image reference.
    pub image: String,
    /// Whether the task stops when this container exits.
    pub essential: bool,
    /// Containers that must reach a condition before this one starts.
    pub depends_on: Vec<(String, Condition)>,
    /// Between SIGTERM and SIGKILL.
    pub stop_timeout: Duration,
    /// How long to wait for `depends_on`.
    pub start_timeout: Option<Duration>,
    /// Log file rotation.
    pub log: LogOptions,
    /// The command the supervisor runs to judge health, and when.
    pub health_check: Option<HealthCheck>,
    /// When the supervisor restarts the container in place; None never does.
    pub restart: Option<Restart>,
    /// Whether the spec joins sandbox namespaces.
    pub shares_task_namespaces: bool,
    /// Run the process under a small init (`initProcessEnabled`).
    pub init: bool,
    /// Keep the process's stdin open (`interactive`); its pty is `spec.process.terminal`.
    pub interactive: bool,
    /// Recorded for the API; nothing to set up in host and none modes.
    pub port_mappings: Vec<PortMapping>,
    /// Files to write under the task directory before start.
    pub files: Vec<TaskFile>,
    /// Host devices to look up and hand to [`ContainerPlan::add_device_nodes`].
    pub devices: Vec<DeviceRequest>,
    /// The OCI runtime spec; `root.path` is "rootfs", relative to the bundle.
    pub spec: Spec,
}

/// json-file's rotation options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOptions {
    /// Rotate when the file reaches this size; None never rotates.
    pub max_size_bytes: Option<u64>,
    /// Files kept, the current one included.
    pub max_files: u32,
}

/// An enabled `restartPolicy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restart {
    /// Exits with these codes end the container as if it had no policy.
    pub ignored_exit_codes: Vec<i32>,
    /// How long the container must have run, since its start or its last restart, for
    /// an exit to lead to a restart.
    pub attempt_period: Duration,
}

/// ECS's `restartAttemptPeriod` when the policy does not give one.
pub const DEFAULT_RESTART_ATTEMPT_PERIOD: Duration = Duration::from_secs(300);

/// A health check ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// argv to exec in the container; CMD-SHELL becomes `/bin/sh -c <command>`.
    pub command: Vec<String>,
    /// Between checks.
    pub interval: Duration,
    /// For one check.
    pub timeout: Duration,
    /// Failures in a row that make the container unhealthy.
    pub retries: u32,
    /// Failures during this time after start do not count.
    pub start_period: Duration,
}

/// Why a task could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The definition breaks a rule, or does not fit this host or its images.
    #[error("{0}")]
    Invalid(ValidationErrors),
    /// The id cannot name a cgroup or directory.
    #[error("task id {0:?}: must be 1 to 64 letters, digits, hyphens and underscores")]
    TaskId(String),
    /// The caller gave no image config for a container.
    #[error("containerDefinitions[{index}]: no image config was given for container {name:?}")]
    MissingInput {
        /// Index in containerDefinitions.
        index: usize,
        /// The container's name.
        name: String,
    },
    /// `add_device_nodes` got a different number of nodes than there are requests.
    #[error(
        "container {container:?}: {given} device nodes given for {requested} requested devices"
    )]
    DeviceCount {
        /// The container's name.
        container: String,
        /// Nodes given.
        given: usize,
        /// Devices requested.
        requested: usize,
    },
}

/// Plans a task: validates the definition, checks it fits the host, and builds each
/// container's spec from the definition and its image.
pub fn plan_task(
    def: &TaskDefinition,
    task: &TaskContext,
    host: &Host,
    inputs: &BTreeMap<String, ContainerInput>,
) -> Result<TaskPlan, PlanError> {
    if !is_task_id(&task.task_id) {
        return Err(PlanError::TaskId(task.task_id.clone()));
    }
    validate(def).map_err(PlanError::Invalid)?;
    let mut errors = capacity(def, host);

    let task_cgroup = format!(
        "{}/{}",
        host.cgroup_root.trim_end_matches('/'),
        task.task_id
    );
    let mut containers = Vec::new();
    for (index, c) in def.container_definitions.iter().enumerate() {
        let input = inputs.get(&c.name).ok_or_else(|| PlanError::MissingInput {
            index,
            name: c.name.clone(),
        })?;
        match container::container_plan(def, index, task, &task_cgroup, input) {
            Ok(plan) => containers.push(plan),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if !errors.is_empty() {
        return Err(PlanError::Invalid(ValidationErrors(errors)));
    }

    Ok(TaskPlan {
        task_id: task.task_id.clone(),
        task_cgroup,
        task_resources: resources::task_resources(def),
        sandbox: namespaces::task_sandbox(def),
        shared_shm: mounts::shared_shm(def, &task.task_dir),
        volume_dirs: def
            .volumes
            .iter()
            .filter(|v| v.source_path().is_none())
            .map(|v| mounts::volume_source(def, &v.name, &task.task_dir))
            .collect(),
        containers,
    })
}

impl TaskPlan {
    /// Points the specs' shared namespaces at the sandbox process `pid`.
    pub fn join_sandbox(&mut self, pid: u32) {
        let pid = pid.to_string();
        for c in &mut self.containers {
            let Some(namespaces) = c
                .spec
                .linux_mut()
                .as_mut()
                .and_then(|l| l.namespaces_mut().as_mut())
            else {
                continue;
            };
            for ns in namespaces.iter_mut() {
                if let Some(path) = ns.path().as_ref().and_then(|p| p.to_str()) {
                    let joined = path.replace(SANDBOX_PID, &pid);
                    ns.set_path(Some(PathBuf::from(joined)));
                }
            }
        }
    }
}

impl ContainerPlan {
    /// Adds the host devices the definition asked for, `nodes[i]` being what stat(2)
    /// says about `devices[i].host_path`: each becomes a node in the container's /dev
    /// and a cgroup rule allowing the requested access.
    pub fn add_device_nodes(&mut self, nodes: &[DeviceNode]) -> Result<(), PlanError> {
        if nodes.len() != self.devices.len() {
            return Err(PlanError::DeviceCount {
                container: self.name.clone(),
                given: nodes.len(),
                requested: self.devices.len(),
            });
        }
        let entries: Vec<_> = self
            .devices
            .iter()
            .zip(nodes)
            .map(|(request, node)| devices::device_entry(request, node))
            .collect();
        let Some(linux) = self.spec.linux_mut().as_mut() else {
            return Ok(());
        };
        for (device, rule) in entries {
            linux
                .devices_mut()
                .get_or_insert_with(Vec::new)
                .push(device);
            if let Some(resources) = linux.resources_mut().as_mut() {
                resources
                    .devices_mut()
                    .get_or_insert_with(Vec::new)
                    .push(rule);
            }
        }
        Ok(())
    }
}

fn is_task_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// ECS does not place a task on a host too small for it; neither does berth.
fn capacity(def: &TaskDefinition, host: &Host) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let containers = &def.container_definitions;
    if host.cpus > 0 {
        let host_units = u64::from(host.cpus) * UNITS_PER_VCPU;
        match def.cpu.as_deref().map(parse_cpu_units) {
            Some(Ok(units)) if units > host_units => errors.push(FieldError::new(
                "cpu",
                format!(
                    "{units} units is more than this host's {} CPUs ({host_units} units)",
                    host.cpus
                ),
            )),
            Some(_) => {}
            None => {
                let total: u64 = containers
                    .iter()
                    .filter_map(|c| c.cpu)
                    .map(|cpu| u64::try_from(cpu).unwrap_or(0))
                    .sum();
                if total > host_units {
                    errors.push(FieldError::new(
                        "containerDefinitions",
                        format!(
                            "the containers' cpu adds up to {total} units, more than this host's \
                             {} CPUs ({host_units} units)",
                            host.cpus
                        ),
                    ));
                }
            }
        }
    }
    if host.memory_mib > 0 {
        match def.memory.as_deref().map(parse_memory_mib) {
            Some(Ok(mib)) if mib > host.memory_mib => errors.push(FieldError::new(
                "memory",
                format!("{mib} MiB is more than this host's {} MiB", host.memory_mib),
            )),
            Some(_) => {}
            None => {
                let total: u64 = containers
                    .iter()
                    .filter_map(|c| c.memory_reservation.or(c.memory))
                    .map(|m| u64::try_from(m).unwrap_or(0))
                    .sum();
                if total > host.memory_mib {
                    errors.push(FieldError::new(
                        "containerDefinitions",
                        format!(
                            "the containers reserve {total} MiB, more than this host's {} MiB",
                            host.memory_mib
                        ),
                    ));
                }
            }
        }
    }
    errors
}
