//! The task definition as ECS spells it: the JSON shapes of RegisterTaskDefinition,
//! with the fields berth honours typed and a few ECS fields it does not honour kept
//! as raw JSON so that `validate` can say they are ignored.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A string-valued ECS enum. Values ECS does not define are kept as `Unknown` so
/// that `validate` can report every one of them with its path, instead of the parser
/// stopping at the first.
macro_rules! ecs_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value ECS does not define; `validate` refuses it.
            Unknown(String),
        }

        impl $name {
            /// The value as ECS spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Unknown(s) => s,
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match s.as_str() {
                    $($text => Self::$variant,)+
                    _ => Self::Unknown(s),
                }
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.as_str().to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

ecs_enum! {
    /// `networkMode`.
    NetworkMode {
        /// Loopback only, shared by the task's containers.
        None = "none",
        /// The host's network namespace.
        Host = "host",
        /// A namespace of the task's own on the host bridge, reached through port mappings.
        Bridge = "bridge",
        /// A namespace of the task's own with an address of its own on the host bridge.
        Awsvpc = "awsvpc",
    }
}

ecs_enum! {
    /// `pidMode`.
    PidMode {
        /// The host's PID namespace.
        Host = "host",
        /// One PID namespace shared by the task's containers.
        Task = "task",
    }
}

ecs_enum! {
    /// `ipcMode`.
    IpcMode {
        /// The host's IPC namespace and /dev/shm.
        Host = "host",
        /// One IPC namespace shared by the task's containers.
        Task = "task",
        /// A private IPC namespace without /dev/shm.
        None = "none",
    }
}

ecs_enum! {
    /// `dependsOn[].condition`.
    Condition {
        /// The dependency has started.
        Start = "START",
        /// The dependency has exited, with any code.
        Complete = "COMPLETE",
        /// The dependency has exited with code 0.
        Success = "SUCCESS",
        /// The dependency's health check passed.
        Healthy = "HEALTHY",
    }
}

ecs_enum! {
    /// `portMappings[].protocol`.
    Protocol {
        /// TCP, the default.
        Tcp = "tcp",
        /// UDP.
        Udp = "udp",
    }
}

/// A task definition: the body of `register-task-definition --cli-input-json`, or the
/// `taskDefinition` object of `describe-task-definition` output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinition {
    /// The name revisions are registered under; required.
    #[serde(default)]
    pub family: String,
    /// Kept for the API; berth has no IAM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    /// Kept for the API; berth has no IAM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    /// Absent means ECS's default, see [`TaskDefinition::network_mode`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<NetworkMode>,
    /// Task CPU as given: CPU units ("512", 512) or vCPUs ("1 vCPU").
    #[serde(
        default,
        deserialize_with = "string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub cpu: Option<String>,
    /// Task memory as given: MiB ("2048", 2048) or GB ("2GB", "2 GB").
    #[serde(
        default,
        deserialize_with = "string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub memory: Option<String>,
    /// Absent: each container has its own PID namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_mode: Option<PidMode>,
    /// Absent: each container has its own IPC namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc_mode: Option<IpcMode>,
    /// Volumes the containers mount by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// The containers; at least one.
    #[serde(default)]
    pub container_definitions: Vec<ContainerDefinition>,
    /// Not supported; `validate` warns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_configuration: Option<Value>,
    /// Not supported; `validate` warns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_accelerators: Option<Value>,
    /// Not supported; `validate` warns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<Value>,
}

impl TaskDefinition {
    /// The network mode in effect: ECS's default on Linux, bridge, when none is given.
    pub fn network_mode(&self) -> NetworkMode {
        self.network_mode.clone().unwrap_or(NetworkMode::Bridge)
    }

    /// The container with this name and its index.
    pub fn container(&self, name: &str) -> Option<(usize, &ContainerDefinition)> {
        self.container_definitions
            .iter()
            .enumerate()
            .find(|(_, c)| c.name == name)
    }

    /// The volume with this name.
    pub fn volume(&self, name: &str) -> Option<&Volume> {
        self.volumes.iter().find(|v| v.name == name)
    }
}

