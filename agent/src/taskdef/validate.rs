//! The rules ECS applies when a task definition is registered, plus the ones berth
//! needs to run it on this host. Every problem is collected, each with its JSON path.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::Value;

use super::envfile::environment_file_path;
use super::error::{FieldError, ValidationErrors, Warning};
use super::model::{
    Condition, ContainerDefinition, HealthCheck, IpcMode, LinuxParameters, LogConfiguration,
    NetworkMode, PidMode, Protocol, RestartPolicy, SecurityOption, TaskDefinition, Volume,
};
use super::names::{capability, is_ecs_name, ulimit};
use super::units::{parse_byte_size, parse_cpu_units, parse_memory_mib};
use super::user::parse_user;

/// The least memory Docker (and so ECS) lets a container have, in MiB.
pub const MIN_CONTAINER_MEMORY_MIB: i64 = 6;
/// ECS's ceiling on `stopTimeout`, in seconds.
pub const MAX_STOP_TIMEOUT: i64 = 120;
/// ECS's ceiling on `restartPolicy.ignoredExitCodes`.
pub const MAX_IGNORED_EXIT_CODES: usize = 50;
/// ECS's bounds on task CPU for EC2 hosts, in units.
pub const TASK_CPU_RANGE: (u64, u64) = (128, 196_608);

/// The tmpfs options ECS accepts, less the ones that make no sense for a tmpfs.
const TMPFS_OPTIONS: [&str; 35] = [
    "defaults",
    "ro",
    "rw",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "exec",
    "noexec",
    "sync",
    "async",
    "dirsync",
    "mand",
    "nomand",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "unbindable",
    "runbindable",
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "mode",
    "uid",
    "gid",
    "nr_inodes",
    "mpol",
];

/// Checks a task definition. On success, returns what berth will do differently from
/// ECS or ignore; on failure, every problem found.
pub fn validate(def: &TaskDefinition) -> Result<Vec<Warning>, ValidationErrors> {
    let mut found = Findings::default();
    task(def, &mut found);
    for (i, c) in def.container_definitions.iter().enumerate() {
        container(def, i, c, &mut found);
    }
    dependency_cycles(def, &mut found);
    task_totals(def, &mut found);
    if found.errors.is_empty() {
        Ok(found.warnings)
    } else {
        Err(ValidationErrors(found.errors))
    }
}

#[derive(Default)]
struct Findings {
    errors: Vec<FieldError>,
    warnings: Vec<Warning>,
}

impl Findings {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(path, message));
    }

    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(FieldError::new(path, message));
    }

    fn ignored(&mut self, present: bool, path: impl Into<String>) {
        if present {
            self.warn(path, "not supported by berth; ignored");
        }
    }
}

fn task(def: &TaskDefinition, found: &mut Findings) {
    if def.family.is_empty() {
        found.error("family", "is required");
    } else if !is_ecs_name(&def.family) {
        found.error(
            "family",
            format!(
                "{:?} must be up to 255 letters, digits, hyphens and underscores",
                def.family
            ),
        );
    }

    match &def.network_mode {
        None
        | Some(NetworkMode::None | NetworkMode::Host | NetworkMode::Bridge | NetworkMode::Awsvpc) =>
            {}
        Some(NetworkMode::Unknown(mode)) => found.error(
            "networkMode",
            format!("{mode:?} is not a network mode (none, host, bridge or awsvpc)"),
        ),
    }
    if let Some(PidMode::Unknown(mode)) = &def.pid_mode {
        found.error(
            "pidMode",
            format!("{mode:?} is not a PID mode (host or task)"),
        );
    }
    if let Some(IpcMode::Unknown(mode)) = &def.ipc_mode {
        found.error(
            "ipcMode",
            format!("{mode:?} is not an IPC mode (host, task or none)"),
        );
    }

    if let Some(cpu) = &def.cpu {
        match parse_cpu_units(cpu) {
            Err(e) => found.error("cpu", e),
            Ok(units) if units < TASK_CPU_RANGE.0 || units > TASK_CPU_RANGE.1 => found.error(
                "cpu",
                format!(
                    "{units} units is outside ECS's range of {} to {} (0.125 to 192 vCPU)",
                    TASK_CPU_RANGE.0, TASK_CPU_RANGE.1
                ),
            ),
            Ok(_) => {}
        }
    }
    if let Some(memory) = &def.memory {
        match parse_memory_mib(memory) {
            Err(e) => found.error("memory", e),
            Ok(mib) if mib < MIN_CONTAINER_MEMORY_MIB as u64 => found.error(
                "memory",
                format!("must be at least {MIN_CONTAINER_MEMORY_MIB} MiB"),
            ),
            Ok(_) => {}
        }
    }

    found.ignored(given(&def.proxy_configuration), "proxyConfiguration");
    found.ignored(given(&def.inference_accelerators), "inferenceAccelerators");
    found.ignored(given(&def.ephemeral_storage), "ephemeralStorage");

    let mut volume_names = BTreeSet::new();
    for (i, v) in def.volumes.iter().enumerate() {
        volume(i, v, &mut volume_names, found);
    }

    let containers = &def.container_definitions;
    if containers.is_empty() {
        found.error("containerDefinitions", "must have at least one container");
    } else if !containers.iter().any(ContainerDefinition::is_essential) {
        found.error(
            "containerDefinitions",
            "must have at least one essential container",
        );
    }
    let mut seen = BTreeMap::new();
    for (i, c) in containers.iter().enumerate() {
        if c.name.is_empty() {
            continue;
        }
        if let Some(first) = seen.insert(c.name.as_str(), i) {
            found.error(
                format!("containerDefinitions[{i}].name"),
                format!(
                    "{:?} is already the name of containerDefinitions[{first}]",
                    c.name
                ),
            );
            seen.insert(c.name.as_str(), first);
        }
    }
}

