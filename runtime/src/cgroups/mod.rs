//! A container's cgroup on v1, v2 and hybrid hosts: where it lives, its limits, its
//! processes, freezing, stats and OOM kills. Files are written directly; no library.

mod bpf;
mod devices;
mod error;
mod freezer;
mod host;
mod path;
mod resources;
mod stats;

#[cfg(test)]
mod kernel_tests;

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

pub use error::CgroupError;
pub use host::{Host, Mode};
pub use stats::{CpuStats, MemoryStats, PidsStats, Stats};

use host::Mount;
use path::OwnCgroups;

/// The v2 controllers a new cgroup's ancestors hand down to it.
const V2_CONTROLLERS: &[&str] = &["cpu", "cpuset", "hugetlb", "io", "memory", "pids"];

/// How long `remove` waits for the processes of a cgroup to finish exiting.
const REMOVE_TIMEOUT: Duration = Duration::from_millis(500);

/// One container's cgroup, in every hierarchy of the host.
/// Serialisable, so that the runtime finds the cgroup it created in later commands
/// wherever those run (a relative cgroupsPath depends on the caller's own cgroup).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Cgroup {
    mode: Mode,
    /// v1 controller -> this cgroup in its hierarchy. Empty on pure v2.
    #[serde(deserialize_with = "host::controller_map")]
    v1: BTreeMap<&'static str, Dir>,
    /// Pure v2: the cgroup. Hybrid: a twin that only tracks the processes, as systemd expects.
    unified: Option<Dir>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Dir {
    mount: PathBuf,
    path: PathBuf,
}

impl Cgroup {
    /// The cgroup `cgroups_path` names, as runc reads `linux.cgroupsPath`: an absolute path
    /// starts at each hierarchy's root, a relative one at the caller's own cgroup in that
    /// hierarchy, and none (or an empty one) means `/berth/<container_id>`.
    pub fn new(
        host: &Host,
        cgroups_path: Option<&Path>,
        container_id: &str,
    ) -> Result<Cgroup, CgroupError> {
        let requested = match cgroups_path {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => path::default_path(container_id)?,
        };
        let own = if requested.is_relative() {
            let file = Path::new("/proc/self/cgroup");
            Some(OwnCgroups::parse(&read(file)?))
        } else {
            None
        };
        Cgroup::resolve(host, &requested, own.as_ref())
    }