/// `volumes[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    /// What `mountPoints[].sourceVolume` refers to.
    #[serde(default)]
    pub name: String,
    /// A host directory; without `sourcePath` (or without `host`) the volume is a
    /// scratch directory that lives as long as the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostVolume>,
    /// Only the local driver with task scope is supported: a scratch directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_volume_configuration: Option<DockerVolumeConfiguration>,
    /// Not supported; `validate` refuses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efs_volume_configuration: Option<Value>,
    /// Not supported; `validate` refuses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fsx_windows_file_server_volume_configuration: Option<Value>,
}

impl Volume {
    /// The host directory, when the volume is a bind mount of one.
    pub fn source_path(&self) -> Option<&str> {
        self.host.as_ref().and_then(|h| h.source_path.as_deref())
    }
}

/// `volumes[].host`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostVolume {
    /// Absolute path on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_path: Option<String>,
}

/// `volumes[].dockerVolumeConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerVolumeConfiguration {
    /// "task" (the default here) or "shared".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// "local" or absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
}

/// `containerDefinitions[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDefinition {
    /// Unique within the task; required.
    #[serde(default)]
    pub name: String,
    /// Image reference; required.
    #[serde(default)]
    pub image: String,
    /// CPU units (1024 per vCPU): the container's share when CPUs are contended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i64>,
    /// Hard memory limit in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    /// Soft memory limit in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<i64>,
    /// Absent means true: the task stops when an essential container exits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub essential: Option<bool>,
    /// Replaces the image's Entrypoint (and drops its Cmd unless `command` is given).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry_point: Vec<String>,
    /// Replaces the image's Cmd.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Variables that win over the image's and the environment files'.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<KeyValuePair>,
    /// `KEY=VALUE` files on this host (ECS reads them from S3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment_files: Vec<EnvironmentFile>,
    /// Replaces the image's WorkingDir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    /// "uid", "uid:gid", "user", "user:group"; replaces the image's User.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Recorded; in host mode the container binds the host's ports itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
    /// Task volumes mounted into this container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mount_points: Vec<MountPoint>,
    /// Every mount point of another container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes_from: Vec<VolumeFrom>,
    /// Containers that must reach a condition before this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<ContainerDependency>,
    /// Seconds between SIGTERM and SIGKILL; 30 by default, at most 120.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    /// Seconds to wait for the dependencies' conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timeout: Option<i64>,
    /// Resource limits of the process.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<Ulimit>,
    /// Capabilities, devices, init, tmpfs, /dev/shm size, swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux_parameters: Option<LinuxParameters>,
    /// Mount the image read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly_root_filesystem: Option<bool>,
    /// Every capability and device, no syscall filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// Labels, passed on as OCI annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub docker_labels: BTreeMap<String, String>,
    /// Log file rotation (json-file options).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<LogConfiguration>,
    /// The container's hostname; the task id's first 12 characters by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Lines added to /etc/hosts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<HostEntry>,
    /// Nameservers for /etc/resolv.conf.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_servers: Vec<String>,
    /// Search domains for /etc/resolv.conf.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_search_domains: Vec<String>,
    /// A command the supervisor runs in the container to judge its health.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,

    /// Not supported; `validate` warns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Value>,
    /// Other containers of the task, `name` or `name:alias`, that this one reaches by
    /// those names (bridge mode); it starts once they have started.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// Not supported; `validate` warns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_credentials: Option<Value>,
    /// Namespaced kernel parameters (sysctls) of the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub system_controls: Vec<SystemControl>,
    /// Not supported; `validate` warns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_requirements: Option<Value>,
    /// Not supported; `validate` warns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firelens_configuration: Option<Value>,
    /// `no-new-privileges`, `apparmor:PROFILE`, `label:...`, `credentialspec:...`, as
    /// Docker's `--security-opt` takes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub docker_security_options: Vec<String>,
    /// The container gets a network namespace of its own with only loopback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_networking: Option<bool>,
    /// Keep stdin open, as `docker run -i` does: the process reads from a pipe that
    /// stays open and empty, instead of /dev/null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive: Option<bool>,
    /// Run on a pty, as `docker run -t` does: stdout and stderr are the terminal's
    /// output, logged as stdout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pseudo_terminal: Option<bool>,
    /// Restarts of this container in place when it exits, without replacing the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
}

