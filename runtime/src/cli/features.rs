use serde_json::json;

use crate::error::Result;

/// The runtime-spec features document: what this build and host can do.
pub fn run() -> Result<i32> {
    let doc = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::container::state::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "lazytime",
            "mand", "noatime", "nodev", "nodiratime", "noexec", "nomand", "norelatime",
            "nostrictatime", "nosuid", "private", "rbind", "relatime", "remount", "ro", "rprivate",
            "rshared", "rslave", "runbindable", "rw", "shared", "slave", "strictatime", "suid",
            "sync", "unbindable"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": crate::security::capability_names(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": crate::security::seccomp_actions(),
                "operators": crate::security::seccomp_operators(),
                "archs": crate::security::seccomp_archs(),
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
            },
            "apparmor": {"enabled": true},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {
            "org.opencontainers.runtime-spec.features.runtime": "berth-runtime",
            "org.berth.runtime.version": env!("CARGO_PKG_VERSION")
        }
    });
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    Ok(0)
}
