//! The syscall filter every unprivileged container gets: the same result as Docker's
//! default seccomp profile, written the other way round.
//!
//! Docker's profile is an allowlist: everything not listed fails with EPERM, and some
//! entries are allowed only when the container holds a capability (CAP_SYS_ADMIN allows
//! mount, setns, unshare, ...). This profile allows by default and lists what Docker's
//! does not allow, each group failing with EPERM unless the container holds one of the
//! capabilities that Docker's profile would allow it for. The two agree on every
//! syscall the kernel has today; a syscall added to the kernel later is allowed here and
//! refused there, which is the trade for a short list that reads as what it blocks.
//!
//! Kept as in Docker: clone3 fails with ENOSYS (so libc falls back to clone, whose flags
//! a filter can see), and clone with a namespace flag fails with EPERM, unless
//! CAP_SYS_ADMIN is held. ptrace and process_vm_readv/writev are allowed, as Docker
//! does on kernels since 4.8. Not reproduced: Docker's limit on personality() arguments,
//! which an allow-by-default filter cannot express for the runtime's rule semantics.

use oci_spec::runtime::{
    Arch, Capabilities, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg,
    LinuxSeccompArgBuilder, LinuxSeccompOperator, LinuxSyscall,
};

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// Namespace flags of clone(2): CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID,
/// NEWNET.
const CLONE_NAMESPACE_FLAGS: [u64; 7] = [
    0x0002_0000,
    0x0200_0000,
    0x0400_0000,
    0x0800_0000,
    0x1000_0000,
    0x2000_0000,
    0x4000_0000,
];

/// clone's flags are its first argument, except on s390x where they are the second.
const CLONE_FLAGS_ARG: usize = if cfg!(target_arch = "s390x") { 1 } else { 0 };