fn volume(i: usize, v: &Volume, names: &mut BTreeSet<String>, found: &mut Findings) {
    let p = format!("volumes[{i}]");
    if v.name.is_empty() {
        found.error(format!("{p}.name"), "is required");
    } else if !is_ecs_name(&v.name) {
        found.error(
            format!("{p}.name"),
            format!(
                "{:?} must be up to 255 letters, digits, hyphens and underscores",
                v.name
            ),
        );
    } else if !names.insert(v.name.clone()) {
        found.error(
            format!("{p}.name"),
            format!("{:?} is the name of an earlier volume", v.name),
        );
    }
    if let Some(source) = v.source_path() {
        if !source.starts_with('/') {
            found.error(
                format!("{p}.host.sourcePath"),
                format!("{source:?} must be an absolute path"),
            );
        }
    }
    if let Some(docker) = &v.docker_volume_configuration {
        if let Some(scope) = docker.scope.as_deref().filter(|s| *s != "task") {
            found.error(
                format!("{p}.dockerVolumeConfiguration.scope"),
                format!(
                    "{scope:?} is not supported; berth has task-scoped volumes, and host \
                     directories through host.sourcePath"
                ),
            );
        }
        if let Some(driver) = docker.driver.as_deref().filter(|d| *d != "local") {
            found.error(
                format!("{p}.dockerVolumeConfiguration.driver"),
                format!("{driver:?} is not supported; only the local driver is"),
            );
        }
    }
    if v.efs_volume_configuration.is_some() {
        found.error(
            format!("{p}.efsVolumeConfiguration"),
            "EFS volumes are not supported; mount the file system on the host and use \
             host.sourcePath",
        );
    }
    if v.fsx_windows_file_server_volume_configuration.is_some() {
        found.error(
            format!("{p}.fsxWindowsFileServerVolumeConfiguration"),
            "FSx for Windows volumes are not supported",
        );
    }
}

fn container(def: &TaskDefinition, i: usize, c: &ContainerDefinition, found: &mut Findings) {
    let p = format!("containerDefinitions[{i}]");
    if c.name.is_empty() {
        found.error(format!("{p}.name"), "is required");
    } else if !is_ecs_name(&c.name) {
        found.error(
            format!("{p}.name"),
            format!(
                "{:?} must be up to 255 letters, digits, hyphens and underscores",
                c.name
            ),
        );
    }
    if c.image.trim().is_empty() {
        found.error(format!("{p}.image"), "is required");
    }

    resources(def, &p, c, found);
    environment(&p, c, found);
    if let Some(dir) = &c.working_directory {
        if !dir.starts_with('/') {
            found.error(
                format!("{p}.workingDirectory"),
                format!("{dir:?} must be an absolute path"),
            );
        }
    }
    if let Some(user) = &c.user {
        if let Err(e) = parse_user(user) {
            found.error(format!("{p}.user"), e);
        }
    }
    port_mappings(def, i, &p, c, found);
    mounts(def, i, &p, c, found);
    dependencies(def, i, &p, c, found);
    links(def, i, &p, c, found);

    if let Some(t) = c.stop_timeout {
        if !(0..=MAX_STOP_TIMEOUT).contains(&t) {
            found.error(
                format!("{p}.stopTimeout"),
                format!("{t} must be between 0 and {MAX_STOP_TIMEOUT} seconds"),
            );
        }
    }
    if let Some(t) = c.start_timeout {
        if t < 0 {
            found.error(format!("{p}.startTimeout"), format!("{t} is negative"));
        }
    }

    ulimits(&p, c, found);
    system_controls(def, &p, c, found);
    if c.disable_networking == Some(true) {
        if def.network_mode() == NetworkMode::Awsvpc {
            found.error(
                format!("{p}.disableNetworking"),
                "not supported with networkMode awsvpc",
            );
        }
        if !c.port_mappings.is_empty() {
            found.error(
                format!("{p}.disableNetworking"),
                "a container without networking cannot have portMappings",
            );
        }
    }
    if let Some(lp) = &c.linux_parameters {
        linux_parameters(&format!("{p}.linuxParameters"), c, lp, found);
    }
    if let Some(log) = &c.log_configuration {
        log_configuration(&format!("{p}.logConfiguration"), log, found);
    }
    names_and_dns(def, &p, c, found);
    if let Some(hc) = &c.health_check {
        health_check(&format!("{p}.healthCheck"), hc, found);
    }
    security_options(&p, c, found);
    if let Some(rp) = &c.restart_policy {
        restart_policy(&format!("{p}.restartPolicy"), rp, found);
    }

    for key in c.docker_labels.keys() {
        if key.starts_with("com.amazonaws.ecs.") {
            found.warn(
                format!("{p}.dockerLabels"),
                format!("{key:?} is set by berth; the value given is replaced"),
            );
        }
    }

    let unsupported = [
        (given(&c.secrets), "secrets"),
        (given(&c.repository_credentials), "repositoryCredentials"),
        (given(&c.resource_requirements), "resourceRequirements"),
        (given(&c.firelens_configuration), "firelensConfiguration"),
    ];
    for (present, field) in unsupported {
        found.ignored(present, format!("{p}.{field}"));
    }
}

