//! One container's plan: its OCI spec assembled from the definition, the image and
//! the task, with its start, stop, health and log settings.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use oci_spec::runtime::{
    Linux, PosixRlimit, PosixRlimitBuilder, Process, Root, Spec, User, get_default_maskedpaths,
    get_default_readonly_paths,
};

use super::{
    ContainerInput, ContainerPlan, DEFAULT_LOG, DEFAULT_RESTART_ATTEMPT_PERIOD,
    DEFAULT_STOP_TIMEOUT, HealthCheck, LogOptions, Restart, TaskContext, capabilities, devices,
    mounts, namespaces, process, resources,
};
use super::{ResolvedUser, capability_set, default_device_rules, default_seccomp, resolve_user};
use crate::taskdef::names::ulimit;
use crate::taskdef::units::parse_byte_size;
use crate::taskdef::{Condition, ContainerDefinition, FieldError, NetworkMode, TaskDefinition};

pub(super) fn container_plan(
    def: &TaskDefinition,
    index: usize,
    task: &TaskContext,
    task_cgroup: &str,
    input: &ContainerInput,
) -> Result<ContainerPlan, Vec<FieldError>> {
    let c = &def.container_definitions[index];
    let p = format!("containerDefinitions[{index}]");
    let mut errors = Vec::new();

    let hostname = (def.network_mode() != NetworkMode::Host).then(|| {
        c.hostname
            .clone()
            .unwrap_or_else(|| task.task_id.chars().take(12).collect())
    });

    // The definition's user, else the image's, else root.
    let user = match (&c.user, &input.image.user) {
        (Some(u), _) => {
            resolve_user(u, &input.users).map_err(|e| FieldError::new(format!("{p}.user"), e))
        }
        (None, Some(u)) => resolve_user(u, &input.users)
            .map_err(|e| FieldError::new(format!("{p}.image"), format!("the image's user: {e}"))),
        (None, None) => {
            resolve_user("", &input.users).map_err(|e| FieldError::new(format!("{p}.user"), e))
        }
    };
    let user = match user {
        Ok(u) => Some(u),
        Err(e) => {
            errors.push(e);
            None
        }
    };

    let args = process::command_line(c, &input.image);
    if args.is_empty() {
        errors.push(FieldError::new(
            format!("{p}.command"),
            "nothing to run: neither the definition (entryPoint, command) nor the image \
             (Entrypoint, Cmd) gives a command",
        ));
    }
    let Some(user) = user.filter(|_| errors.is_empty()) else {
        return Err(errors);
    };

    let caps = capability_set(c);
    let mut process = Process::default();
    let terminal = c.pseudo_terminal == Some(true);
    process.set_terminal(Some(terminal));
    process.set_console_size(None);
    process.set_user(oci_user(&user));
    process.set_args(Some(args));
    process.set_env(Some(process::environment(
        &input.image.env,
        &input.environment_files,
        &c.environment,
        hostname.as_deref(),
        &user.home,
        terminal,
    )));
    process.set_cwd(PathBuf::from(process::working_dir(c, &input.image)));
    process.set_capabilities(Some(capabilities::linux_capabilities(&caps)));
    process.set_rlimits(rlimits(c));
    process.set_no_new_privileges(Some(c.no_new_privileges()));
    process.set_oom_score_adj(None);
    process.set_apparmor_profile(c.apparmor_profile());
    process.set_selinux_label(None);

    let privileged = c.is_privileged();
    let namespaces = namespaces::for_container(def, c);
    let shares_task_namespaces = namespaces.iter().any(|ns| ns.path().is_some());
    let mut linux = Linux::default();
    linux.set_resources(Some(resources::container_resources(
        c,
        default_device_rules(privileged),
    )));
    linux.set_cgroups_path(Some(PathBuf::from(format!("{task_cgroup}/{}", c.name))));
    linux.set_namespaces(Some(namespaces));
    linux.set_devices(None);
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);
    linux.set_sysctl((!c.system_controls.is_empty()).then(|| {
        c.system_controls
            .iter()
            .filter_map(|sc| Some((sc.namespace.clone()?, sc.value.clone()?)))
            .collect()
    }));
    linux.set_seccomp((!privileged).then(|| default_seccomp(&caps)));
    linux.set_masked_paths(Some(if privileged {
        Vec::new()
    } else {
        masked_paths()
    }));
    linux.set_readonly_paths(Some(if privileged {
        Vec::new()
    } else {
        get_default_readonly_paths()
    }));

    let (mounts, files) = mounts::container_mounts(def, index, &task.task_dir, hostname.as_deref());
    let mut root = Root::default();
    root.set_path(PathBuf::from("rootfs"));
    root.set_readonly(Some(c.is_readonly_root()));

    let mut spec = Spec::default();
    spec.set_version("1.0.2".to_string());
    spec.set_root(Some(root));
    spec.set_mounts(Some(mounts));
    spec.set_process(Some(process));
    spec.set_hostname(hostname);
    spec.set_domainname(None);
    spec.set_hooks(None);
    spec.set_annotations(Some(annotations(def, c, task, &input.image.labels)));
    spec.set_linux(Some(linux));

    Ok(ContainerPlan {
        name: c.name.clone(),
        image: c.image.clone(),
        essential: c.is_essential(),
        depends_on: depends_on(c),
        stop_timeout: c.stop_timeout.map_or(DEFAULT_STOP_TIMEOUT, seconds),
        start_timeout: c.start_timeout.map(seconds),
        log: log_options(c),
        health_check: health_check(c),
        restart: restart(c),
        shares_task_namespaces,
        init: c.init_process_enabled(),
        interactive: c.interactive == Some(true),
        port_mappings: c.port_mappings.clone(),
        files,
        devices: devices::device_requests(c),
        spec,
    })
}

