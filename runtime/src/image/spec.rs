//! An image config turned into an OCI runtime spec: the spec `runc spec` writes, not
//! attached to a terminal, running the image's process as the image's user, with the
//! image's labels as annotations. Pure: the image's /etc/passwd and /etc/group come in as
//! text, so every rule here is tested with plain values.

use std::collections::{BTreeSet, HashMap};

use oci_spec::image::{Config, ImageConfiguration};
use oci_spec::runtime::{Process, Spec, User};

use super::error::{ImageError, Result};

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The image's user and group databases, if it has them.
#[derive(Clone, Copy, Debug, Default)]
pub struct ImageFiles<'a> {
    pub passwd: Option<&'a str>,
    pub group: Option<&'a str>,
}

/// What a task definition may change about the image's process (docker's rules: a new
/// entrypoint drops the image's Cmd unless a command is given too).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    /// `NAME=value` entries that replace or extend the image's Env.
    pub env: Vec<String>,
}

/// The spec `runc spec` writes (runc 1.1), with `terminal: false`: what a bundle gets when
/// nothing else is said.
pub fn default_spec() -> Spec {
    let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let value = serde_json::json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [DEFAULT_PATH],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "berth",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    });
    serde_json::from_value(value).expect("the default spec is a valid runtime spec")
}

/// The runtime spec for a container of the image: `default_spec()` with the image's
/// process (Entrypoint + Cmd, Env, WorkingDir, User) and annotations from its Labels,
/// ExposedPorts, StopSignal and platform.
pub fn spec_from_config(
    image: &ImageConfiguration,
    files: ImageFiles<'_>,
    overrides: &Overrides,
) -> Result<Spec> {
    let empty = Config::default();
    let config = image.config().as_ref().unwrap_or(&empty);

    let entrypoint = overrides
        .entrypoint
        .clone()
        .or_else(|| config.entrypoint().clone())
        .unwrap_or_default();
    let cmd = match (&overrides.command, &overrides.entrypoint) {
        (Some(command), _) => command.clone(),
        (None, Some(_)) => Vec::new(),
        (None, None) => config.cmd().clone().unwrap_or_default(),
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();

    let user_spec = overrides
        .user
        .clone()
        .or_else(|| config.user().clone())
        .unwrap_or_default();
    let field = if overrides.user.is_some() {
        "user"
    } else {
        "User"
    };
    let user = resolve_user(&user_spec, files).map_err(|reason| ImageError::Config {
        field: field.to_string(),
        reason,
    })?;

    let mut env = merge_env(config.env().as_deref().unwrap_or(&[]), &overrides.env);
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }

    let cwd = overrides
        .working_dir
        .clone()
        .or_else(|| config.working_dir().clone())
        .filter(|dir| !dir.is_empty())
        .unwrap_or_else(|| "/".to_string());
    if !cwd.starts_with('/') {
        let field = if overrides.working_dir.is_some() {
            "workingDirectory"
        } else {
            "WorkingDir"
        };
        return Err(ImageError::Config {
            field: field.to_string(),
            reason: format!("{cwd:?} is not an absolute path"),
        });
    }

    let mut spec = default_spec();
    let mut process: Process = spec.process().clone().unwrap_or_default();
    let mut oci_user = User::default();
    oci_user.set_uid(user.uid);
    oci_user.set_gid(user.gid);
    if !user.additional_gids.is_empty() {
        oci_user.set_additional_gids(Some(user.additional_gids.clone()));
    }
    process.set_user(oci_user);
    process.set_args(Some(args));
    process.set_env(Some(env));
    process.set_cwd(cwd.into());
    spec.set_process(Some(process));
    spec.set_annotations(Some(annotations(image, config)));
    Ok(spec)
}

/// Image Env, then the overrides: a `NAME=` seen again replaces the earlier value in place.
fn merge_env(image: &[String], extra: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for entry in image.iter().chain(extra) {
        let name = entry.split('=').next().unwrap_or(entry);
        match out
            .iter_mut()
            .find(|e| e.split('=').next().unwrap_or(e) == name)
        {
            Some(existing) => existing.clone_from(entry),
            None => out.push(entry.clone()),
        }
    }
    out
}

/// Annotations as the OCI image spec's conversion rules name them; labels first, so the
/// image's own facts win over a label of the same name.
fn annotations(image: &ImageConfiguration, config: &Config) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = config.labels().clone().unwrap_or_default();
    let mut set = |key: &str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            out.insert(format!("org.opencontainers.image.{key}"), value);
        }
    };
    set("os", Some(image.os().to_string()));
    set("architecture", Some(image.architecture().to_string()));
    set("variant", image.variant().clone());
    set("author", image.author().clone());
    set("created", image.created().clone());
    set("stopSignal", config.stop_signal().clone());
    let ports: Option<String> = config.exposed_ports().as_ref().map(|ports| {
        let sorted: BTreeSet<&String> = ports.iter().collect();
        sorted.into_iter().cloned().collect::<Vec<_>>().join(",")
    });
    set("exposedPorts", ports);
    out
}

