//! Which devices a container may use: Docker's default cgroup allowlist, plus the host
//! devices of `linuxParameters.devices`, which the caller looks up (major and minor
//! numbers are host facts) and hands back as [`DeviceNode`]s.

use std::path::PathBuf;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use crate::taskdef::ContainerDefinition;

/// A host device the definition asks for; the caller stats `host_path` and passes the
/// result to [`super::ContainerPlan::add_device_nodes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRequest {
    /// The node on the host.
    pub host_path: PathBuf,
    /// Where it is created in the container.
    pub container_path: PathBuf,
    /// cgroup access: some of "r", "w", "m".
    pub access: String,
}

/// Character or block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// A character device.
    Char,
    /// A block device.
    Block,
}

/// What stat(2) says about a host device node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceNode {
    /// Character or block.
    pub kind: DeviceKind,
    /// Major number.
    pub major: i64,
    /// Minor number.
    pub minor: i64,
    /// Permission bits.
    pub file_mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// The devices of `linuxParameters.devices`, permissions as cgroup access letters (all
/// three when none are given).
pub fn device_requests(def: &ContainerDefinition) -> Vec<DeviceRequest> {
    let Some(lp) = &def.linux_parameters else {
        return Vec::new();
    };
    lp.devices
        .iter()
        .map(|d| {
            let access = if d.permissions.is_empty() {
                "rwm".to_string()
            } else {
                [("read", 'r'), ("write", 'w'), ("mknod", 'm')]
                    .iter()
                    .filter(|(name, _)| d.permissions.iter().any(|p| p == name))
                    .map(|(_, letter)| *letter)
                    .collect()
            };
            DeviceRequest {
                host_path: PathBuf::from(&d.host_path),
                container_path: PathBuf::from(d.container_path.as_deref().unwrap_or(&d.host_path)),
                access,
            }
        })
        .collect()
}

/// Deny everything, then allow what Docker allows every container: creating any node
/// (using it is another matter), the standard character devices, and the container's
/// ptys. A privileged container may use every device.
pub fn default_device_rules(privileged: bool) -> Vec<LinuxDeviceCgroup> {
    if privileged {
        return vec![rule(true, LinuxDeviceType::A, None, None, "rwm")];
    }
    let c = LinuxDeviceType::C;
    vec![
        rule(false, LinuxDeviceType::A, None, None, "rwm"),
        rule(true, c, None, None, "m"),
        rule(true, LinuxDeviceType::B, None, None, "m"),
        rule(true, c, Some(1), Some(3), "rwm"), // null
        rule(true, c, Some(1), Some(5), "rwm"), // zero
        rule(true, c, Some(1), Some(7), "rwm"), // full
        rule(true, c, Some(1), Some(8), "rwm"), // random
        rule(true, c, Some(1), Some(9), "rwm"), // urandom
        rule(true, c, Some(5), Some(0), "rwm"), // tty
        rule(true, c, Some(5), Some(1), "rwm"), // console
        rule(true, c, Some(5), Some(2), "rwm"), // ptmx
        rule(true, c, Some(136), None, "rwm"),  // pts/*
    ]
}

/// The spec's `linux.devices` entry and cgroup rule for a requested host device.
pub fn device_entry(
    request: &DeviceRequest,
    node: &DeviceNode,
) -> (LinuxDevice, LinuxDeviceCgroup) {
    let typ = match node.kind {
        DeviceKind::Char => LinuxDeviceType::C,
        DeviceKind::Block => LinuxDeviceType::B,
    };
    let mut device = LinuxDevice::default();
    device.set_path(request.container_path.clone());
    device.set_typ(typ);
    device.set_major(node.major);
    device.set_minor(node.minor);
    device.set_file_mode(Some(node.file_mode));
    device.set_uid(Some(node.uid));
    device.set_gid(Some(node.gid));
    let allow = rule(
        true,
        typ,
        Some(node.major),
        Some(node.minor),
        &request.access,
    );
    (device, allow)
}

fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(Some(typ));
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some(access.to_string()));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taskdef::{Device, LinuxParameters};

    fn shown(rules: &[LinuxDeviceCgroup]) -> Vec<String> {
        rules
            .iter()
            .map(|r| format!("{} {r}", if r.allow() { "allow" } else { "deny" }))
            .collect()
    }

    #[test]
    fn docker_default_allowlist() {
        assert_eq!(
            shown(&default_device_rules(false)),
            [
                "deny a *:* rwm",
                "allow c *:* m",
                "allow b *:* m",
                "allow c 1:3 rwm",
                "allow c 1:5 rwm",
                "allow c 1:7 rwm",
                "allow c 1:8 rwm",
                "allow c 1:9 rwm",
                "allow c 5:0 rwm",
                "allow c 5:1 rwm",
                "allow c 5:2 rwm",
                "allow c 136:* rwm",
            ]
        );
    }

    #[test]
    fn privileged_allows_all() {
        assert_eq!(shown(&default_device_rules(true)), ["allow a *:* rwm"]);
    }

    #[test]
    fn requested_devices_and_their_access() {
        let def = ContainerDefinition {
            linux_parameters: Some(LinuxParameters {
                devices: vec![
                    Device {
                        host_path: "/dev/fuse".into(),
                        container_path: None,
                        permissions: vec![],
                    },
                    Device {
                        host_path: "/dev/sdb".into(),
                        container_path: Some("/dev/xvdb".into()),
                        permissions: vec!["write".into(), "read".into()],
                    },
                ],
                ..Default::default()
            }),
            ..Default::default()
        };
        let requests = device_requests(&def);
        assert_eq!(
            requests,
            [
                DeviceRequest {
                    host_path: "/dev/fuse".into(),
                    container_path: "/dev/fuse".into(),
                    access: "rwm".into(),
                },
                DeviceRequest {
                    host_path: "/dev/sdb".into(),
                    container_path: "/dev/xvdb".into(),
                    access: "rw".into(),
                },
            ]
        );
        let node = DeviceNode {
            kind: DeviceKind::Block,
            major: 8,
            minor: 16,
            file_mode: 0o660,
            uid: 0,
            gid: 6,
        };
        let (device, allow) = device_entry(&requests[1], &node);
        assert_eq!(device.path(), &PathBuf::from("/dev/xvdb"));
        assert_eq!((device.major(), device.minor()), (8, 16));
        assert_eq!(device.typ(), LinuxDeviceType::B);
        assert_eq!(shown(&[allow]), ["allow b 8:16 rw"]);
    }
}