fn resources(def: &TaskDefinition, p: &str, c: &ContainerDefinition, found: &mut Findings) {
    if let Some(cpu) = c.cpu {
        if cpu < 0 {
            found.error(format!("{p}.cpu"), format!("{cpu} is negative"));
        }
    }
    let min = MIN_CONTAINER_MEMORY_MIB;
    if let Some(m) = c.memory {
        if m < min {
            found.error(format!("{p}.memory"), format!("must be at least {min} MiB"));
        }
    }
    if let Some(r) = c.memory_reservation {
        if r < min {
            found.error(
                format!("{p}.memoryReservation"),
                format!("must be at least {min} MiB"),
            );
        }
    }
    if let (Some(m), Some(r)) = (c.memory, c.memory_reservation) {
        if m <= r && m >= min {
            found.error(
                format!("{p}.memory"),
                format!("{m} MiB must be greater than memoryReservation ({r} MiB)"),
            );
        }
    }
    if def.memory.is_none() && c.memory.is_none() && c.memory_reservation.is_none() {
        found.error(
            format!("{p}.memory"),
            "give memory or memoryReservation, as the task has no task-level memory",
        );
    }
}

fn environment(p: &str, c: &ContainerDefinition, found: &mut Findings) {
    for (j, kv) in c.environment.iter().enumerate() {
        match kv.name.as_deref() {
            None | Some("") => found.error(format!("{p}.environment[{j}].name"), "is required"),
            Some(name) if name.contains('=') || name.contains('\0') => found.error(
                format!("{p}.environment[{j}].name"),
                format!("{name:?} must not contain '=' or NUL"),
            ),
            Some(_) => {}
        }
    }
    for (j, f) in c.environment_files.iter().enumerate() {
        let fp = format!("{p}.environmentFiles[{j}]");
        if let Some(kind) = f.kind.as_deref().filter(|k| *k != "s3") {
            found.error(
                format!("{fp}.type"),
                format!("{kind:?} is not a file type (ECS's only type is s3)"),
            );
        }
        if let Err(e) = environment_file_path(&f.value) {
            found.error(format!("{fp}.value"), e);
        }
    }
}

