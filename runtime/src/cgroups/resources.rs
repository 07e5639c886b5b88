use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::Path;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxHugepageLimit, LinuxMemory, LinuxNetwork,
    LinuxPids, LinuxResources,
};

use super::devices::{self, DeviceRule};
use super::{Cgroup, CgroupError, Mode, bpf, read_if_present};

/// cpu.cfs_period_us's default, which cpu.max must spell out.
const DEFAULT_PERIOD: u64 = 100_000;

impl Cgroup {
    /// Writes the limits of `r` to the cgroup. A field that is absent writes nothing.
    pub fn apply(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        refuse_unsupported(r)?;
        if let Some(cpu) = r.cpu() {
            self.apply_cpuset(cpu)?;
            self.apply_cpu(cpu)?;
        }
        if let Some(memory) = r.memory() {
            self.apply_memory(memory)?;
        }
        if let Some(pids) = r.pids() {
            self.apply_pids(pids)?;
        }
        if let Some(limits) = r.hugepage_limits() {
            self.apply_hugetlb(limits)?;
        }
        if let Some(rules) = r.devices() {
            self.apply_devices(rules)?;
        }
        if let Some(files) = r.unified() {
            self.apply_unified(files)?;
        }
        Ok(())
    }

    fn is_v2(&self) -> bool {
        self.mode == Mode::V2
    }

