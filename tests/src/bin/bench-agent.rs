//! The agent's speed and footprint, beside podman in the same run:
//! - run-task to RUNNING (the task's createdAt to startedAt) for a busybox task with a
//!   stored image, median of RUNS, in networkMode none and in bridge mode with a port
//!   mapping (the network's cost), beside `podman run --network none|bridge`;
//! - 100 tasks started at once until all are RUNNING;
//! - the agent's RSS idle and with 100 tasks, and a supervisor's RSS;
//! - `berth run` of /bin/true against `podman run --rm --network none` of the same image.
//!
//! Usage: bench-agent [RUNS]   (default 50; run as root, release build)

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::{busybox, target_dir};
use serde_json::{Value, json};

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    let bin_dir = std::env::current_exe()
        .expect("exe")
        .parent()
        .expect("dir")
        .to_path_buf();
    let berth = bin_dir.join("berth");
    let work = tempfile::Builder::new()
        .prefix("bench-agent")
        .tempdir_in(target_dir())
        .expect("temp");
    let state = work.path().join("state");
    let run_dir = work.path().join("run");
    let socket = work.path().join("berth.sock");
    let b = Berth {
        bin: berth.clone(),
        state: state.clone(),
        socket: socket.clone(),
    };
    b.cmd(&[
        "image",
        "import",
        &busybox().oci_layout.display().to_string(),
        "--tag",
        "busybox:latest",
    ]);

    let mut agent = Command::new(&berth)
        .args([
            "--state-dir",
            &state.display().to_string(),
            "--socket",
            &socket.display().to_string(),
        ])
        .args(["agent", "--run-dir", &run_dir.display().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start berth agent");
    wait(|| socket.exists(), "agent socket");
    std::thread::sleep(Duration::from_millis(200));
    let idle_rss = rss_kib(agent.id());

    let td = work.path().join("td.json");
    std::fs::write(
        &td,
        json!({"family": "bench", "networkMode": "none", "containerDefinitions": [
            {"name": "c", "image": "busybox:latest", "memory": 8, "command": ["sleep", "600"], "stopTimeout": 1}
        ]})
        .to_string(),
    )
    .expect("write td");
    b.cmd(&["register-task-definition", &td.display().to_string()]);
    let bridge_td = work.path().join("bridge.json");
    std::fs::write(
        &bridge_td,
        json!({"family": "bench-bridge", "networkMode": "bridge", "containerDefinitions": [
            {"name": "c", "image": "busybox:latest", "memory": 8, "command": ["sleep", "600"], "stopTimeout": 1,
             "portMappings": [{"containerPort": 80}]}
        ]})
        .to_string(),
    )
    .expect("write td");
    b.cmd(&["register-task-definition", &bridge_td.display().to_string()]);

    // run-task to RUNNING, one at a time, without a network and on the bridge, in turns
    // so that both see the same host.
    let mut latencies = Vec::new();
    let mut bridge_latencies = Vec::new();
    for _ in 0..runs {
        latencies.push(b.time_to_running("bench"));
        bridge_latencies.push(b.time_to_running("bench-bridge"));
    }
    wait(|| b.active() == 0, "tasks to stop");

    // 100 at once.
    let start = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.extend(b.run_task("bench", 10));
    }
    b.wait_running(&ids);
    let hundred = start.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let busy_rss = rss_kib(agent.id());
    // The supervisors themselves, not the namespace holders they fork.
    let all = pids_named("berth-supervisor");
    let supervisors: Vec<u64> = all
        .iter()
        .copied()
        .filter(|p| cmdline(*p).contains(&state.display().to_string()))
        .filter(|p| !all.contains(&parent(*p)))
        .map(rss_kib)
        .collect();
    let supervisor_pss: Vec<f64> = all
        .iter()
        .copied()
        .filter(|p| cmdline(*p).contains(&state.display().to_string()))
        .filter(|p| !all.contains(&parent(*p)))
        .map(|p| smaps_kib(p, "Pss:") as f64)
        .collect();
    for id in &ids {
        b.cmd(&["stop-task", id]);
    }
    wait(|| b.active() == 0, "tasks to stop");

    // berth run of /bin/true against podman run --rm.
    let true_td = work.path().join("true.json");
    std::fs::write(
        &true_td,
        json!({"family": "true", "networkMode": "none", "containerDefinitions": [
            {"name": "c", "image": "busybox:latest", "memory": 8, "command": ["true"]}
        ]})
        .to_string(),
    )
    .expect("write td");
    let berth_run: Vec<f64> = (0..runs.min(20))
        .map(|_| {
            timed(Command::new(&berth).args([
                "--state-dir",
                &state.display().to_string(),
                "run",
                &true_td.display().to_string(),
                "--run-dir",
                &run_dir.display().to_string(),
            ]))
        })
        .collect();
    let podman = podman_runs(runs.min(20), "none");
    let podman_bridge = podman_runs(runs.min(20), "bridge");

    let _ = agent.kill();
    let _ = agent.wait();
    println!("berth agent, busybox task with a stored image ({runs} runs)");
    let (none, bridge) = (median(latencies), median(bridge_latencies));
    println!("  run-task to RUNNING, median     {none:>8.1} ms   (networkMode none)");
    println!(
        "  run-task to RUNNING, median     {bridge:>8.1} ms   (bridge, one port mapping: +{:.1} ms)",
        bridge - none
    );
    println!(
        "  100 tasks at once to RUNNING    {:>8.0} ms",
        hundred.as_secs_f64() * 1000.0
    );
    println!(
        "  agent RSS idle                  {:>8.1} MiB",
        idle_rss as f64 / 1024.0
    );
    println!(
        "  agent RSS with 100 tasks        {:>8.1} MiB",
        busy_rss as f64 / 1024.0
    );
    if !supervisors.is_empty() {
        println!(
            "  supervisor RSS, median of {:<3}   {:>8.1} MiB",
            supervisors.len(),
            median(supervisors.iter().map(|k| *k as f64).collect()) / 1024.0
        );
        println!(
            "  supervisor PSS (its share)       {:>8.1} MiB",
            median(supervisor_pss) / 1024.0
        );
    }
    let br = median(berth_run);
    println!("  berth run of true, median       {br:>8.1} ms");
    match podman.clone() {
        Some(p) => {
            let p = median(p);
            println!(
                "  podman run --rm of true, median {p:>8.1} ms   (berth run / podman = {:.2})",
                br / p
            );
        }
        None => println!("  podman: not available, left out"),
    }
    if let (Some(none), Some(bridge)) = (podman, podman_bridge) {
        let (none, bridge) = (median(none), median(bridge));
        println!(
            "  podman run --rm --network bridge {bridge:>7.1} ms   (+{:.1} ms over --network none)",
            bridge - none
        );
    }
}

