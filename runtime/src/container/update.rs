//! update: new limits for a container's cgroup while it runs, as `runc update` sets them.
//! The change is merged into the saved spec's resources, so the next update and `state`
//! start from what is in force.

use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxResources};

use super::{Container, Status};
use crate::error::Result;

impl Container {
    /// Applies the fields `change` gives; the others keep their values. Devices are not
    /// changed, as with runc. When the kernel refuses a value, the sections already
    /// written are put back as they were.
    pub fn update(&mut self, change: &LinuxResources) -> Result<()> {
        self.require(
            &[Status::Created, Status::Running, Status::Paused],
            "update",
        )?;
        let cgroup = self.cgroup_or_err()?.clone();
        let mut linux = self.saved.spec.linux().clone().unwrap_or_default();
        let current = linux.resources().clone().unwrap_or_default();
        let merged = merge(&current, change);
        if let Err(e) = cgroup.apply(&sections(&merged, change)) {
            let _ = cgroup.apply(&sections(&current, change));
            return Err(e.into());
        }
        linux.set_resources(Some(merged));
        self.saved.spec.set_linux(Some(linux));
        self.saved.save(&self.dir())
    }
}

/// `current` with every field that `change` gives replaced.
pub fn merge(current: &LinuxResources, change: &LinuxResources) -> LinuxResources {
    let mut out = current.clone();
    if let Some(c) = change.cpu() {
        let mut cpu = current.cpu().clone().unwrap_or_default();
        merge_cpu(&mut cpu, c);
        out.set_cpu(Some(cpu));
    }
    if let Some(m) = change.memory() {
        let mut memory = current.memory().unwrap_or_default();
        merge_memory(&mut memory, m);
        out.set_memory(Some(memory));
    }
    if change.pids().is_some() {
        out.set_pids(*change.pids());
    }
    if change.block_io().is_some() {
        out.set_block_io(change.block_io().clone());
    }
    if change.hugepage_limits().is_some() {
        out.set_hugepage_limits(change.hugepage_limits().clone());
    }
    if let Some(files) = change.unified() {
        let mut unified = current.unified().clone().unwrap_or_default();
        unified.extend(files.iter().map(|(k, v)| (k.clone(), v.clone())));
        out.set_unified(Some(unified));
    }
    out
}

fn merge_cpu(cpu: &mut LinuxCpu, c: &LinuxCpu) {
    if c.shares().is_some() {
        cpu.set_shares(c.shares());
    }
    if c.quota().is_some() {
        cpu.set_quota(c.quota());
    }
    if c.period().is_some() {
        cpu.set_period(c.period());
    }
    if c.realtime_runtime().is_some() {
        cpu.set_realtime_runtime(c.realtime_runtime());
    }
    if c.realtime_period().is_some() {
        cpu.set_realtime_period(c.realtime_period());
    }
    if c.cpus().is_some() {
        cpu.set_cpus(c.cpus().clone());
    }
    if c.mems().is_some() {
        cpu.set_mems(c.mems().clone());
    }
    if c.idle().is_some() {
        cpu.set_idle(c.idle());
    }
    if c.burst().is_some() {
        cpu.set_burst(c.burst());
    }
}

fn merge_memory(memory: &mut LinuxMemory, m: &LinuxMemory) {
    if m.limit().is_some() {
        memory.set_limit(m.limit());
    }
    if m.reservation().is_some() {
        memory.set_reservation(m.reservation());
    }
    if m.swap().is_some() {
        memory.set_swap(m.swap());
    }
    if m.swappiness().is_some() {
        memory.set_swappiness(m.swappiness());
    }
    if m.disable_oom_killer().is_some() {
        memory.set_disable_oom_killer(m.disable_oom_killer());
    }
    if m.kernel_tcp().is_some() {
        memory.set_kernel_tcp(m.kernel_tcp());
    }
}

/// The sections of `from` that `change` touches, whole: on cgroup v2 a swap limit is
/// written relative to the memory limit, which the change may not repeat.
fn sections(from: &LinuxResources, change: &LinuxResources) -> LinuxResources {
    let mut out = LinuxResources::default();
    if change.cpu().is_some() {
        out.set_cpu(from.cpu().clone());
    }
    if change.memory().is_some() {
        out.set_memory(*from.memory());
    }
    if change.pids().is_some() {
        out.set_pids(*from.pids());
    }
    if change.block_io().is_some() {
        out.set_block_io(from.block_io().clone());
    }
    if change.hugepage_limits().is_some() {
        out.set_hugepage_limits(from.hugepage_limits().clone());
    }
    if change.unified().is_some() {
        out.set_unified(from.unified().clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resources(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_change_replaces_only_the_fields_it_gives() {
        let current = resources(json!({
            "devices": [{"allow": false, "access": "rwm"}],
            "memory": {"limit": 67108864, "swap": 134217728, "reservation": 33554432},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
            "pids": {"limit": 32},
            "unified": {"memory.high": "60000000"}
        }));
        let change = resources(json!({
            "memory": {"limit": 134217728},
            "cpu": {"quota": 25000},
            "unified": {"io.weight": "50"}
        }));
        let merged = merge(&current, &change);
        assert_eq!(
            serde_json::to_value(&merged).unwrap(),
            json!({
                "devices": [{"allow": false, "access": "rwm"}],
                "memory": {"limit": 134217728, "swap": 134217728, "reservation": 33554432},
                "cpu": {"shares": 512, "quota": 25000, "period": 100000, "cpus": "0"},
                "pids": {"limit": 32},
                "unified": {"memory.high": "60000000", "io.weight": "50"}
            })
        );
    }

    #[test]
    fn only_the_sections_a_change_touches_are_written_and_each_whole() {
        let merged = resources(json!({
            "devices": [{"allow": false, "access": "rwm"}],
            "memory": {"limit": 134217728, "swap": 268435456},
            "cpu": {"shares": 512},
            "pids": {"limit": 32}
        }));
        let change = resources(json!({"memory": {"swap": 268435456}}));
        assert_eq!(
            serde_json::to_value(sections(&merged, &change)).unwrap(),
            json!({"memory": {"limit": 134217728, "swap": 268435456}})
        );
    }

    #[test]
    fn a_change_of_a_section_the_spec_lacks_starts_from_nothing() {
        let change = resources(json!({"pids": {"limit": 64}}));
        let merged = merge(&LinuxResources::default(), &change);
        assert_eq!(
            serde_json::to_value(&merged).unwrap(),
            json!({"pids": {"limit": 64}})
        );
    }
}