    fn apply_cpu(&self, cpu: &LinuxCpu) -> Result<(), CgroupError> {
        if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
            let field = "linux.resources.cpu.shares";
            if self.is_v2() {
                let weight = shares_to_weight(shares).to_string();
                self.write(field, "cpu", "cpu.weight", &weight)?;
            } else {
                self.write(field, "cpu", "cpu.shares", &shares.to_string())?;
            }
        }
        let quota = unset_if_zero(cpu.quota());
        let period = cpu.period().filter(|p| *p != 0);
        if self.is_v2() {
            if quota.is_none() && period.is_none() {
                return Ok(());
            }
            let field = match quota {
                Some(_) => "linux.resources.cpu.quota",
                None => "linux.resources.cpu.period",
            };
            let quota = match quota {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".to_string(),
            };
            let value = format!("{quota} {}", period.unwrap_or(DEFAULT_PERIOD));
            self.write(field, "cpu", "cpu.max", &value)?;
        } else {
            // Period first: the quota is checked against it.
            if let Some(period) = period {
                let field = "linux.resources.cpu.period";
                self.write(field, "cpu", "cpu.cfs_period_us", &period.to_string())?;
            }
            if let Some(quota) = quota {
                let value = if quota > 0 { quota } else { -1 };
                let field = "linux.resources.cpu.quota";
                self.write(field, "cpu", "cpu.cfs_quota_us", &value.to_string())?;
            }
        }
        Ok(())
    }

    /// The same files on v1 and v2.
    fn apply_cpuset(&self, cpu: &LinuxCpu) -> Result<(), CgroupError> {
        if let Some(cpus) = cpu.cpus().as_deref().filter(|c| !c.is_empty()) {
            self.write("linux.resources.cpu.cpus", "cpuset", "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = cpu.mems().as_deref().filter(|m| !m.is_empty()) {
            self.write("linux.resources.cpu.mems", "cpuset", "cpuset.mems", mems)?;
        }
        Ok(())
    }

    fn apply_memory(&self, memory: &LinuxMemory) -> Result<(), CgroupError> {
        let limit = unset_if_zero(memory.limit());
        let swap = unset_if_zero(memory.swap());
        let reservation = unset_if_zero(memory.reservation());
        // docker sends -1 as an unsigned number for "not set".
        let swappiness = memory.swappiness().filter(|s| *s != u64::MAX);
        let swap_field = "linux.resources.memory.swap";
        if let (Some(limit), Some(swap)) = (limit, swap) {
            if limit > 0 && swap >= 0 && swap < limit {
                return Err(CgroupError::invalid(
                    swap_field,
                    format!(
                        "{swap} is less than linux.resources.memory.limit {limit} (swap counts memory plus swap)"
                    ),
                ));
            }
        }

        if self.is_v2() {
            if let Some(limit) = limit {
                self.write(
                    "linux.resources.memory.limit",
                    "memory",
                    "memory.max",
                    &max_if_negative(limit),
                )?;
            }
            if let Some(swap) = swap {
                let value = match (swap, limit) {
                    (s, _) if s < 0 => "max".to_string(),
                    (s, Some(l)) if l > 0 => (s - l).to_string(),
                    _ => {
                        return Err(CgroupError::invalid(
                            swap_field,
                            "needs a positive linux.resources.memory.limit on cgroup v2, where swap is limited apart from memory",
                        ));
                    }
                };
                self.write_swap(swap, "memory.swap.max", &value)?;
            }
            if let Some(reservation) = reservation {
                let field = "linux.resources.memory.reservation";
                self.write(field, "memory", "memory.low", &max_if_negative(reservation))?;
            }
            if memory.disable_oom_killer() == Some(true) {
                return Err(CgroupError::invalid(
                    "linux.resources.memory.disableOOMKiller",
                    "not supported on cgroup v2",
                ));
            }
            if swappiness.is_some() {
                return Err(CgroupError::invalid(
                    "linux.resources.memory.swappiness",
                    "not supported on cgroup v2",
                ));
            }
            return Ok(());
        }

        // memory+swap may never be below memory: raise it first, lower it last.
        let current = self.v1_number("memory", "memory.limit_in_bytes");
        let raising = limit.is_some_and(|new| memsw_first(new, current));
        let write_limit = |limit: Option<i64>| match limit {
            Some(l) => self.write(
                "linux.resources.memory.limit",
                "memory",
                "memory.limit_in_bytes",
                &l.max(-1).to_string(),
            ),
            None => Ok(()),
        };
        let write_swap = |swap: Option<i64>| match swap {
            Some(s) => self.write_swap(s, "memory.memsw.limit_in_bytes", &s.max(-1).to_string()),
            None => Ok(()),
        };
        if raising {
            write_swap(swap)?;
            write_limit(limit)?;
        } else {
            write_limit(limit)?;
            write_swap(swap)?;
        }
        if let Some(reservation) = reservation {
            let field = "linux.resources.memory.reservation";
            let value = reservation.max(-1).to_string();
            self.write(field, "memory", "memory.soft_limit_in_bytes", &value)?;
        }
        if let Some(disable) = memory.disable_oom_killer() {
            let field = "linux.resources.memory.disableOOMKiller";
            self.write(
                field,
                "memory",
                "memory.oom_control",
                if disable { "1" } else { "0" },
            )?;
        }
        if let Some(swappiness) = swappiness {
            let field = "linux.resources.memory.swappiness";
            if swappiness > 100 {
                return Err(CgroupError::invalid(
                    field,
                    format!("{swappiness} is more than 100"),
                ));
            }
            self.write(
                field,
                "memory",
                "memory.swappiness",
                &swappiness.to_string(),
            )?;
        }
        Ok(())
    }

    /// The swap file is missing when the kernel does not account swap; that only matters
    /// when a limit was asked for.
    fn write_swap(&self, swap: i64, file: &str, value: &str) -> Result<(), CgroupError> {
        let field = "linux.resources.memory.swap";
        match self.write(field, "memory", file, value) {
            Err(CgroupError::Write { source, path, .. })
                if source.kind() == ErrorKind::NotFound =>
            {
                if swap < 0 {
                    Ok(())
                } else {
                    Err(CgroupError::invalid(
                        field,
                        format!(
                            "{} is missing: swap accounting is off on this host",
                            path.display()
                        ),
                    ))
                }
            }
            other => other,
        }
    }

    /// The same file on v1 and v2.
    fn apply_pids(&self, pids: &LinuxPids) -> Result<(), CgroupError> {
        let value = match pids.limit() {
            l if l > 0 => l.to_string(),
            _ => "max".to_string(),
        };
        self.write("linux.resources.pids.limit", "pids", "pids.max", &value)
    }

    /// The page-fault limit, and the reservation limit where the kernel has one.
    fn apply_hugetlb(&self, limits: &[LinuxHugepageLimit]) -> Result<(), CgroupError> {
        for (i, limit) in limits.iter().enumerate() {
            let field = format!("linux.resources.hugepageLimits[{i}]");
            let size = limit.page_size();
            if size.is_empty() || size.contains('/') {
                return Err(CgroupError::invalid(
                    field,
                    format!("page size {size:?} is not like 2MB"),
                ));
            }
            let (files, value) = if self.is_v2() {
                let files = [
                    format!("hugetlb.{size}.max"),
                    format!("hugetlb.{size}.rsvd.max"),
                ];
                (files, max_if_negative(limit.limit()))
            } else {
                let files = [
                    format!("hugetlb.{size}.limit_in_bytes"),
                    format!("hugetlb.{size}.rsvd.limit_in_bytes"),
                ];
                (files, limit.limit().max(-1).to_string())
            };
            self.write(&field, "hugetlb", &files[0], &value)?;
            let reservation = self.controller_dir(&field, "hugetlb")?.join(&files[1]);
            if reservation.exists() {
                self.write(&field, "hugetlb", &files[1], &value)?;
            }
        }
        Ok(())
    }

    /// v1: deny everything, then each rule in order. v2 has no device files: the rules
    /// become an eBPF program attached to the cgroup.
    fn apply_devices(&self, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
        let mut parsed = Vec::with_capacity(rules.len());
        for (i, rule) in rules.iter().enumerate() {
            let field = format!("linux.resources.devices[{i}]");
            parsed.push(
                DeviceRule::from_spec(rule)
                    .map_err(|reason| CgroupError::invalid(field, reason))?,
            );
        }
        if let Some(dir) = self.v2_dir() {
            return apply_device_filter(dir, &parsed);
        }
        self.write("linux.resources.devices", "devices", "devices.deny", "a")?;
        for (i, rule) in parsed.iter().enumerate() {
            let field = format!("linux.resources.devices[{i}]");
            let file = if rule.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            self.write(&field, "devices", file, &rule.to_string())?;
        }
        Ok(())
    }

    /// Raw v2 files, written last so that they win over the fields above.
    fn apply_unified(&self, files: &HashMap<String, String>) -> Result<(), CgroupError> {
        if files.is_empty() {
            return Ok(());
        }
        if !self.is_v2() {
            return Err(CgroupError::invalid(
                "linux.resources.unified",
                "needs a cgroup v2 host; this one has v1 controllers",
            ));
        }
        let mut names: Vec<&String> = files.keys().collect();
        names.sort();
        for name in names {
            let field = format!("linux.resources.unified[{name:?}]");
            if name.is_empty() || name.contains('/') || name.starts_with('.') {
                return Err(CgroupError::invalid(field, "not a cgroup file name"));
            }
            self.write(&field, "unified", name, &files[name])?;
        }
        Ok(())
    }

    /// A number in a v1 file, if it is there and readable.
    fn v1_number(&self, controller: &str, file: &str) -> Option<u64> {
        let text = read_if_present(&self.v1_dir(controller)?.join(file)).ok()??;
        text.trim().parse().ok()
    }
}