    fn resolve(
        host: &Host,
        requested: &Path,
        own: Option<&OwnCgroups>,
    ) -> Result<Cgroup, CgroupError> {
        let dir = |mount: &Mount, own: Option<&Path>| -> Result<Dir, CgroupError> {
            Ok(Dir {
                mount: mount.point.clone(),
                path: path::resolve(mount, requested, own)?,
            })
        };
        let mut v1 = BTreeMap::new();
        if host.mode() != Mode::V2 {
            for (controller, mount) in &host.v1 {
                let own = own.map(|o| o.v1(controller)).transpose()?;
                v1.insert(*controller, dir(mount, own)?);
            }
        }
        let unified = match (&host.unified, host.mode()) {
            (Some(mount), Mode::V2 | Mode::Hybrid) => {
                let own = own.map(|o| o.unified()).transpose()?;
                Some(dir(mount, own)?)
            }
            _ => None,
        };
        Ok(Cgroup {
            mode: host.mode(),
            v1,
            unified,
        })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Makes the cgroup's directories, and its ancestors', ready for processes: on v1 an
    /// empty cpuset is filled from its parent, on v2 the ancestors enable the controllers.
    pub fn create(&self) -> Result<(), CgroupError> {
        self.create_v1()?;
        self.create_unified()
    }

    /// The directories in the v1 hierarchies only (none on a pure v2 host).
    pub fn create_v1(&self) -> Result<(), CgroupError> {
        for (controller, dir) in &self.v1 {
            if *controller == "cpuset" {
                create_cpuset(dir)?;
            } else {
                fs::create_dir_all(&dir.path).map_err(|source| CgroupError::Create {
                    path: dir.path.clone(),
                    source,
                })?;
            }
        }
        Ok(())
    }

    /// The cgroup2 directory only: the whole cgroup on v2, the process-tracking twin on
    /// hybrid hosts, nothing on v1.
    pub fn create_unified(&self) -> Result<(), CgroupError> {
        match &self.unified {
            Some(dir) if self.mode == Mode::V2 => create_v2(dir),
            Some(dir) => fs::create_dir_all(&dir.path).map_err(|source| CgroupError::Create {
                path: dir.path.clone(),
                source,
            }),
            None => Ok(()),
        }
    }

    /// The directory to create a process in with clone3(CLONE_INTO_CGROUP): only on a pure v2
    /// host, where one directory is the whole cgroup.
    pub fn v2_path(&self) -> Option<PathBuf> {
        self.v2_dir().map(Path::to_path_buf)
    }

    /// The cgroup2 directory a process can be cloned straight into (CLONE_INTO_CGROUP):
    /// the cgroup itself on v2, its process-tracking twin on hybrid hosts.
    pub fn clone_into_path(&self) -> Option<PathBuf> {
        self.unified.as_ref().map(|d| d.path.clone())
    }

    /// The v1 `tasks` files a process writes "0" to in order to move itself in. A thread
    /// that moves itself on v1 does not take the global threadgroup lock, whose first
    /// writer after a quiet spell waits for an RCU grace period; moving another process
    /// through `cgroup.procs` does.
    pub fn v1_self_move_files(&self) -> Vec<PathBuf> {
        self.v1.values().map(|d| d.path.join("tasks")).collect()
    }

    /// Moves a process into the cgroup in every hierarchy.
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        for dir in self.paths() {
            let file = dir.join("cgroup.procs");
            write_value(&file, &pid.to_string()).map_err(|source| CgroupError::AddProcess {
                pid,
                path: file,
                source,
            })?;
        }
        Ok(())
    }

    /// Every directory of this cgroup, one per hierarchy (co-mounted controllers share one).
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = Vec::new();
        for dir in self.paths_iter() {
            if !paths.iter().any(|p| p == dir) {
                paths.push(dir.to_path_buf());
            }
        }
        paths
    }

    /// The processes in this cgroup and in the cgroups below it, sorted.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut pids = Vec::new();
        let Some(top) = self.procs_dir() else {
            return Ok(pids);
        };
        for dir in tree(top)? {
            let file = dir.join("cgroup.procs");
            let Some(text) = read_if_present(&file)? else {
                continue; // a child cgroup removed while we walk
            };
            for line in text.lines().filter(|l| !l.is_empty()) {
                let pid = line.parse().map_err(|_| CgroupError::Parse {
                    path: file.clone(),
                    reason: format!("{line:?} is not a process id"),
                })?;
                pids.push(pid);
            }
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Removes the cgroup and any cgroups below it, deepest first, in every hierarchy. A
    /// cgroup stays busy for a moment while its last processes exit, so EBUSY is retried
    /// briefly. Directories already gone are fine.
    pub fn remove(&self) -> Result<(), CgroupError> {
        for dir in self.paths() {
            // Most cgroups have no children and no processes left: one rmdir, without
            // reading the directory first.
            match fs::remove_dir(&dir) {
                Ok(()) => continue,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(_) => {}
            }
            for path in tree(&dir)?.iter().rev() {
                remove_dir(path)?;
            }
        }
        Ok(())
    }

    fn v2_dir(&self) -> Option<&Path> {
        match (&self.unified, self.mode) {
            (Some(dir), Mode::V2) => Some(&dir.path),
            _ => None,
        }
    }

    fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.v1.get(controller).map(|d| d.path.as_path())
    }

    /// The directory holding `controller`'s files for `field`.
    fn controller_dir(&self, field: &str, controller: &'static str) -> Result<&Path, CgroupError> {
        if let Some(dir) = self.v2_dir() {
            return Ok(dir);
        }
        self.v1_dir(controller)
            .ok_or_else(|| CgroupError::NoController {
                field: field.to_string(),
                controller,
            })
    }

    /// Writes one value to one file of `controller`, naming `field` if it fails.
    fn write(
        &self,
        field: &str,
        controller: &'static str,
        file: &str,
        value: &str,
    ) -> Result<(), CgroupError> {
        let path = self.controller_dir(field, controller)?.join(file);
        write_field(field, &path, value)
    }

    /// Where to list processes: any hierarchy holds them all; these are the likeliest to be
    /// mounted.
    fn procs_dir(&self) -> Option<&Path> {
        self.v2_dir()
            .or_else(|| {
                ["freezer", "pids", "memory", "cpu"]
                    .iter()
                    .find_map(|c| self.v1_dir(c))
            })
            .or_else(|| self.paths_iter().next())
    }

    fn paths_iter(&self) -> impl Iterator<Item = &Path> {
        self.v1
            .values()
            .chain(&self.unified)
            .map(|d| d.path.as_path())
    }
}

