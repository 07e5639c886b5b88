//! A container's mounts: the kernel filesystems every container has, the task volumes
//! and tmpfs it asks for, and /etc/hostname, /etc/hosts and /etc/resolv.conf, which are
//! files the caller writes into the task directory from [`TaskFile`]s.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;

use crate::taskdef::{ContainerDefinition, IpcMode, NetworkMode, TaskDefinition};

/// Docker's /dev/shm size, in MiB.
pub const DEFAULT_SHM_MIB: i64 = 64;

/// A file the caller writes before the container starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFile {
    /// Relative to the task directory: `<container name>/hosts`.
    pub path: PathBuf,
    /// What to write.
    pub content: FileContent,
}

/// The content of a [`TaskFile`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContent {
    /// Exactly this text.
    Text(String),
    /// The host's file at `host_path` (empty if it has none), followed by `append`.
    HostCopy {
        /// Such as /etc/resolv.conf.
        host_path: PathBuf,
        /// Lines to add after the host's content.
        append: String,
    },
}

/// Where the task's shared /dev/shm lives when `ipcMode` is task: the caller mounts a
/// tmpfs of `size_mib` there before the first container starts, and each container
/// binds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedShm {
    /// `<task dir>/shm`.
    pub path: PathBuf,
    /// The largest `sharedMemorySize` of the containers, or 64.
    pub size_mib: u64,
}

/// The task's shared /dev/shm, if `ipcMode` is task.
pub fn shared_shm(def: &TaskDefinition, task_dir: &Path) -> Option<SharedShm> {
    (def.ipc_mode == Some(IpcMode::Task)).then(|| SharedShm {
        path: task_dir.join("shm"),
        size_mib: def
            .container_definitions
            .iter()
            .map(shm_mib)
            .max()
            .unwrap_or(DEFAULT_SHM_MIB as u64),
    })
}

/// The host directory of a task volume: its `host.sourcePath`, or its scratch directory
/// `<task dir>/volumes/<name>`.
pub fn volume_source(def: &TaskDefinition, name: &str, task_dir: &Path) -> PathBuf {
    match def.volume(name).and_then(|v| v.source_path()) {
        Some(source) => PathBuf::from(source),
        None => task_dir.join("volumes").join(name),
    }
}

/// The mounts of container `index` in mount order, and the files they bind.
pub fn container_mounts(
    def: &TaskDefinition,
    index: usize,
    task_dir: &Path,
    hostname: Option<&str>,
) -> (Vec<Mount>, Vec<TaskFile>) {
    let c = &def.container_definitions[index];
    let mut user = user_mounts(def, index, task_dir);
    // Parents before children, so /data is mounted before /data/cache.
    user.sort_by_key(|m| m.destination().components().count());
    // A mount the definition asks for replaces the default one at the same place.
    let taken: BTreeSet<PathBuf> = user.iter().map(|m| m.destination().clone()).collect();

    let mut mounts: Vec<Mount> = system_mounts(def, c, task_dir)
        .into_iter()
        .filter(|m| !taken.contains(m.destination()))
        .collect();
    mounts.extend(user);
    let mut files = Vec::new();
    for (m, file) in etc_files(def, c, task_dir, hostname) {
        if !taken.contains(m.destination()) {
            mounts.push(m);
            files.push(file);
        }
    }
    (mounts, files)
}

fn system_mounts(def: &TaskDefinition, c: &ContainerDefinition, task_dir: &Path) -> Vec<Mount> {
    let privileged = c.is_privileged();
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
    ];
    match def.ipc_mode {
        Some(IpcMode::None) => {}
        Some(IpcMode::Host) => mounts.push(bind("/dev/shm", Path::new("/dev/shm"), false)),
        Some(IpcMode::Task) => mounts.push(bind("/dev/shm", &task_dir.join("shm"), false)),
        Some(IpcMode::Unknown(_)) | None => {
            let size = format!("size={}k", shm_mib(c) * 1024);
            mounts.push(mount(
                "/dev/shm",
                "tmpfs",
                "shm",
                &["nosuid", "noexec", "nodev", "mode=1777", &size],
            ));
        }
    }
    let ro = if privileged { "rw" } else { "ro" };
    mounts.extend([
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", ro]),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", ro],
        ),
    ]);
    mounts
}

fn shm_mib(c: &ContainerDefinition) -> u64 {
    let mib = c
        .linux_parameters
        .as_ref()
        .and_then(|lp| lp.shared_memory_size)
        .unwrap_or(DEFAULT_SHM_MIB);
    u64::try_from(mib).unwrap_or(DEFAULT_SHM_MIB as u64)
}

