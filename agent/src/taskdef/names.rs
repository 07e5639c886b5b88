//! The names a task definition may use for capabilities and ulimits, and the shape ECS
//! requires of family, container and volume names.

use oci_spec::runtime::{Capability, PosixRlimitType};

/// Every capability, by the name ECS uses (without the CAP_ prefix).
pub const CAPABILITIES: [(&str, Capability); 41] = [
    ("AUDIT_CONTROL", Capability::AuditControl),
    ("AUDIT_READ", Capability::AuditRead),
    ("AUDIT_WRITE", Capability::AuditWrite),
    ("BLOCK_SUSPEND", Capability::BlockSuspend),
    ("BPF", Capability::Bpf),
    ("CHECKPOINT_RESTORE", Capability::CheckpointRestore),
    ("CHOWN", Capability::Chown),
    ("DAC_OVERRIDE", Capability::DacOverride),
    ("DAC_READ_SEARCH", Capability::DacReadSearch),
    ("FOWNER", Capability::Fowner),
    ("FSETID", Capability::Fsetid),
    ("IPC_LOCK", Capability::IpcLock),
    ("IPC_OWNER", Capability::IpcOwner),
    ("KILL", Capability::Kill),
    ("LEASE", Capability::Lease),
    ("LINUX_IMMUTABLE", Capability::LinuxImmutable),
    ("MAC_ADMIN", Capability::MacAdmin),
    ("MAC_OVERRIDE", Capability::MacOverride),
    ("MKNOD", Capability::Mknod),
    ("NET_ADMIN", Capability::NetAdmin),
    ("NET_BIND_SERVICE", Capability::NetBindService),
    ("NET_BROADCAST", Capability::NetBroadcast),
    ("NET_RAW", Capability::NetRaw),
    ("PERFMON", Capability::Perfmon),
    ("SETFCAP", Capability::Setfcap),
    ("SETGID", Capability::Setgid),
    ("SETPCAP", Capability::Setpcap),
    ("SETUID", Capability::Setuid),
    ("SYSLOG", Capability::Syslog),
    ("SYS_ADMIN", Capability::SysAdmin),
    ("SYS_BOOT", Capability::SysBoot),
    ("SYS_CHROOT", Capability::SysChroot),
    ("SYS_MODULE", Capability::SysModule),
    ("SYS_NICE", Capability::SysNice),
    ("SYS_PACCT", Capability::SysPacct),
    ("SYS_PTRACE", Capability::SysPtrace),
    ("SYS_RAWIO", Capability::SysRawio),
    ("SYS_RESOURCE", Capability::SysResource),
    ("SYS_TIME", Capability::SysTime),
    ("SYS_TTY_CONFIG", Capability::SysTtyConfig),
    ("WAKE_ALARM", Capability::WakeAlarm),
];

/// What a name in `linuxParameters.capabilities` stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapabilityName {
    /// "ALL".
    All,
    /// One capability.
    One(Capability),
}

/// "NET_ADMIN", "CAP_NET_ADMIN", "net_admin" or "ALL".
pub fn capability(name: &str) -> Option<CapabilityName> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Some(CapabilityName::All);
    }
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    CAPABILITIES
        .iter()
        .find(|(n, _)| *n == bare)
        .map(|(_, c)| CapabilityName::One(*c))
}

/// The ulimit names ECS accepts and the rlimits they set.
pub const ULIMITS: [(&str, PosixRlimitType); 15] = [
    ("core", PosixRlimitType::RlimitCore),
    ("cpu", PosixRlimitType::RlimitCpu),
    ("data", PosixRlimitType::RlimitData),
    ("fsize", PosixRlimitType::RlimitFsize),
    ("locks", PosixRlimitType::RlimitLocks),
    ("memlock", PosixRlimitType::RlimitMemlock),
    ("msgqueue", PosixRlimitType::RlimitMsgqueue),
    ("nice", PosixRlimitType::RlimitNice),
    ("nofile", PosixRlimitType::RlimitNofile),
    ("nproc", PosixRlimitType::RlimitNproc),
    ("rss", PosixRlimitType::RlimitRss),
    ("rtprio", PosixRlimitType::RlimitRtprio),
    ("rttime", PosixRlimitType::RlimitRttime),
    ("sigpending", PosixRlimitType::RlimitSigpending),
    ("stack", PosixRlimitType::RlimitStack),
];

/// The rlimit an ECS ulimit name sets.
pub fn ulimit(name: &str) -> Option<PosixRlimitType> {
    ULIMITS.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

/// ECS's rule for family, container and volume names: up to 255 letters, digits,
/// hyphens and underscores. It also keeps them safe as path components.
pub fn is_ecs_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_take_ecs_and_kernel_spellings() {
        assert_eq!(
            capability("NET_ADMIN"),
            Some(CapabilityName::One(Capability::NetAdmin))
        );
        assert_eq!(
            capability("CAP_NET_ADMIN"),
            Some(CapabilityName::One(Capability::NetAdmin))
        );
        assert_eq!(
            capability("sys_ptrace"),
            Some(CapabilityName::One(Capability::SysPtrace))
        );
        assert_eq!(capability("ALL"), Some(CapabilityName::All));
        assert_eq!(capability("CAP_ALL"), None);
        assert_eq!(capability("NET_WIZARD"), None);
    }

    #[test]
    fn ecs_names() {
        assert!(is_ecs_name("web-server_2"));
        assert!(!is_ecs_name(""));
        assert!(!is_ecs_name("web.server"));
        assert!(!is_ecs_name("../etc"));
        assert!(!is_ecs_name(&"a".repeat(256)));
        assert!(is_ecs_name(&"a".repeat(255)));
    }
}
