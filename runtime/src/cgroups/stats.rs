use std::path::Path;

use serde::Serialize;

use super::{Cgroup, CgroupError, keyed_value, read, read_if_present};

/// v1 reports "no limit" as the largest page-aligned signed number, which differs with the
/// page size; no real limit comes near this.
const V1_UNLIMITED: u64 = 1 << 62;

/// What a cgroup has used. Counters a host does not provide are zero; limits it does not
/// set are `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CpuStats {
    pub usage_ns: u64,
    pub user_ns: u64,
    pub system_ns: u64,
    /// CFS periods that have elapsed, those in which the quota ran out, and the time spent
    /// waiting for the next period.
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_ns: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MemoryStats {
    /// Everything charged to the cgroup, page cache included.
    pub usage_bytes: u64,
    /// Page cache the kernel can drop first (v2 `inactive_file`, v1 `total_inactive_file`
    /// of memory.stat): what docker leaves out of a container's usage.
    pub inactive_file_bytes: u64,
    /// The high-water mark; v2 kernels before 5.19 do not keep one.
    pub max_usage_bytes: Option<u64>,
    pub limit_bytes: Option<u64>,
    pub oom_kills: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PidsStats {
    pub current: u64,
    pub limit: Option<u64>,
}

impl MemoryStats {
    /// Usage as `docker stats` shows it: without the inactive page cache.
    pub fn working_set_bytes(&self) -> u64 {
        self.usage_bytes.saturating_sub(self.inactive_file_bytes)
    }
}

/// The inactive page cache in a memory.stat text: v2 names it `inactive_file`, v1
/// `total_inactive_file` (this cgroup and its children; plain `inactive_file` there is
/// this cgroup alone).
pub fn inactive_file(memory_stat: &str, mode_v2: bool) -> u64 {
    let key = if mode_v2 {
        "inactive_file"
    } else {
        "total_inactive_file"
    };
    keyed_value(memory_stat, key).unwrap_or(0)
}

impl Cgroup {
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        match self.v2_dir() {
            Some(dir) => self.v2_stats(dir),
            None => self.v1_stats(),
        }
    }

    /// How many times the kernel's OOM killer has killed a process of this cgroup.
    pub fn oom_kills(&self) -> Result<u64, CgroupError> {
        let path = match self.v2_dir() {
            Some(dir) => dir.join("memory.events"),
            None => self
                .v1_dir("memory")
                .ok_or_else(|| CgroupError::NoController {
                    field: "oom_kills".to_string(),
                    controller: "memory",
                })?
                .join("memory.oom_control"),
        };
        let text = read(&path)?;
        keyed_value(&text, "oom_kill").ok_or_else(|| CgroupError::Parse {
            path,
            reason: "no oom_kill line (the kernel is older than 4.13)".to_string(),
        })
    }

    fn v2_stats(&self, dir: &Path) -> Result<Stats, CgroupError> {
        let cpu = read(&dir.join("cpu.stat"))?;
        let usec = |key| keyed_value(&cpu, key).unwrap_or(0) * 1000;
        Ok(Stats {
            cpu: CpuStats {
                usage_ns: usec("usage_usec"),
                user_ns: usec("user_usec"),
                system_ns: usec("system_usec"),
                periods: keyed_value(&cpu, "nr_periods").unwrap_or(0),
                throttled_periods: keyed_value(&cpu, "nr_throttled").unwrap_or(0),
                throttled_ns: usec("throttled_usec"),
            },
            memory: MemoryStats {
                usage_bytes: number(&dir.join("memory.current"))?.unwrap_or(0),
                inactive_file_bytes: inactive_file(
                    &read_if_present(&dir.join("memory.stat"))?.unwrap_or_default(),
                    true,
                ),
                max_usage_bytes: number(&dir.join("memory.peak"))?,
                limit_bytes: number(&dir.join("memory.max"))?,
                // Absent when no ancestor handed the memory controller down.
                oom_kills: match read_if_present(&dir.join("memory.events"))? {
                    Some(events) => keyed_value(&events, "oom_kill").unwrap_or(0),
                    None => 0,
                },
            },
            pids: PidsStats {
                current: number(&dir.join("pids.current"))?.unwrap_or(0),
                limit: number(&dir.join("pids.max"))?,
            },
        })
    }

    fn v1_stats(&self) -> Result<Stats, CgroupError> {
        let file = |controller: &str, name: &str| self.v1_dir(controller).map(|d| d.join(name));
        let value = |controller: &str, name: &str| match file(controller, name) {
            Some(path) => number(&path),
            None => Ok(None),
        };
        let cpu_stat = match file("cpu", "cpu.stat") {
            Some(path) => read_if_present(&path)?.unwrap_or_default(),
            None => String::new(),
        };
        let limited = |v: Option<u64>| v.filter(|v| *v < V1_UNLIMITED);
        Ok(Stats {
            cpu: CpuStats {
                usage_ns: value("cpuacct", "cpuacct.usage")?.unwrap_or(0),
                user_ns: value("cpuacct", "cpuacct.usage_user")?.unwrap_or(0),
                system_ns: value("cpuacct", "cpuacct.usage_sys")?.unwrap_or(0),
                periods: keyed_value(&cpu_stat, "nr_periods").unwrap_or(0),
                throttled_periods: keyed_value(&cpu_stat, "nr_throttled").unwrap_or(0),
                throttled_ns: keyed_value(&cpu_stat, "throttled_time").unwrap_or(0),
            },
            memory: MemoryStats {
                usage_bytes: value("memory", "memory.usage_in_bytes")?.unwrap_or(0),
                inactive_file_bytes: match file("memory", "memory.stat") {
                    Some(path) => {
                        inactive_file(&read_if_present(&path)?.unwrap_or_default(), false)
                    }
                    None => 0,
                },
                max_usage_bytes: value("memory", "memory.max_usage_in_bytes")?,
                limit_bytes: limited(value("memory", "memory.limit_in_bytes")?),
                oom_kills: match self.v1_dir("memory") {
                    Some(_) => self.oom_kills()?,
                    None => 0,
                },
            },
            pids: PidsStats {
                current: value("pids", "pids.current")?.unwrap_or(0),
                limit: value("pids", "pids.max")?,
            },
        })
    }
}

