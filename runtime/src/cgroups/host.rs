use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::CgroupError;

/// The v1 controllers berth joins. Others (net_cls, perf_event, ...) are left alone.
pub(crate) const V1_CONTROLLERS: &[&str] = &[
    "blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "hugetlb", "memory", "pids",
];

/// How a host arranges its cgroup hierarchies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// v1 hierarchies only, one per controller or per group of co-mounted controllers.
    V1,
    /// One cgroup2 hierarchy holds every controller.
    V2,
    /// v1 hierarchies hold the controllers; a cgroup2 mount beside them only tracks processes.
    Hybrid,
}

/// Reads a map keyed by v1 controller names back into the static names berth knows;
/// an unknown name is an error rather than a silently dropped hierarchy.
pub(crate) fn controller_map<'de, D, V>(de: D) -> Result<BTreeMap<&'static str, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: serde::Deserialize<'de>,
{
    use serde::Deserialize;
    let raw = BTreeMap::<String, V>::deserialize(de)?;
    raw.into_iter()
        .map(|(k, v)| {
            V1_CONTROLLERS
                .iter()
                .find(|c| **c == k)
                .map(|c| (*c, v))
                .ok_or_else(|| serde::de::Error::custom(format!("unknown cgroup controller {k:?}")))
        })
        .collect()
}

/// A mounted hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mount {
    /// Where it is mounted.
    pub(crate) point: PathBuf,
    /// The cgroup shown at `point`: not `/` when only a sub-tree is bind-mounted, as in a
    /// container without its own cgroup namespace.
    pub(crate) root: PathBuf,
}

/// The cgroup file systems of this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    mode: Mode,
    /// Controller name -> its hierarchy; co-mounted controllers share one mount.
    pub(crate) v1: BTreeMap<&'static str, Mount>,
    pub(crate) unified: Option<Mount>,
}