/// Volumes and tmpfs of the container, then the mount points of the containers it
/// takes volumes from (at destinations it does not use itself).
fn user_mounts(def: &TaskDefinition, index: usize, task_dir: &Path) -> Vec<Mount> {
    let c = &def.container_definitions[index];
    let mut mounts: Vec<Mount> = c
        .mount_points
        .iter()
        .map(|mp| {
            bind(
                &mp.container_path,
                &volume_source(def, &mp.source_volume, task_dir),
                mp.read_only.unwrap_or(false),
            )
        })
        .collect();
    if let Some(lp) = &c.linux_parameters {
        for t in &lp.tmpfs {
            let mut options = vec!["nosuid", "nodev", "noexec"];
            options.extend(t.mount_options.iter().map(String::as_str));
            let size = format!("size={}m", t.size);
            options.push(&size);
            mounts.push(mount(&t.container_path, "tmpfs", "tmpfs", &options));
        }
    }
    let mut taken: BTreeSet<PathBuf> = mounts.iter().map(|m| m.destination().clone()).collect();
    let mut visited = BTreeSet::from([index]);
    for vf in &c.volumes_from {
        for m in volumes_from(
            def,
            &vf.source_container,
            vf.read_only.unwrap_or(false),
            task_dir,
            &mut visited,
        ) {
            if taken.insert(m.destination().clone()) {
                mounts.push(m);
            }
        }
    }
    mounts
}

/// The mount points of `source`, including those it takes from others, read-only when
/// `read_only` or when they are read-only there.
fn volumes_from(
    def: &TaskDefinition,
    source: &str,
    read_only: bool,
    task_dir: &Path,
    visited: &mut BTreeSet<usize>,
) -> Vec<Mount> {
    let Some((index, c)) = def.container(source) else {
        return Vec::new();
    };
    if !visited.insert(index) {
        return Vec::new();
    }
    let mut mounts: Vec<Mount> = c
        .mount_points
        .iter()
        .map(|mp| {
            bind(
                &mp.container_path,
                &volume_source(def, &mp.source_volume, task_dir),
                read_only || mp.read_only.unwrap_or(false),
            )
        })
        .collect();
    for vf in &c.volumes_from {
        let inner_ro = read_only || vf.read_only.unwrap_or(false);
        mounts.extend(volumes_from(
            def,
            &vf.source_container,
            inner_ro,
            task_dir,
            visited,
        ));
    }
    mounts
}

/// /etc/hostname, /etc/hosts and /etc/resolv.conf: each bind mount with the file
/// behind it.
fn etc_files(
    def: &TaskDefinition,
    c: &ContainerDefinition,
    task_dir: &Path,
    hostname: Option<&str>,
) -> Vec<(Mount, TaskFile)> {
    // The task's containers share one network namespace, so a linked container is
    // reached on loopback.
    let links = c
        .linked_containers()
        .map(|(_, names)| format!("127.0.0.1\t{}\n", names.join(" ")));
    let extra: String = c
        .extra_hosts
        .iter()
        .map(|h| format!("{}\t{}\n", h.ip_address, h.hostname))
        .chain(links)
        .collect();
    let host_network = def.network_mode() == NetworkMode::Host;
    let hostname_file = match hostname {
        Some(name) if !host_network => FileContent::Text(format!("{name}\n")),
        _ => host_copy("/etc/hostname", String::new()),
    };
    let hosts = match hostname {
        Some(name) if !host_network => FileContent::Text(format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\t{name}\n{extra}"
        )),
        _ => host_copy("/etc/hosts", extra),
    };
    let resolv = if c.dns_servers.is_empty() && c.dns_search_domains.is_empty() {
        host_copy("/etc/resolv.conf", String::new())
    } else {
        let mut text = String::new();
        if !c.dns_search_domains.is_empty() {
            text.push_str(&format!("search {}\n", c.dns_search_domains.join(" ")));
        }
        for server in &c.dns_servers {
            text.push_str(&format!("nameserver {server}\n"));
        }
        FileContent::Text(text)
    };
    let read_only = c.is_readonly_root();
    [
        ("hostname", hostname_file),
        ("hosts", hosts),
        ("resolv.conf", resolv),
    ]
    .into_iter()
    .map(|(name, content)| {
        let relative = Path::new(&c.name).join(name);
        let m = bind(
            &format!("/etc/{name}"),
            &task_dir.join(&relative),
            read_only,
        );
        (
            m,
            TaskFile {
                path: relative,
                content,
            },
        )
    })
    .collect()
}

fn host_copy(path: &str, append: String) -> FileContent {
    FileContent::HostCopy {
        host_path: PathBuf::from(path),
        append,
    }
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(destination));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(PathBuf::from(source)));
    m.set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    m
}

/// A recursive bind, private so that mounts made inside do not reach the host.
fn bind(destination: &str, source: &Path, read_only: bool) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(destination));
    m.set_typ(Some("bind".to_string()));
    m.set_source(Some(source.to_path_buf()));
    let mut options = vec!["rbind".to_string(), "rprivate".to_string()];
    if read_only {
        options.push("ro".to_string());
    }
    m.set_options(Some(options));
    m
}