/// The uid, gid, supplementary groups and home directory of a config `User` value:
/// `name`, `uid`, `name:group`, `uid:gid`, `name:gid` or `uid:group`, with names looked up
/// in the image's own /etc/passwd and /etc/group. Empty means root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

pub fn resolve_user(
    spec: &str,
    files: ImageFiles<'_>,
) -> std::result::Result<ResolvedUser, String> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let users = files.passwd.map(parse_passwd).unwrap_or_default();
    let groups = files.group.map(parse_group).unwrap_or_default();

    let entry = if user_part.is_empty() {
        users.iter().find(|u| u.uid == 0)
    } else if let Ok(uid) = user_part.parse::<u32>() {
        users.iter().find(|u| u.uid == uid)
    } else {
        match users.iter().find(|u| u.name == user_part) {
            Some(entry) => Some(entry),
            None if files.passwd.is_none() => {
                return Err(format!(
                    "user {user_part:?}: the image has no /etc/passwd to look it up in"
                ));
            }
            None => {
                return Err(format!(
                    "user {user_part:?} not found in the image's /etc/passwd"
                ));
            }
        }
    };
    let uid = match (user_part.parse::<u32>(), entry) {
        (Ok(uid), _) => uid,
        (Err(_), Some(entry)) => entry.uid,
        (Err(_), None) => 0,
    };

    let gid = match group_part {
        None => entry.map_or(0, |e| e.gid),
        Some("") => return Err(format!("{spec:?}: empty group")),
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => match groups.iter().find(|g| g.name == group) {
                Some(g) => g.gid,
                None if files.group.is_none() => {
                    return Err(format!(
                        "group {group:?}: the image has no /etc/group to look it up in"
                    ));
                }
                None => {
                    return Err(format!(
                        "group {group:?} not found in the image's /etc/group"
                    ));
                }
            },
        },
    };

    // Supplementary groups come from /etc/group membership, and only when no group was
    // named explicitly, as docker does.
    let mut additional_gids = Vec::new();
    if let (None, Some(entry)) = (group_part, entry) {
        let mut seen = BTreeSet::new();
        for g in groups.iter().filter(|g| g.members.contains(&entry.name)) {
            if g.gid != gid && seen.insert(g.gid) {
                additional_gids.push(g.gid);
            }
        }
    }
    let home = entry
        .map(|e| e.home.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".to_string());
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        # a comment\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        app:x:1000:1000:App:/home/app:/bin/sh\n\
        broken line\n";
    const GROUP: &str = "root:x:0:\n\
        daemon:x:1:\n\
        app:x:1000:\n\
        audio:x:29:app\n\
        video:x:44:app,daemon\n\
        staff:x:50:other\n";

    fn files() -> ImageFiles<'static> {
        ImageFiles {
            passwd: Some(PASSWD),
            group: Some(GROUP),
        }
    }

    fn image(config: serde_json::Value) -> ImageConfiguration {
        serde_json::from_value(serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-02T03:04:05Z",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": []}
        }))
        .unwrap()
    }

    fn process(spec: &Spec) -> &Process {
        spec.process().as_ref().unwrap()
    }

    #[test]
    fn default_spec_is_runc_spec_without_a_terminal() {
        let spec = default_spec();
        let p = process(&spec);
        assert!(!p.terminal().unwrap_or(true));
        assert_eq!(p.args().as_ref().unwrap(), &["sh"]);
        assert_eq!(
            spec.root().as_ref().unwrap().path().to_str(),
            Some("rootfs")
        );
        assert_eq!(spec.mounts().as_ref().unwrap().len(), 7);
        assert_eq!(
            spec.linux()
                .as_ref()
                .unwrap()
                .namespaces()
                .as_ref()
                .unwrap()
                .len(),
            5
        );
    }

    #[test]
    fn entrypoint_and_cmd_make_the_args() {
        let img = image(serde_json::json!({
            "Entrypoint": ["/bin/app", "--serve"],
            "Cmd": ["--port", "80"],
            "Env": ["PATH=/app/bin", "A=1"],
            "WorkingDir": "/srv"
        }));
        let spec = spec_from_config(&img, files(), &Overrides::default()).unwrap();
        let p = process(&spec);
        assert_eq!(
            p.args().as_ref().unwrap(),
            &["/bin/app", "--serve", "--port", "80"]
        );
        assert_eq!(
            p.env().as_ref().unwrap(),
            &["PATH=/app/bin", "A=1", "HOME=/root"]
        );
        assert_eq!(p.cwd().to_str(), Some("/srv"));
        assert_eq!(p.user().uid(), 0);
    }

    #[test]
    fn overrides_follow_docker_rules() {
        let img = image(serde_json::json!({
            "Entrypoint": ["/bin/app"],
            "Cmd": ["default"],
            "Env": ["A=1", "B=2"]
        }));
        let new_entrypoint = Overrides {
            entrypoint: Some(vec!["/bin/other".into()]),
            env: vec!["B=3".into(), "C=4".into()],
            ..Overrides::default()
        };
        let spec = spec_from_config(&img, files(), &new_entrypoint).unwrap();
        let p = process(&spec);
        assert_eq!(p.args().as_ref().unwrap(), &["/bin/other"]);
        assert_eq!(
            p.env().as_ref().unwrap(),
            &[DEFAULT_PATH, "A=1", "B=3", "C=4", "HOME=/root"]
        );
        let new_command = Overrides {
            command: Some(vec!["x".into()]),
            ..Overrides::default()
        };
        let spec = spec_from_config(&img, files(), &new_command).unwrap();
        assert_eq!(process(&spec).args().as_ref().unwrap(), &["/bin/app", "x"]);
    }

    #[test]
    fn user_names_resolve_through_the_image_files() {
        let r = resolve_user("app", files()).unwrap();
        assert_eq!((r.uid, r.gid), (1000, 1000));
        assert_eq!(r.additional_gids, vec![29, 44]);
        assert_eq!(r.home, "/home/app");

        let r = resolve_user("app:video", files()).unwrap();
        assert_eq!((r.uid, r.gid), (1000, 44));
        assert!(r.additional_gids.is_empty());

        let r = resolve_user("1:50", files()).unwrap();
        assert_eq!((r.uid, r.gid), (1, 50));

        let r = resolve_user("4242", files()).unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (4242, 0, "/"));

        let r = resolve_user("daemon:staff", files()).unwrap();
        assert_eq!((r.uid, r.gid), (1, 50));

        let r = resolve_user("", files()).unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (0, 0, "/root"));
    }

    #[test]
    fn unknown_users_and_groups_are_errors() {
        let err = resolve_user("nobody", files()).unwrap_err();
        assert!(err.contains("\"nobody\" not found"), "{err}");
        let err = resolve_user("app:nogroup", files()).unwrap_err();
        assert!(err.contains("\"nogroup\" not found"), "{err}");
        let err = resolve_user("app", ImageFiles::default()).unwrap_err();
        assert!(err.contains("no /etc/passwd"), "{err}");
        assert!(resolve_user("1000:1000", ImageFiles::default()).is_ok());

        let img = image(serde_json::json!({"User": "ghost", "Cmd": ["sh"]}));
        let err = spec_from_config(&img, files(), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "image config: User: user \"ghost\" not found in the image's /etc/passwd"
        );
    }

    #[test]
    fn user_in_the_spec() {
        let img = image(serde_json::json!({"User": "app", "Cmd": ["sh"]}));
        let spec = spec_from_config(&img, files(), &Overrides::default()).unwrap();
        let user = process(&spec).user();
        assert_eq!((user.uid(), user.gid()), (1000, 1000));
        assert_eq!(user.additional_gids().as_ref().unwrap(), &[29, 44]);
        assert!(
            process(&spec)
                .env()
                .as_ref()
                .unwrap()
                .contains(&"HOME=/home/app".to_string())
        );
    }

    #[test]
    fn labels_ports_and_stop_signal_become_annotations() {
        let img = image(serde_json::json!({
            "Cmd": ["sh"],
            "Labels": {"com.example.team": "infra", "org.opencontainers.image.os": "fake"},
            "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
            "StopSignal": "SIGQUIT"
        }));
        let spec = spec_from_config(&img, files(), &Overrides::default()).unwrap();
        let a = spec.annotations().as_ref().unwrap();
        assert_eq!(a["com.example.team"], "infra");
        assert_eq!(a["org.opencontainers.image.os"], "linux");
        assert_eq!(a["org.opencontainers.image.architecture"], "amd64");
        assert_eq!(
            a["org.opencontainers.image.exposedPorts"],
            "53/udp,8080/tcp"
        );
        assert_eq!(a["org.opencontainers.image.stopSignal"], "SIGQUIT");
        assert_eq!(
            a["org.opencontainers.image.created"],
            "2024-01-02T03:04:05Z"
        );
    }

    #[test]
    fn relative_working_dir_is_refused() {
        let img = image(serde_json::json!({"Cmd": ["sh"], "WorkingDir": "srv"}));
        let err = spec_from_config(&img, files(), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("image config: WorkingDir:"), "{err}");
    }

    #[test]
    fn no_config_at_all() {
        let img: ImageConfiguration = serde_json::from_value(serde_json::json!({
            "architecture": "arm64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []}
        }))
        .unwrap();
        let spec = spec_from_config(&img, ImageFiles::default(), &Overrides::default()).unwrap();
        let p = process(&spec);
        assert!(p.args().as_ref().unwrap().is_empty());
        assert_eq!(p.env().as_ref().unwrap(), &[DEFAULT_PATH, "HOME=/"]);
        assert_eq!(p.cwd().to_str(), Some("/"));
    }
}
