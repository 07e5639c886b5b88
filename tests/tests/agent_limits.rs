//! What a task definition's cpu and memory do, measured from the task's cgroups, and how
//! the agent refuses tasks the host has no room for. A test binary of its own, so that no
//! other test's load skews the CPU measurement.

use std::thread;
use std::time::{Duration, Instant};

use berth_tests::agent::{TASK_CGROUP_ROOT, TIMEOUT, UNTIL_TERM, container, host_task};
use berth_tests::{Agent, ContainerCgroup};
use serde_json::{Value, json};

fn sh(name: &str, script: &str) -> Value {
    json!({
        "name": name,
        "image": "busybox:latest",
        "essential": true,
        "command": ["sh", "-c", script],
    })
}

/// CPU units and MiB of describe-container-instances' `remainingResources` (or
/// `registeredResources`).
#[track_caller]
fn resources(agent: &Agent, which: &str) -> (i64, i64) {
    let instances = agent.json(&["describe-container-instances"]);
    let list = &instances["containerInstances"][0][which];
    let value = |name: &str| {
        list.as_array()
            .into_iter()
            .flatten()
            .find(|r| r["name"] == name)
            .and_then(|r| r["integerValue"].as_i64())
            .unwrap_or_else(|| panic!("no {name} in {which}: {instances:#}"))
    };
    (value("CPU"), value("MEMORY"))
}

#[test]
fn task_cpu_512_holds_a_busy_loop_to_half_a_cpu() {
    let agent = Agent::start();
    let mut definition = host_task(
        "busy",
        vec![sh("spin", "trap 'exit 0' TERM; while true; do :; done")],
    );
    definition["cpu"] = json!("512");
    definition["memory"] = json!("128");
    agent.register(&definition);
    let id = agent.run_task("busy");
    agent.wait_status(&id, "RUNNING", TIMEOUT);
    let cgroup = ContainerCgroup::at(&format!("{TASK_CGROUP_ROOT}/{id}"));
    thread::sleep(Duration::from_millis(300));

    // A busy host gives the task less than its quota whatever the limit is, so a
    // measurement counts only while a busy loop of this test, beside the task, gets
    // well over 0.6 CPU: then an unlimited task would too, and fail the check.
    let mut busy_windows = Vec::new();
    for _ in 0..8 {
        let reference = thread::spawn(|| spin(Duration::from_secs(2)));
        let (used_before, at_before) = (cgroup.cpu_usage(), Instant::now());
        let free = reference.join().expect("the reference loop");
        let (used_after, at_after) = (cgroup.cpu_usage(), Instant::now());
        let cpus = (used_after - used_before).as_secs_f64() / (at_after - at_before).as_secs_f64();
        if free < 0.7 {
            busy_windows.push((free, cpus));
            continue;
        }
        assert!(
            (0.4..=0.6).contains(&cpus),
            "the task used {cpus:.3} CPUs, not 0.5 ± 20% (a busy loop beside it got {free:.3})"
        );
        agent.stop_task(&id, "measured");
        agent.wait_status(&id, "STOPPED", TIMEOUT);
        return;
    }
    panic!(
        "the host was too busy to measure: (CPUs of a busy loop, CPUs of the task) in \
         each window: {busy_windows:.3?}"
    );
}

/// Spins for `window` and returns the CPUs this thread got: its CPU time over the time.
fn spin(window: Duration) -> f64 {
    let start = Instant::now();
    let cpu_start = thread_cpu_time();
    let mut n: u64 = 0;
    while start.elapsed() < window {
        n = std::hint::black_box(n.wrapping_add(1));
    }
    (thread_cpu_time() - cpu_start).as_secs_f64() / start.elapsed().as_secs_f64()
}

/// The CPU time the calling thread has used.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `now` is.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

#[test]
fn a_container_over_its_memory_is_killed_for_it() {
    let agent = Agent::start();
    let mut hungry = sh(
        "hungry",
        r#"x=$(head -c 67108864 /dev/zero | tr "\0" a); echo survived"#,
    );
    hungry["memory"] = json!(32);
    agent.register(&host_task("hungry", vec![hungry]));
    let id = agent.run_task("hungry");

    let task = agent.wait_status(&id, "STOPPED", TIMEOUT);
    let hungry = container(&task, "hungry");
    assert_eq!(hungry["exitCode"], 137, "{task:#}");
    assert_eq!(
        hungry["reason"], "OutOfMemoryError: Container killed due to memory usage",
        "{task:#}"
    );
    let logs = agent.berth(["logs", &id]).ok("logs");
    assert!(!logs.stdout.contains("survived"), "{logs:#?}");
    agent.assert_nothing_left(&id);
}