fn port_mappings(
    def: &TaskDefinition,
    i: usize,
    p: &str,
    c: &ContainerDefinition,
    found: &mut Findings,
) {
    let mode = def.network_mode();
    // In host and awsvpc modes the container's port is the host port (or the task's own
    // address's), so a hostPort can only repeat it.
    let same_port = matches!(mode, NetworkMode::Host | NetworkMode::Awsvpc);
    for (j, pm) in c.port_mappings.iter().enumerate() {
        let pp = format!("{p}.portMappings[{j}]");
        match pm.container_port {
            None => found.error(format!("{pp}.containerPort"), "is required"),
            Some(port) if !(1..=65535).contains(&port) => found.error(
                format!("{pp}.containerPort"),
                format!("{port} is not a port (1 to 65535)"),
            ),
            Some(_) => {}
        }
        if let Some(port) = pm.host_port {
            if !(0..=65535).contains(&port) {
                found.error(
                    format!("{pp}.hostPort"),
                    format!("{port} is not a port (0 to 65535)"),
                );
            } else if same_port && pm.container_port.is_some_and(|cp| cp != port) {
                found.error(
                    format!("{pp}.hostPort"),
                    format!(
                        "{port} must equal containerPort ({}) in {mode} network mode",
                        pm.container_port.unwrap_or_default()
                    ),
                );
            }
        }
        let host_port = match mode {
            NetworkMode::Host => pm.host_port.or(pm.container_port),
            NetworkMode::Bridge => pm.host_port,
            _ => None,
        };
        if let Some(port) = host_port.filter(|p| RESERVED_HOST_PORTS.contains(p)) {
            let field = if pm.host_port.is_some() {
                "hostPort"
            } else {
                "containerPort"
            };
            found.error(
                format!("{pp}.{field}"),
                format!(
                    "host port {port} is reserved (ECS keeps {} for the host)",
                    RESERVED_HOST_PORTS.map(|p| p.to_string()).join(", ")
                ),
            );
        }
        if let Some(Protocol::Unknown(proto)) = &pm.protocol {
            found.error(
                format!("{pp}.protocol"),
                format!("{proto:?} is not a protocol (tcp or udp)"),
            );
        }
    }
    if mode == NetworkMode::None && !c.port_mappings.is_empty() {
        found.warn(
            format!("{p}.portMappings"),
            "the task has no network in networkMode none; the ports are recorded only",
        );
    }
    // Two mappings of the task cannot take the same host port (in awsvpc, the same port
    // of the task's address).
    let host_port = |pm: &super::model::PortMapping| match mode {
        NetworkMode::Host | NetworkMode::Awsvpc => pm.host_port.or(pm.container_port),
        NetworkMode::Bridge => pm.host_port.filter(|p| *p != 0),
        _ => None,
    };
    let mut earlier = BTreeSet::new();
    for other in def.container_definitions.iter().take(i) {
        for pm in &other.port_mappings {
            if let Some(port) = host_port(pm) {
                earlier.insert((port, protocol(pm.protocol.as_ref())));
            }
        }
    }
    for (j, pm) in c.port_mappings.iter().enumerate() {
        let Some(port) = host_port(pm) else { continue };
        let proto = protocol(pm.protocol.as_ref());
        if !earlier.insert((port, proto)) {
            found.error(
                format!("{p}.portMappings[{j}]"),
                format!("host port {port}/{proto} is mapped twice in the task"),
            );
        }
    }
}

/// The host ports ECS reserves for the host by default (ECS_RESERVED_PORTS): SSH, the
/// Docker daemon and the ECS agent's introspection API.
pub const RESERVED_HOST_PORTS: [i64; 5] = [22, 2375, 2376, 51678, 51679];

fn protocol(p: Option<&Protocol>) -> &str {
    p.map_or("tcp", Protocol::as_str)
}

fn mounts(def: &TaskDefinition, i: usize, p: &str, c: &ContainerDefinition, found: &mut Findings) {
    let mut destinations = BTreeSet::new();
    let mut destination = |path: String, container_path: &str, found: &mut Findings| {
        if !container_path.starts_with('/') {
            found.error(path, format!("{container_path:?} must be an absolute path"));
        } else if !destinations.insert(normalize(container_path)) {
            found.error(
                path,
                format!("{container_path:?} is already a mount point of this container"),
            );
        }
    };
    for (j, mp) in c.mount_points.iter().enumerate() {
        let mpp = format!("{p}.mountPoints[{j}]");
        if mp.source_volume.is_empty() {
            found.error(format!("{mpp}.sourceVolume"), "is required");
        } else if def.volume(&mp.source_volume).is_none() {
            found.error(
                format!("{mpp}.sourceVolume"),
                format!("{:?} is not a volume of the task", mp.source_volume),
            );
        }
        destination(format!("{mpp}.containerPath"), &mp.container_path, found);
    }
    if let Some(lp) = &c.linux_parameters {
        for (j, t) in lp.tmpfs.iter().enumerate() {
            let tp = format!("{p}.linuxParameters.tmpfs[{j}].containerPath");
            destination(tp, &t.container_path, found);
        }
    }
    for (j, vf) in c.volumes_from.iter().enumerate() {
        let vp = format!("{p}.volumesFrom[{j}].sourceContainer");
        match def.container(&vf.source_container) {
            _ if vf.source_container.is_empty() => found.error(vp, "is required"),
            None => found.error(
                vp,
                format!("{:?} is not a container of the task", vf.source_container),
            ),
            Some((k, _)) if k == i => {
                found.error(vp, "a container cannot take volumes from itself")
            }
            Some(_) => {}
        }
    }
}

/// "/data/" and "/data" are the same mount point.
fn normalize(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_string()
    }
}

