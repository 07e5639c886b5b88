//! A container's cgroups as the host sees them, found from `/proc/<pid>/cgroup` and the
//! host's mountinfo, so the same checks work on cgroup v1, hybrid and v2 hosts.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone)]
struct Hierarchy {
    mount_point: PathBuf,
    /// The cgroup at the mount point, relative to the hierarchy's root.
    root: String,
    /// The v1 controllers (and `name=` tags) mounted here; `None` for cgroup2.
    controllers: Option<Vec<String>>,
}

impl Hierarchy {
    /// The directory of `cgroup` (a path as in /proc/<pid>/cgroup) under this mount.
    fn dir_of(&self, cgroup: &str) -> Option<PathBuf> {
        let below = if self.root == "/" {
            cgroup
        } else {
            cgroup.strip_prefix(self.root.as_str())?
        };
        if !below.is_empty() && !below.starts_with('/') {
            return None;
        }
        Some(self.mount_point.join(below.trim_start_matches('/')))
    }
}

/// The cgroup hierarchies mounted in this (the host's) mount namespace.
fn hierarchies() -> Vec<Hierarchy> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    let mut found: Vec<Hierarchy> = Vec::new();
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|field| *field == "-") else {
            continue;
        };
        let (Some(root), Some(mount_point)) = (fields.get(3), fields.get(4)) else {
            continue;
        };
        let controllers = match fields.get(sep + 1) {
            Some(&"cgroup2") => None,
            Some(&"cgroup") => {
                let options = fields.get(sep + 3).copied().unwrap_or_default();
                Some(options.split(',').map(str::to_string).collect())
            }
            _ => continue,
        };
        // A hierarchy mounted twice is the same cgroups; the first mount will do.
        let same = |known: &Hierarchy| known.controllers == controllers;
        if !found.iter().any(same) {
            found.push(Hierarchy {
                mount_point: PathBuf::from(mount_point),
                root: root.to_string(),
                controllers,
            });
        }
    }
    found
}

/// The cgroup directories of one process: one per v1 hierarchy it belongs to, and its
/// cgroup2 directory when a cgroup2 hierarchy is mounted.
#[derive(Debug, Clone)]
pub struct ContainerCgroup {
    v1: Vec<(Vec<String>, PathBuf)>,
    unified: Option<PathBuf>,
}