/// Fields berth cannot apply yet; refusing them is better than a container running
/// without limits its spec asked for.
fn refuse_unsupported(r: &LinuxResources) -> Result<(), CgroupError> {
    let not_yet = |field: &str| Err(CgroupError::invalid(field, "not supported by berth yet"));
    if r.block_io()
        .as_ref()
        .is_some_and(|b| *b != LinuxBlockIo::default())
    {
        return not_yet("linux.resources.blockIO");
    }
    if r.network()
        .as_ref()
        .is_some_and(|n| *n != LinuxNetwork::default())
    {
        return not_yet("linux.resources.network");
    }
    if r.rdma().as_ref().is_some_and(|r| !r.is_empty()) {
        return not_yet("linux.resources.rdma");
    }
    if let Some(cpu) = r.cpu() {
        if cpu.idle().is_some_and(|i| i != 0) {
            return not_yet("linux.resources.cpu.idle");
        }
        if cpu.burst().is_some_and(|b| b != 0) {
            return not_yet("linux.resources.cpu.burst");
        }
    }
    // memory.kernel is left out on purpose: kernels since 5.16 ignore kernel memory limits.
    if let Some(memory) = r.memory() {
        if memory.kernel_tcp().is_some_and(|k| k != 0) {
            return not_yet("linux.resources.memory.kernelTCP");
        }
    }
    Ok(())
}