/// `dependsOn`, and START on each linked container that `dependsOn` does not name: as
/// with Docker links, a container starts after the containers it links to.
fn depends_on(c: &ContainerDefinition) -> Vec<(String, Condition)> {
    let mut deps: Vec<(String, Condition)> = c
        .depends_on
        .iter()
        .map(|d| (d.container_name.clone(), d.condition.clone()))
        .collect();
    for (name, _) in c.linked_containers() {
        if !deps.iter().any(|(n, _)| n == name) {
            deps.push((name.to_string(), Condition::Start));
        }
    }
    deps
}

fn seconds(s: i64) -> Duration {
    Duration::from_secs(u64::try_from(s).unwrap_or(0))
}

fn oci_user(u: &ResolvedUser) -> User {
    let mut user = User::default();
    user.set_uid(u.uid);
    user.set_gid(u.gid);
    user.set_additional_gids((!u.additional_gids.is_empty()).then(|| u.additional_gids.clone()));
    user
}

/// Docker's masked paths: the runtime spec's defaults plus powercap, whose energy
/// counters leak what other tenants compute.
fn masked_paths() -> Vec<String> {
    let mut paths = get_default_maskedpaths();
    paths.push("/sys/devices/virtual/powercap".to_string());
    paths
}

/// Only the ulimits given; nothing is set by default.
fn rlimits(c: &ContainerDefinition) -> Option<Vec<PosixRlimit>> {
    if c.ulimits.is_empty() {
        return None;
    }
    let limit = |v: i64| u64::try_from(v).unwrap_or(u64::MAX);
    Some(
        c.ulimits
            .iter()
            .filter_map(|u| {
                PosixRlimitBuilder::default()
                    .typ(ulimit(&u.name)?)
                    .soft(limit(u.soft_limit))
                    .hard(limit(u.hard_limit))
                    .build()
                    .ok()
            })
            .collect(),
    )
}

/// The image's labels, then `dockerLabels`, then the keys the ECS agent sets, which
/// always win.
fn annotations(
    def: &TaskDefinition,
    c: &ContainerDefinition,
    task: &TaskContext,
    image_labels: &BTreeMap<String, String>,
) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = image_labels.clone().into_iter().collect();
    out.extend(c.docker_labels.clone());
    out.insert("com.amazonaws.ecs.cluster".into(), "default".into());
    out.insert(
        "com.amazonaws.ecs.task-definition-family".into(),
        def.family.clone(),
    );
    if let Some(revision) = task.revision {
        out.insert(
            "com.amazonaws.ecs.task-definition-version".into(),
            revision.to_string(),
        );
    }
    out.insert("com.amazonaws.ecs.container-name".into(), c.name.clone());
    if let Some(arn) = &task.task_arn {
        out.insert("com.amazonaws.ecs.task-arn".into(), arn.clone());
    }
    out.insert("dev.berth.task-id".into(), task.task_id.clone());
    if c.init_process_enabled() {
        out.insert(
            berth_runtime::process::reaper::INIT_ANNOTATION.into(),
            "true".into(),
        );
    }
    out
}

/// json-file's max-size and max-file; [`DEFAULT_LOG`] otherwise.
fn log_options(c: &ContainerDefinition) -> LogOptions {
    let Some(log) = c
        .log_configuration
        .as_ref()
        .filter(|l| l.log_driver == "json-file")
    else {
        return DEFAULT_LOG;
    };
    LogOptions {
        max_size_bytes: log
            .options
            .get("max-size")
            .and_then(|s| parse_byte_size(s).ok()),
        max_files: log
            .options
            .get("max-file")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1),
    }
}

fn restart(c: &ContainerDefinition) -> Option<Restart> {
    let rp = c
        .restart_policy
        .as_ref()
        .filter(|rp| rp.enabled == Some(true))?;
    Some(Restart {
        ignored_exit_codes: rp
            .ignored_exit_codes
            .iter()
            .filter_map(|&code| i32::try_from(code).ok())
            .collect(),
        attempt_period: rp
            .restart_attempt_period
            .map_or(DEFAULT_RESTART_ATTEMPT_PERIOD, seconds),
    })
}

fn health_check(c: &ContainerDefinition) -> Option<HealthCheck> {
    let hc = c.health_check.as_ref()?;
    let command = match hc.command.split_first()? {
        (kind, rest) if kind == "CMD" => rest.to_vec(),
        (kind, rest) if kind == "CMD-SHELL" => {
            vec!["/bin/sh".into(), "-c".into(), rest.join(" ")]
        }
        _ => return None,
    };
    Some(HealthCheck {
        command,
        interval: seconds(hc.interval.unwrap_or(30)),
        timeout: seconds(hc.timeout.unwrap_or(5)),
        retries: hc.retries.and_then(|r| u32::try_from(r).ok()).unwrap_or(3),
        start_period: seconds(hc.start_period.unwrap_or(0)),
    })
}