fn dependencies(
    def: &TaskDefinition,
    i: usize,
    p: &str,
    c: &ContainerDefinition,
    found: &mut Findings,
) {
    for (j, dep) in c.depends_on.iter().enumerate() {
        let dp = format!("{p}.dependsOn[{j}]");
        let target = def.container(&dep.container_name);
        match target {
            None => found.error(
                format!("{dp}.containerName"),
                format!("{:?} is not a container of the task", dep.container_name),
            ),
            Some((k, _)) if k == i => found.error(
                format!("{dp}.containerName"),
                "a container cannot depend on itself",
            ),
            Some(_) => {}
        }
        let Some((_, target)) = target else { continue };
        match &dep.condition {
            Condition::Unknown(cond) => found.error(
                format!("{dp}.condition"),
                format!("{cond:?} is not a condition (START, COMPLETE, SUCCESS or HEALTHY)"),
            ),
            cond @ (Condition::Complete | Condition::Success) if target.is_essential() => found
                .error(
                    format!("{dp}.condition"),
                    format!(
                        "{cond} cannot be used on essential container {:?}: the task would stop \
                         when it exits",
                        target.name
                    ),
                ),
            Condition::Healthy if !has_health_check(target) => found.error(
                format!("{dp}.condition"),
                format!("HEALTHY needs a healthCheck on container {:?}", target.name),
            ),
            _ => {}
        }
    }
}

/// `links`, as ECS checks them: bridge mode only, each `name` or `name:alias` with
/// names of up to 255 letters, digits, hyphens and underscores, naming another container.
fn links(def: &TaskDefinition, i: usize, p: &str, c: &ContainerDefinition, found: &mut Findings) {
    if c.links.is_empty() {
        return;
    }
    let mode = def.network_mode();
    if mode != NetworkMode::Bridge {
        found.error(
            format!("{p}.links"),
            format!("only supported in networkMode bridge, not {mode}"),
        );
        return;
    }
    if c.disable_networking == Some(true) {
        found.error(
            format!("{p}.links"),
            "a container without networking cannot reach linked containers",
        );
    }
    for (j, (link, (name, names))) in c.links.iter().zip(c.linked_containers()).enumerate() {
        let lp = format!("{p}.links[{j}]");
        if let Some(bad) = names.iter().find(|n| !is_link_name(n)) {
            found.error(
                lp,
                format!(
                    "{link:?}: {bad:?} must be 1 to 255 letters, digits, hyphens and underscores"
                ),
            );
            continue;
        }
        match def.container(name) {
            None => found.error(lp, format!("{name:?} is not a container of the task")),
            Some((k, _)) if k == i => found.error(lp, "a container cannot link to itself"),
            Some((_, target)) if target.disable_networking == Some(true) => found.error(
                lp,
                format!("container {name:?} has networking disabled and cannot be reached"),
            ),
            Some(_) => {}
        }
    }
}

fn is_link_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn has_health_check(c: &ContainerDefinition) -> bool {
    c.health_check
        .as_ref()
        .is_some_and(|hc| hc.command.first().is_some_and(|kind| kind != "NONE"))
}

/// Whether an unsupported field says something: describe-task-definition output carries
/// empty lists (`"systemControls": []`) that ask for nothing.
fn given(value: &Option<Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Array(items)) => !items.is_empty(),
        Some(Value::Object(fields)) => !fields.is_empty(),
        Some(_) => true,
    }
}

/// Reports each dependency cycle once, starting at its first container in the document.
fn dependency_cycles(def: &TaskDefinition, found: &mut Findings) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let containers = &def.container_definitions;
    // A link is a dependency too: the linking container starts after the linked one.
    let edges: Vec<Vec<(usize, &str)>> = containers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let depends = c
                .depends_on
                .iter()
                .map(|d| (d.container_name.as_str(), "dependsOn"));
            let links = c.linked_containers().map(|(name, _)| (name, "links"));
            depends
                .chain(links)
                .filter_map(|(name, field)| def.container(name).map(|(k, _)| (k, field)))
                .filter(|&(k, _)| k != i)
                .collect()
        })
        .collect();
    let mut marks = vec![Mark::New; containers.len()];
    for start in 0..containers.len() {
        if marks[start] != Mark::New {
            continue;
        }
        // Depth-first, without recursion: (container, next edge to follow).
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        marks[start] = Mark::OnPath;
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            let Some(&(to, _)) = edges[node].get(*next) else {
                marks[node] = Mark::Done;
                path.pop();
                continue;
            };
            *next += 1;
            match marks[to] {
                Mark::New => {
                    marks[to] = Mark::OnPath;
                    path.push((to, 0));
                }
                Mark::OnPath => {
                    let from = path.iter().position(|&(n, _)| n == to).unwrap_or(0);
                    let mut cycle: Vec<usize> = path[from..].iter().map(|&(n, _)| n).collect();
                    let first = cycle
                        .iter()
                        .enumerate()
                        .min_by_key(|&(_, &n)| n)
                        .map_or(0, |(pos, _)| pos);
                    cycle.rotate_left(first);
                    let mut names: Vec<&str> =
                        cycle.iter().map(|&n| containers[n].name.as_str()).collect();
                    names.push(names[0]);
                    let field = edges[cycle[0]]
                        .iter()
                        .find(|&&(k, _)| k == cycle[1 % cycle.len()])
                        .map_or("dependsOn", |&(_, field)| field);
                    found.error(
                        format!("containerDefinitions[{}].{field}", cycle[0]),
                        format!("dependency cycle {}", names.join(" -> ")),
                    );
                }
                Mark::Done => {}
            }
        }
    }
}