impl ContainerDefinition {
    /// ECS's default: a container is essential unless it says otherwise.
    pub fn is_essential(&self) -> bool {
        self.essential.unwrap_or(true)
    }

    /// The containers `links` names, each with the names it answers to here: the
    /// alias first where one is given, as Docker writes a link into /etc/hosts.
    pub fn linked_containers(&self) -> impl Iterator<Item = (&str, Vec<&str>)> + '_ {
        self.links.iter().map(|link| match link.split_once(':') {
            Some((name, alias)) if alias != name => (name, vec![alias, name]),
            Some((name, _)) => (name, vec![name]),
            None => (link.as_str(), vec![link.as_str()]),
        })
    }

    /// Whether `privileged` is set.
    pub fn is_privileged(&self) -> bool {
        self.privileged.unwrap_or(false)
    }

    /// Whether the image is mounted read-only.
    pub fn is_readonly_root(&self) -> bool {
        self.readonly_root_filesystem.unwrap_or(false)
    }

    /// Whether `linuxParameters.initProcessEnabled` is set.
    pub fn init_process_enabled(&self) -> bool {
        self.linux_parameters
            .as_ref()
            .and_then(|l| l.init_process_enabled)
            .unwrap_or(false)
    }

    fn security_options(&self) -> impl Iterator<Item = SecurityOption> + '_ {
        self.docker_security_options
            .iter()
            .filter_map(|s| SecurityOption::parse(s).ok())
    }

    /// `no-new-privileges` among the security options (the last one given counts).
    pub fn no_new_privileges(&self) -> bool {
        self.security_options()
            .filter_map(|o| match o {
                SecurityOption::NoNewPrivileges(on) => Some(on),
                _ => None,
            })
            .last()
            .unwrap_or(false)
    }

    /// The AppArmor profile the security options name (the last one given), unless it
    /// is `unconfined`.
    pub fn apparmor_profile(&self) -> Option<String> {
        self.security_options()
            .filter_map(|o| match o {
                SecurityOption::AppArmor(profile) => Some(profile),
                _ => None,
            })
            .last()
            .filter(|p| p != "unconfined")
    }
}

/// One `dockerSecurityOptions` entry. As with Docker, `KEY:VALUE` and `KEY=VALUE` are the
/// same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityOption {
    NoNewPrivileges(bool),
    AppArmor(String),
    /// An SELinux label option (`label:type:...`, `label:disable`).
    Label(String),
    /// A Windows gMSA credential spec.
    CredentialSpec(String),
}

impl SecurityOption {
    pub fn parse(s: &str) -> Result<SecurityOption, String> {
        let (key, value) = match s.split_once([':', '=']) {
            Some((k, v)) => (k, Some(v)),
            None => (s, None),
        };
        match (key, value) {
            ("no-new-privileges", None | Some("true")) => Ok(SecurityOption::NoNewPrivileges(true)),
            ("no-new-privileges", Some("false")) => Ok(SecurityOption::NoNewPrivileges(false)),
            ("no-new-privileges", Some(v)) => {
                Err(format!("no-new-privileges takes true or false, not {v:?}"))
            }
            ("apparmor", Some(profile)) if !profile.is_empty() => {
                Ok(SecurityOption::AppArmor(profile.to_string()))
            }
            ("apparmor", _) => Err("apparmor needs a profile name: apparmor:PROFILE".into()),
            ("label", Some(label)) if !label.is_empty() => Ok(SecurityOption::Label(label.into())),
            ("credentialspec", Some(spec)) if !spec.is_empty() => {
                Ok(SecurityOption::CredentialSpec(spec.into()))
            }
            _ => Err(format!(
                "{s:?} is not one of no-new-privileges, apparmor:PROFILE, label:VALUE, \
                 credentialspec:PATH"
            )),
        }
    }
}

/// `environment[]`: ECS allows either half to be missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyValuePair {
    /// Variable name; required by `validate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Missing means the empty string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl KeyValuePair {
    /// A name and value.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            value: Some(value.into()),
        }
    }
}

