//! The container's capabilities: Docker's default set, changed by
//! `linuxParameters.capabilities` with Docker's rules for "ALL".

use std::collections::HashSet;

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

use crate::taskdef::names::{CAPABILITIES, CapabilityName, capability};
use crate::taskdef::{ContainerDefinition, KernelCapabilities};

/// What Docker gives a container that asks for nothing.
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Every capability the kernel knows.
pub fn all_capabilities() -> Capabilities {
    CAPABILITIES.iter().map(|(_, c)| *c).collect()
}

/// The capability set: everything for a privileged container; otherwise, "ALL" in
/// `add` means every capability but those dropped, "ALL" in `drop` means only those
/// added, and else the defaults less `drop` plus `add` (an added name wins over the
/// same name dropped).
pub fn capability_set(def: &ContainerDefinition) -> Capabilities {
    if def.is_privileged() {
        return all_capabilities();
    }
    let empty = KernelCapabilities::default();
    let wanted = def
        .linux_parameters
        .as_ref()
        .and_then(|lp| lp.capabilities.as_ref())
        .unwrap_or(&empty);
    let (add_all, add) = names(&wanted.add);
    let (drop_all, drop) = names(&wanted.drop);
    if add_all {
        all_capabilities().difference(&drop).copied().collect()
    } else if drop_all {
        add
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .copied()
            .filter(|c| !drop.contains(c))
            .chain(add)
            .collect()
    }
}

/// The same set bounding, effective and permitted; nothing inheritable or ambient, so a
/// non-root process loses them at exec as it does under Docker.
pub fn linux_capabilities(set: &Capabilities) -> LinuxCapabilities {
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(set.clone()));
    caps.set_effective(Some(set.clone()));
    caps.set_permitted(Some(set.clone()));
    caps.set_inheritable(None);
    caps.set_ambient(None);
    caps
}

/// Whether "ALL" is among the names, and the capabilities named. Unknown names were
/// refused by validation.
fn names(list: &[String]) -> (bool, HashSet<Capability>) {
    let mut all = false;
    let mut set = HashSet::new();
    for name in list {
        match capability(name) {
            Some(CapabilityName::All) => all = true,
            Some(CapabilityName::One(c)) => {
                set.insert(c);
            }
            None => {}
        }
    }
    (all, set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taskdef::LinuxParameters;

    fn with(add: &[&str], drop: &[&str]) -> ContainerDefinition {
        ContainerDefinition {
            linux_parameters: Some(LinuxParameters {
                capabilities: Some(KernelCapabilities {
                    add: add.iter().map(|s| s.to_string()).collect(),
                    drop: drop.iter().map(|s| s.to_string()).collect(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn set(caps: &[Capability]) -> Capabilities {
        caps.iter().copied().collect()
    }

    #[test]
    fn docker_defaults_when_nothing_asked() {
        let caps = capability_set(&ContainerDefinition::default());
        assert_eq!(caps, set(&DEFAULT_CAPABILITIES));
        assert_eq!(caps.len(), 14);
        assert!(!caps.contains(&Capability::SysAdmin));
    }

    #[test]
    fn add_and_drop_change_the_defaults() {
        let caps = capability_set(&with(
            &["NET_ADMIN", "CAP_SYS_TIME"],
            &["NET_RAW", "cap_mknod"],
        ));
        assert!(caps.contains(&Capability::NetAdmin));
        assert!(caps.contains(&Capability::SysTime));
        assert!(!caps.contains(&Capability::NetRaw));
        assert!(!caps.contains(&Capability::Mknod));
        assert_eq!(caps.len(), 14);
    }

    #[test]
    fn added_wins_over_dropped() {
        let caps = capability_set(&with(&["KILL"], &["KILL"]));
        assert!(caps.contains(&Capability::Kill));
    }

    #[test]
    fn drop_all_keeps_only_added() {
        assert_eq!(
            capability_set(&with(&["NET_BIND_SERVICE"], &["ALL"])),
            set(&[Capability::NetBindService])
        );
        assert!(capability_set(&with(&[], &["ALL"])).is_empty());
    }

    #[test]
    fn add_all_keeps_everything_not_dropped() {
        let caps = capability_set(&with(&["ALL"], &["SYS_ADMIN"]));
        assert_eq!(caps.len(), 40);
        assert!(!caps.contains(&Capability::SysAdmin));
        assert!(caps.contains(&Capability::SysModule));
    }

    #[test]
    fn privileged_has_every_capability() {
        let mut def = with(&[], &["ALL"]);
        def.privileged = Some(true);
        assert_eq!(capability_set(&def).len(), 41);
    }

    #[test]
    fn nothing_inheritable_or_ambient() {
        let caps = linux_capabilities(&set(&DEFAULT_CAPABILITIES));
        assert_eq!(caps.bounding().as_ref().map(HashSet::len), Some(14));
        assert_eq!(caps.effective(), caps.permitted());
        assert_eq!(caps.inheritable(), &None);
        assert_eq!(caps.ambient(), &None);
    }
}
