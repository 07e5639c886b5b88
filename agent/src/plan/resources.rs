//! cgroup limits the way ECS means them: task cpu is a CFS quota and task memory a hard
//! limit on the task's cgroup; container cpu is a share, container memory a hard limit
//! and memoryReservation a soft one on the container's child cgroup.

use oci_spec::runtime::{LinuxCpu, LinuxDeviceCgroup, LinuxMemory, LinuxPids, LinuxResources};

use crate::taskdef::units::{UNITS_PER_VCPU, parse_cpu_units, parse_memory_mib};
use crate::taskdef::{ContainerDefinition, TaskDefinition};

/// The CFS period the task's quota is a share of, in microseconds.
pub const CFS_PERIOD_US: u64 = 100_000;

/// Docker's floor for cpu shares.
const MIN_SHARES: u64 = 2;

const MIB: i64 = 1024 * 1024;

/// The task cgroup's limits: quota = units × period / 1024, memory = MiB × 2^20.
pub fn task_resources(def: &TaskDefinition) -> LinuxResources {
    let mut r = LinuxResources::default();
    if let Some(Ok(units)) = def.cpu.as_deref().map(parse_cpu_units) {
        let mut cpu = LinuxCpu::default();
        let quota = units.saturating_mul(CFS_PERIOD_US) / UNITS_PER_VCPU;
        cpu.set_quota(Some(i64::try_from(quota).unwrap_or(i64::MAX)));
        cpu.set_period(Some(CFS_PERIOD_US));
        r.set_cpu(Some(cpu));
    }
    if let Some(Ok(mib)) = def.memory.as_deref().map(parse_memory_mib) {
        let mut memory = LinuxMemory::default();
        memory.set_limit(Some(
            i64::try_from(mib)
                .unwrap_or(i64::MAX / MIB)
                .saturating_mul(MIB),
        ));
        r.set_memory(Some(memory));
    }
    r
}

/// A container's limits. Without `cpu` no shares are set (the kernel's default weight);
/// below 2 it is raised to 2, as Docker does. Swap is limited only when
/// `linuxParameters.maxSwap` asks for it (on top of `memory`), so that hosts without
/// swap accounting still run the container. The number of processes is unlimited.
pub fn container_resources(
    c: &ContainerDefinition,
    devices: Vec<LinuxDeviceCgroup>,
) -> LinuxResources {
    let mut r = LinuxResources::default();
    if let Some(units) = c.cpu {
        let mut cpu = LinuxCpu::default();
        cpu.set_shares(Some(u64::try_from(units).unwrap_or(0).max(MIN_SHARES)));
        r.set_cpu(Some(cpu));
    }
    let lp = c.linux_parameters.as_ref();
    let mut memory = LinuxMemory::default();
    let limit = c.memory.map(|m| m.saturating_mul(MIB));
    memory.set_limit(limit);
    memory.set_reservation(c.memory_reservation.map(|m| m.saturating_mul(MIB)));
    if let (Some(limit), Some(swap)) = (limit, lp.and_then(|lp| lp.max_swap)) {
        memory.set_swap(Some(limit.saturating_add(swap.saturating_mul(MIB))));
    }
    memory.set_swappiness(
        lp.and_then(|lp| lp.swappiness)
            .and_then(|s| u64::try_from(s).ok()),
    );
    if memory != LinuxMemory::default() {
        r.set_memory(Some(memory));
    }
    let mut pids = LinuxPids::default();
    pids.set_limit(-1);
    r.set_pids(Some(pids));
    r.set_devices(Some(devices));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taskdef::LinuxParameters;

    #[test]
    fn task_cpu_is_a_quota_and_memory_a_limit() {
        let def = TaskDefinition {
            cpu: Some("0.5 vCPU".into()),
            memory: Some("2GB".into()),
            ..Default::default()
        };
        let r = task_resources(&def);
        let cpu = r.cpu().as_ref().unwrap();
        assert_eq!(cpu.quota(), Some(50_000));
        assert_eq!(cpu.period(), Some(100_000));
        assert_eq!(cpu.shares(), None);
        assert_eq!(r.memory().unwrap().limit(), Some(2048 * 1024 * 1024));
        assert_eq!(r.devices(), &None);
        assert_eq!(r.pids(), &None);

        let r = task_resources(&TaskDefinition {
            cpu: Some("3072".into()),
            ..Default::default()
        });
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(300_000));
        assert_eq!(r.memory(), &None);
    }

    #[test]
    fn no_task_sizes_no_task_limits() {
        let r = task_resources(&TaskDefinition::default());
        assert_eq!(r.cpu(), &None);
        assert_eq!(r.memory(), &None);
    }

    #[test]
    fn container_cpu_is_shares_with_dockers_floor() {
        let shares = |cpu| {
            let c = ContainerDefinition {
                cpu,
                ..Default::default()
            };
            container_resources(&c, vec![])
                .cpu()
                .as_ref()
                .and_then(|cpu| cpu.shares())
        };
        assert_eq!(shares(None), None);
        assert_eq!(shares(Some(0)), Some(2));
        assert_eq!(shares(Some(1)), Some(2));
        assert_eq!(shares(Some(256)), Some(256));
    }

    #[test]
    fn container_memory_limit_reservation_and_pids() {
        let c = ContainerDefinition {
            memory: Some(512),
            memory_reservation: Some(128),
            ..Default::default()
        };
        let r = container_resources(&c, vec![]);
        let m = r.memory().unwrap();
        assert_eq!(m.limit(), Some(512 << 20));
        assert_eq!(m.reservation(), Some(128 << 20));
        assert_eq!(m.swap(), None);
        assert_eq!(r.pids().unwrap().limit(), -1);
        assert_eq!(r.devices(), &Some(vec![]));
    }

    #[test]
    fn max_swap_counts_on_top_of_memory() {
        let c = ContainerDefinition {
            memory: Some(256),
            linux_parameters: Some(LinuxParameters {
                max_swap: Some(100),
                swappiness: Some(10),
                ..Default::default()
            }),
            ..Default::default()
        };
        let m = container_resources(&c, vec![]).memory().unwrap();
        assert_eq!(m.swap(), Some(356 << 20));
        assert_eq!(m.swappiness(), Some(10));
        let c = ContainerDefinition {
            memory: Some(256),
            linux_parameters: Some(LinuxParameters {
                max_swap: Some(0),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            container_resources(&c, vec![]).memory().unwrap().swap(),
            Some(256 << 20)
        );
    }

    #[test]
    fn no_memory_fields_no_memory_section() {
        let r = container_resources(&ContainerDefinition::default(), vec![]);
        assert_eq!(r.memory(), &None);
    }
}