/// A one-number file; `None` when it is missing or says `max`.
fn number(path: &Path) -> Result<Option<u64>, CgroupError> {
    let Some(text) = read_if_present(path)? else {
        return Ok(None);
    };
    let text = text.trim();
    if text == "max" {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        reason: format!("{text:?} is not a number"),
    })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::cgroups::Host;

    #[test]
    fn v2_stats_from_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c1");
        fs::create_dir(&dir).unwrap();
        let files = [
            (
                "cpu.stat",
                "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\nnr_throttled 2\nthrottled_usec 30\n",
            ),
            ("memory.current", "4096\n"),
            (
                "memory.stat",
                "anon 1024\nfile 3072\nactive_file 2048\ninactive_file 1024\n",
            ),
            ("memory.max", "max\n"),
            (
                "memory.events",
                "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
            ),
            ("pids.current", "2\n"),
            ("pids.max", "64\n"),
        ];
        for (name, text) in files {
            fs::write(dir.join(name), text).unwrap();
        }
        let cgroup = Cgroup::new(&Host::v2_at(tmp.path()), Some(Path::new("/c1")), "c1").unwrap();
        let stats = cgroup.stats().unwrap();
        assert_eq!(
            stats,
            Stats {
                cpu: CpuStats {
                    usage_ns: 1_500_000,
                    user_ns: 1_000_000,
                    system_ns: 500_000,
                    periods: 7,
                    throttled_periods: 2,
                    throttled_ns: 30_000,
                },
                memory: MemoryStats {
                    usage_bytes: 4096,
                    inactive_file_bytes: 1024,
                    max_usage_bytes: None,
                    limit_bytes: None,
                    oom_kills: 1,
                },
                pids: PidsStats {
                    current: 2,
                    limit: Some(64)
                },
            }
        );
    }

    #[test]
    fn v1_oom_kills_come_from_oom_control_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("memory/c1");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("memory.failcnt"), "12\n").unwrap();
        fs::write(
            dir.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\n",
        )
        .unwrap();
        let cgroup = Cgroup::new(&Host::v1_at(tmp.path()), Some(Path::new("/c1")), "c1").unwrap();
        assert!(cgroup.oom_kills().is_err());
        fs::write(
            dir.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        )
        .unwrap();
        assert_eq!(cgroup.oom_kills().unwrap(), 3);
        fs::write(dir.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        assert_eq!(cgroup.stats().unwrap().memory.limit_bytes, None);
    }

    #[test]
    fn v1_usage_leaves_out_the_inactive_cache_of_the_whole_subtree() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("memory/c1");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("memory.usage_in_bytes"), "10000\n").unwrap();
        fs::write(
            dir.join("memory.stat"),
            "cache 4000\nrss 6000\ninactive_file 100\ntotal_cache 4000\ntotal_inactive_file 3000\n",
        )
        .unwrap();
        fs::write(dir.join("memory.oom_control"), "oom_kill 0\n").unwrap();
        let cgroup = Cgroup::new(&Host::v1_at(tmp.path()), Some(Path::new("/c1")), "c1").unwrap();
        let memory = cgroup.stats().unwrap().memory;
        assert_eq!(memory.inactive_file_bytes, 3000);
        assert_eq!(memory.working_set_bytes(), 7000);
    }

    #[test]
    fn inactive_file_by_hierarchy_version() {
        let v2 = "anon 10\ninactive_anon 0\ninactive_file 42\n";
        assert_eq!(inactive_file(v2, true), 42);
        let v1 = "inactive_file 5\ntotal_inactive_file 50\n";
        assert_eq!(inactive_file(v1, false), 50);
        assert_eq!(inactive_file("", false), 0);
        let more = MemoryStats {
            usage_bytes: 10,
            inactive_file_bytes: 20,
            ..Default::default()
        };
        assert_eq!(more.working_set_bytes(), 0);
    }
}