#[test]
fn memory_reservation_is_the_containers_soft_limit() {
    let agent = Agent::start();
    let mut app = sh("app", UNTIL_TERM);
    app["memoryReservation"] = json!(16);
    agent.register(&host_task("reserved", vec![app]));
    let id = agent.run_task("reserved");
    agent.wait_status(&id, "RUNNING", TIMEOUT);

    let cgroup = ContainerCgroup::at(&format!("{TASK_CGROUP_ROOT}/{id}/app"));
    assert_eq!(cgroup.memory_soft_limit(), 16 * 1024 * 1024);
    agent.stop_task(&id, "checked");
    agent.wait_status(&id, "STOPPED", TIMEOUT);
}

#[test]
fn a_task_larger_than_the_host_is_refused() {
    let agent = Agent::start();
    let (_, host_mib) = resources(&agent, "registeredResources");
    let too_big = host_mib + 1024;
    let mut definition = host_task("huge", vec![sh("app", UNTIL_TERM)]);
    definition["memory"] = json!(too_big.to_string());
    agent.register(&definition);

    let out = agent.berth(["run-task", "--task-definition", "huge"]);
    out.assert_error_naming(&format!("{too_big} MiB"));
    assert!(
        out.stderr.contains(&host_mib.to_string()),
        "the error says what the host has: {out:#?}"
    );
    let tasks = agent.json(&["list-tasks"]);
    assert_eq!(tasks["taskArns"], json!([]));
    assert_eq!(
        resources(&agent, "remainingResources"),
        resources(&agent, "registeredResources")
    );
}

#[test]
fn run_task_count_beyond_the_remaining_capacity_fails_the_rest() {
    let agent = Agent::start();
    let (host_cpu, host_mib) = resources(&agent, "registeredResources");
    assert_eq!(
        resources(&agent, "remainingResources"),
        (host_cpu, host_mib)
    );

    // One vCPU each: one task more than the host has CPUs. They are stopped as soon as
    // they start, which on a slow machine is before the shell has set its trap, and an
    // init without a handler ignores SIGTERM: SIGKILL must follow well within TIMEOUT.
    let mut app = sh("app", UNTIL_TERM);
    app["stopTimeout"] = json!(2);
    let mut cpu_bound = host_task("one-cpu", vec![app]);
    cpu_bound["cpu"] = json!("1024");
    cpu_bound["memory"] = json!("64");
    agent.register(&cpu_bound);
    let fits = host_cpu / 1024;
    let count = (fits + 1).to_string();
    let response = agent.json(&[
        "run-task",
        "--task-definition",
        "one-cpu",
        "--count",
        &count,
    ]);
    let started = response["tasks"].as_array().cloned().unwrap_or_default();
    assert_eq!(started.len() as i64, fits, "{response:#}");
    assert_eq!(
        response["failures"][0]["reason"], "RESOURCE:CPU",
        "{response:#}"
    );
    assert_eq!(
        response["failures"].as_array().map(Vec::len),
        Some(1),
        "{response:#}"
    );
    assert_eq!(
        resources(&agent, "remainingResources"),
        (host_cpu - fits * 1024, host_mib - fits * 64)
    );
    for task in &started {
        let id = berth_tests::agent::task_id(task);
        agent.stop_task(&id, "making room");
        agent.wait_status(&id, "STOPPED", TIMEOUT);
    }
    assert_eq!(
        resources(&agent, "remainingResources"),
        (host_cpu, host_mib)
    );

    // Six tenths of the host's memory each: the second does not fit.
    let mut memory_bound = host_task("most-memory", vec![sh("app", UNTIL_TERM)]);
    memory_bound["cpu"] = json!("128");
    memory_bound["memory"] = json!((host_mib * 6 / 10).to_string());
    agent.register(&memory_bound);
    let response = agent.json(&[
        "run-task",
        "--task-definition",
        "most-memory",
        "--count",
        "2",
    ]);
    assert_eq!(
        response["tasks"].as_array().map(Vec::len),
        Some(1),
        "{response:#}"
    );
    assert_eq!(
        response["failures"][0]["reason"], "RESOURCE:MEMORY",
        "{response:#}"
    );
    assert_eq!(
        resources(&agent, "remainingResources"),
        (host_cpu - 128, host_mib - host_mib * 6 / 10)
    );
}
