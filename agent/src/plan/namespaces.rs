//! Which namespaces a container gets, and which it shares with the rest of its task
//! through the task's sandbox process.
//!
//! Shared namespaces are held by one small process per task, the sandbox, that the
//! supervisor starts before any container (as ECS's pause container does). A container
//! joins them through `linux.namespaces[].path` set to
//! `/proc/{sandbox}/ns/<net|ipc|pid>`; the supervisor replaces `{sandbox}` with the
//! sandbox's pid ([`super::TaskPlan::join_sandbox`]) before it hands the spec to the
//! runtime. [`Sandbox::namespaces`] says which namespaces the sandbox must create.

use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::taskdef::{ContainerDefinition, IpcMode, NetworkMode, PidMode, TaskDefinition};

/// Stands for the sandbox's pid in namespace paths until the supervisor knows it.
pub const SANDBOX_PID: &str = "{sandbox}";

/// The process that holds the namespaces a task's containers share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    /// Namespaces it must unshare and keep: net (bring up lo in it) for networkMode
    /// none, bridge and awsvpc (the supervisor connects it to the bridge), pid for pidMode task (the sandbox is its pid 1 and reaps orphans), ipc for
    /// ipcMode task.
    pub namespaces: Vec<LinuxNamespaceType>,
}

/// The sandbox the task needs, if any of its namespaces are shared.
pub fn task_sandbox(def: &TaskDefinition) -> Option<Sandbox> {
    let shared: Vec<LinuxNamespaceType> = [
        (
            def.network_mode() != NetworkMode::Host,
            LinuxNamespaceType::Network,
        ),
        (def.ipc_mode == Some(IpcMode::Task), LinuxNamespaceType::Ipc),
        (def.pid_mode == Some(PidMode::Task), LinuxNamespaceType::Pid),
    ]
    .into_iter()
    .filter_map(|(shared, typ)| shared.then_some(typ))
    .collect();
    (!shared.is_empty()).then_some(Sandbox { namespaces: shared })
}

/// The path a container joins for a namespace of the sandbox.
pub fn sandbox_namespace_path(typ: LinuxNamespaceType) -> PathBuf {
    // oci-spec shows each kind by its name under /proc/PID/ns.
    PathBuf::from(format!("/proc/{SANDBOX_PID}/ns/{typ}"))
}

/// A container's namespaces. Host modes leave a namespace out (the host's is used);
/// shared ones join the sandbox's; the rest are the container's own. Every container has
/// its own mount and cgroup namespaces, and its own UTS namespace so that its `hostname`
/// is its own, except in host network mode where it has the host's hostname.
pub fn container_namespaces(def: &TaskDefinition) -> Vec<LinuxNamespace> {
    let sandbox = task_sandbox(def);
    let shares = |typ| {
        sandbox
            .as_ref()
            .is_some_and(|s: &Sandbox| s.namespaces.contains(&typ))
    };
    let host_network = def.network_mode() == NetworkMode::Host;
    let mut out = Vec::new();
    let mut add = |typ, wanted: bool| {
        if wanted {
            let mut ns = LinuxNamespace::default();
            ns.set_typ(typ);
            if shares(typ) {
                ns.set_path(Some(sandbox_namespace_path(typ)));
            }
            out.push(ns);
        }
    };
    add(LinuxNamespaceType::Pid, def.pid_mode != Some(PidMode::Host));
    add(LinuxNamespaceType::Network, !host_network);
    add(LinuxNamespaceType::Ipc, def.ipc_mode != Some(IpcMode::Host));
    add(LinuxNamespaceType::Uts, !host_network);
    add(LinuxNamespaceType::Mount, true);
    add(LinuxNamespaceType::Cgroup, true);
    out
}

/// One container's namespaces: the task's (`container_namespaces`), except that a
/// container with `disableNetworking` gets a network namespace of its own, with only
/// loopback, as Docker's NetworkDisabled gives.
pub fn for_container(def: &TaskDefinition, c: &ContainerDefinition) -> Vec<LinuxNamespace> {
    let mut namespaces = container_namespaces(def);
    if c.disable_networking == Some(true) {
        namespaces.retain(|ns| ns.typ() != LinuxNamespaceType::Network);
        let mut own = LinuxNamespace::default();
        own.set_typ(LinuxNamespaceType::Network);
        namespaces.push(own);
    }
    namespaces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(network: &str, pid: Option<&str>, ipc: Option<&str>) -> TaskDefinition {
        TaskDefinition {
            network_mode: Some(NetworkMode::from(network.to_string())),
            pid_mode: pid.map(|p| PidMode::from(p.to_string())),
            ipc_mode: ipc.map(|i| IpcMode::from(i.to_string())),
            ..Default::default()
        }
    }

    fn shown(def: &TaskDefinition) -> Vec<String> {
        container_namespaces(def)
            .iter()
            .map(|ns| match ns.path() {
                Some(p) => format!("{} {}", ns.typ(), p.display()),
                None => ns.typ().to_string(),
            })
            .collect()
    }

    #[test]
    fn none_mode_shares_the_sandbox_network() {
        assert_eq!(
            shown(&def("none", None, None)),
            [
                "pid",
                "net /proc/{sandbox}/ns/net",
                "ipc",
                "uts",
                "mnt",
                "cgroup"
            ]
        );
        assert_eq!(
            task_sandbox(&def("none", None, None)),
            Some(Sandbox {
                namespaces: vec![LinuxNamespaceType::Network]
            })
        );
    }

    #[test]
    fn bridge_and_awsvpc_share_the_sandbox_network() {
        for mode in ["bridge", "awsvpc"] {
            assert!(shown(&def(mode, None, None)).contains(&"net /proc/{sandbox}/ns/net".into()));
            assert_eq!(
                task_sandbox(&def(mode, None, None)),
                Some(Sandbox {
                    namespaces: vec![LinuxNamespaceType::Network]
                })
            );
        }
    }

    #[test]
    fn host_mode_uses_the_hosts_network_and_hostname() {
        assert_eq!(
            shown(&def("host", None, None)),
            ["pid", "ipc", "mnt", "cgroup"]
        );
        assert_eq!(task_sandbox(&def("host", None, None)), None);
    }

    #[test]
    fn task_pid_and_ipc_join_the_sandbox() {
        assert_eq!(
            shown(&def("host", Some("task"), Some("task"))),
            [
                "pid /proc/{sandbox}/ns/pid",
                "ipc /proc/{sandbox}/ns/ipc",
                "mnt",
                "cgroup"
            ]
        );
        assert_eq!(
            task_sandbox(&def("none", Some("task"), Some("task"))),
            Some(Sandbox {
                namespaces: vec![
                    LinuxNamespaceType::Network,
                    LinuxNamespaceType::Ipc,
                    LinuxNamespaceType::Pid
                ]
            })
        );
    }

    #[test]
    fn host_pid_and_ipc_leave_them_out() {
        assert_eq!(
            shown(&def("none", Some("host"), Some("host"))),
            ["net /proc/{sandbox}/ns/net", "uts", "mnt", "cgroup"]
        );
        // ipcMode none is a private namespace (without /dev/shm, see mounts).
        assert!(shown(&def("host", None, Some("none"))).contains(&"ipc".to_string()));
    }
}