fn ulimits(p: &str, c: &ContainerDefinition, found: &mut Findings) {
    let mut seen = BTreeSet::new();
    for (j, u) in c.ulimits.iter().enumerate() {
        let up = format!("{p}.ulimits[{j}]");
        if ulimit(&u.name).is_none() {
            found.error(
                format!("{up}.name"),
                format!(
                    "{:?} is not a ulimit (core, cpu, data, fsize, locks, memlock, msgqueue, \
                     nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack)",
                    u.name
                ),
            );
        } else if !seen.insert(u.name.as_str()) {
            found.error(format!("{up}.name"), format!("{:?} is set twice", u.name));
        }
        for (field, value) in [("softLimit", u.soft_limit), ("hardLimit", u.hard_limit)] {
            if value < -1 {
                found.error(
                    format!("{up}.{field}"),
                    format!("{value} is not a limit (-1 means unlimited)"),
                );
            }
        }
        if u.soft_limit >= -1
            && u.hard_limit >= -1
            && ulimit_value(u.soft_limit) > ulimit_value(u.hard_limit)
        {
            found.error(
                format!("{up}.softLimit"),
                format!(
                    "{} is greater than hardLimit ({})",
                    u.soft_limit, u.hard_limit
                ),
            );
        }
    }
}

/// Each parameter must live in a namespace the container does not share with the host
/// (the plan's namespaces decide): net.* (and kernel.domainname) fail with networkMode host,
/// IPC parameters with ipcMode host. The runtime refuses the rest; this names the task
/// definition's field.
fn system_controls(def: &TaskDefinition, p: &str, c: &ContainerDefinition, found: &mut Findings) {
    use oci_spec::runtime::LinuxNamespaceType;
    let host_network = def.network_mode() == NetworkMode::Host;
    let host_ipc = def.ipc_mode == Some(IpcMode::Host);
    let own: Vec<LinuxNamespaceType> = crate::plan::namespaces::for_container(def, c)
        .iter()
        .map(|ns| ns.typ())
        .collect();
    let mut seen = BTreeSet::new();
    for (j, sc) in c.system_controls.iter().enumerate() {
        let sp = format!("{p}.systemControls[{j}]");
        if sc.value.is_none() {
            found.error(format!("{sp}.value"), "missing");
        }
        let Some(key) = sc.namespace.as_deref() else {
            found.error(format!("{sp}.namespace"), "missing");
            continue;
        };
        if !seen.insert(key) {
            found.error(format!("{sp}.namespace"), format!("{key:?} is set twice"));
            continue;
        }
        let one = std::collections::HashMap::from([(key.to_string(), String::new())]);
        if let Err(e) = berth_runtime::security::check_sysctls(&one, |kind| own.contains(&kind)) {
            let why = match berth_runtime::security::sysctl_namespace(key) {
                Some(LinuxNamespaceType::Ipc) if host_ipc => {
                    "an IPC parameter is not supported with ipcMode host".to_string()
                }
                Some(_) if host_network => {
                    "a network parameter is not supported with networkMode host".to_string()
                }
                _ => match e {
                    berth_runtime::security::SecurityError::Config { reason, .. } => reason,
                    other => other.to_string(),
                },
            };
            found.error(format!("{sp}.namespace"), format!("{key:?}: {why}"));
        }
    }
}

