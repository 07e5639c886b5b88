//! What the agent cleans up for a task whose supervisor died without tearing it down:
//! the containers' processes, their rootfs mounts, the task's network (address lease,
//! port mappings) and its cgroup. Each step is idempotent, so a second sweep is harmless.

use std::path::Path;

use berth_runtime::cgroups::{Cgroup, Host};

use crate::net;
use crate::supervisor::task::{TASK_FILE, TaskSpec, read_status};

pub fn dead_task(task_dir: &Path) -> Result<(), String> {
    let path = task_dir.join(TASK_FILE);
    let text = std::fs::read(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let spec: TaskSpec =
        serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let cgroup = Host::detect().ok().and_then(|host| {
        Cgroup::new(&host, Some(Path::new(&spec.task_cgroup)), &spec.task_id).ok()
    });
    // The containers hold the task's network namespace: it goes when they do.
    if let Some(cg) = &cgroup {
        let _ = cg.kill_all(libc::SIGKILL);
    }
    for c in &spec.containers {
        let rootfs = task_dir.join("containers").join(&c.name).join("rootfs");
        let _ = nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH);
    }
    let released = match &spec.network {
        Some(n) => {
            let status = read_status(task_dir).and_then(|s| s.network);
            let bindings = status
                .as_ref()
                .map(|s| s.bindings.clone())
                .unwrap_or_default();
            let ipv4 = status
                .as_ref()
                .map(|s| s.ipv4.as_str())
                .filter(|ip| !ip.is_empty());
            net::release(&spec.task_id, n, &bindings, ipv4, None).map_err(|e| e.to_string())
        }
        None => Ok(()),
    };
    if let Some(cg) = &cgroup {
        for _ in 0..50 {
            if cg.remove().is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    released
}
