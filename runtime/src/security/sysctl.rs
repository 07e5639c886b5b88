//! Which `linux.sysctl` keys a container may set. The init writes them under its own
//! /proc/sys, but most kernel parameters are not namespaced: writing one from a container
//! changes the host. As runc does, a key is accepted only when it lives in a namespace the
//! container does not share with the host.

use std::collections::HashMap;

use oci_spec::runtime::LinuxNamespaceType;

use super::SecurityError;

/// The IPC parameters the kernel keeps per IPC namespace (besides `fs.mqueue.*`).
const IPC: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The namespace that holds the kernel parameter `key`, or None when it is the host's
/// alone. `kernel.hostname` counts as none: the spec's `hostname` sets it.
pub fn sysctl_namespace(key: &str) -> Option<LinuxNamespaceType> {
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        Some(LinuxNamespaceType::Network)
    } else if key == "kernel.domainname" {
        Some(LinuxNamespaceType::Uts)
    } else {
        None
    }
}

/// Refuses a key that is not a parameter name, or whose namespace is the host's:
/// `separate(kind)` says whether the container has a namespace of that kind of its own.
pub fn check_sysctls(
    sysctl: &HashMap<String, String>,
    separate: impl Fn(LinuxNamespaceType) -> bool,
) -> Result<(), SecurityError> {
    let mut keys: Vec<&String> = sysctl.keys().collect();
    keys.sort();
    for key in keys {
        let refuse = |reason: String| SecurityError::Config {
            field: format!("linux.sysctl[{key}]"),
            reason,
        };
        if key.is_empty() || key.contains('/') || key.split('.').any(str::is_empty) {
            return Err(refuse("not a kernel parameter name".into()));
        }
        if key == "kernel.hostname" {
            return Err(refuse("set the hostname field instead".into()));
        }
        match sysctl_namespace(key) {
            Some(kind) if separate(kind) => {}
            Some(kind) => {
                // The spec's names (oci-spec shows the network kind as "net").
                let name = match kind {
                    LinuxNamespaceType::Network => "network",
                    LinuxNamespaceType::Ipc => "ipc",
                    _ => "uts",
                };
                return Err(refuse(format!(
                    "needs a {name} namespace of the container's own; in the host's it \
                     would change the host"
                )));
            }
            None => {
                return Err(refuse(
                    "not namespaced: setting it would change the host's kernel".into(),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(keys: &[&str], own: &[LinuxNamespaceType]) -> Result<(), String> {
        let sysctl = keys.iter().map(|k| (k.to_string(), "1".into())).collect();
        check_sysctls(&sysctl, |kind| own.contains(&kind)).map_err(|e| e.to_string())
    }

    #[test]
    fn namespaced_keys_pass_with_their_namespace() {
        use LinuxNamespaceType::*;
        let own = [Ipc, Network, Uts];
        let keys = [
            "net.ipv4.ping_group_range",
            "net.core.somaxconn",
            "kernel.shmmax",
            "kernel.shm_rmid_forced",
            "fs.mqueue.msg_max",
            "kernel.domainname",
        ];
        assert_eq!(check(&keys, &own), Ok(()));
    }

    #[test]
    fn a_key_in_a_namespace_shared_with_the_host_is_refused() {
        use LinuxNamespaceType::*;
        assert_eq!(
            check(&["net.ipv4.ip_forward"], &[Ipc, Uts]),
            Err(
                "linux.sysctl[net.ipv4.ip_forward]: needs a network namespace of the \
                 container's own; in the host's it would change the host"
                    .into()
            )
        );
        assert!(check(&["kernel.msgmax"], &[Network]).is_err());
        assert!(check(&["fs.mqueue.queues_max"], &[Network]).is_err());
        assert!(check(&["kernel.domainname"], &[Network, Ipc]).is_err());
    }

    #[test]
    fn host_only_and_malformed_keys_are_refused() {
        use LinuxNamespaceType::*;
        let own = [Ipc, Network, Uts, Mount, Pid, Cgroup, User];
        assert_eq!(
            check(&["vm.overcommit_memory"], &own),
            Err(
                "linux.sysctl[vm.overcommit_memory]: not namespaced: setting it would \
                 change the host's kernel"
                    .into()
            )
        );
        assert!(check(&["kernel.panic"], &own).is_err());
        assert!(
            check(&["kernel.hostname"], &own)
                .unwrap_err()
                .contains("hostname field")
        );
        for bad in [
            "",
            "net..core",
            "net.ipv4/../../x",
            ".net.core",
            "net.core.",
        ] {
            assert!(
                check(&[bad], &own)
                    .unwrap_err()
                    .contains("not a kernel parameter name"),
                "{bad:?}"
            );
        }
    }
}