/// Creates a v1 cpuset cgroup one level at a time: a new cpuset cgroup starts with no CPUs
/// and no memory nodes, and refuses processes until it has some.
fn create_cpuset(dir: &Dir) -> Result<(), CgroupError> {
    let below = dir.path.strip_prefix(&dir.mount).unwrap_or(Path::new(""));
    let mut parent = dir.mount.clone();
    for part in below.components() {
        let current = parent.join(part);
        make_dir(&current)?;
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let own = read_if_present(&current.join(file))?.unwrap_or_default();
            if own.trim().is_empty() {
                let inherited = read(&parent.join(file))?;
                write_field("create", &current.join(file), inherited.trim())?;
            }
        }
        parent = current;
    }
    Ok(())
}

/// Creates a v2 cgroup one level at a time, each ancestor first enabling the controllers
/// for its children.
fn create_v2(dir: &Dir) -> Result<(), CgroupError> {
    let available = read(&dir.mount.join("cgroup.controllers"))?;
    let wanted: Vec<&str> = available
        .split_whitespace()
        .filter(|c| V2_CONTROLLERS.contains(c))
        .collect();
    let below = dir.path.strip_prefix(&dir.mount).unwrap_or(Path::new(""));
    let mut current = dir.mount.clone();
    for part in below.components() {
        // The root may hold processes next to enabled controllers; no other cgroup may.
        // Below a cgroup with processes, v2 would still enable the threaded controllers
        // (cpu, cpuset, pids) one at a time, and that turns it into a thread root whose
        // new children refuse processes (EOPNOTSUPP).
        if current == dir.mount || !has_processes(&current) {
            enable_controllers(&current, &wanted);
        }
        current.push(part);
        make_dir(&current)?;
    }
    Ok(())
}

fn has_processes(dir: &Path) -> bool {
    read_if_present(&dir.join("cgroup.procs"))
        .is_ok_and(|procs| procs.is_some_and(|p| !p.trim().is_empty()))
}

/// Failures are left for `apply` to report: an ancestor may be denied a controller by its
/// own parent, and then the missing interface file names the field that needed it.
fn enable_controllers(dir: &Path, controllers: &[&str]) {
    if controllers.is_empty() {
        return;
    }
    let file = dir.join("cgroup.subtree_control");
    let all: Vec<String> = controllers.iter().map(|c| format!("+{c}")).collect();
    if write_value(&file, &all.join(" ")).is_err() {
        for one in &all {
            let _ = write_value(&file, one);
        }
    }
}