/// `environmentFiles[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentFile {
    /// An absolute path or a file:// URL on this host.
    #[serde(default)]
    pub value: String,
    /// ECS's only type, "s3"; may be left out here.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// `portMappings[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// Required, 1 to 65535.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<i64>,
    /// In host mode it must equal `containerPort` or be absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<i64>,
    /// tcp by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
}

/// `mountPoints[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MountPoint {
    /// A task volume's name.
    #[serde(default)]
    pub source_volume: String,
    /// Absolute path in the container.
    #[serde(default)]
    pub container_path: String,
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// `volumesFrom[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeFrom {
    /// Another container of the task.
    #[serde(default)]
    pub source_container: String,
    /// Mount all of them read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// `dependsOn[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDependency {
    /// Another container of the task.
    pub container_name: String,
    /// What that container must reach.
    pub condition: Condition,
}

/// `ulimits[]`: -1 means unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ulimit {
    /// core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss,
    /// rtprio, rttime, sigpending or stack.
    pub name: String,
    /// Soft limit.
    pub soft_limit: i64,
    /// Hard limit.
    pub hard_limit: i64,
}

/// `systemControls[]`: `namespace` is the kernel parameter's name (net.core.somaxconn).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemControl {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `restartPolicy`: restart the container in place when it exits, unless its exit code
/// is ignored or it ran for less than `restartAttemptPeriod` seconds (since its start, or
/// since its last restart).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartPolicy {
    /// Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Up to 50 exit codes that do not lead to a restart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_exit_codes: Vec<i64>,
    /// 60 to 1800 seconds; 300 by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_attempt_period: Option<i64>,
}

/// `linuxParameters`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxParameters {
    /// Added to and dropped from the default set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<KernelCapabilities>,
    /// Host devices made available in the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Device>,
    /// Run the process under a small init that forwards signals and reaps zombies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_process_enabled: Option<bool>,
    /// Size of /dev/shm in MiB; 64 by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_memory_size: Option<i64>,
    /// tmpfs mounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<Tmpfs>,
    /// Swap in MiB the container may use on top of `memory`; 0 disables swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_swap: Option<i64>,
    /// 0 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swappiness: Option<i64>,
}

/// `linuxParameters.capabilities`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelCapabilities {
    /// Names such as "NET_ADMIN" or "CAP_NET_ADMIN", or "ALL".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<String>,
    /// Names such as "NET_RAW", or "ALL".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<String>,
}

/// `linuxParameters.devices[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// The device node on the host.
    #[serde(default)]
    pub host_path: String,
    /// Where it appears in the container; the host path by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_path: Option<String>,
    /// "read", "write", "mknod"; all three by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
}

/// `linuxParameters.tmpfs[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tmpfs {
    /// Absolute path in the container.
    #[serde(default)]
    pub container_path: String,
    /// Size in MiB.
    #[serde(default)]
    pub size: i64,
    /// mount(8) options from ECS's list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mount_options: Vec<String>,
}

/// `logConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogConfiguration {
    /// json-file is honoured; others are reported and treated as json-file.
    #[serde(default)]
    pub log_driver: String,
    /// json-file: max-size and max-file.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// Not supported; `validate` warns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_options: Option<Value>,
}

/// `extraHosts[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostEntry {
    /// The name.
    #[serde(default)]
    pub hostname: String,
    /// The IPv4 or IPv6 address it resolves to.
    #[serde(default)]
    pub ip_address: String,
}

/// `healthCheck`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// ["CMD", program, args...] or ["CMD-SHELL", "shell command"].
    #[serde(default)]
    pub command: Vec<String>,
    /// Seconds between checks, 5 to 300; 30 by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    /// Seconds a check may take, 2 to 60; 5 by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// Failures in a row that make the container unhealthy, 1 to 10; 3 by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    /// Seconds after start during which failures do not count, 0 to 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
}

/// Accepts `"512"` and `512` alike: users' files have both.
pub(crate) fn string_or_number<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    struct StringOrNumber;

    impl Visitor<'_> for StringOrNumber {
        type Value = Option<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or a number")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }

    deserializer.deserialize_any(StringOrNumber)
}