/// -1 is unlimited, which the kernel spells as the largest value.
fn ulimit_value(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

fn linux_parameters(p: &str, c: &ContainerDefinition, lp: &LinuxParameters, found: &mut Findings) {
    if let Some(caps) = &lp.capabilities {
        for (field, names) in [("add", &caps.add), ("drop", &caps.drop)] {
            for (j, name) in names.iter().enumerate() {
                if capability(name).is_none() {
                    found.error(
                        format!("{p}.capabilities.{field}[{j}]"),
                        format!("{name:?} is not a capability"),
                    );
                }
            }
        }
    }
    for (j, d) in lp.devices.iter().enumerate() {
        let dp = format!("{p}.devices[{j}]");
        if d.host_path.is_empty() {
            found.error(format!("{dp}.hostPath"), "is required");
        } else if !d.host_path.starts_with('/') {
            found.error(
                format!("{dp}.hostPath"),
                format!("{:?} must be an absolute path", d.host_path),
            );
        }
        if let Some(cp) = &d.container_path {
            if !cp.starts_with('/') {
                found.error(
                    format!("{dp}.containerPath"),
                    format!("{cp:?} must be an absolute path"),
                );
            }
        }
        for (k, perm) in d.permissions.iter().enumerate() {
            if !["read", "write", "mknod"].contains(&perm.as_str()) {
                found.error(
                    format!("{dp}.permissions[{k}]"),
                    format!("{perm:?} is not a permission (read, write or mknod)"),
                );
            }
        }
    }
    if let Some(size) = lp.shared_memory_size {
        if size < 1 {
            found.error(
                format!("{p}.sharedMemorySize"),
                format!("{size} MiB must be at least 1"),
            );
        }
    }
    for (j, t) in lp.tmpfs.iter().enumerate() {
        let tp = format!("{p}.tmpfs[{j}]");
        if t.size < 1 {
            found.error(
                format!("{tp}.size"),
                format!("{} MiB must be at least 1", t.size),
            );
        }
        for (k, option) in t.mount_options.iter().enumerate() {
            let name = option.split_once('=').map_or(option.as_str(), |(n, _)| n);
            if !TMPFS_OPTIONS.contains(&name) {
                found.error(
                    format!("{tp}.mountOptions[{k}]"),
                    format!("{option:?} is not a tmpfs mount option ECS accepts"),
                );
            }
        }
    }
    if let Some(swap) = lp.max_swap {
        if swap < 0 {
            found.error(format!("{p}.maxSwap"), format!("{swap} is negative"));
        } else if c.memory.is_none() {
            found.error(
                format!("{p}.maxSwap"),
                "needs memory on the container: swap is counted on top of it",
            );
        }
    }
    if let Some(s) = lp.swappiness {
        if !(0..=100).contains(&s) {
            found.error(
                format!("{p}.swappiness"),
                format!("{s} must be between 0 and 100"),
            );
        }
    }
}

fn log_configuration(p: &str, log: &LogConfiguration, found: &mut Findings) {
    found.ignored(given(&log.secret_options), format!("{p}.secretOptions"));
    match log.log_driver.as_str() {
        "" => found.error(format!("{p}.logDriver"), "is required"),
        "json-file" => {}
        driver => {
            found.warn(
                format!("{p}.logDriver"),
                format!(
                    "{driver} is not supported; the container's output is written to log \
                     files as with json-file"
                ),
            );
            return;
        }
    }
    let max_size = log.options.get("max-size");
    if let Some(size) = max_size {
        if let Err(e) = parse_byte_size(size) {
            found.error(format!("{p}.options.max-size"), e);
        }
    }
    if let Some(files) = log.options.get("max-file") {
        match files.parse::<u32>() {
            Ok(n) if n >= 1 => {
                if max_size.is_none() && n > 1 {
                    found.error(
                        format!("{p}.options.max-file"),
                        "needs max-size: files rotate when they reach it",
                    );
                }
            }
            _ => found.error(
                format!("{p}.options.max-file"),
                format!("{files:?} must be a whole number of files, at least 1"),
            ),
        }
    }
    for key in log.options.keys() {
        if key != "max-size" && key != "max-file" {
            found.warn(
                format!("{p}.options.{key}"),
                "not supported by berth; ignored",
            );
        }
    }
}

fn names_and_dns(def: &TaskDefinition, p: &str, c: &ContainerDefinition, found: &mut Findings) {
    if let Some(name) = &c.hostname {
        if !is_hostname(name) {
            found.error(
                format!("{p}.hostname"),
                format!(
                    "{name:?} must be 1 to 64 letters, digits, hyphens and dots, not starting \
                     with a hyphen or dot"
                ),
            );
        } else if def.network_mode() == NetworkMode::Host {
            found.warn(
                format!("{p}.hostname"),
                "has no effect in host network mode: the container has the host's hostname",
            );
        }
    }
    for (j, h) in c.extra_hosts.iter().enumerate() {
        let hp = format!("{p}.extraHosts[{j}]");
        if h.hostname.is_empty() || h.hostname.chars().any(|c| c.is_whitespace() || c == '#') {
            found.error(
                format!("{hp}.hostname"),
                format!("{:?} is not a host name", h.hostname),
            );
        }
        if h.ip_address.parse::<IpAddr>().is_err() {
            found.error(
                format!("{hp}.ipAddress"),
                format!("{:?} is not an IP address", h.ip_address),
            );
        }
    }
    for (j, server) in c.dns_servers.iter().enumerate() {
        if server.parse::<IpAddr>().is_err() {
            found.error(
                format!("{p}.dnsServers[{j}]"),
                format!("{server:?} is not an IP address"),
            );
        }
    }
    for (j, domain) in c.dns_search_domains.iter().enumerate() {
        if domain.is_empty() || domain.len() > 253 || domain.chars().any(char::is_whitespace) {
            found.error(
                format!("{p}.dnsSearchDomains[{j}]"),
                format!("{domain:?} is not a domain"),
            );
        }
    }
}

fn is_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['-', '.'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

fn health_check(p: &str, hc: &HealthCheck, found: &mut Findings) {
    let cp = format!("{p}.command");
    match hc.command.first().map(String::as_str) {
        None => found.error(cp, "is required"),
        Some("CMD") if hc.command.len() < 2 => found.error(cp, "CMD needs a program to run"),
        Some("CMD-SHELL") if hc.command[1..].iter().all(|s| s.trim().is_empty()) => {
            found.error(cp, "CMD-SHELL needs a shell command")
        }
        Some("CMD" | "CMD-SHELL" | "NONE") => {}
        Some(other) => found.error(
            cp,
            format!("must start with CMD, CMD-SHELL or NONE, not {other:?}"),
        ),
    }
    let ranges = [
        ("interval", hc.interval, 5, 300),
        ("timeout", hc.timeout, 2, 60),
        ("retries", hc.retries, 1, 10),
        ("startPeriod", hc.start_period, 0, 300),
    ];
    for (field, value, lo, hi) in ranges {
        if let Some(v) = value {
            if !(lo..=hi).contains(&v) {
                found.error(
                    format!("{p}.{field}"),
                    format!("{v} must be between {lo} and {hi}"),
                );
            }
        }
    }
}

/// Docker's `--security-opt` forms that ECS passes on; SELinux labels and Windows
/// credential specs are accepted and ignored.
fn security_options(p: &str, c: &ContainerDefinition, found: &mut Findings) {
    for (k, option) in c.docker_security_options.iter().enumerate() {
        let path = format!("{p}.dockerSecurityOptions[{k}]");
        match SecurityOption::parse(option) {
            Ok(SecurityOption::Label(_)) => {
                found.warn(path, "SELinux labels are not applied by berth; ignored")
            }
            Ok(SecurityOption::CredentialSpec(_)) => {
                found.warn(path, "credential specs are for Windows containers; ignored")
            }
            Ok(_) => {}
            Err(e) => found.error(path, e),
        }
    }
}

/// ECS's limits: `enabled` is required, at most 50 ignored exit codes, and an attempt
/// period of 60 to 1800 seconds.
fn restart_policy(p: &str, rp: &RestartPolicy, found: &mut Findings) {
    if rp.enabled.is_none() {
        found.error(format!("{p}.enabled"), "is required");
    }
    if rp.ignored_exit_codes.len() > MAX_IGNORED_EXIT_CODES {
        found.error(
            format!("{p}.ignoredExitCodes"),
            format!(
                "has {} exit codes; at most {MAX_IGNORED_EXIT_CODES} are allowed",
                rp.ignored_exit_codes.len()
            ),
        );
    }
    for (k, code) in rp.ignored_exit_codes.iter().enumerate() {
        if i32::try_from(*code).is_err() {
            found.error(
                format!("{p}.ignoredExitCodes[{k}]"),
                format!("{code} is not an exit code"),
            );
        }
    }
    if let Some(period) = rp.restart_attempt_period {
        if !(60..=1800).contains(&period) {
            found.error(
                format!("{p}.restartAttemptPeriod"),
                format!("{period} must be between 60 and 1800"),
            );
        }
    }
}

/// Container CPU and memory must fit in the task's, when the task sets them.
fn task_totals(def: &TaskDefinition, found: &mut Findings) {
    let containers = &def.container_definitions;
    if let Some(Ok(task_cpu)) = def.cpu.as_deref().map(parse_cpu_units) {
        let total: u64 = containers
            .iter()
            .filter_map(|c| c.cpu)
            .map(|cpu| u64::try_from(cpu).unwrap_or(0))
            .sum();
        if total > task_cpu {
            found.error(
                "cpu",
                format!(
                    "the containers' cpu adds up to {total} units, more than the task's {task_cpu}"
                ),
            );
        }
    }
    if let Some(Ok(task_mib)) = def.memory.as_deref().map(parse_memory_mib) {
        for (i, c) in containers.iter().enumerate() {
            if let Some(m) = c.memory.filter(|&m| m > 0 && m as u64 > task_mib) {
                found.error(
                    format!("containerDefinitions[{i}].memory"),
                    format!("{m} MiB is more than the task's memory ({task_mib} MiB)"),
                );
            }
        }
        let reserved: u64 = containers
            .iter()
            .filter_map(|c| c.memory_reservation.or(c.memory))
            .map(|m| u64::try_from(m).unwrap_or(0))
            .sum();
        if reserved > task_mib {
            found.error(
                "memory",
                format!(
                    "the containers reserve {reserved} MiB, more than the task's {task_mib} MiB"
                ),
            );
        }
    }
}