impl Host {
    /// The hierarchies mounted in this process's mount namespace.
    pub fn detect() -> Result<Host, CgroupError> {
        let path = Path::new("/proc/self/mountinfo");
        let text = fs::read_to_string(path).map_err(|source| CgroupError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Host::from_mountinfo(&text)
    }

    /// Reads the text of a `/proc/<pid>/mountinfo`.
    pub fn from_mountinfo(text: &str) -> Result<Host, CgroupError> {
        let mut v1 = BTreeMap::new();
        let mut unified = None;
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let entry = MountinfoLine::parse(line).map_err(|reason| CgroupError::Mountinfo {
                line: index + 1,
                reason: reason.to_string(),
            })?;
            match entry.fs_type {
                "cgroup2" if unified.is_none() => unified = Some(entry.mount),
                "cgroup" => {
                    for option in entry.super_options.split(',') {
                        if let Some(controller) = V1_CONTROLLERS.iter().find(|c| **c == option) {
                            v1.entry(*controller).or_insert_with(|| entry.mount.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        let mode = match (v1.is_empty(), unified.is_some()) {
            (false, false) => Mode::V1,
            (false, true) => Mode::Hybrid,
            (true, true) => Mode::V2,
            (true, false) => return Err(CgroupError::NotMounted),
        };
        Ok(Host { mode, v1, unified })
    }

    /// A v1 host whose controllers are each mounted at `dir/<controller>`, as on a host that
    /// does not co-mount any. For tests against a directory tree that mimics one.
    pub fn v1_at(dir: &Path) -> Host {
        let v1 = V1_CONTROLLERS
            .iter()
            .map(|c| (*c, Mount::top(dir.join(c))))
            .collect();
        Host {
            mode: Mode::V1,
            v1,
            unified: None,
        }
    }

    /// A pure v2 host with cgroup2 mounted at `dir`. For tests against a directory tree that
    /// mimics one.
    pub fn v2_at(dir: &Path) -> Host {
        Host {
            mode: Mode::V2,
            v1: BTreeMap::new(),
            unified: Some(Mount::top(dir.to_path_buf())),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Where the hierarchy holding a v1 controller is mounted, if it is.
    pub fn v1_mount(&self, controller: &str) -> Option<&Path> {
        self.v1.get(controller).map(|m| m.point.as_path())
    }

    /// Where cgroup2 is mounted, if it is.
    pub fn unified_mount(&self) -> Option<&Path> {
        self.unified.as_ref().map(|m| m.point.as_path())
    }
}

impl Mount {
    fn top(point: PathBuf) -> Mount {
        Mount {
            point,
            root: PathBuf::from("/"),
        }
    }
}

/// The fields of one mountinfo line that matter here.
struct MountinfoLine<'a> {
    mount: Mount,
    fs_type: &'a str,
    super_options: &'a str,
}

impl<'a> MountinfoLine<'a> {
    /// `36 35 98:0 /root /mnt rw,noatime master:1 - ext3 /dev/root rw,errors=continue`:
    /// a variable number of optional fields ends at the lone `-`.
    fn parse(line: &'a str) -> Result<MountinfoLine<'a>, &'static str> {
        let fields: Vec<&str> = line.split(' ').collect();
        let separator = fields
            .iter()
            .position(|f| *f == "-")
            .ok_or("no ' - ' separator")?;
        if separator < 6 || fields.len() < separator + 4 {
            return Err("too few fields");
        }
        Ok(MountinfoLine {
            mount: Mount {
                root: PathBuf::from(unescape(fields[3])),
                point: PathBuf::from(unescape(fields[4])),
            },
            fs_type: fields[separator + 1],
            super_options: fields[separator + 3],
        })
    }
}

/// The kernel writes space, tab, newline and backslash in paths as `\ooo` octal escapes.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                let value = d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                out.push(value as u8);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "\
24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
25 24 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,xattr,name=systemd
27 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
28 25 0:26 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
29 25 0:27 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,pids
30 25 0:28 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,net_cls,net_prio
31 25 0:29 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpuset,clone_children
32 25 0:30 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,freezer
33 25 0:31 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,devices
";

    const V2: &str = "\
22 28 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw
25 21 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    // This project's build hosts: cpu and cpuacct mounted apart, cgroup2 with no controllers.
    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    fn mount(host: &Host, controller: &str) -> Option<String> {
        host.v1_mount(controller)
            .map(|p| p.to_string_lossy().into_owned())
    }

    #[test]
    fn v1_with_cpu_and_cpuacct_co_mounted() {
        let host = Host::from_mountinfo(V1).unwrap();
        assert_eq!(host.mode(), Mode::V1);
        let co_mounted = Some("/sys/fs/cgroup/cpu,cpuacct".to_string());
        assert_eq!(mount(&host, "cpu"), co_mounted);
        assert_eq!(mount(&host, "cpuacct"), co_mounted);
        assert_eq!(
            mount(&host, "memory").as_deref(),
            Some("/sys/fs/cgroup/memory")
        );
        assert_eq!(
            mount(&host, "cpuset").as_deref(),
            Some("/sys/fs/cgroup/cpuset")
        );
        assert_eq!(mount(&host, "blkio"), None);
        assert_eq!(mount(&host, "net_cls"), None);
        assert_eq!(host.unified_mount(), None);
    }

    #[test]
    fn pure_v2() {
        let host = Host::from_mountinfo(V2).unwrap();
        assert_eq!(host.mode(), Mode::V2);
        assert_eq!(host.unified_mount(), Some(Path::new("/sys/fs/cgroup")));
        assert!(host.v1.is_empty());
    }

    #[test]
    fn hybrid_with_cpu_and_cpuacct_apart() {
        let host = Host::from_mountinfo(HYBRID).unwrap();
        assert_eq!(host.mode(), Mode::Hybrid);
        assert_eq!(mount(&host, "cpu").as_deref(), Some("/sys/fs/cgroup/cpu"));
        assert_eq!(
            mount(&host, "cpuacct").as_deref(),
            Some("/sys/fs/cgroup/cpuacct")
        );
        assert_eq!(mount(&host, "pids").as_deref(), Some("/sys/fs/cgroup/pids"));
        assert_eq!(
            host.unified_mount(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        assert_eq!(host.v1.len(), 8);
    }

    #[test]
    fn sub_tree_mount_and_escaped_mount_point() {
        let text =
            "50 40 0:32 /docker/abc /sys/fs/cgroup/my\\040memory rw - cgroup cgroup rw,memory\n";
        let host = Host::from_mountinfo(text).unwrap();
        let memory = &host.v1["memory"];
        assert_eq!(memory.point, Path::new("/sys/fs/cgroup/my memory"));
        assert_eq!(memory.root, Path::new("/docker/abc"));
    }

    #[test]
    fn no_cgroups_and_broken_lines_are_errors() {
        let only_proc = "22 28 0:21 / /proc rw shared:13 - proc proc rw\n";
        assert_eq!(
            Host::from_mountinfo(only_proc).unwrap_err().to_string(),
            "no cgroup file system is mounted"
        );
        assert_eq!(
            Host::from_mountinfo("1 2 0:3 / /x rw\n")
                .unwrap_err()
                .to_string(),
            "mountinfo line 1: no ' - ' separator"
        );
    }
}