/// docker, podman and containerd send 0 for "not set", and runc reads it that way.
fn unset_if_zero(value: Option<i64>) -> Option<i64> {
    value.filter(|v| *v != 0)
}

/// v2 spells "no limit" as max; the spec spells it -1.
fn max_if_negative(value: i64) -> String {
    if value < 0 {
        "max".to_string()
    } else {
        value.to_string()
    }
}

/// Whether v1 memory+swap must be written before memory: the kernel keeps memory+swap at
/// or above memory at every step, so it goes first when the memory limit rises.
fn memsw_first(new_limit: i64, current_limit: Option<u64>) -> bool {
    let new = u64::try_from(new_limit).unwrap_or(u64::MAX);
    current_limit.is_some_and(|current| new > current)
}

/// v1 cpu.shares [2, 262144] mapped linearly onto v2 cpu.weight [1, 10000].
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// Replaces the cgroup's device filter with one that enforces `rules`. An empty list denies
/// every device, as it does on v1 after the leading deny.
fn apply_device_filter(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    let program = devices::program(rules)
        .map_err(|reason| CgroupError::invalid("linux.resources.devices", reason))?;
    bpf::attach_device_filter(dir, &program)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::*;
    use crate::cgroups::Host;

    /// A full resources section, with every field berth applies.
    const FULL: &str = r#"{
        "cpu": {"shares": 1024, "quota": 50000, "period": 200000, "cpus": "0-1", "mems": "0",
                "realtimeRuntime": 0, "realtimePeriod": 0},
        "memory": {"limit": 268435456, "reservation": 134217728, "swap": 536870912,
                   "disableOOMKiller": false, "swappiness": 10},
        "pids": {"limit": 64},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rw"}
        ]
    }"#;

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).expect("test resources parse")
    }

    /// The files the kernel would show in a new v1 cgroup, per controller.
    const V1_FILES: &[(&str, &[&str])] = &[
        (
            "cpu",
            &["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"],
        ),
        ("cpuset", &["cpuset.cpus", "cpuset.mems"]),
        (
            "memory",
            &[
                "memory.limit_in_bytes",
                "memory.memsw.limit_in_bytes",
                "memory.soft_limit_in_bytes",
                "memory.oom_control",
                "memory.swappiness",
            ],
        ),
        ("pids", &["pids.max"]),
        ("hugetlb", &["hugetlb.2MB.limit_in_bytes"]),
        ("devices", &["devices.allow", "devices.deny"]),
    ];

    const V2_FILES: &[&str] = &[
        "cpu.weight",
        "cpu.max",
        "cpuset.cpus",
        "cpuset.mems",
        "memory.max",
        "memory.swap.max",
        "memory.low",
        "memory.high",
        "pids.max",
        "hugetlb.2MB.max",
        "hugetlb.2MB.rsvd.max",
    ];

    fn touch(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// A v1 tree as a kernel would show it: a root cpuset with CPUs and nodes, new cpusets
    /// empty, and the interface files of the new cgroup.
    fn v1_cgroup(root: &Path) -> Cgroup {
        touch(&root.join("cpuset/cpuset.cpus"), "0-3\n");
        touch(&root.join("cpuset/cpuset.mems"), "0\n");
        for dir in ["cpuset/t", "cpuset/t/c1"] {
            touch(&root.join(dir).join("cpuset.cpus"), "\n");
            touch(&root.join(dir).join("cpuset.mems"), "\n");
        }
        let cgroup = Cgroup::new(&Host::v1_at(root), Some(Path::new("/t/c1")), "c1").unwrap();
        cgroup.create().unwrap();
        for (controller, files) in V1_FILES {
            for file in *files {
                let path = root.join(controller).join("t/c1").join(file);
                if !path.exists() {
                    touch(&path, "");
                }
            }
        }
        cgroup
    }

    fn v2_cgroup(root: &Path) -> Cgroup {
        touch(
            &root.join("cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids rdma misc\n",
        );
        touch(&root.join("cgroup.subtree_control"), "");
        touch(&root.join("t/cgroup.subtree_control"), "");
        let cgroup = Cgroup::new(&Host::v2_at(root), Some(Path::new("/t/c1")), "c1").unwrap();
        cgroup.create().unwrap();
        for file in V2_FILES {
            touch(&root.join("t/c1").join(file), "");
        }
        cgroup
    }

    fn file(root: &Path, path: &str) -> String {
        fs::read_to_string(root.join(path)).unwrap()
    }

    #[test]
    fn v1_full_resources() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let cgroup = v1_cgroup(root);
        // The cpuset was filled from the parent at every level.
        assert_eq!(file(root, "cpuset/t/cpuset.cpus"), "0-3");
        assert_eq!(file(root, "cpuset/t/c1/cpuset.mems"), "0");

        cgroup.apply(&resources(FULL)).unwrap();

        let expected = [
            ("cpu/t/c1/cpu.shares", "1024"),
            ("cpu/t/c1/cpu.cfs_period_us", "200000"),
            ("cpu/t/c1/cpu.cfs_quota_us", "50000"),
            ("cpuset/t/c1/cpuset.cpus", "0-1"),
            ("cpuset/t/c1/cpuset.mems", "0"),
            ("memory/t/c1/memory.limit_in_bytes", "268435456"),
            ("memory/t/c1/memory.memsw.limit_in_bytes", "536870912"),
            ("memory/t/c1/memory.soft_limit_in_bytes", "134217728"),
            ("memory/t/c1/memory.oom_control", "0"),
            ("memory/t/c1/memory.swappiness", "10"),
            ("pids/t/c1/pids.max", "64"),
            ("hugetlb/t/c1/hugetlb.2MB.limit_in_bytes", "4194304"),
            // Each write replaces the file's content in this fake tree: the last rule.
            ("devices/t/c1/devices.allow", "c 136:* rw"),
            ("devices/t/c1/devices.deny", "a *:* rwm"),
        ];
        for (path, value) in expected {
            assert_eq!(file(root, path), value, "{path}");
        }
    }

    #[test]
    fn v2_full_resources() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let cgroup = v2_cgroup(root);
        assert_eq!(cgroup.v2_path(), Some(root.join("t/c1")));
        // Ancestors hand the controllers berth uses down to their children.
        assert_eq!(
            file(root, "cgroup.subtree_control"),
            "+cpuset +cpu +io +memory +hugetlb +pids"
        );
        assert_eq!(
            file(root, "t/cgroup.subtree_control"),
            "+cpuset +cpu +io +memory +hugetlb +pids"
        );

        let mut full = resources(FULL);
        full.set_devices(None);
        let swappiness = full.memory().as_ref().and_then(|m| m.swappiness());
        assert_eq!(swappiness, Some(10));
        if let Some(memory) = full.memory_mut() {
            memory.set_swappiness(None);
        }
        full.set_unified(Some(HashMap::from([(
            "memory.high".to_string(),
            "200000000".to_string(),
        )])));
        cgroup.apply(&full).unwrap();

        let expected = [
            ("t/c1/cpu.weight", "39"),
            ("t/c1/cpu.max", "50000 200000"),
            ("t/c1/cpuset.cpus", "0-1"),
            ("t/c1/cpuset.mems", "0"),
            ("t/c1/memory.max", "268435456"),
            ("t/c1/memory.swap.max", "268435456"),
            ("t/c1/memory.low", "134217728"),
            ("t/c1/memory.high", "200000000"),
            ("t/c1/pids.max", "64"),
            ("t/c1/hugetlb.2MB.max", "4194304"),
            ("t/c1/hugetlb.2MB.rsvd.max", "4194304"),
        ];
        for (path, value) in expected {
            assert_eq!(file(root, path), value, "{path}");
        }
    }

    #[test]
    fn unlimited_values() {
        let tmp = tempfile::tempdir().unwrap();
        let v1_root = tmp.path().join("v1");
        let v2_root = tmp.path().join("v2");
        let v1 = v1_cgroup(&v1_root);
        let v2 = v2_cgroup(&v2_root);
        let unlimited = resources(
            r#"{"cpu": {"quota": -1}, "memory": {"limit": -1, "swap": -1}, "pids": {"limit": 0}}"#,
        );
        v1.apply(&unlimited).unwrap();
        v2.apply(&unlimited).unwrap();
        assert_eq!(file(&v1_root, "cpu/t/c1/cpu.cfs_quota_us"), "-1");
        assert_eq!(file(&v1_root, "memory/t/c1/memory.limit_in_bytes"), "-1");
        assert_eq!(
            file(&v1_root, "memory/t/c1/memory.memsw.limit_in_bytes"),
            "-1"
        );
        assert_eq!(file(&v1_root, "pids/t/c1/pids.max"), "max");
        assert_eq!(file(&v2_root, "t/c1/cpu.max"), "max 100000");
        assert_eq!(file(&v2_root, "t/c1/memory.max"), "max");
        assert_eq!(file(&v2_root, "t/c1/memory.swap.max"), "max");
        assert_eq!(file(&v2_root, "t/c1/pids.max"), "max");
    }

    #[test]
    fn absent_fields_write_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let cgroup = v2_cgroup(tmp.path());
        cgroup
            .apply(&resources(r#"{"memory": {"limit": 1048576}}"#))
            .unwrap();
        assert_eq!(file(tmp.path(), "t/c1/memory.max"), "1048576");
        for untouched in ["cpu.max", "cpu.weight", "memory.swap.max", "pids.max"] {
            assert_eq!(
                file(tmp.path(), &format!("t/c1/{untouched}")),
                "",
                "{untouched}"
            );
        }
    }

    #[test]
    fn shares_to_weight_covers_both_ranges() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(0), 1);
        assert_eq!(shares_to_weight(1_000_000), 10_000);
    }

    #[test]
    fn swap_is_memory_plus_swap() {
        let tmp = tempfile::tempdir().unwrap();
        let cgroup = v2_cgroup(tmp.path());
        let no_swap = resources(r#"{"memory": {"limit": 33554432, "swap": 33554432}}"#);
        cgroup.apply(&no_swap).unwrap();
        assert_eq!(file(tmp.path(), "t/c1/memory.swap.max"), "0");

        let below = resources(r#"{"memory": {"limit": 33554432, "swap": 1048576}}"#);
        assert_eq!(
            cgroup.apply(&below).unwrap_err().to_string(),
            "linux.resources.memory.swap: 1048576 is less than linux.resources.memory.limit 33554432 (swap counts memory plus swap)"
        );
        let alone = resources(r#"{"memory": {"swap": 1048576}}"#);
        assert!(cgroup.apply(&alone).unwrap_err().to_string().starts_with(
            "linux.resources.memory.swap: needs a positive linux.resources.memory.limit"
        ));
    }

    #[test]
    fn v1_memsw_goes_first_only_when_the_limit_rises() {
        assert!(memsw_first(4 << 20, Some(1 << 20)));
        assert!(memsw_first(-1, Some(1 << 20)));
        assert!(!memsw_first(1 << 20, Some(4 << 20)));
        assert!(!memsw_first(1 << 20, Some(1 << 20)));
        // Unknown current limit: limit first, which is right for a new cgroup.
        assert!(!memsw_first(4 << 20, None));
    }

    #[test]
    fn errors_name_the_field() {
        let tmp = tempfile::tempdir().unwrap();
        let v1_root = tmp.path().join("v1");
        let v2_root = tmp.path().join("v2");
        let v1 = v1_cgroup(&v1_root);
        let v2 = v2_cgroup(&v2_root);
        let message =
            |cgroup: &Cgroup, json: &str| cgroup.apply(&resources(json)).unwrap_err().to_string();

        // v2 rules are checked before any program is built; a directory that is not a
        // cgroup takes no filter, whoever runs the test.
        let devices = r#"{"devices": [{"allow": false, "access": "rwm"}]}"#;
        let text = message(&v2, devices);
        let filter_of = format!(
            "linux.resources.devices: eBPF device filter of {}: ",
            v2_root.join("t/c1").display()
        );
        assert!(text.starts_with(&filter_of), "{text}");
        let fifo_v2 = r#"{"devices": [{"allow": false}, {"allow": true, "type": "p"}]}"#;
        assert_eq!(
            message(&v2, fifo_v2),
            "linux.resources.devices[1]: type p (a fifo) is not a device the cgroup controls"
        );
        let oom = r#"{"memory": {"disableOOMKiller": true}}"#;
        assert_eq!(
            message(&v2, oom),
            "linux.resources.memory.disableOOMKiller: not supported on cgroup v2"
        );
        let unified = r#"{"unified": {"memory.high": "1000000"}}"#;
        assert_eq!(
            message(&v1, unified),
            "linux.resources.unified: needs a cgroup v2 host; this one has v1 controllers"
        );
        let escape = r#"{"unified": {"../../etc/passwd": "x"}}"#;
        assert_eq!(
            message(&v2, escape),
            r#"linux.resources.unified["../../etc/passwd"]: not a cgroup file name"#
        );
        let fifo = r#"{"devices": [{"allow": true, "type": "p", "access": "rwm"}]}"#;
        assert_eq!(
            message(&v1, fifo),
            "linux.resources.devices[0]: type p (a fifo) is not a device the cgroup controls"
        );
        let block_io = r#"{"blockIO": {"weight": 100}}"#;
        assert_eq!(
            message(&v1, block_io),
            "linux.resources.blockIO: not supported by berth yet"
        );

        // The kernel's refusal, with the field, the value and the file.
        let limit_file = v1_root.join("memory/t/c1/memory.limit_in_bytes");
        fs::remove_file(&limit_file).unwrap();
        assert_eq!(
            message(&v1, r#"{"memory": {"limit": 1048576}}"#),
            format!(
                "linux.resources.memory.limit: write 1048576 to {}: No such file or directory (os error 2)",
                limit_file.display()
            )
        );
        // No swap accounting: fine while swap is unlimited, an error when limited.
        fs::remove_file(v1_root.join("memory/t/c1/memory.memsw.limit_in_bytes")).unwrap();
        touch(&limit_file, "");
        v1.apply(&resources(r#"{"memory": {"limit": 1048576, "swap": -1}}"#))
            .unwrap();
        assert!(
            message(&v1, r#"{"memory": {"limit": 1048576, "swap": 2097152}}"#).ends_with(
                "memory.memsw.limit_in_bytes is missing: swap accounting is off on this host"
            )
        );
        // A controller the host has not mounted.
        let no_pids = Cgroup {
            v1: v1
                .v1
                .iter()
                .filter(|(c, _)| **c != "pids")
                .map(|(c, d)| (*c, d.clone()))
                .collect(),
            ..v1.clone()
        };
        assert_eq!(
            message(&no_pids, r#"{"pids": {"limit": 10}}"#),
            "linux.resources.pids.limit: the pids controller is not mounted"
        );
    }
}