/// Syscalls Docker's default profile does not allow, and the capabilities for which it
/// does. An empty list means never.
const DENIED: &[(&[&str], &[Capability])] = &[
    (&["acct"], &[Capability::SysPacct]),
    // Keyrings are not namespaced.
    (&["add_key", "keyctl", "request_key"], &[]),
    (&["bpf"], &[Capability::SysAdmin, Capability::Bpf]),
    (&["chroot"], &[Capability::SysChroot]),
    (
        &[
            "clock_adjtime",
            "clock_adjtime64",
            "clock_settime",
            "clock_settime64",
            "settimeofday",
            "stime",
        ],
        &[Capability::SysTime],
    ),
    (&["create_module", "get_kernel_syms", "query_module"], &[]),
    (
        &["delete_module", "finit_module", "init_module"],
        &[Capability::SysModule],
    ),
    (
        &[
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "pivot_root",
            "quotactl",
            "quotactl_fd",
            "setns",
            "umount",
            "umount2",
            "unshare",
        ],
        &[Capability::SysAdmin],
    ),
    (
        &[
            "get_mempolicy",
            "mbind",
            "move_pages",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
        &[Capability::SysNice],
    ),
    (
        &["io_uring_enter", "io_uring_register", "io_uring_setup"],
        &[],
    ),
    (&["ioperm", "iopl"], &[Capability::SysRawio]),
    (
        &["kcmp", "pidfd_getfd", "process_madvise", "userfaultfd"],
        &[Capability::SysPtrace],
    ),
    (
        &["kexec_file_load", "kexec_load", "reboot"],
        &[Capability::SysBoot],
    ),
    (
        &["name_to_handle_at", "open_by_handle_at"],
        &[Capability::DacReadSearch],
    ),
    (
        &[
            "nfsservctl",
            "swapoff",
            "swapon",
            "_sysctl",
            "sysfs",
            "uselib",
            "ustat",
            "vm86",
            "vm86old",
        ],
        &[],
    ),
    (
        &["perf_event_open"],
        &[Capability::SysAdmin, Capability::Perfmon],
    ),
    (&["syslog"], &[Capability::SysAdmin, Capability::Syslog]),
    (&["vhangup"], &[Capability::SysTtyConfig]),
];

/// The filter for a container holding `caps`.
pub fn default_seccomp(caps: &Capabilities) -> LinuxSeccomp {
    let mut syscalls = Vec::new();
    for (names, lifted_by) in DENIED {
        if !lifted_by.iter().any(|c| caps.contains(c)) {
            syscalls.push(rule(names, EPERM, None));
        }
    }
    if !caps.contains(&Capability::SysAdmin) {
        syscalls.push(rule(&["clone3"], ENOSYS, None));
        // One rule per flag: rules for a syscall match if any does.
        for flag in CLONE_NAMESPACE_FLAGS {
            let arg = LinuxSeccompArgBuilder::default()
                .index(CLONE_FLAGS_ARG)
                .value(flag)
                .value_two(flag)
                .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
                .build()
                .expect("every field is set and the builder has no checks");
            syscalls.push(rule(&["clone"], EPERM, Some(arg)));
        }
    }
    let mut seccomp = LinuxSeccomp::default();
    seccomp.set_default_action(LinuxSeccompAction::ScmpActAllow);
    seccomp.set_architectures(architectures());
    seccomp.set_syscalls(Some(syscalls));
    seccomp
}

fn rule(names: &[&str], errno: u32, arg: Option<LinuxSeccompArg>) -> LinuxSyscall {
    let mut rule = LinuxSyscall::default();
    rule.set_names(names.iter().map(|n| n.to_string()).collect());
    rule.set_action(LinuxSeccompAction::ScmpActErrno);
    rule.set_errno_ret(Some(errno));
    rule.set_args(arg.map(|a| vec![a]));
    rule
}

/// The native architecture and the compat ones its kernel also runs, so that a 32-bit
/// binary meets the same filter instead of the bad-architecture action.
fn architectures() -> Option<Vec<Arch>> {
    if cfg!(target_arch = "x86_64") {
        Some(vec![
            Arch::ScmpArchX86_64,
            Arch::ScmpArchX86,
            Arch::ScmpArchX32,
        ])
    } else if cfg!(target_arch = "aarch64") {
        Some(vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm])
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::capabilities::DEFAULT_CAPABILITIES;

    fn denied(seccomp: &LinuxSeccomp) -> Vec<(String, Option<u32>, bool)> {
        seccomp
            .syscalls()
            .iter()
            .flatten()
            .flat_map(|r| {
                r.names()
                    .iter()
                    .map(|n| (n.clone(), r.errno_ret(), r.args().is_some()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn is_denied(seccomp: &LinuxSeccomp, name: &str) -> bool {
        denied(seccomp)
            .iter()
            .any(|(n, _, conditional)| n == name && !conditional)
    }

    fn defaults_plus(extra: &[Capability]) -> Capabilities {
        DEFAULT_CAPABILITIES.iter().chain(extra).copied().collect()
    }

    #[test]
    fn default_containers_are_refused_what_docker_refuses() {
        let seccomp = default_seccomp(&defaults_plus(&[]));
        assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActAllow);
        for name in [
            "acct",
            "add_key",
            "bpf",
            "clock_adjtime",
            "clock_settime",
            "create_module",
            "delete_module",
            "finit_module",
            "get_kernel_syms",
            "get_mempolicy",
            "init_module",
            "ioperm",
            "iopl",
            "kcmp",
            "kexec_file_load",
            "kexec_load",
            "keyctl",
            "lookup_dcookie",
            "mbind",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "move_pages",
            "name_to_handle_at",
            "nfsservctl",
            "open_by_handle_at",
            "perf_event_open",
            "pivot_root",
            "query_module",
            "quotactl",
            "quotactl_fd",
            "reboot",
            "request_key",
            "set_mempolicy",
            "setns",
            "settimeofday",
            "stime",
            "swapon",
            "swapoff",
            "sysfs",
            "_sysctl",
            "umount",
            "umount2",
            "unshare",
            "uselib",
            "userfaultfd",
            "ustat",
            "vm86",
            "vm86old",
            "syslog",
        ] {
            assert!(is_denied(&seccomp, name), "{name} is allowed");
        }
        for name in [
            "read",
            "chroot",
            "ptrace",
            "process_vm_readv",
            "sethostname",
        ] {
            assert!(!is_denied(&seccomp, name), "{name} is refused");
        }
    }

    #[test]
    fn refusals_fail_with_eperm_and_clone3_with_enosys() {
        let seccomp = default_seccomp(&defaults_plus(&[]));
        for (name, errno, _) in denied(&seccomp) {
            let expected = if name == "clone3" { ENOSYS } else { EPERM };
            assert_eq!(errno, Some(expected), "{name}");
        }
        assert!(is_denied(&seccomp, "clone3"));
    }

    #[test]
    fn clone_is_refused_only_with_a_namespace_flag() {
        let seccomp = default_seccomp(&defaults_plus(&[]));
        let clone_rules: Vec<&LinuxSyscall> = seccomp
            .syscalls()
            .iter()
            .flatten()
            .filter(|r| r.names() == &["clone"])
            .collect();
        assert_eq!(clone_rules.len(), 7);
        let mut mask = 0;
        for r in clone_rules {
            let args = r.args().as_ref().unwrap();
            assert_eq!(args.len(), 1);
            let arg = args[0];
            assert_eq!(arg.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
            assert_eq!(arg.index(), CLONE_FLAGS_ARG);
            assert_eq!(Some(arg.value()), arg.value_two());
            mask |= arg.value();
        }
        assert_eq!(mask, 0x7E02_0000);
    }

    #[test]
    fn capabilities_lift_their_syscalls() {
        let admin = default_seccomp(&defaults_plus(&[Capability::SysAdmin]));
        for name in [
            "mount",
            "umount2",
            "setns",
            "unshare",
            "pivot_root",
            "bpf",
            "syslog",
        ] {
            assert!(
                !is_denied(&admin, name),
                "{name} still refused with SYS_ADMIN"
            );
        }
        assert!(
            !denied(&admin)
                .iter()
                .any(|(n, _, _)| n == "clone" || n == "clone3")
        );
        assert!(is_denied(&admin, "reboot"));

        let time = default_seccomp(&defaults_plus(&[Capability::SysTime]));
        for name in ["clock_settime", "settimeofday", "clock_adjtime", "stime"] {
            assert!(!is_denied(&time, name), "{name}");
        }
        let ptrace = default_seccomp(&defaults_plus(&[Capability::SysPtrace]));
        assert!(!is_denied(&ptrace, "kcmp"));
        assert!(!is_denied(&ptrace, "userfaultfd"));
        let module = default_seccomp(&defaults_plus(&[Capability::SysModule]));
        assert!(!is_denied(&module, "init_module"));
        assert!(is_denied(&module, "create_module"));
        let boot = default_seccomp(&defaults_plus(&[Capability::SysBoot]));
        assert!(!is_denied(&boot, "reboot"));
        let syslog = default_seccomp(&defaults_plus(&[Capability::Syslog]));
        assert!(!is_denied(&syslog, "syslog"));
        let nice = default_seccomp(&defaults_plus(&[Capability::SysNice]));
        assert!(!is_denied(&nice, "mbind"));
    }

    #[test]
    fn dropping_a_capability_refuses_its_syscall() {
        let caps: Capabilities = DEFAULT_CAPABILITIES
            .iter()
            .copied()
            .filter(|c| *c != Capability::SysChroot)
            .collect();
        assert!(is_denied(&default_seccomp(&caps), "chroot"));
    }

    #[test]
    fn keyrings_and_io_uring_stay_refused_with_every_capability() {
        let all = crate::plan::capabilities::all_capabilities();
        let seccomp = default_seccomp(&all);
        for name in [
            "keyctl",
            "add_key",
            "request_key",
            "io_uring_setup",
            "swapon",
            "uselib",
        ] {
            assert!(is_denied(&seccomp, name), "{name}");
        }
    }
}