impl ContainerCgroup {
    /// The cgroups of `pid` (usually a container's init, from `state`).
    #[track_caller]
    pub fn of_pid(pid: i32) -> Self {
        let path = format!("/proc/{pid}/cgroup");
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        let hierarchies = hierarchies();
        let mut cgroup = ContainerCgroup {
            v1: Vec::new(),
            unified: None,
        };
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_id), Some(names), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            // A hierarchy the container was not placed in (name=systemd, say) shows its
            // root, which is never the container's own cgroup.
            if path == "/" {
                continue;
            }
            if names.is_empty() {
                let v2 = hierarchies.iter().find(|h| h.controllers.is_none());
                cgroup.unified = v2.and_then(|h| h.dir_of(path));
                continue;
            }
            let names: Vec<String> = names.split(',').map(str::to_string).collect();
            let mounted = hierarchies.iter().find(|h| {
                h.controllers
                    .as_ref()
                    .is_some_and(|mounted| names.iter().all(|name| mounted.contains(name)))
            });
            if let Some(dir) = mounted.and_then(|h| h.dir_of(path)) {
                cgroup.v1.push((names, dir));
            }
        }
        cgroup
    }

    /// The cgroup at `cgroup` (an absolute path from each hierarchy's root, such as
    /// `/berth/task/ID`) in every mounted hierarchy, whether it exists or not.
    pub fn at(cgroup: &str) -> Self {
        let mut found = ContainerCgroup {
            v1: Vec::new(),
            unified: None,
        };
        for hierarchy in hierarchies() {
            let Some(dir) = hierarchy.dir_of(cgroup) else {
                continue;
            };
            match hierarchy.controllers {
                Some(names) => found.v1.push((names, dir)),
                None => found.unified = Some(dir),
            }
        }
        found
    }

    /// Every directory of this cgroup, v1 and v2.
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.v1
            .iter()
            .map(|(_, dir)| dir.clone())
            .chain(self.unified.clone())
            .collect()
    }

    /// The v1 directory of `controller`, if a v1 hierarchy carries it.
    fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|(names, _)| names.iter().any(|name| name == controller))
            .map(|(_, dir)| dir.as_path())
    }

    /// The file that holds a value: the v1 file when `controller` is mounted as v1, else
    /// the cgroup2 file.
    #[track_caller]
    fn file(&self, controller: &str, v1_file: &str, v2_file: &str) -> PathBuf {
        match (self.v1_dir(controller), &self.unified) {
            (Some(dir), _) => dir.join(v1_file),
            (None, Some(dir)) => dir.join(v2_file),
            (None, None) => panic!("no {controller} cgroup in {self:?}"),
        }
    }

    #[track_caller]
    fn read(&self, path: &Path) -> String {
        fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// How many times the kernel's OOM killer killed a process of this cgroup:
    /// `oom_kill` of v1 `memory.oom_control` or of v2 `memory.events`.
    #[track_caller]
    pub fn oom_kills(&self) -> u64 {
        let path = self.file("memory", "memory.oom_control", "memory.events");
        let text = self.read(&path);
        keyed_value(&text, "oom_kill")
            .unwrap_or_else(|| panic!("{}: no oom_kill in {text:?}", path.display()))
    }

    /// CPU time used by the cgroup: v1 `cpuacct.usage` or v2 `cpu.stat` `usage_usec`.
    #[track_caller]
    pub fn cpu_usage(&self) -> Duration {
        if let Some(dir) = self.v1_dir("cpuacct") {
            let path = dir.join("cpuacct.usage");
            let text = self.read(&path);
            let nanos = text
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("{}: {e}: {text:?}", path.display()));
            return Duration::from_nanos(nanos);
        }
        let path = self.file("cpu", "cpu.stat", "cpu.stat");
        let text = self.read(&path);
        let micros = keyed_value(&text, "usage_usec")
            .unwrap_or_else(|| panic!("{}: no usage_usec in {text:?}", path.display()));
        Duration::from_micros(micros)
    }

    /// The memory soft limit in bytes: v1 `memory.soft_limit_in_bytes` or v2 `memory.low`.
    #[track_caller]
    pub fn memory_soft_limit(&self) -> u64 {
        let path = self.file("memory", "memory.soft_limit_in_bytes", "memory.low");
        let text = self.read(&path);
        text.trim()
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e}: {text:?}", path.display()))
    }

    /// Memory charged to the cgroup, page cache included: v1 `memory.usage_in_bytes` or
    /// v2 `memory.current`.
    #[track_caller]
    pub fn memory_usage(&self) -> u64 {
        let path = self.file("memory", "memory.usage_in_bytes", "memory.current");
        self.number(&path)
    }

    /// The inactive page cache in memory.stat: v1 `total_inactive_file` or v2
    /// `inactive_file`.
    #[track_caller]
    pub fn memory_inactive_file(&self) -> u64 {
        let v1 = self.v1_dir("memory").is_some();
        let path = self.file("memory", "memory.stat", "memory.stat");
        let key = if v1 {
            "total_inactive_file"
        } else {
            "inactive_file"
        };
        let text = self.read(&path);
        keyed_value(&text, key)
            .unwrap_or_else(|| panic!("{}: no {key} in {text:?}", path.display()))
    }

    /// The memory hard limit in bytes: v1 `memory.limit_in_bytes` or v2 `memory.max`.
    #[track_caller]
    pub fn memory_limit(&self) -> u64 {
        let path = self.file("memory", "memory.limit_in_bytes", "memory.max");
        self.number(&path)
    }

    /// The process limit: `pids.max`, None for "max".
    #[track_caller]
    pub fn pids_max(&self) -> Option<u64> {
        let path = self.file("pids", "pids.max", "pids.max");
        let text = self.read(&path);
        (text.trim() != "max").then(|| self.number(&path))
    }

    /// The CFS quota and period in microseconds: v1 `cpu.cfs_quota_us` and
    /// `cpu.cfs_period_us`, or v2 `cpu.max`; a quota of None is no limit.
    #[track_caller]
    pub fn cpu_max(&self) -> (Option<u64>, u64) {
        if let Some(dir) = self.v1_dir("cpu") {
            let quota = self.read(&dir.join("cpu.cfs_quota_us"));
            let period = self.number(&dir.join("cpu.cfs_period_us"));
            return (quota.trim().parse().ok(), period);
        }
        let path = self.file("cpu", "cpu.max", "cpu.max");
        let text = self.read(&path);
        let (quota, period) = text
            .trim()
            .split_once(' ')
            .unwrap_or_else(|| panic!("{}: {text:?}", path.display()));
        let period = period
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e}: {text:?}", path.display()));
        (quota.parse().ok(), period)
    }

    /// Processes and threads in the cgroup: `pids.current`.
    #[track_caller]
    pub fn pids_current(&self) -> u64 {
        let path = self.file("pids", "pids.current", "pids.current");
        self.number(&path)
    }

    #[track_caller]
    fn number(&self, path: &Path) -> u64 {
        let text = self.read(path);
        text.trim()
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e}: {text:?}", path.display()))
    }

    /// The pids of every process in the cgroup and its descendants, in any hierarchy.
    pub fn procs_below(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        for dir in self.dirs() {
            collect_procs(&dir, &mut pids);
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// The directories of this cgroup that still exist.
    pub fn existing_dirs(&self) -> Vec<PathBuf> {
        self.dirs().into_iter().filter(|dir| dir.exists()).collect()
    }

    /// The pids of the processes in the cgroup.
    #[track_caller]
    pub fn procs(&self) -> Vec<i32> {
        let path = self.file("pids", "cgroup.procs", "cgroup.procs");
        self.read(&path)
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .collect()
    }

    /// Whether every directory of this cgroup is gone.
    pub fn is_removed(&self) -> bool {
        self.dirs().iter().all(|dir| !dir.exists())
    }
}

/// Adds the pids in `dir/cgroup.procs` and in every cgroup below `dir`.
fn collect_procs(dir: &Path, pids: &mut Vec<i32>) {
    if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
        pids.extend(
            text.lines()
                .filter_map(|line| line.trim().parse::<i32>().ok()),
        );
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            collect_procs(&entry.path(), pids);
        }
    }
}