fn make_dir(path: &Path) -> Result<(), CgroupError> {
    match fs::create_dir(path) {
        Err(e) if e.kind() != ErrorKind::AlreadyExists => Err(CgroupError::Create {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn remove_dir(path: &Path) -> Result<(), CgroupError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY) && started.elapsed() < REMOVE_TIMEOUT =>
            {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
}

/// `top` and every directory below it, parents before children. Empty if `top` is gone.
fn tree(top: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let mut found = Vec::new();
    let mut pending = vec![top.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(source) => return Err(CgroupError::Read { path: dir, source }),
        };
        for entry in entries {
            let entry = entry.map_err(|source| CgroupError::Read {
                path: dir.clone(),
                source,
            })?;
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(entry.path());
            }
        }
        found.push(dir);
    }
    Ok(found)
}

/// Writes `value` in one write, as interface files expect, to a file that must exist: the
/// kernel answers ENOENT for a missing controller file (creating one would be EACCES).
fn write_value(path: &Path, value: &str) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).truncate(true).open(path)?;
    file.write_all(value.as_bytes())
}

fn write_field(field: &str, path: &Path, value: &str) -> Result<(), CgroupError> {
    write_value(path, value).map_err(|source| CgroupError::Write {
        field: field.to_string(),
        value: value.to_string(),
        path: path.to_path_buf(),
        source,
    })
}

fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_if_present(path: &Path) -> Result<Option<String>, CgroupError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The number after `key` in `key value` lines (cpu.stat, memory.events, ...).
fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        if k == key {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_CO_MOUNTED: &str = "\
27 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
28 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
41 25 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
";

    const OWN: &str = "4:memory:/agent\n2:cpu,cpuacct:/\n0::/agent.service\n";

    #[test]
    fn one_directory_per_hierarchy() {
        let host = Host::from_mountinfo(HYBRID_CO_MOUNTED).unwrap();
        let own = OwnCgroups::parse(OWN);
        let cgroup = Cgroup::resolve(&host, Path::new("c1"), Some(&own)).unwrap();
        assert_eq!(
            cgroup.paths(),
            [
                "/sys/fs/cgroup/cpu,cpuacct/c1",
                "/sys/fs/cgroup/memory/agent/c1",
                "/sys/fs/cgroup/unified/agent.service/c1",
            ]
            .map(PathBuf::from)
        );
        // Hybrid: the cgroup2 twin only tracks processes; limits go to v1.
        assert_eq!(cgroup.v2_path(), None);

        let v2 = Cgroup::new(&Host::v2_at(Path::new("/sys/fs/cgroup")), None, "web").unwrap();
        assert_eq!(v2.paths(), [PathBuf::from("/sys/fs/cgroup/berth/web")]);
        assert_eq!(
            v2.v2_path(),
            Some(PathBuf::from("/sys/fs/cgroup/berth/web"))
        );
    }

    #[test]
    fn v2_controllers_stay_off_below_a_cgroup_with_processes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::write(root.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        fs::create_dir(root.join("busy")).unwrap();
        fs::write(root.join("busy/cgroup.procs"), "42\n").unwrap();
        fs::write(root.join("busy/cgroup.subtree_control"), "").unwrap();
        let cgroup = Cgroup::new(&Host::v2_at(root), Some(Path::new("/busy/c1")), "c1").unwrap();
        cgroup.create().unwrap();
        let enabled =
            |dir: &str| fs::read_to_string(root.join(dir).join("cgroup.subtree_control")).unwrap();
        assert_eq!(enabled(""), "+cpu +memory +pids");
        assert_eq!(enabled("busy"), "");
        assert!(root.join("busy/c1").is_dir());
    }

    #[test]
    fn processes_are_listed_from_child_cgroups_too() {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path().join("t");
        fs::create_dir_all(top.join("a/b")).unwrap();
        fs::write(top.join("cgroup.procs"), "30\n").unwrap();
        fs::write(top.join("a/cgroup.procs"), "").unwrap();
        fs::write(top.join("a/b/cgroup.procs"), "7\n12\n").unwrap();
        let cgroup = Cgroup::new(&Host::v2_at(tmp.path()), Some(Path::new("/t")), "t").unwrap();
        assert_eq!(cgroup.pids().unwrap(), [7, 12, 30]);
    }
}
