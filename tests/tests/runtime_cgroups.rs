//! Resource limits from `linux.resources`, checked by their effect and by the counters of
//! the container's cgroup (v1, hybrid or v2).

use std::thread;
use std::time::{Duration, Instant};

use berth_tests::{Bundle, ContainerCgroup, Runtime};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

/// Touches every page of a 64 MiB buffer.
const ALLOCATE_64_MIB: [&str; 5] = ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"];

#[test]
fn a_memory_limit_oom_kills_the_process_and_the_cgroup_records_it() {
    let mut bundle = Bundle::new("oom");
    bundle
        .resources(json!({"memory": {"limit": 32 * 1024 * 1024}}))
        .args(&ALLOCATE_64_MIB);
    let runtime = Runtime::new();

    let run = runtime.run(&runtime.new_id("oom-run"), &bundle);
    assert_eq!(
        run.code, 137,
        "allocating 64 MiB under a 32 MiB limit should be SIGKILLed: {run:#?}"
    );

    // The counter lives in the cgroup, which must outlive the process until delete.
    let id = runtime.new_id("oom");
    let pid = runtime.create_and_start(&id, &bundle);
    let cgroup = ContainerCgroup::of_pid(pid);
    runtime.wait_status(&id, "stopped", WAIT);
    assert!(
        cgroup.oom_kills() >= 1,
        "the cgroup should count the OOM kill: {cgroup:?}"
    );
    runtime.delete(&id).ok("delete");
}

#[test]
fn a_cpu_quota_holds_a_busy_loop_to_half_a_cpu() {
    let mut bundle = Bundle::new("cpu");
    bundle
        .resources(json!({"cpu": {"quota": 50000, "period": 100000}}))
        .sh("while :; do :; done");
    let runtime = Runtime::new();
    let id = runtime.new_id("cpu");
    let pid = runtime.create_and_start(&id, &bundle);
    let cgroup = ContainerCgroup::of_pid(pid);
    thread::sleep(Duration::from_millis(300));

    let (used_before, started) = (cgroup.cpu_usage(), Instant::now());
    thread::sleep(Duration::from_secs(2));
    let (used_after, elapsed) = (cgroup.cpu_usage(), started.elapsed());

    let share = (used_after - used_before).as_secs_f64() / elapsed.as_secs_f64();
    assert!(
        (0.4..=0.6).contains(&share),
        "a 50% quota should give 0.5 CPU ±20%, got {share:.3}"
    );
    runtime.kill(&id, "KILL").ok("kill");
}

#[test]
fn a_pids_limit_stops_a_fork_storm() {
    let mut bundle = Bundle::new("pids");
    // An inner shell forks 50 sleepers and dies at the first failed fork; the outer one
    // then counts the processes of the container with builtins alone.
    bundle
        .resources(json!({"pids": {"limit": 20}}))
        .sh("sh -c 'for i in $(seq 50); do sleep 5 & done'; set -- /proc/[0-9]*; echo $#");
    let runtime = Runtime::new();

    let out = runtime.run(&runtime.new_id("pids"), &bundle).ok("run");

    let count: usize = out
        .stdout
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("count {:?}: {e}", out.stdout));
    assert!(
        count <= 20,
        "pids.max 20 should cap the container at 20 processes, it had {count}"
    );
    assert!(
        !out.stderr.is_empty(),
        "the failed forks should be reported: {out:#?}"
    );
}

#[test]
fn update_changes_the_limits_of_a_running_container() {
    const MIB: u64 = 1024 * 1024;
    let mut bundle = Bundle::new("update");
    bundle
        .resources(json!({
            "memory": {"limit": 64 * MIB},
            "cpu": {"quota": 50000, "period": 100000},
            "pids": {"limit": 32}
        }))
        .sh("sleep 60");
    let runtime = Runtime::new();
    let id = runtime.new_id("update");
    let pid = runtime.create_and_start(&id, &bundle);
    let cgroup = ContainerCgroup::of_pid(pid);
    assert_eq!(cgroup.memory_limit(), 64 * MIB);

    // runc's flags, sizes in its forms.
    runtime
        .cmd([
            "update",
            "--memory",
            "128m",
            "--cpu-quota",
            "25000",
            "--pids-limit",
            "64",
            &id,
        ])
        .ok("update with flags");
    assert_eq!(cgroup.memory_limit(), 128 * MIB);
    assert_eq!(cgroup.cpu_max(), (Some(25000), 100000));
    assert_eq!(cgroup.pids_max(), Some(64));

    // What containerd's shim sends: linux.resources on stdin. Fields it leaves out keep
    // their values.
    let mut update = runtime.command(["update", "--resources", "-", &id]);
    let mut child = update
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn update");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(br#"{"pids": {"limit": 16}, "cpu": {"period": 200000}}"#)
            .expect("write resources");
    }
    let out = berth_tests::runtime::Output::from_std(child.wait_with_output().expect("wait"));
    out.ok("update --resources -");
    assert_eq!(cgroup.pids_max(), Some(16));
    assert_eq!(cgroup.cpu_max(), (Some(25000), 200000));
    assert_eq!(cgroup.memory_limit(), 128 * MIB);

    // Bad input names the flag or the container and changes nothing.
    runtime
        .cmd(["update", "--memory", "lots", &id])
        .assert_error_naming("--memory");
    runtime
        .cmd(["update", "--pids-limit", "8", "no-such-container"])
        .assert_error_naming("no-such-container");
    assert_eq!(cgroup.pids_max(), Some(16));
    assert_eq!(cgroup.memory_limit(), 128 * MIB);
    // The cpu section is written before the memory one fails: it is put back.
    runtime
        .cmd([
            "update",
            "--cpu-quota",
            "10000",
            "--memory",
            "64m",
            "--memory-swap",
            "32m",
            &id,
        ])
        .assert_error_naming("memory.swap");
    assert_eq!(cgroup.cpu_max(), (Some(25000), 200000));
    assert_eq!(cgroup.memory_limit(), 128 * MIB);

    runtime.kill(&id, "KILL").ok("kill");
    runtime.wait_status(&id, "stopped", WAIT);
    runtime
        .cmd(["update", "--pids-limit", "8", &id])
        .assert_error_naming(&id);
    runtime.delete(&id).ok("delete");
}