struct Berth {
    bin: PathBuf,
    state: PathBuf,
    socket: PathBuf,
}

impl Berth {
    fn cmd(&self, args: &[&str]) -> Value {
        let out = Command::new(&self.bin)
            .args([
                "--state-dir",
                &self.state.display().to_string(),
                "--socket",
                &self.socket.display().to_string(),
                "--output",
                "json",
            ])
            .args(args)
            .output()
            .expect("run berth");
        assert!(
            out.status.success(),
            "berth {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    /// Runs one task of `family`; ms from its createdAt to its startedAt. Stops it.
    fn time_to_running(&self, family: &str) -> f64 {
        let id = self.run_task(family, 1)[0].clone();
        let t = self.wait_running(std::slice::from_ref(&id));
        let task = &t[0];
        self.cmd(&["stop-task", &id]);
        (task["startedAt"].as_f64().unwrap_or(0.0) - task["createdAt"].as_f64().unwrap_or(0.0))
            * 1000.0
    }

    fn run_task(&self, family: &str, count: u32) -> Vec<String> {
        let v = self.cmd(&[
            "run-task",
            "--task-definition",
            family,
            "--count",
            &count.to_string(),
        ]);
        v["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .map(|t| t["taskArn"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn wait_running(&self, ids: &[String]) -> Vec<Value> {
        let mut args = vec!["describe-tasks"];
        args.extend(ids.iter().map(String::as_str));
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let v = self.cmd(&args);
            let tasks = v["tasks"].as_array().cloned().unwrap_or_default();
            if tasks.iter().all(|t| t["lastStatus"] == "RUNNING") {
                return tasks;
            }
            assert!(
                tasks.iter().all(|t| t["lastStatus"] != "STOPPED"),
                "a task stopped: {:?}",
                tasks
                    .iter()
                    .find(|t| t["lastStatus"] == "STOPPED")
                    .map(|t| t["stoppedReason"].clone())
            );
            assert!(Instant::now() < deadline, "tasks not RUNNING after 120 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn active(&self) -> usize {
        let v = self.cmd(&["list-tasks"]);
        v["taskArns"].as_array().map(|a| a.len()).unwrap_or(0)
    }
}

fn podman_runs(n: usize, network: &str) -> Option<Vec<f64>> {
    let image = busybox();
    let ok = Command::new("podman")
        .args([
            "--cgroup-manager=cgroupfs",
            "--events-backend=file",
            "load",
            "-i",
        ])
        .arg(&image.oci_archive)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return None;
    }
    // crun (podman's runtime) refuses hybrid cgroup hosts unless the cgroup2 mount is
    // hidden; the rlimits are set explicitly because podman's defaults raise hard limits,
    // which needs CAP_SYS_RESOURCE.
    let script = format!(
        "umount /sys/fs/cgroup/unified 2>/dev/null; exec podman --cgroup-manager=cgroupfs --events-backend=file run --rm --network {network} --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 docker.io/library/busybox:latest true"
    );
    let mut times = Vec::new();
    for _ in 0..n {
        let mut c = Command::new("unshare");
        c.args(["-m", "sh", "-c", &script]);
        times.push(timed(&mut c));
    }
    Some(times)
}

fn timed(c: &mut Command) -> f64 {
    let start = Instant::now();
    let out = c
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("spawn");
    let took = start.elapsed().as_secs_f64() * 1000.0;
    assert!(
        out.status.success(),
        "{c:?}: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn wait(mut f: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn smaps_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn pids_named(name: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim() == &name[..name.len().min(15)])
        })
        .collect()
}

fn parent(pid: u32) -> u32 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|t| {
            t.rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