/// The number after `key` in a flat-keyed cgroup file such as `memory.events`.
fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok())?
    })
}

/// Cgroup directories, in every mounted hierarchy, whose name contains `needle`: how the
/// tests find what a container id left behind without knowing the runtime's layout.
pub fn dirs_named(needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for hierarchy in hierarchies() {
        crate::runtime::find_named(&hierarchy.mount_point, needle, 12, &mut found);
    }
    found.retain(|path| path.is_dir());
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_value_reads_the_named_counter() {
        let events = "low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed_value(events, "oom_kill"), Some(1));
        assert_eq!(keyed_value(events, "oom"), Some(2));
        assert_eq!(keyed_value(events, "missing"), None);
    }

    #[test]
    fn a_hierarchy_maps_cgroup_paths_below_its_root() {
        let nested = Hierarchy {
            mount_point: PathBuf::from("/sys/fs/cgroup/memory"),
            root: "/outer".to_string(),
            controllers: Some(vec!["memory".to_string()]),
        };
        assert_eq!(
            nested.dir_of("/outer/c1"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/c1"))
        );
        assert_eq!(nested.dir_of("/elsewhere"), None);
        assert_eq!(nested.dir_of("/outer2/c1"), None);
        let whole = Hierarchy {
            root: "/".to_string(),
            controllers: None,
            ..nested
        };
        assert_eq!(
            whole.dir_of("/c1"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/c1"))
        );
    }
}
