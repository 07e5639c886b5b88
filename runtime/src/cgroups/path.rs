use std::path::{Component, Path, PathBuf};

use super::CgroupError;
use super::host::Mount;

/// The calling process's cgroup in each hierarchy, from the text of `/proc/self/cgroup`.
pub(crate) struct OwnCgroups {
    /// (controllers of the hierarchy, path) for each v1 line.
    v1: Vec<(Vec<String>, PathBuf)>,
    /// The `0::` line.
    unified: Option<PathBuf>,
}

impl OwnCgroups {
    /// Lines are `ID:CONTROLLERS:PATH`; cgroup2's is `0::PATH`.
    pub(crate) fn parse(text: &str) -> OwnCgroups {
        let mut own = OwnCgroups {
            v1: Vec::new(),
            unified: None,
        };
        for line in text.lines() {
            let mut fields = line.splitn(3, ':');
            let (Some(id), Some(controllers), Some(path)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if id == "0" && controllers.is_empty() {
                own.unified = Some(PathBuf::from(path));
            } else {
                let names = controllers.split(',').map(str::to_string).collect();
                own.v1.push((names, PathBuf::from(path)));
            }
        }
        own
    }

    pub(crate) fn v1(&self, controller: &str) -> Result<&Path, CgroupError> {
        self.v1
            .iter()
            .find(|(names, _)| names.iter().any(|n| n == controller))
            .map(|(_, path)| path.as_path())
            .ok_or_else(|| CgroupError::NoOwnCgroup {
                hierarchy: controller.to_string(),
            })
    }

    pub(crate) fn unified(&self) -> Result<&Path, CgroupError> {
        self.unified
            .as_deref()
            .ok_or_else(|| CgroupError::NoOwnCgroup {
                hierarchy: "cgroup2".to_string(),
            })
    }
}

/// The cgroupsPath a container gets when its spec has none.
pub(crate) fn default_path(container_id: &str) -> Result<PathBuf, CgroupError> {
    let mut parts = Path::new(container_id).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(_)), None) => Ok(Path::new("/berth").join(container_id)),
        _ => Err(CgroupError::Path {
            path: PathBuf::from(container_id),
            reason: "a container id must be one path component to name its cgroup".into(),
        }),
    }
}

/// The directory of `requested` in one hierarchy. An absolute `requested` starts at the
/// hierarchy's root; a relative one at `own`, the caller's cgroup in that hierarchy (as
/// `/proc/self/cgroup` shows it). `..` may not climb above the root.
pub(crate) fn resolve(
    mount: &Mount,
    requested: &Path,
    own: Option<&Path>,
) -> Result<PathBuf, CgroupError> {
    let start = match own {
        Some(own) if requested.is_relative() => {
            // /proc/self/cgroup paths start at the hierarchy's root; the mount may show only
            // a sub-tree of it.
            own.strip_prefix(&mount.root).unwrap_or(own).to_path_buf()
        }
        _ => PathBuf::new(),
    };
    let mut below: Vec<&std::ffi::OsStr> = Vec::new();
    for part in start.components().chain(requested.components()) {
        match part {
            Component::Normal(name) => below.push(name),
            Component::ParentDir => {
                if below.pop().is_none() {
                    return Err(CgroupError::Path {
                        path: requested.to_path_buf(),
                        reason: "climbs above the cgroup root".into(),
                    });
                }
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    if below.is_empty() {
        return Err(CgroupError::Path {
            path: requested.to_path_buf(),
            reason: "is the root cgroup; a container needs its own".into(),
        });
    }
    Ok(below
        .iter()
        .fold(mount.point.clone(), |dir, name| dir.join(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(point: &str, root: &str) -> Mount {
        Mount {
            point: PathBuf::from(point),
            root: PathBuf::from(root),
        }
    }

    const PROC_CGROUP: &str = "\
9:name=systemd:/user.slice/session-1.scope
4:memory:/process_api/618f
2:cpu,cpuacct:/agent
0::/user.slice/session-1.scope
";

    #[test]
    fn absolute_path_starts_at_each_hierarchy_root() {
        let memory = mount("/sys/fs/cgroup/memory", "/");
        let dir = resolve(&memory, Path::new("/tasks/t1"), None).unwrap();
        assert_eq!(dir, Path::new("/sys/fs/cgroup/memory/tasks/t1"));
    }

    #[test]
    fn relative_path_starts_at_own_cgroup() {
        let own = OwnCgroups::parse(PROC_CGROUP);
        let memory = mount("/sys/fs/cgroup/memory", "/");
        let cpu = mount("/sys/fs/cgroup/cpu,cpuacct", "/");
        let unified = mount("/sys/fs/cgroup/unified", "/");
        let rel = Path::new("c1");
        assert_eq!(
            resolve(&memory, rel, Some(own.v1("memory").unwrap())).unwrap(),
            Path::new("/sys/fs/cgroup/memory/process_api/618f/c1")
        );
        assert_eq!(
            resolve(&cpu, rel, Some(own.v1("cpuacct").unwrap())).unwrap(),
            Path::new("/sys/fs/cgroup/cpu,cpuacct/agent/c1")
        );
        assert_eq!(
            resolve(&unified, Path::new("../c1"), Some(own.unified().unwrap())).unwrap(),
            Path::new("/sys/fs/cgroup/unified/user.slice/c1")
        );
        assert_eq!(
            own.v1("pids").unwrap_err().to_string(),
            "/proc/self/cgroup: no entry for the pids hierarchy"
        );
    }

    #[test]
    fn relative_path_under_a_sub_tree_mount() {
        let memory = mount("/sys/fs/cgroup/memory", "/docker/abc");
        let own = Path::new("/docker/abc/init");
        assert_eq!(
            resolve(&memory, Path::new("c1"), Some(own)).unwrap(),
            Path::new("/sys/fs/cgroup/memory/init/c1")
        );
    }

    #[test]
    fn default_path_is_berth_slash_id() {
        let memory = mount("/sys/fs/cgroup/memory", "/");
        let path = default_path("web-1").unwrap();
        assert_eq!(
            resolve(&memory, &path, None).unwrap(),
            Path::new("/sys/fs/cgroup/memory/berth/web-1")
        );
        assert!(default_path("../x").is_err());
        assert!(default_path("a/b").is_err());
        assert!(default_path("").is_err());
    }

    #[test]
    fn paths_may_not_leave_the_hierarchy_or_be_its_root() {
        let memory = mount("/sys/fs/cgroup/memory", "/");
        assert_eq!(
            resolve(&memory, Path::new("/a/../../etc"), None)
                .unwrap_err()
                .to_string(),
            "linux.cgroupsPath: /a/../../etc: climbs above the cgroup root"
        );
        assert_eq!(
            resolve(&memory, Path::new("/"), None)
                .unwrap_err()
                .to_string(),
            "linux.cgroupsPath: /: is the root cgroup; a container needs its own"
        );
        assert_eq!(
            resolve(&memory, Path::new("/a/./b/../c"), None).unwrap(),
            Path::new("/sys/fs/cgroup/memory/a/c")
        );
    }
}
